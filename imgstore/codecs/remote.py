"""Reading the frame files of a folder chunk at a URL with the codec's own file loader.

Each requested frame file is fetched whole (one request), written to a private temporary folder
under its own name, decoded by the codec's usual loader and deleted: every format that stores a
frame per file reads from a URL without code of its own, with exactly the local decoding.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
from typing import Any, Callable

import numpy as np

from ..errors import FrameReadError
from .base import ChunkReader, Shape


class RemoteFolderReader(ChunkReader):
    """Frames of one chunk folder behind a URL.

    ``load`` reads a local frame file (the codec's loader); ``file_name`` names the file of
    frame ``i`` within the folder; ``limit`` is the most bytes a frame file may take.
    """

    def __init__(
        self, folder_url: str, load: Callable[[str], np.ndarray], file_name: Callable[[int], str], limit: int, fs: Any
    ) -> None:
        self._load = load
        self._file_name = file_name
        self._limit = limit
        self._fs = fs
        self._folder_url = folder_url
        self._tmp = tempfile.mkdtemp(prefix="imgstore-remote-")

    def read(self, frame_idx: int) -> np.ndarray:
        name = self._file_name(frame_idx)
        url = self._fs.join(self._folder_url, name)
        try:
            data = self._fs.read_bytes(url, limit=self._limit)
        except FileNotFoundError:
            raise FrameReadError(f"frame file {url} is missing") from None
        except OSError as exc:
            raise FrameReadError(f"frame file {url} cannot be fetched ({exc})") from None
        local = os.path.join(self._tmp, name)
        with open(local, "wb") as f:
            f.write(data)
        try:
            return self._load(local)
        except FrameReadError as exc:
            raise FrameReadError(str(exc).replace(local, url)) from None
        finally:
            os.unlink(local)

    def close(self) -> None:
        shutil.rmtree(self._tmp, ignore_errors=True)


def frame_file_limit(imgshape: Shape, imgdtype: str) -> int:
    """The most bytes a frame file of any folder format takes for one frame of ``imgshape``.

    Uncompressed formats store the pixels plus a header and row padding (BMP pads a row of one
    pixel to four bytes), compressed ones rarely more than the pixels; a file larger than eight
    times the frame is not one, and is not fetched into memory whole.
    """
    return 8 * math.prod(int(n) for n in imgshape) * np.dtype(imgdtype).itemsize + (1 << 16)
