"""What every console tool shares: exit codes, one-line errors, logging and progress bars.

Exit status: 0 success, 1 the work failed (bad store, unreadable source...), 2 bad usage
(argparse's own convention), 130 interrupted by Ctrl-C.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
from typing import Any, Callable, Iterable, Optional, Sequence

from ..errors import ImgStoreError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class ToolError(Exception):
    """A failure to report in one line on stderr (exit status 1)."""


def run(
    prog: str,
    body: Callable[[argparse.Namespace], Optional[int]],
    parser: argparse.ArgumentParser,
    argv: Optional[Sequence[str]],
) -> int:
    """Parse ``argv``, run ``body`` and turn failures into one line on stderr and an exit status."""
    args = parser.parse_args(argv)  # exits with status 2 on bad usage
    logging.basicConfig(
        level=logging.DEBUG if getattr(args, "verbose", False) else logging.WARNING,
        format=f"{prog}: %(levelname)s: %(message)s",
    )
    try:
        return body(args) or EXIT_OK
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (ToolError, ImgStoreError, OSError, EOFError) as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return EXIT_FAILED


def whole_number(minimum: Optional[int] = None, maximum: Optional[int] = None) -> Callable[[str], int]:
    """An argparse ``type``: a whole number, at least ``minimum`` and at most ``maximum`` when given."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        too_low = minimum is not None and value < minimum
        if too_low or (maximum is not None and value > maximum):
            if minimum is not None and maximum is not None:
                raise argparse.ArgumentTypeError(f"must be {minimum}..{maximum}: {text!r}")
            bound = f"{minimum} or more" if too_low else f"{maximum} or less"
            raise argparse.ArgumentTypeError(f"must be {bound}: {text!r}")
        return value

    return parse


def positive_number(maximum: Optional[float] = None) -> Callable[[str], float]:
    """An argparse ``type``: a finite number above 0, at most ``maximum`` when given."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not (math.isfinite(value) and 0 < value <= (math.inf if maximum is None else maximum)):
            limit = "" if maximum is None else f" and at most {maximum:g}"
            raise argparse.ArgumentTypeError(f"must be above 0{limit}: {text!r}")
        return value

    return parse


def add_common_arguments(
    parser: argparse.ArgumentParser, quiet: Optional[str] = "no progress bar, only errors"
) -> None:
    """``--verbose``, and ``--quiet`` with help text ``quiet`` (None: a tool with nothing to leave out has none)."""
    if quiet is not None:
        parser.add_argument("-q", "--quiet", action="store_true", help=quiet)
    parser.add_argument("-v", "--verbose", action="store_true", help="log what the tool does (debug level)")


def progress(
    iterable: Iterable[Any], total: Optional[int], quiet: bool, desc: str, unit: str = "frame"
) -> Iterable[Any]:
    """``iterable`` with a progress bar on stderr (frames, rate, ETA when ``total`` is known)."""
    if quiet:
        return iterable
    from tqdm import tqdm

    return tqdm(iterable, total=total, desc=desc, unit=unit, dynamic_ncols=True, file=sys.stderr)
