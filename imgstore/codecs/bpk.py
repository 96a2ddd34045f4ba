"""``bpk``: frames compressed with bloscpack (optional; needs ``pip install bloscpack``)."""

from __future__ import annotations

import ast
import collections
import collections.abc
import functools
import io
import logging
import math
import struct
from types import ModuleType
from typing import Optional

import numpy as np

from ..errors import FrameReadError, MissingDependencyError
from ..io.fs import read_regular
from .base import Shape
from .images import ImageFolderCodec, LoadFn, SaveFn

log = logging.getLogger(__name__)


@functools.lru_cache(maxsize=1)
def _import_bloscpack() -> Optional[ModuleType]:
    """Import bloscpack, or None when it is not installed or broken.

    bloscpack 0.16 (its last release) uses the ``collections.MutableMapping`` aliases that Python
    3.10 removed; we add just those aliases when they are missing so its files stay readable.
    """
    for name in ("Mapping", "MutableMapping", "Sequence", "Iterable"):
        if not hasattr(collections, name):
            setattr(collections, name, getattr(collections.abc, name))
    try:
        import bloscpack
    except Exception as exc:  # ImportError, or the import-time errors of an incompatible release
        log.debug("bloscpack unavailable: %s", exc)
        return None
    return bloscpack


class BloscpackCodec(ImageFolderCodec):
    """Blosc-compressed arrays: lossless, any numeric dtype, smaller than npy."""

    name = "bpk"
    dtypes = None
    channels = None
    requires = "bloscpack"

    def available(self) -> bool:
        return _import_bloscpack() is not None

    def _module(self) -> ModuleType:
        module = _import_bloscpack()
        if module is None:
            raise MissingDependencyError("format 'bpk' needs the bloscpack package: pip install bloscpack")
        return module

    def saver(self, imgshape: Shape, imgdtype: str) -> SaveFn:
        bloscpack = self._module()

        def save(path: str, img: np.ndarray) -> None:
            bloscpack.pack_ndarray_to_file(np.ascontiguousarray(img), path)

        return save

    def loader(self, imgshape: Shape, imgdtype: str) -> LoadFn:
        bloscpack = self._module()
        shape, dtype = tuple(int(n) for n in imgshape), np.dtype(imgdtype)
        nbytes = math.prod(shape) * dtype.itemsize
        # blosc stores incompressible data with a few bytes per block more; bloscpack adds its
        # headers, metadata and offsets: a frame file never needs more than this
        limit = 2 * nbytes + (1 << 20)

        def load(path: str) -> np.ndarray:
            try:
                data = read_regular(path, limit)
            except OSError as exc:
                raise FrameReadError(f"frame file {path} is unreadable ({exc.strerror or exc})") from None
            try:
                return _unpack(bloscpack, data, shape, dtype)
            except FrameReadError as exc:
                raise FrameReadError(f"frame file {path} {exc}") from None
            except Exception as exc:  # bloscpack and blosc raise a zoo of their own exception types
                raise FrameReadError(f"frame file {path} is not a readable bloscpack array ({exc})") from None

        return load


def _unpack(bloscpack: ModuleType, data: bytes, shape: Shape, dtype: np.dtype) -> np.ndarray:
    """The array in a bloscpack file's bytes, which must be one frame of ``shape`` and ``dtype``.

    bloscpack would allocate whatever the file declares and let blosc decompress each chunk
    into it unchecked (a file declaring a small array and holding a large one overruns it),
    so every declared size is checked here first and each chunk decompressed on its own.
    """
    import blosc  # bloscpack's own dependency

    file_io = bloscpack.file_io
    header = file_io._read_bloscpack_header(io.BytesIO(data))
    if not 0 <= header.nchunks <= len(data) // _BLOSC_HEADER.size:
        raise FrameReadError(f"declares {header.nchunks} chunks in {len(data)} bytes")
    source = file_io.CompressedFPSource(io.BytesIO(data))
    meta = source.metadata
    if not isinstance(meta, dict) or meta.get("container") != "numpy" or meta.get("order") not in ("C", "F"):
        raise FrameReadError("does not hold a numpy array")
    got_dtype = np.dtype(ast.literal_eval(meta["dtype"]))
    got_shape = tuple(meta["shape"])
    if got_dtype != dtype or got_shape != shape:
        raise FrameReadError(
            f"holds a {got_dtype} array of shape {got_shape}, not a frame of this store ({dtype}, {shape})"
        )
    out = bytearray(math.prod(shape) * dtype.itemsize)
    filled = 0
    for compressed, digest in source:
        if digest and source.checksum_impl(compressed) != digest:
            raise FrameReadError("is damaged (checksum mismatch)")
        if len(compressed) < _BLOSC_HEADER.size:
            raise FrameReadError("is cut short")
        _, _, _, _, size, _, packed = _BLOSC_HEADER.unpack_from(compressed)
        if packed != len(compressed) or size > len(out) - filled:
            raise FrameReadError("is damaged (a chunk's sizes do not fit the frame)")
        chunk = blosc.decompress(bytes(compressed))
        if len(chunk) != size:
            raise FrameReadError("is damaged (a chunk decompresses to the wrong size)")
        out[filled : filled + size] = chunk
        filled += size
    if filled != len(out):
        raise FrameReadError(f"holds {filled} of the frame's {len(out)} bytes")
    return np.frombuffer(out, dtype=dtype).reshape(shape, order=meta["order"])


#: blosc's chunk header: versions, flags, type size, uncompressed size, block size, compressed size
_BLOSC_HEADER = struct.Struct("<BBBBIII")
