"""imgstore: store video frames with their frame numbers, times and metadata.

Reads and writes the store format of loopbio's imgstore (and Motif recordings). Importing this
package imports no GUI code.
"""

import importlib
from typing import Any, Optional, Sequence

from ._version import __version__
from .capture import VideoCapture
from .durability.repair import RepairReport, repair_store
from .errors import ImgStoreError
from .multi import MultiStore
from .stores import (
    DirectoryImgStore,
    VideoImgStore,
    extract_only_frame,
    get_supported_formats,
    new_for_filename,
    new_for_format,
)
from .util import ensure_color, ensure_grayscale

#: submodules reachable as attributes right after ``import imgstore``, as upstream's are; the GUI
#: ones (``apps``, ``ui``, ``font``) are imported only when first asked for
_LAZY_SUBMODULES = frozenset({"apps", "ui", "font", "align", "dask", "edit", "transforms"})


def __getattr__(name: str) -> Any:
    """Import a submodule such as ``imgstore.apps`` on first use (PEP 562)."""
    if name in _LAZY_SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main_test(argv: Optional[Sequence[str]] = None) -> int:
    """Check that every format this install lists really writes and reads (``imgstore-test``)."""
    from .apps import main_test as run_selftest

    return run_selftest(argv)


#: upstream's other name for ``main_test``
test = main_test

__all__ = [
    "DirectoryImgStore",
    "ImgStoreError",
    "MultiStore",
    "RepairReport",
    "VideoCapture",
    "VideoImgStore",
    "__version__",
    "ensure_color",
    "ensure_grayscale",
    "extract_only_frame",
    "get_supported_formats",
    "main_test",
    "new_for_filename",
    "new_for_format",
    "repair_store",
    "test",
]
