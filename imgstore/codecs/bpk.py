"""``bpk``: frames compressed with bloscpack (optional; needs ``pip install bloscpack``)."""

from __future__ import annotations

import collections
import collections.abc
import functools
import logging
from types import ModuleType
from typing import Optional

import numpy as np

from ..errors import FrameReadError, MissingDependencyError
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

        def load(path: str) -> np.ndarray:
            try:
                with open(path, "rb") as reader:
                    img = bloscpack.numpy_io.unpack_ndarray(bloscpack.file_io.CompressedFPSource(reader))
            except Exception as exc:  # bloscpack raises a zoo of its own exception types
                raise FrameReadError(f"frame file {path} is not a readable bloscpack array ({exc})") from None
            if not isinstance(img, np.ndarray) or img.dtype.kind not in "uifb":
                raise FrameReadError(f"frame file {path} does not hold a numeric image array")
            return img

        return load
