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
import math
import os
import random
import shutil
import sys
import tempfile
import time
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from .. import codecs
from ..errors import ImgStoreError
from ..stores import _ImgStore, get_supported_formats, new_for_filename, new_for_format
from ._cli import EXIT_FAILED, EXIT_OK, ToolError, add_common_arguments, run

__all__ = ["decode_frame", "main", "make_frame"]

PROG = "imgstore-test"

#: frames written per store, and frames per chunk (so that reads cross chunk boundaries)
N_FRAMES = 30
CHUNKSIZE = 8
#: odd on purpose: video formats that need even sizes keep the even top-left part, ffv1/mkv all of it
HEIGHT, WIDTH = 49, 65
SEED = 20240601

# ----------------------------------------------------------------------------------------------
# frames that carry their own id: a 4x4 grid of cells, 10 bits of id then 6 bits of checksum
# ----------------------------------------------------------------------------------------------
GRID = 4
ID_BITS = 10
CHECK_BITS = GRID * GRID - ID_BITS
MAX_ID = (1 << ID_BITS) - 1
HIGH, LOW, THRESHOLD = 200, 56, 128  # 8-bit levels; 16-bit frames are scaled by 257
NOISE = 12  # deterministic noise on every pixel, never near the threshold
#: lossy formats: largest allowed difference of frame means, and mean absolute pixel error (8-bit levels)
MEAN_TOLERANCE = 8.0
MAE_TOLERANCE = 24.0


def _checksum(frame_id: int) -> int:
    return ((frame_id * 0x2B) ^ (frame_id >> 4) ^ 0x15) & ((1 << CHECK_BITS) - 1)


def _scale(dtype: np.dtype) -> float:
    return 257.0 if np.dtype(dtype).itemsize == 2 else 1.0


def _cell_edges(size: int) -> List[int]:
    return [round(k * size / GRID) for k in range(GRID + 1)]


def pattern_levels(frame_id: int, height: int, width: int) -> np.ndarray:
    """``(height, width)`` 8-bit levels (float) whose grid spells ``frame_id``, with seeded noise."""
    if not 0 <= frame_id <= MAX_ID:
        raise ValueError(f"frame id {frame_id} outside 0..{MAX_ID}")
    word = (frame_id << CHECK_BITS) | _checksum(frame_id)
    levels = np.empty((height, width), dtype=np.float64)
    ys, xs = _cell_edges(height), _cell_edges(width)
    for r in range(GRID):
        for c in range(GRID):
            bit = (word >> (GRID * GRID - 1 - (r * GRID + c))) & 1
            levels[ys[r] : ys[r + 1], xs[c] : xs[c + 1]] = HIGH if bit else LOW
    rng = np.random.default_rng(frame_id)
    return levels + rng.integers(-NOISE, NOISE + 1, size=levels.shape)


def make_frame(frame_id: int, shape: Tuple[int, ...], dtype: str) -> np.ndarray:
    """A grey ``(h, w)`` or BGR ``(h, w, 3)`` frame spelling ``frame_id``.

    Colour frames hold the pattern in blue and its negative in red (green is a dimmer copy), so
    that swapped channels are caught by the decoder even through lossy compression.
    """
    levels = pattern_levels(frame_id, shape[0], shape[1])
    if len(shape) == 3:
        levels = np.stack([levels, levels * 0.5 + 64, 255.0 - levels], axis=-1)
    dt = np.dtype(dtype)
    return np.clip(np.rint(levels * _scale(dt)), 0, np.iinfo(dt).max).astype(dt)


def decode_plane(plane: np.ndarray, negative: bool = False) -> int:
    """The id a 2-D plane spells (cell interiors against the threshold), or -1 on a bad checksum."""
    scale = _scale(plane.dtype)
    plane = np.asarray(plane, dtype=np.float64)
    if negative:
        plane = 255.0 * scale - plane
    h, w = plane.shape
    if h < 2 * GRID or w < 2 * GRID:
        return -1
    ys, xs = _cell_edges(h), _cell_edges(w)
    word = 0
    for r in range(GRID):
        for c in range(GRID):
            y0, y1, x0, x1 = ys[r], ys[r + 1], xs[c], xs[c + 1]
            my, mx = max(1, (y1 - y0) // 4), max(1, (x1 - x0) // 4)
            cell = plane[y0 + my : y1 - my, x0 + mx : x1 - mx]
            word = (word << 1) | int(cell.mean() > THRESHOLD * scale)
    frame_id = word >> CHECK_BITS
    return frame_id if _checksum(frame_id) == word & ((1 << CHECK_BITS) - 1) else -1


def decode_frame(img: np.ndarray) -> int:
    """The id a frame spells: grey directly, colour from its blue channel."""
    img = np.asarray(img)
    return decode_plane(img if img.ndim == 2 else img[:, :, 0])


# ----------------------------------------------------------------------------------------------
# what is checked
# ----------------------------------------------------------------------------------------------
class CheckFailed(Exception):
    """A check found a wrong result (as opposed to an exception raised by imgstore)."""


class Case:
    """One store to write and read: a format, a kind of frame ('grey', 'colour', 'bayer'), a dtype."""

    def __init__(self, fmt: str, kind: str, dtype: str, backend: Optional[str], codec: codecs.ChunkCodec) -> None:
        self.fmt = fmt
        self.kind = kind
        self.dtype = dtype
        self.backend = backend
        self.codec = codec
        #: frames read back exactly as the codec holds them (``codec.as_stored``)
        self.lossless = codec.lossless
        self.video = codec.store_class == "VideoImgStore"
        self.label = f"{fmt} {kind} {dtype}"
        self.shape: Tuple[int, ...] = (HEIGHT, WIDTH, 3) if kind == "colour" else (HEIGHT, WIDTH)
        rng = np.random.default_rng(SEED)
        # frame numbers with a gap (and not starting at 0); times with jitter and sub-ms digits
        self.numbers = [1000 + i + (3 if i >= N_FRAMES // 2 else 0) for i in range(N_FRAMES)]
        jitter = rng.uniform(-0.004, 0.004, size=N_FRAMES)
        self.times = [1_700_000_000.123456 + i * 0.04 + float(jitter[i]) for i in range(N_FRAMES)]
        self._expected: Dict[int, np.ndarray] = {}
        #: frames as the sequential read returned them, to compare seeks with
        self.sequential: Dict[int, np.ndarray] = {}
        self.written = False

    def store_kwargs(self) -> Dict[str, object]:
        return {"backend": self.backend} if self.video and self.backend else {}

    def written_frame(self, i: int) -> np.ndarray:
        """The frame given to ``add_image`` at position ``i``."""
        return make_frame(i, self.shape, self.dtype)

    def expected(self, i: int) -> np.ndarray:
        """The frame a read must give back at position ``i`` (cropped as the format stores it, demosaiced)."""
        if i not in self._expected:
            img = self.written_frame(i)
            if self.kind == "bayer":
                img = cv2.cvtColor(img, cv2.COLOR_BayerBG2BGR)
            img = self.codec.as_stored(img)
            height, width = self.codec.written_shape(img.shape)[:2]  # even sizes where the format needs them
            img = img[:height, :width]
            self._expected[i] = img
        return self._expected[i]


def _describe(img: np.ndarray) -> str:
    return f"shape {img.shape} {img.dtype}"


def _holds(frame_id: int) -> str:
    return "no valid frame id (garbled)" if frame_id < 0 else f"the id of frame {frame_id}"


def check_frame(case: Case, i: int, img: np.ndarray, md: Tuple[object, float]) -> None:
    """Raise ``CheckFailed`` unless ``(img, md)`` is the frame written at position ``i``."""
    number, ftime = md
    if number != case.numbers[i] or ftime != case.times[i]:
        raise CheckFailed(
            f"frame {i}: metadata (frame_number, frame_time) = ({number!r}, {ftime!r}), "
            f"expected ({case.numbers[i]!r}, {case.times[i]!r})"
        )
    want = case.expected(i)
    if not isinstance(img, np.ndarray) or img.shape != want.shape or img.dtype != want.dtype:
        got = _describe(img) if isinstance(img, np.ndarray) else type(img).__name__
        raise CheckFailed(f"frame {i}: got {got}, expected {_describe(want)}")
    if case.lossless:
        if not np.array_equal(img, want):
            diff = np.abs(img.astype(np.int64) - want.astype(np.int64))
            raise CheckFailed(
                f"frame {i}: pixels differ from those written (lossless format): {np.count_nonzero(diff)} "
                f"values differ, max by {diff.max()}; the image read holds {_holds(decode_frame(img))}"
            )
        return
    frame_id = decode_frame(img)
    if frame_id != i:
        raise CheckFailed(f"frame {i}: the image read holds {_holds(frame_id)}")
    if case.kind == "colour":
        negative = decode_plane(img[:, :, 2], negative=True)
        if negative != i:
            raise CheckFailed(f"frame {i}: colour channels mixed up (red channel reads as id {negative}, blue as {i})")
    scale = _scale(want.dtype)
    got_mean, want_mean = float(img.mean()), float(want.mean())
    if abs(got_mean - want_mean) > MEAN_TOLERANCE * scale:
        raise CheckFailed(
            f"frame {i}: mean level {got_mean:.1f}, expected {want_mean:.1f} (tolerance {MEAN_TOLERANCE * scale:g})"
        )
    mae = float(np.abs(img.astype(np.float64) - want).mean())
    if mae > MAE_TOLERANCE * scale:
        raise CheckFailed(f"frame {i}: mean absolute error {mae:.1f} (tolerance {MAE_TOLERANCE * scale:g})")


def check_same_as_sequential(case: Case, i: int, img: np.ndarray, how: str) -> None:
    seq = case.sequential.get(i)
    if seq is not None and not np.array_equal(seq, img):
        diff = np.abs(img.astype(np.int64) - seq.astype(np.int64))
        raise CheckFailed(
            f"frame {i} read {how} differs from the same frame read in order "
            f"({np.count_nonzero(diff)} values differ, max by {diff.max()})"
        )


def step_write(case: Case, path: str) -> None:
    with new_for_format(
        case.fmt,
        path,
        imgshape=case.shape,
        imgdtype=case.dtype,
        chunksize=CHUNKSIZE,
        encoding="cv_bayerbg" if case.kind == "bayer" else None,
        **case.store_kwargs(),
    ) as store:
        for i in range(N_FRAMES):
            store.add_image(case.written_frame(i), case.numbers[i], case.times[i])
        if store.frame_count != N_FRAMES:
            raise CheckFailed(f"frame_count is {store.frame_count} after writing {N_FRAMES} frames")
    case.written = True


def _open(case: Case, path: str) -> _ImgStore:
    return new_for_filename(path, **case.store_kwargs())


def step_index(case: Case, path: str) -> None:
    with _open(case, path) as store:
        if store.frame_count != N_FRAMES:
            raise CheckFailed(f"frame_count {store.frame_count}, expected {N_FRAMES}")
        want_shape = case.expected(0).shape
        if tuple(store.image_shape) != want_shape:
            raise CheckFailed(f"image_shape {tuple(store.image_shape)}, expected {want_shape}")
        n_chunks = math.ceil(N_FRAMES / CHUNKSIZE)
        if len(store.chunks) != n_chunks:
            raise CheckFailed(f"{len(store.chunks)} chunks, expected {n_chunks} (chunksize {CHUNKSIZE})")
        md = store.get_frame_metadata()
        if list(md["frame_number"]) != case.numbers:
            raise CheckFailed(f"frame numbers read back {list(md['frame_number'])}, written {case.numbers}")
        times = list(md["frame_time"])
        if times != case.times:
            bad = next(i for i in range(N_FRAMES) if i >= len(times) or times[i] != case.times[i])
            got = times[bad] if bad < len(times) else "missing"
            raise CheckFailed(f"frame times do not round-trip: frame {bad} reads {got!r}, written {case.times[bad]!r}")
        if (store.frame_min, store.frame_max) != (case.numbers[0], case.numbers[-1]):
            raise CheckFailed(f"frame_min/max {store.frame_min}/{store.frame_max}")
        if store.lossless != case.lossless:
            raise CheckFailed(f"store.lossless is {store.lossless}, the codec says {case.lossless}")


def step_sequential(case: Case, path: str) -> None:
    with _open(case, path) as store:
        for i in range(N_FRAMES):
            img, md = store.get_next_image()
            check_frame(case, i, img, md)
            if store.frame_number != case.numbers[i]:
                raise CheckFailed(f"frame {i}: store.frame_number {store.frame_number!r} after reading it")
            case.sequential[i] = img
        try:
            store.get_next_image()
        except EOFError:
            pass
        else:
            raise CheckFailed(f"get_next_image after the last of {N_FRAMES} frames did not raise EOFError")


def _random_order(case: Case, salt: int) -> List[int]:
    order = list(range(N_FRAMES))
    random.Random(SEED + salt).shuffle(order)
    return order


def step_seek_number(case: Case, path: str) -> None:
    with _open(case, path) as store:
        for i in _random_order(case, 1):
            img, md = store.get_image(case.numbers[i])
            check_frame(case, i, img, md)
            check_same_as_sequential(case, i, img, "by frame number")
        # a number in the gap: exact_only=False gives the nearest frame
        gap = N_FRAMES // 2
        img, md = store.get_image(case.numbers[gap] - 1, exact_only=False)
        check_frame(case, gap, img, md)


def step_seek_index_backwards(case: Case, path: str) -> None:
    with _open(case, path) as store:
        for i in reversed(range(N_FRAMES)):
            img, md = store.get_image(None, frame_index=i)
            check_frame(case, i, img, md)
            check_same_as_sequential(case, i, img, "by frame_index")


def step_seek_time(case: Case, path: str) -> None:
    with _open(case, path) as store:
        for k, i in enumerate(_random_order(case, 2)):
            offset = 0.01 if k % 2 else -0.01  # less than half the spacing of frame times
            img, md = store.get_nearest_image(case.times[i] + offset)
            check_frame(case, i, img, md)
            check_same_as_sequential(case, i, img, "by time")


def step_seek_forwards(case: Case, path: str) -> None:
    """Jump forwards (random strides, across chunks) and read on from each place."""
    rng = random.Random(SEED + 3)
    with _open(case, path) as store:
        i = 0
        while i < N_FRAMES - 1:
            img, md = store.get_image(None, frame_index=i)
            check_frame(case, i, img, md)
            img, md = store.get_next_image()
            check_frame(case, i + 1, img, md)
            check_same_as_sequential(case, i + 1, img, "after a seek")
            i += 2 + rng.randrange(CHUNKSIZE)


STEPS: List[Tuple[str, Callable[[Case, str], None]]] = [
    ("write", step_write),
    ("index", step_index),
    ("sequential", step_sequential),
    ("seek number random", step_seek_number),
    ("seek index backwards", step_seek_index_backwards),
    ("nearest time random", step_seek_time),
    ("seek forwards then next", step_seek_forwards),
]


def cases_for(fmt: str, backend: Optional[str]) -> List[Case]:
    """The stores to write for a format: each kind of frame and dtype it holds."""
    codec = codecs.get_codec(fmt, backend=backend)
    _, color_variant = codecs.split_format(fmt)
    dtypes = [d for d in ("uint8", "uint16") if codec.dtypes is None or d in codec.dtypes]
    if color_variant:
        kinds = ["bayer"]  # '+color': sensor-encoded frames are stored as colour
    else:
        kinds = ["grey"]
        if codec.channels is None or 3 in codec.channels:
            kinds.append("colour")
    return [Case(fmt, kind, dtype, backend, codec) for kind in kinds for dtype in dtypes]


# ----------------------------------------------------------------------------------------------
# running and reporting
# ----------------------------------------------------------------------------------------------
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
