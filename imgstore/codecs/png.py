"""PNG frame files, compressed with ISA-L's deflate when it is installed.

OpenCV's PNG writer spends almost all of its time in zlib (about 5 ms for a 640x480 grey camera
frame here), so a store cannot keep up with a camera even on two cores. ISA-L (the ``isal``
package) deflates the same rows about four times faster, for files a few per cent larger. The
PNG around the compressed rows is short and fixed: the signature, an ``IHDR``, one ``IDAT``
and an ``IEND``, every row with the "Sub" filter (each byte minus the one a pixel to its left),
which is what OpenCV uses too. Any PNG reader reads these files; upstream reads them with
OpenCV. Frames this writer does not cover (other dtypes or channel counts), and every frame
when ``isal`` is missing, are written by OpenCV as before. Reading is OpenCV's in all cases.
"""

from __future__ import annotations

import struct
import zlib
from typing import Callable, List, Optional

import numpy as np

from .base import Shape
from .images import OpenCVImageCodec, SaveFn

try:  # a dependency on the platforms it has wheels for (see setup.py)
    from isal import isal_zlib

    _deflate: Optional[Callable[[memoryview, int], bytes]] = isal_zlib.compress
except ImportError:  # pragma: no cover - depends on the installation
    _deflate = None

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: ISA-L's level 1: its fastest level that still matches strings (level 0 makes files 30 % larger)
DEFLATE_LEVEL = 1
_SUB_FILTER = 1
#: PNG colour type by channel count: grey, RGB
_COLOUR_TYPES = {1: 0, 3: 2}
_BIT_DEPTHS = {np.dtype(np.uint8): 8, np.dtype(np.uint16): 16}


def fast_png_available() -> bool:
    """Whether PNG frames are deflated by ISA-L (else OpenCV writes them)."""
    return _deflate is not None


def encode_png(img: np.ndarray) -> Optional[List[bytes]]:
    """The PNG file of a grey (h, w) or BGR (h, w, 3) uint8/uint16 frame, as pieces to write in order.

    None for anything else, or without ISA-L: OpenCV writes those.
    """
    depth = _BIT_DEPTHS.get(img.dtype)
    channels = 1 if img.ndim == 2 else (img.shape[2] if img.ndim == 3 else 0)
    colour_type = _COLOUR_TYPES.get(channels)
    if _deflate is None or depth is None or colour_type is None or 0 in img.shape:
        return None
    height, width = img.shape[:2]
    pixels = img[:, :, ::-1] if channels == 3 else img  # PNG keeps RGB, OpenCV BGR
    if depth == 16:
        pixels = pixels.astype(">u2")  # PNG samples are big-endian
    row_bytes = np.ascontiguousarray(pixels).view(np.uint8).reshape(height, -1)
    step = channels * depth // 8  # bytes per pixel: what "Sub" subtracts from
    rows = np.empty((height, row_bytes.shape[1] + 1), dtype=np.uint8)
    rows[:, 0] = _SUB_FILTER
    rows[:, 1 : 1 + step] = row_bytes[:, :step]
    np.subtract(row_bytes[:, step:], row_bytes[:, :-step], out=rows[:, 1 + step :])  # wraps modulo 256
    header = struct.pack(">IIBBBBB", width, height, depth, colour_type, 0, 0, 0)
    return [
        PNG_SIGNATURE,
        *_chunk(b"IHDR", header),
        *_chunk(b"IDAT", _deflate(memoryview(rows).cast("B"), DEFLATE_LEVEL)),
        *_chunk(b"IEND", b""),
    ]


def _chunk(kind: bytes, data: bytes) -> List[bytes]:
    """A PNG chunk: length, type, data, CRC-32 of type and data."""
    return [struct.pack(">I", len(data)) + kind, data, struct.pack(">I", zlib.crc32(data, zlib.crc32(kind)))]


class PNGCodec(OpenCVImageCodec):
    """``png``: lossless grey or colour frames, 8 or 16 bits per sample."""

    def __init__(self) -> None:
        super().__init__("png", lossless=True, dtypes=("uint8", "uint16"))

    def saver(self, imgshape: Shape, imgdtype: str) -> SaveFn:
        opencv_save = super().saver(imgshape, imgdtype)

        def save(path: str, img: np.ndarray) -> None:
            pieces = encode_png(img)
            if pieces is None:
                opencv_save(path, img)
                return
            with open(path, "wb") as f:
                f.writelines(pieces)

        return save
