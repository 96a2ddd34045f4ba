"""``imgstore-test``: check that every format this install lists really writes and reads its frames.

For each format (and each kind of frame it holds: grey, colour, a Bayer mosaic for the ``+color``
variants; 8 and 16 bits where it can) a small store of a few chunks is written in a temporary
directory, then read back in order and by seeking (by frame number, by position, by time; in a
seeded random order, backwards and forwards). Every frame draws its own id as a grid of bright
and dark cells with a checksum, so that a frame read back can be told from its neighbours even
through lossy compression. Lossless formats must give back the exact pixels; lossy ones the right
id and about the same brightness. Frame numbers and times must round-trip exactly, and a frame
reached by seeking must equal the same frame read in order.

One line per check (``PASSED``/``FAILED``/``SKIPPED``), then a summary line
(``N passed[, M failed][, K skipped]``). Exit status 0 when nothing failed, 1 otherwise.
Needs nothing beyond this package (no test suite, no pytest).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

from .. import codecs
from ..errors import ImgStoreError
from ..stores import get_supported_formats
from ._cli import EXIT_FAILED, EXIT_OK, ToolError, add_common_arguments, run
from ._selftest_checks import STEPS, Case, CheckFailed, cases_for
from ._selftest_frames import decode_frame, make_frame

__all__ = ["decode_frame", "main", "make_frame"]

PROG = "imgstore-test"


class _StopRun(Exception):
    """``--exitfirst``: stop after the first failure."""


class Reporter:
    """Prints one line per check and counts the results."""

    def __init__(self, quiet: bool, exitfirst: bool) -> None:
        self.quiet = quiet
        self.exitfirst = exitfirst
        self.passed = 0
        self.skipped = 0
        #: (format, check, reason) of every failure
        self.failures: List[Tuple[str, str, str]] = []
        self._checks: Dict[str, int] = {}

    def _count(self, fmt: str) -> None:
        self._checks[fmt] = self._checks.get(fmt, 0) + 1

    def passed_(self, fmt: str, check: str) -> None:
        self.passed += 1
        self._count(fmt)
        if not self.quiet:
            print(f"PASSED  {fmt} {check}", flush=True)

    def skipped_(self, fmt: str, check: str, reason: str) -> None:
        self.skipped += 1
        if not self.quiet:
            print(f"SKIPPED {fmt} {check}: {reason}", flush=True)

    def failed(self, fmt: str, check: str, reason: str) -> None:
        self.failures.append((fmt, check, reason))
        self._count(fmt)
        print(f"FAILED  {fmt} {check}: {reason}", flush=True)
        if self.exitfirst:
            raise _StopRun

    def broken_formats(self) -> List[str]:
        """One line per format with failures: how many checks failed and the first reason."""
        lines = []
        for fmt in dict.fromkeys(f for f, _, _ in self.failures):
            failed = [(check, reason) for f, check, reason in self.failures if f == fmt]
            check, reason = failed[0]
            lines.append(f"  {fmt}: {len(failed)} of {self._checks[fmt]} checks failed, first {check}: {reason}")
        return lines

    def summary(self) -> str:
        parts = [f"{self.passed} passed"]
        if self.failures:
            parts.append(f"{len(self.failures)} failed")
        if self.skipped:
            parts.append(f"{self.skipped} skipped")
        return ", ".join(parts)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, CheckFailed):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def run_case(case: Case, workdir: str, report: Reporter) -> None:
    path = os.path.join(workdir, "_".join(case.label.replace("/", "-").replace("+", "-").split()))
    for name, step in STEPS:
        check = f"{case.kind} {case.dtype} {name}"
        if name != "write" and not case.written:
            report.skipped_(case.fmt, check, "the store could not be written")
            continue
        try:
            step(case, path)
        except (KeyboardInterrupt, _StopRun):
            raise
        except Exception as exc:  # every failure of the library under test is a result to report
            report.failed(case.fmt, check, _reason(exc))
        else:
            report.passed_(case.fmt, check)


def iter_cases(formats: Sequence[str], backend: Optional[str], report: Reporter) -> Iterator[Case]:
    for fmt in formats:
        try:
            cases = cases_for(fmt, backend)
        except Exception as exc:  # a listed format whose codec cannot even be looked up
            report.failed(fmt, "codec", _reason(exc))
            continue
        yield from cases


def _choose_formats(args: argparse.Namespace, parser: argparse.ArgumentParser) -> List[str]:
    supported = get_supported_formats(args.backend)
    if not args.format:
        return supported
    for fmt in args.format:
        if fmt in supported:
            continue
        try:
            codecs.get_codec(fmt, backend=args.backend)
        except ImgStoreError as exc:
            parser.error(str(exc))  # exits with status 2
    return list(dict.fromkeys(args.format))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=(
            "Check that every format this install supports writes frames and reads them back right: "
            "in order, by frame number, by position and by time. Prints one line per check and a "
            "summary; exits 1 when a check fails."
        ),
    )
    parser.add_argument(
        "--format",
        action="append",
        metavar="F",
        help="check only this format (repeat for several; default: every supported format)",
    )
    parser.add_argument(
        "--backend",
        default=None,
        metavar="NAME",
        help=f"video backend whose formats to check ('{codecs.DEFAULT_BACKEND}' (default) or 'opencv')",
    )
    parser.add_argument("-x", "--exitfirst", action="store_true", help="stop at the first failure")
    parser.add_argument("--keep", metavar="DIR", help="write the stores into DIR (new or empty) and keep them")
    add_common_arguments(parser, quiet="print only failures and the summary line")
    return parser


def _workdir(keep: Optional[str]) -> Tuple[str, bool]:
    """The directory to write stores in, and whether to delete it afterwards."""
    if not keep:
        return tempfile.mkdtemp(prefix="imgstore-test-"), True
    if os.path.isdir(keep) and os.listdir(keep):
        raise ToolError(f"--keep {keep}: directory is not empty; choose a new or empty directory")
    os.makedirs(keep, exist_ok=True)
    return keep, False


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()

    def body(args: argparse.Namespace) -> int:
        try:
            return _body(args, parser)
        except BrokenPipeError:  # output piped into e.g. `head`, which stopped reading
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            return EXIT_FAILED

    return run(PROG, body, parser, argv)


def _body(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    if args.backend is not None:
        try:
            codecs.check_backend(args.backend)
        except ImgStoreError as exc:
            parser.error(str(exc))
    formats = _choose_formats(args, parser)
    workdir, remove = _workdir(args.keep)
    report = Reporter(args.quiet, args.exitfirst)
    started = time.monotonic()
    try:
        for case in iter_cases(formats, args.backend, report):
            run_case(case, workdir, report)
    except _StopRun:
        pass
    finally:
        if remove:
            shutil.rmtree(workdir, ignore_errors=True)
    if not args.quiet:
        if report.failures:
            print("\nbroken formats:")
            print("\n".join(report.broken_formats()))
        if args.keep:
            print(f"stores kept in {workdir}")
        print(f"checked {len(formats)} format(s) in {time.monotonic() - started:.1f}s")
    print(report.summary(), flush=True)
    return EXIT_FAILED if report.failures else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
