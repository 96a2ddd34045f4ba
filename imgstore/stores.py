"""Store classes and factories at upstream's import path ``imgstore.stores``.

Besides the stores, upstream's module also exposes the helpers it imported (index, codec
processor, colour conversion, time zones, Motif extra data); scripts import them from here, so
they are re-exported unchanged.
"""

from subprocess import DEVNULL

from .constants import (
    EXTRA_DATA_FILE_EXTENSIONS,
    STORE_INDEX_FILENAME,
    STORE_LOCK_FILENAME,
    STORE_MD_FILENAME,
    STORE_MD_KEY,
)
from .index.storeindex import ImgStoreIndex
from .io.extra import motif_extra_data_json_to_df
from .io.motif_h5 import motif_extra_data_h5_attrs, motif_extra_data_h5_to_df
from .store.base import _ImgStore
from .store.directory import DirectoryImgStore
from .store.factory import STORE_CLASSES, extract_only_frame, get_supported_formats, new_for_filename, new_for_format
from .store.video import VideoImgStore
from .util import (
    FourCC,
    ImageCodecProcessor,
    JsonCustomEncoder,
    ZoneInfo,  # noqa: F401 - the standard class, which upstream's module exposes too
    ensure_color,
    ensure_grayscale,
    get_local_timezone_zoneinfo,
)

__all__ = [
    "DEVNULL",
    "EXTRA_DATA_FILE_EXTENSIONS",
    "STORE_CLASSES",
    "STORE_INDEX_FILENAME",
    "STORE_LOCK_FILENAME",
    "STORE_MD_FILENAME",
    "STORE_MD_KEY",
    "DirectoryImgStore",
    "FourCC",
    "ImageCodecProcessor",
    "ImgStoreIndex",
    "JsonCustomEncoder",
    "VideoImgStore",
    "_ImgStore",
    "ensure_color",
    "ensure_grayscale",
    "extract_only_frame",
    "get_local_timezone_zoneinfo",
    "get_supported_formats",
    "motif_extra_data_h5_attrs",
    "motif_extra_data_h5_to_df",
    "motif_extra_data_json_to_df",
    "new_for_filename",
    "new_for_format",
]
