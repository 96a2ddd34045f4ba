"""Console tools (upstream's ``imgstore.apps`` names, plus ours).

Each tool lives in its own module, imported only when the tool runs, so that ``import imgstore``
never imports GUI code. Upstream's re-exports are kept: the store factories, two Motif helpers,
``new_window`` (``imgstore.ui``) and ``FontRendererStatusBar`` (``imgstore.font``); the
last two are imported on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, List, Optional, Sequence, TextIO

from ..stores import get_supported_formats, new_for_filename, new_for_format
from ..util import motif_get_parse_true_fps, motif_get_recording_timezone

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "FontRendererStatusBar",
    "generate_timecodes",
    "get_supported_formats",
    "main_edit",
    "main_export",
    "main_generate_timecodes",
    "main_info",
    "main_saver",
    "main_test",
    "main_viewer",
    "motif_get_parse_true_fps",
    "motif_get_recording_timezone",
    "new_for_filename",
    "new_for_format",
    "new_window",
]

# names imported from their module on first use (PEP 562): they bring in OpenCV's GUI side
_LAZY = {"new_window": "imgstore.ui", "FontRendererStatusBar": "imgstore.font"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> List[str]:
    return sorted(set(globals()) | set(_LAZY))


def main_edit(argv: Optional[Sequence[str]] = None) -> int:
    """``imgstore-edit trim|split|join``: new stores from parts of stores."""
    from .edit import main

    return main(argv)


def main_viewer(argv: Optional[Sequence[str]] = None) -> int:
    """``imgstore-view PATH``: play a store in a window."""
    from .view import main

    return main(argv)


def main_saver(argv: Optional[Sequence[str]] = None) -> int:
    """``imgstore-save DEST --source ...``: record a video file, camera, store or images into a store."""
    from .save import main

    return main(argv)


def main_test(argv: Optional[Sequence[str]] = None) -> int:
    """``imgstore-test``: check that every format this install lists really writes and reads."""
    from .selftest import main

    return main(argv)


def main_info(argv: Optional[Sequence[str]] = None) -> int:
    """``imgstore-info PATH``: what a store holds, its timeline and dropped frames."""
    from .info import main

    return main(argv)


def main_export(argv: Optional[Sequence[str]] = None) -> int:
    """``imgstore-export PATH OUT``: a store (or part of it) to one video file or an image sequence."""
    from .export import main

    return main(argv)


def generate_timecodes(store: Any, dest_file: TextIO) -> np.ndarray:
    """Write the Matroska timecode file (format v2) of ``store`` to ``dest_file``; return its times.

    The file is the line ``# timecode format v2``, then each frame's time after the first
    frame in milliseconds with 3 decimals, one line per frame in store order. Returns those
    times in seconds (a float64 array). See ``imgstore.apps.timecodes``.
    """
    from .timecodes import generate_timecodes

    return generate_timecodes(store, dest_file)


def main_generate_timecodes(argv: Optional[Sequence[str]] = None) -> int:
    """Print the Matroska timecode file (format v2) of the store named in ``argv`` to stdout."""
    from .timecodes import main

    return main(argv)
