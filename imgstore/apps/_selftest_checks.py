"""What ``imgstore-test`` checks: the stores it writes (:class:`Case`) and the steps that read them back.

Each step writes or reads one store and raises :class:`CheckFailed` on a wrong result; running the
steps and reporting their results is :mod:`imgstore.apps.selftest`'s job.
"""

from __future__ import annotations

import math
import random
from typing import Callable, Dict, List, Optional, Tuple, Union

import cv2
import numpy as np

from .. import codecs
from ..stores import DirectoryImgStore, VideoImgStore, new_for_filename, new_for_format
from ._selftest_frames import _scale, decode_frame, decode_plane, make_frame

#: frames written per store, and frames per chunk (so that reads cross chunk boundaries)
N_FRAMES = 30
CHUNKSIZE = 8
#: odd on purpose: video formats that need even sizes keep the even top-left part, ffv1/mkv all of it
HEIGHT, WIDTH = 49, 65
SEED = 20240601

#: lossy formats: largest allowed difference of frame means, and mean absolute pixel error (8-bit levels)
MEAN_TOLERANCE = 8.0
MAE_TOLERANCE = 24.0


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


def _open(case: Case, path: str) -> Union[DirectoryImgStore, VideoImgStore]:
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
