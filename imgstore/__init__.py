"""imgstore: store video frames with their frame numbers, times and metadata.

Reads and writes the store format of loopbio's imgstore (and Motif recordings). Importing this
package imports no GUI code.
"""

from ._repair import RepairReport, repair_store
from ._version import __version__
from .errors import ImgStoreError
from .stores import (
    DirectoryImgStore,
    VideoImgStore,
    extract_only_frame,
    get_supported_formats,
    new_for_filename,
    new_for_format,
)
from .util import ensure_color, ensure_grayscale

__all__ = [
    "DirectoryImgStore",
    "ImgStoreError",
    "RepairReport",
    "VideoImgStore",
    "__version__",
    "ensure_color",
    "ensure_grayscale",
    "extract_only_frame",
    "get_supported_formats",
    "new_for_filename",
    "new_for_format",
    "repair_store",
]
