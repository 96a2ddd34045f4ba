"""``imgstore.VideoCapture`` against OpenCV's own ``cv2.VideoCapture`` on the same frames.

The store is one MJPEG/AVI chunk: OpenCV opens that chunk file as an ordinary video, and the
adapter opens the store. Random sequences of reads, grabs, retrieves and seeks (hypothesis) must
give the same frames (each draws its number as a grid) and the same positions on both.
"""

from __future__ import annotations

import glob
import math
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import imgstore
from imgstore import capture
from imgstore.errors import ImgStoreError

from framecodes import decode_grid, make_grid_frame

N = 60
FPS = 25
T0 = 1_700_000_000.0
SHAPE = (120, 160)
FIRST = 1000  # frame numbers, and the codes drawn, are FIRST + index


@pytest.fixture(scope="module")
def one_chunk(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("capture") / "store"
    with imgstore.new_for_format("mjpeg/avi", path=str(path), imgshape=SHAPE, chunksize=100) as store:
        for i in range(N):
            store.add_image(make_grid_frame(FIRST + i, SHAPE), FIRST + i, T0 + i / FPS)
    return path


def _chunk_file(store: Path) -> str:
    (chunk,) = glob.glob(os.path.join(str(store), "*.avi"))
    return chunk


def test_the_properties_are_opencvs(one_chunk: Path) -> None:
    ours, theirs = imgstore.VideoCapture(str(one_chunk)), cv2.VideoCapture(_chunk_file(one_chunk))
    assert ours.isOpened() and theirs.isOpened()
    for prop in (cv2.CAP_PROP_FRAME_COUNT, cv2.CAP_PROP_FRAME_WIDTH, cv2.CAP_PROP_FRAME_HEIGHT):
        assert ours.get(prop) == theirs.get(prop), prop
    assert ours.get(cv2.CAP_PROP_FPS) == pytest.approx(theirs.get(cv2.CAP_PROP_FPS))
    assert ours.get(cv2.CAP_PROP_CONVERT_RGB) == theirs.get(cv2.CAP_PROP_CONVERT_RGB) == 1
    # frames: 8-bit BGR, within a level or two of OpenCV's (the same decoder, another colour conversion)
    ok_ours, frame_ours = ours.read()
    ok_theirs, frame_theirs = theirs.read()
    assert ok_ours and ok_theirs and frame_ours.shape == frame_theirs.shape == (*SHAPE, 3)
    assert frame_ours.dtype == np.uint8
    assert np.abs(frame_ours.astype(int) - frame_theirs.astype(int)).max() <= 3
    ours.release()
    theirs.release()
    assert not ours.isOpened() and ours.read() == (False, None) and ours.get(cv2.CAP_PROP_FRAME_COUNT) == 0


def test_the_adapters_numbers_are_opencvs() -> None:
    names = {name: getattr(cv2, name) for name in capture.__all__ if name.startswith("CAP_PROP_")}
    assert names == {name: getattr(capture, name) for name in names}


def _not_halfway(msec: float) -> bool:
    """Whether a time is not exactly halfway between two frames: there OpenCV's answer is the
    rounding noise of ``msec / 1000 * fps + 0.5`` (580 ms gives frame 14, 20 ms frame 1)."""
    return abs((msec * FPS / 1000) % 1 - 0.5) > 1e-6


OPS = st.one_of(
    st.just(("read",)),
    st.just(("grab",)),
    st.just(("retrieve",)),
    st.tuples(st.just("frames"), st.one_of(st.integers(-5, N + 5), st.floats(-2.0, N + 2.0, allow_nan=False))),
    st.tuples(st.just("msec"), st.integers(-100, (N + 3) * 1000 // FPS).map(float).filter(_not_halfway)),
    st.tuples(
        st.just("msec"),
        st.floats(-50.0, (N + 2) * 1000.0 / FPS, allow_nan=False).map(lambda v: round(v, 1)).filter(_not_halfway),
    ),
)


def _apply(cap, op) -> tuple:
    """What the capture answers to ``op``: the frame's code for reads, the new positions for seeks."""
    if op[0] in ("read", "retrieve"):
        ok, frame = cap.read() if op[0] == "read" else cap.retrieve()
        return ok, decode_grid(frame) if ok else None
    if op[0] == "grab":
        return (cap.grab(),)
    prop = cv2.CAP_PROP_POS_FRAMES if op[0] == "frames" else cv2.CAP_PROP_POS_MSEC
    return (cap.set(prop, op[1]), cap.get(cv2.CAP_PROP_POS_FRAMES))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(OPS, min_size=1, max_size=25))
def test_random_reads_and_seeks_agree_with_opencv(one_chunk: Path, ops: list) -> None:
    ours, theirs = imgstore.VideoCapture(str(one_chunk)), cv2.VideoCapture(_chunk_file(one_chunk))
    try:
        ended, grabbed = False, False
        for step, op in enumerate(ops):
            if op[0] == "retrieve" and not grabbed:
                # no frame grabbed since the start or a seek: ours has none to give; OpenCV's answer
                # is whatever its seek decoded last (frame POS_FRAMES - 1, or a stale one)
                assert ours.retrieve() == (False, None)
                continue
            expected, got = _apply(theirs, op), _apply(ours, op)
            grabbed = op[0] in ("read", "grab") or (op[0] == "retrieve" and grabbed)
            assert got == expected, f"step {step}: {op}: OpenCV {expected}, ours {got} (ops {ops[: step + 1]})"
            assert ours.get(cv2.CAP_PROP_POS_FRAMES) == theirs.get(cv2.CAP_PROP_POS_FRAMES)
            if op[0] in ("read", "grab"):
                ended = not expected[0]
            elif op[0] in ("frames", "msec"):
                ended = False
            if not ended:  # OpenCV reports 0 ms once a read has failed at the end; we keep the last time
                assert ours.get(cv2.CAP_PROP_POS_MSEC) == pytest.approx(theirs.get(cv2.CAP_PROP_POS_MSEC), abs=1e-3)
    finally:
        ours.release()
        theirs.release()


def test_an_opencv_loop_runs_unchanged(one_chunk: Path) -> None:
    """The loop of DeepLabCut-style scripts: count, seek, read until the end."""
    cap = imgstore.VideoCapture(str(one_chunk))
    n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    cap.set(cv2.CAP_PROP_POS_FRAMES, 10)
    codes = []
    while cap.isOpened():
        ok, frame = cap.read()
        if not ok:
            break
        codes.append(decode_grid(frame))
    cap.release()
    assert n == N and codes == [FIRST + i for i in range(10, N)]


def test_native_frames_and_the_stores_own_numbers(tmp_path: Path) -> None:
    path = tmp_path / "deep"
    with imgstore.new_for_format("npy", path=str(path), imgshape=SHAPE, imgdtype=np.uint16, chunksize=7) as store:
        for i in range(20):
            store.add_image(make_grid_frame(i, SHAPE, dtype=np.uint16), 500 + 2 * i, T0 + 0.1 * i)
    with imgstore.new_for_filename(str(path)) as store, imgstore.VideoCapture(store) as cap:
        assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(10.0)
        cap.set(cv2.CAP_PROP_POS_MSEC, 1234.0)  # nearest: the frame at 1.2 s
        ok, frame = cap.read()
        assert ok and frame.dtype == np.uint8 and frame.shape == (*SHAPE, 3) and decode_grid(frame) == 12
        assert (cap.last_frame_number, cap.last_frame_time) == (524, T0 + 0.1 * 12)
        assert cap.get(cv2.CAP_PROP_POS_MSEC) == pytest.approx(1200.0)
        assert cap.set(cv2.CAP_PROP_CONVERT_RGB, 0)
        ok, frame = cap.read()
        assert frame.dtype == np.uint16 and frame.shape == SHAPE and decode_grid(frame) == 13
        assert not cap.set(cv2.CAP_PROP_BRIGHTNESS, 1) and cap.get(cv2.CAP_PROP_BRIGHTNESS) == 0
        cap.set(cv2.CAP_PROP_POS_FRAMES, math.inf)
        assert cap.read() == (False, None) and cap.get(cv2.CAP_PROP_POS_FRAMES) == 20
    # a store given open stays open after release
    assert store.frame_count == 20


def test_a_missing_store_is_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(ImgStoreError, match="no store here"):
        imgstore.VideoCapture(str(tmp_path / "no store here"))
    with pytest.raises(ImgStoreError, match="not a store path"):
        imgstore.VideoCapture(42)


def test_frames_are_8_bit_bgr_whatever_the_store_holds(tmp_path: Path) -> None:
    """Two-channel and boolean frames too (OpenCV pipelines expect three 8-bit channels)."""
    for name, frame in (("two", np.full((4, 6, 2), 7, np.uint8)), ("bool", np.ones((4, 6), bool))):
        with imgstore.new_for_format("npy", path=str(tmp_path / name), imgshape=frame.shape,
                                     imgdtype=frame.dtype, chunksize=5) as store:  # fmt: skip
            store.add_image(frame, 0, T0)
        with imgstore.VideoCapture(str(tmp_path / name)) as cap:
            ok, img = cap.read()
        assert ok and img.shape == (4, 6, 3) and img.dtype == np.uint8
        assert int(img.max()) == (7 if name == "two" else 255)
