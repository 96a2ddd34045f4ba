"""What every console tool shares: exit codes, one-line errors, logging and progress bars.

Exit status: 0 success, 1 the work failed (bad store, unreadable source...), 2 bad usage
(argparse's own convention), 130 interrupted by Ctrl-C.

Every failure is one line on stderr, in words: no traceback (``--verbose`` logs it), no raw
error numbers (``[Errno 20] Not a directory: 'x'`` reads ``x: not a directory``; FFmpeg's
``[Errno 1094995529] Invalid data found when processing input`` reads as FFmpeg's words).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import re
import sys
from typing import Any, Callable, Iterable, Iterator, Optional, Sequence

from ..errors import ImgStoreError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class ToolError(Exception):
    """A failure to report in one line on stderr (exit status 1)."""


_ERRNO = re.compile(r"\[Errno -?\d+\]\s*")
_log = logging.getLogger("imgstore.apps")


def error_reason(exc: BaseException) -> str:
    """Why an operation failed, in words, without the file name: an OS or FFmpeg error's own text."""
    strerror = getattr(exc, "strerror", None)
    if isinstance(strerror, str) and strerror:
        return strerror[:1].lower() + strerror[1:] if strerror[1:2].islower() else strerror
    return one_line(_ERRNO.sub("", str(exc))) or type(exc).__name__


def describe_error(exc: BaseException) -> str:
    """What went wrong, in words and on one line: an OS or FFmpeg error as ``file: reason``."""
    filename = getattr(exc, "filename", None)
    if isinstance(getattr(exc, "strerror", None), str) and filename:
        return f"{filename}: {error_reason(exc)}"
    return error_reason(exc)


def one_line(text: str) -> str:
    """``text`` on one line: its lines joined (a YAML parser's caret lines left out)."""
    lines = [line.strip() for line in str(text).splitlines()]
    return "; ".join(line for line in lines if line and set(line) != {"^"})


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
    except (ToolError, ImgStoreError, EOFError) as exc:
        print(f"{prog}: error: {one_line(_ERRNO.sub('', str(exc)))}{_hint(exc, args)}", file=sys.stderr)
        return EXIT_FAILED
    except OSError as exc:
        print(f"{prog}: error: {describe_error(exc)}", file=sys.stderr)
        return EXIT_FAILED
    except Exception as exc:  # a failure nobody foresaw: one line all the same, the traceback on -v
        _log.debug("traceback", exc_info=True)
        print(
            f"{prog}: error: {type(exc).__name__}: {describe_error(exc)} (an unexpected failure: --verbose shows "
            "where; please report it)",
            file=sys.stderr,
        )
        return EXIT_FAILED


def _hint(exc: BaseException, args: argparse.Namespace) -> str:
    """What to do next, for errors that have a remedy the message does not say."""
    from ..errors import StoreNotFoundError

    given = getattr(args, "paths", None) or getattr(args, "path", None)
    paths = given if isinstance(given, list) else [given]
    if isinstance(exc, StoreNotFoundError) and not getattr(args, "repair", False):
        from ..durability.repair import lost_metadata

        for path in paths:
            if isinstance(path, str) and path in str(exc) and lost_metadata(path):
                return f"; it holds chunks, so its metadata.yaml was lost: `imgstore-info --repair {path}` rebuilds it"
    return ""


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


@contextlib.contextmanager
def progress_bar(total: int, quiet: bool, desc: str, unit: str = "frame") -> Iterator[Callable[[int], None]]:
    """A progress bar on stderr for work that reports itself: yields ``advance(n)`` (n more done).

    The bar appears with the first frame done, so that a refusal before any work shows none.
    """
    bars: list = []

    def advance(n: int) -> None:
        if quiet:
            return
        if not bars:
            from tqdm import tqdm

            bars.append(tqdm(total=total, desc=desc, unit=unit, dynamic_ncols=True, file=sys.stderr))
        bars[0].update(n)

    try:
        yield advance
    finally:
        for bar in bars:
            bar.close()
