"""Store classes and factories at upstream's import path ``imgstore.stores``."""

from ._directory import DirectoryImgStore
from ._factory import STORE_CLASSES, extract_only_frame, get_supported_formats, new_for_filename, new_for_format
from ._store import _ImgStore
from ._video import VideoImgStore
from .constants import STORE_INDEX_FILENAME, STORE_LOCK_FILENAME, STORE_MD_FILENAME, STORE_MD_KEY

__all__ = [
    "STORE_CLASSES",
    "STORE_INDEX_FILENAME",
    "STORE_LOCK_FILENAME",
    "STORE_MD_FILENAME",
    "STORE_MD_KEY",
    "DirectoryImgStore",
    "VideoImgStore",
    "_ImgStore",
    "extract_only_frame",
    "get_supported_formats",
    "new_for_filename",
    "new_for_format",
]
