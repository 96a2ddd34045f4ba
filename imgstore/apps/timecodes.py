"""Frame times as a Matroska timecode file (``# timecode format v2``), as upstream's ``generate_timecodes``.

Tools such as ``mkvmerge --timestamps 0:FILE`` read such a file to give each frame of a video
its real presentation time: one line per frame, its time in milliseconds after the first frame.

``python -m imgstore.apps.timecodes STORE`` prints the file of a store to stdout.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any, Optional, Sequence, TextIO

import numpy as np

from ._cli import add_common_arguments, run

__all__ = ["TIMECODE_HEADER", "generate_timecodes", "main"]

PROG = "imgstore-timecodes"
TIMECODE_HEADER = "# timecode format v2\n"
_log = logging.getLogger(__name__)


def generate_timecodes(store: Any, dest_file: TextIO) -> np.ndarray:
    """Write the timecode file of ``store`` to the text file ``dest_file``; return the times it holds.

    The file is the line ``# timecode format v2``, then each frame's time after the first
    frame, in milliseconds with 3 decimals, in store order. Returns those times in seconds
    (float64 array; empty, after the header alone, for a store without frames).
    """
    times = np.asarray(store.get_frame_metadata()["frame_time"], dtype=np.float64)
    relative = times - times[0] if len(times) else times
    dest_file.write(TIMECODE_HEADER)
    dest_file.writelines(f"{ms:.3f}\n" for ms in relative * 1000.0)
    _log.debug("wrote %d timecodes", len(relative))
    return relative


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Print the Matroska timecode file (format v2) of a store: each frame's time in ms "
        "after the first frame, for mkvmerge --timestamps.",
    )
    parser.add_argument("path", nargs=1, help="the store (its directory or its metadata.yaml)")
    add_common_arguments(parser, quiet=None)
    return parser


def _body(args: argparse.Namespace) -> int:
    from ..stores import new_for_filename

    with new_for_filename(args.path[0]) as store:
        generate_timecodes(store, sys.stdout)
    sys.stdout.flush()
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Print the timecode file of the store named in ``argv`` (default: the command line) to stdout."""
    return run(PROG, _body, build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
