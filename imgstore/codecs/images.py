"""Image-folder chunk formats: one file per frame, ``<chunk>/%06d.<format>``.

``npy`` keeps arrays as they are; the others go through OpenCV's image codecs.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Mapping, Optional, Tuple

import cv2
import numpy as np

from .._color import ensure_color, ensure_grayscale
from ..errors import FrameReadError
from .base import ChunkCodec, ChunkReader, ChunkWriter, Shape

SaveFn = Callable[[str, np.ndarray], None]
LoadFn = Callable[[str], np.ndarray]


def frame_filename(frame_idx: int, extension: str) -> str:
    """File name of the frame at ``frame_idx`` within its chunk folder."""
    return f"{frame_idx:06d}.{extension}"


class ImageFolderWriter(ChunkWriter):
    """Writes each frame to its own file in a new chunk folder."""

    def __init__(self, folder: str, extension: str, save: SaveFn) -> None:
        self._folder = folder  # the store creates the chunk folder
        self._extension = extension
        self._save = save
        self._count = 0

    def write(self, img: np.ndarray) -> None:
        self._save(os.path.join(self._folder, frame_filename(self._count, self._extension)), img)
        self._count += 1

    def close(self) -> None:
        """Nothing is buffered: every frame is in its file once ``write`` returns."""


class ImageFolderReader(ChunkReader):
    """Reads frame files of one chunk folder."""

    def __init__(self, folder: str, extension: str, load: LoadFn) -> None:
        self._folder = folder
        self._extension = extension
        self._load = load

    def read(self, frame_idx: int) -> np.ndarray:
        path = os.path.join(self._folder, frame_filename(frame_idx, self._extension))
        if not os.path.isfile(path):
            raise FrameReadError(f"frame file {path} is missing")
        return self._load(path)


class ImageFolderCodec(ChunkCodec):
    """Base of the one-file-per-frame formats; subclasses provide ``save`` and ``load``."""

    store_class = "DirectoryImgStore"
    default_chunksize = 200

    def open_writer(
        self, chunk_path: str, imgshape: Shape, imgdtype: str, options: Optional[Mapping[str, Any]] = None
    ) -> ChunkWriter:
        return ImageFolderWriter(chunk_path, self.name, self.saver(imgshape, imgdtype))

    def open_reader(
        self, chunk_path: str, imgshape: Shape, imgdtype: str, frame_count: Optional[int] = None
    ) -> ChunkReader:
        return ImageFolderReader(chunk_path, self.name, self.loader(imgshape, imgdtype))

    def saver(self, imgshape: Shape, imgdtype: str) -> SaveFn:
        raise NotImplementedError

    def loader(self, imgshape: Shape, imgdtype: str) -> LoadFn:
        raise NotImplementedError


class NpyCodec(ImageFolderCodec):
    """Raw numpy arrays (``.npy``): any numeric dtype and shape, lossless, fastest."""

    name = "npy"
    dtypes = None
    channels = None

    def saver(self, imgshape: Shape, imgdtype: str) -> SaveFn:
        def save(path: str, img: np.ndarray) -> None:
            with open(path, "wb") as f:
                np.save(f, img, allow_pickle=False)

        return save

    def loader(self, imgshape: Shape, imgdtype: str) -> LoadFn:
        return load_npy


def load_npy(path: str) -> np.ndarray:
    """Load an ``.npy`` frame without ever unpickling; errors name the file."""
    try:
        img = np.load(path, allow_pickle=False)
    except ValueError as exc:
        raise FrameReadError(
            f"frame file {path} holds pickled objects or is corrupt; refusing to load it ({exc})"
        ) from None
    except (OSError, EOFError) as exc:
        raise FrameReadError(f"frame file {path} is unreadable ({exc})") from None
    if not isinstance(img, np.ndarray) or img.dtype.kind not in "uifb":
        raise FrameReadError(f"frame file {path} does not hold a numeric image array")
    return img


class OpenCVImageCodec(ImageFolderCodec):
    """An image file format written with ``cv2.imwrite`` and read with ``cv2.imread``.

    ``force`` is ``'color'`` or ``'grey'`` for formats that only hold one kind (ppm, pgm): frames
    are converted when written and come back in the store's own shape when read.
    """

    color_variant = True

    def __init__(
        self,
        name: str,
        lossless: bool,
        dtypes: Tuple[str, ...] = ("uint8",),
        force: Optional[str] = None,
        write_params: Tuple[int, ...] = (),
    ) -> None:
        self.name = name
        self.lossless = lossless
        self.dtypes = dtypes
        self.color_variant = force is None
        if force == "grey":
            self.channels = ()  # colour frames would lose their colour: refuse them
        self._force = force
        self._params = list(write_params)

    def saver(self, imgshape: Shape, imgdtype: str) -> SaveFn:
        convert = {"color": ensure_color, "grey": ensure_grayscale}.get(self._force, lambda img: img)
        params = self._params

        def save(path: str, img: np.ndarray) -> None:
            if not cv2.imwrite(path, convert(img), params):
                raise OSError(f"OpenCV could not write frame file {path}")

        return save

    def loader(self, imgshape: Shape, imgdtype: str) -> LoadFn:
        color = len(imgshape) == 3 and imgshape[2] == 3
        # ANYDEPTH keeps 16-bit pixels (upstream dropped them to 8 bits: a documented deviation)
        flags = cv2.IMREAD_ANYDEPTH | (cv2.IMREAD_COLOR if color else cv2.IMREAD_GRAYSCALE)

        def load(path: str) -> np.ndarray:
            img = cv2.imread(path, flags)
            if img is None:
                raise FrameReadError(f"frame file {path} is corrupt or not a {self.name} image")
            return img

        return load
