"""``DirectoryImgStore``: one folder per chunk, one image file per frame."""

from __future__ import annotations

from typing import Any, Optional

from .base import _ImgStore
from .layout import DirectoryLayout
from .location import StoreLocation

#: arguments upstream accepted and ignored here (its '+color' formats set the write encoding)
_IGNORED_ARGUMENTS = ("videosize", "seek", "gpu_id", "write_encode_encoding")


class DirectoryImgStore(_ImgStore):
    """A store whose chunks are folders ``NNNNNN/`` of image files (npy, png, jpg...)."""

    _readable_classes = ("DirectoryImgStore",)
    #: upstream's class attribute, kept for scripts that read it (the format's codec decides)
    _DEFAULT_CHUNKSIZE = 200

    def __init__(self, **kwargs: Any) -> None:
        for name in _IGNORED_ARGUMENTS:
            kwargs.pop(name, None)
        super().__init__(**kwargs)

    @classmethod
    def _layout(cls, location: StoreLocation, extension: Optional[str]) -> DirectoryLayout:
        return DirectoryLayout(location)
