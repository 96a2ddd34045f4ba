"""Console tools (upstream's ``imgstore.apps`` names, plus ours).

Each tool lives in its own module, imported only when the tool runs, so that ``import imgstore``
never imports GUI code.
"""

from __future__ import annotations

from typing import Optional, Sequence

__all__ = ["main_export", "main_info", "main_saver", "main_test", "main_viewer"]


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
