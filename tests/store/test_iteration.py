"""``for img, (number, time) in store`` and ``store.frames(start, stop, step, by=...)`` against a
brute-force selection from the store's own frame metadata, on stores with gaps, repeats and
frames out of order."""

from __future__ import annotations

import datetime
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import imgstore
from imgstore.errors import FrameArgumentError, ImgStoreError

T0 = 1_700_000_000.0


def _store(path: Path, numbers: list, times: list) -> None:
    with imgstore.new_for_format("npy", path=str(path), imgshape=(2, 3), imgdtype=np.int64, chunksize=4) as store:
        for i, (number, when) in enumerate(zip(numbers, times)):
            store.add_image(np.full((2, 3), i, np.int64), number, when)  # each frame holds its position


def _expected(numbers: list, times: list, start, stop, step: int, by: str) -> list:
    """Positions chosen by a plain loop over the frames."""
    if by == "index":
        return list(range(len(numbers)))[slice(start, stop)][::step]
    keys = numbers if by == "number" else times
    chosen = [i for i, k in enumerate(keys) if (start is None or k >= start) and (stop is None or k < stop)]
    return chosen[::step]


frames_of_a_store = st.lists(
    st.tuples(st.integers(-5, 40), st.floats(0, 20, allow_nan=False).map(lambda t: round(t, 2))),
    min_size=1,
    max_size=15,
)


@settings(max_examples=120, deadline=None)
@given(
    frames=frames_of_a_store,
    by=st.sampled_from(["index", "number", "time"]),
    start=st.one_of(st.none(), st.integers(-20, 45)),
    stop=st.one_of(st.none(), st.integers(-20, 45)),
    step=st.integers(1, 4),
)
def test_frames_choose_what_a_loop_over_the_metadata_chooses(frames, by, start, stop, step) -> None:
    numbers = [n for n, _ in frames]
    times = [T0 + t for _, t in frames]
    if by == "time":
        start, stop = (None if v is None else T0 + v / 2 for v in (start, stop))
    tmp = Path(tempfile.mkdtemp())
    try:
        _store(tmp / "s", numbers, times)
        with imgstore.new_for_filename(str(tmp / "s")) as store:
            got = [(int(img[0, 0]), md) for img, md in store.frames(start, stop, step, by=by)]
            every = [int(img[0, 0]) for img, _ in store]
    finally:
        shutil.rmtree(tmp)
    expected = _expected(numbers, times, start, stop, step, by)
    assert [position for position, _ in got] == expected
    assert [md for _, md in got] == [(numbers[i], times[i]) for i in expected]
    assert every == list(range(len(frames)))


def test_time_bounds_may_be_aware_datetimes_and_bad_arguments_are_refused(tmp_path: Path) -> None:
    _store(tmp_path / "s", list(range(10)), [T0 + i for i in range(10)])
    with imgstore.new_for_filename(str(tmp_path / "s")) as store:
        start = datetime.datetime.fromtimestamp(T0 + 3, datetime.timezone.utc)
        assert [md[0] for _, md in store.frames(start, T0 + 6, by="time")] == [3, 4, 5]
        for kwargs, message in (
            ({"by": "frame"}, "by must be one of"),
            ({"step": 0}, "step must be"),
            ({"step": 1.5}, "step must be"),
            ({"start": 2.5}, "whole frame index"),
            ({"start": datetime.datetime(2024, 1, 1), "by": "time"}, "no time zone"),
        ):
            with pytest.raises(FrameArgumentError, match=message):
                store.frames(**kwargs)
    writer = imgstore.new_for_format("npy", path=str(tmp_path / "w"), imgshape=(2, 3), chunksize=4)
    with pytest.raises(ImgStoreError, match="open for writing"):
        iter(writer)
    writer.close()
