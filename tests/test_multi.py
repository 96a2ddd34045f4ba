"""Several stores as one synchronized recording (``imgstore.MultiStore``), against a brute-force
reference of what each camera should give at each step, on stores written here."""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path
from typing import List, Optional, Sequence

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import imgstore
from imgstore.errors import FrameArgumentError, FrameNotFoundError, ImgStoreError
from imgstore.multi import COMPANIONS_KEY, HELD, MATCHED, MISSING

from framecodes import decode_grid, make_grid_frame

T0 = 1_700_000_000.0


def _write(path: Path, times: Sequence[float], numbers: Optional[Sequence[int]] = None, fmt: str = "npy",
           shape=(4, 6), dtype="uint8", chunksize: int = 4) -> Path:  # fmt: skip
    """A store whose frame k is filled with k + 1 (npy) or carries k in a grid code (video)."""
    numbers = list(range(len(times))) if numbers is None else list(numbers)
    with imgstore.new_for_format(fmt, path=str(path), imgshape=shape, imgdtype=dtype, chunksize=chunksize) as s:
        for k, (n, t) in enumerate(zip(numbers, times)):
            img = np.full(shape, k + 1, dtype) if fmt == "npy" else make_grid_frame(k, shape, dtype=dtype, noise=False)
            s.add_image(img, n, t)
    return path


# -- the reference: what each camera gives, found by looking at every frame --------------------------
def _nearest(times: np.ndarray, t: float) -> int:
    best = -1
    for i, ti in enumerate(times):
        if not math.isnan(ti) and (best < 0 or abs(ti - t) < abs(times[best] - t)):
            best = i
    return best


def _held(times: np.ndarray, t: float) -> int:
    """The latest frame at or before t (the last in store order among equal times)."""
    best = -1
    for i, ti in enumerate(times):
        if not math.isnan(ti) and ti <= t and (best < 0 or ti >= times[best]):
            best = i
    return best


def _reference(times: List[np.ndarray], numbers: List[np.ndarray], sync: str, master: int,
               rate: Optional[float], tolerance: float, fill: str):  # fmt: skip
    if rate is None:
        ref_times, ref_numbers = times[master], numbers[master]
    else:
        start = min(np.nanmin(t) for t in times)
        end = max(np.nanmax(t) for t in times)
        ref_times = start + np.arange(math.floor((end - start) * rate + 1e-9) + 1) / rate
        ref_numbers = None
    expected = []
    for step, ref in enumerate(ref_times):
        row = []
        for cam, (t, n) in enumerate(zip(times, numbers)):
            if cam == master and rate is None:
                pos = step
            elif sync == "number":
                hits = np.flatnonzero(n == ref_numbers[step])
                pos = int(hits[0]) if len(hits) else -1
            else:
                pos = _nearest(t, ref)
                if pos >= 0 and not abs(t[pos] - ref) <= tolerance:
                    pos = -1
            status = MATCHED if pos >= 0 else MISSING
            if pos < 0 and fill == "hold":
                pos = _held(t, ref)
                status = HELD if pos >= 0 else MISSING
            row.append((status, pos))
        expected.append(row)
    return ref_times, expected


def _check_against_reference(multi: imgstore.MultiStore, times, numbers, sync, master, rate, tolerance, fill):
    ref_times, expected = _reference(times, numbers, sync, master, rate, tolerance, fill)
    assert len(multi) == len(ref_times)
    every_step = multi.match_all()  # the vectorised answer for all steps at once
    for cam, name in enumerate(multi.names):
        assert every_step[name].tolist() == [row[cam][1] for row in expected], name
    for step, row in enumerate(expected):
        got = multi[step]
        assert got.index == step and got.time == pytest.approx(ref_times[step], abs=1e-6, nan_ok=True)
        for cam, ((status, pos), frame, img) in enumerate(zip(row, got.frames, got.images)):
            assert (frame.status, frame.frame_index) == (status, pos), (step, cam)
            if pos >= 0:
                assert frame.frame_time == pytest.approx(times[cam][pos], nan_ok=True)
                assert frame.frame_number == numbers[cam][pos]
                assert frame.offset == pytest.approx(times[cam][pos] - ref_times[step], abs=1e-6, nan_ok=True)
                assert int(img.flat[0]) == pos + 1  # the frame itself, read from the store
            else:
                assert frame.frame_number is None and math.isnan(frame.offset)
                assert img is None if fill == "none" else not img.any()


# frame times on a grid of 1/64 s, exact in binary floating point even at T0, so that ties and
# distances of exactly the tolerance happen, and now and then a frame without a time (NaN: the
# reference time of a master's such frame is no time at all); every camera has a frame at T0 + 0.5
_times = st.lists(st.one_of(st.integers(0, 64), st.integers(0, 64), st.just(-1)), min_size=1, max_size=12).map(
    lambda ks: [T0 + k / 64 if k >= 0 else math.nan for k in ks] + [T0 + 0.5]
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    cameras=st.lists(_times, min_size=2, max_size=3),
    sorted_times=st.booleans(),
    fill=st.sampled_from(["none", "black", "hold"]),
    tolerance=st.sampled_from([1 / 64, 2 / 64, 3 / 64, 0.25]),
    master=st.integers(0, 2),
    on_grid=st.sampled_from([None, None, 16.0, 32.0, 20.0]),
)
def test_time_sync_matches_the_brute_force_reference(cameras, sorted_times, fill, tolerance, master, on_grid):
    master %= len(cameras)
    with tempfile.TemporaryDirectory() as tmp:
        times, numbers, paths = [], [], []
        for i, cam in enumerate(cameras):
            t = np.array(sorted(cam) if sorted_times else cam)
            times.append(t)
            numbers.append(np.arange(len(t)) * 3 + 100 * i)
            paths.append(_write(Path(tmp) / f"cam{i}", t, numbers[-1]))
        with imgstore.MultiStore(paths, master=master, rate=on_grid, tolerance=tolerance, fill=fill) as multi:
            _check_against_reference(multi, times, numbers, "time", master, on_grid, tolerance, fill)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    cameras=st.lists(st.sets(st.integers(0, 30), min_size=1, max_size=12), min_size=2, max_size=3),
    fill=st.sampled_from(["none", "black", "hold"]),
)
def test_number_sync_matches_the_brute_force_reference(cameras, fill):
    """Hardware-triggered cameras: the same frame number is the same moment (dropped ones are missing)."""
    with tempfile.TemporaryDirectory() as tmp:
        times, numbers, paths = [], [], []
        for i, cam in enumerate(cameras):
            n = np.array(sorted(cam))
            numbers.append(n)
            times.append(T0 + n / 25 + i * 0.001)
            paths.append(_write(Path(tmp) / f"cam{i}", times[-1], n))
        with imgstore.MultiStore(paths, sync="number", fill=fill, tolerance=1.0) as multi:
            _check_against_reference(multi, times, numbers, "number", 0, None, 1.0, fill)


@pytest.fixture(scope="module")
def rig(tmp_path_factory) -> List[Path]:
    """A top camera (grey H.264, 25 fps), a side camera (colour MJPEG, 30 fps, starts late, stops
    early) and a deep one (uint16 npy, 10 fps), on the same clock."""
    root = tmp_path_factory.mktemp("rig")
    top = _write(root / "top", [T0 + k / 25 for k in range(50)], fmt="avc1/mp4", shape=(64, 80), chunksize=20)
    side = _write(root / "side", [T0 + 0.5 + k / 30 for k in range(30)], fmt="mjpeg/avi", shape=(48, 64, 3))
    deep = _write(root / "deep", [T0 + k / 10 for k in range(20)], fmt="npy", shape=(32, 32), dtype="uint16")
    return [top, side, deep]


def test_mixed_formats_shapes_and_dtypes_step_together(rig):
    with imgstore.MultiStore(rig, fill="black") as multi:
        assert multi.names == ["top", "side", "deep"] and len(multi) == 50
        assert multi.tolerance == pytest.approx(0.02)
        step = multi[20]  # T0 + 0.8: side's frame 9 (T0 + 0.8), deep's frame 8 (T0 + 0.8)
        assert [f.status for f in step.frames] == [MATCHED, MATCHED, MATCHED]
        assert decode_grid(step.images[0]) == 20 and decode_grid(step.images[1]) == 9
        assert step.images[0].shape == (64, 80) and step.images[1].shape == (48, 64, 3)
        assert step.images[2].dtype == np.uint16 and int(step.images[2].flat[0]) == 9
        early = multi[0]  # side has not started: black, in its own shape
        assert early.missing == ["side"] and early.images[1].shape == (48, 64, 3) and not early.images[1].any()
        assert early.frames[2].offset == 0.0 and early.frames[1].frame_index == -1


def test_late_and_early_cameras_are_filled_as_chosen(rig):
    with imgstore.MultiStore(rig, fill="hold", master="side") as multi:
        last = multi[-1]  # side's last frame, T0 + 1.467: top ended at T0 + 1.96, deep at T0 + 1.9
        assert last.frames[0].status == MATCHED and last.frames[2].status in (MATCHED, HELD)
    with imgstore.MultiStore(rig, fill="hold") as multi:
        tail = multi[49]  # T0 + 1.96: side stopped at T0 + 1.467, and holds its last frame
        assert tail.frames[1].status == HELD and tail.frames[1].frame_index == 29
        assert decode_grid(tail.images[1]) == 29 and tail.frames[1].offset == pytest.approx(0.5 + 29 / 30 - 1.96)
        assert multi[0].frames[1].status == MISSING and not multi[0].images[1].any()  # nothing to hold yet: black


def test_random_access_by_step_time_and_master_frame_number(rig):
    with imgstore.MultiStore(rig) as multi:
        assert multi.step_at_time(T0 + 0.81).index == 20
        assert multi.step_at_frame_number(33).index == 33
        assert multi[-1].index == 49
        with pytest.raises(IndexError):
            multi[50]
        with pytest.raises(FrameNotFoundError, match="#99"):
            multi.step_at_frame_number(99)
    with imgstore.MultiStore(rig, rate=5) as grid:  # the span of all cameras, 5 steps a second
        assert len(grid) == 10 and grid.step_index_at_time(T0 + 0.61) == 3 and grid[3].frame_number is None


def test_mosaic_tiles_every_camera(rig):
    with imgstore.MultiStore(rig, fill="none") as multi:
        image = multi.mosaic(0)  # 3 cameras: 2x2 grid of 64x80 tiles; side missing, deep grey 16-bit
        assert image.shape == (128, 160, 3) and image.dtype == np.uint8
        assert decode_grid(image[:64, :80]) == 0
        assert not image[:64, 80:].any()  # side: missing
        assert multi.mosaic(20, layout=(1, 3)).shape == (64, 240, 3)
        with pytest.raises(ImgStoreError, match="no room for 3"):
            multi.mosaic(0, layout=(1, 2))


def test_bad_input_is_refused_clearly(tmp_path, rig):
    early = _write(tmp_path / "early", [T0 - 100 + k for k in range(3)])
    with pytest.raises(ImgStoreError, match="do not overlap") as err:
        imgstore.MultiStore([rig[0], early])
    assert "top: 2023-11-14T22:13:20.000+00:00" in str(err.value) and "early: 2023-11-14T22:11:40" in str(err.value)
    for tolerance in (0, -1, math.nan):
        with pytest.raises(ImgStoreError, match="tolerance must be a positive"):
            imgstore.MultiStore(rig, tolerance=tolerance)
    with pytest.raises(ImgStoreError, match=f"cannot open {tmp_path / 'nowhere'}"):
        imgstore.MultiStore([rig[0], tmp_path / "nowhere"])
    with pytest.raises(ImgStoreError, match="no camera named 'front'"):
        imgstore.MultiStore(rig, master="front")
    with pytest.raises(ImgStoreError, match="fill must be one of"):
        imgstore.MultiStore(rig, fill="zero")


def test_odd_recordings_found_by_review(tmp_path, rig):
    """Cases an adversarial review found: each gave a wrong answer, a raw error or ran out of memory."""
    # a first camera with one frame: the tolerance comes from the other cameras' frame interval
    one = _write(tmp_path / "one", [T0 + 0.52])
    steady = _write(tmp_path / "steady", [T0 + k * 0.04 for k in range(30)])
    with imgstore.MultiStore([one, steady]) as multi:
        assert multi.tolerance == pytest.approx(0.02) and multi[0].frames[1].frame_index == 13
    with imgstore.MultiStore([one, _write(tmp_path / "one-more", [T0 + 0.52])]) as multi:
        assert multi.tolerance == math.inf and multi[0].frames[1].frame_index == 0  # one frame each: any distance
    # a clock not set for one frame: the grid it would span is refused, not allocated
    unset = _write(tmp_path / "unset", [0.0] + [T0 + k * 0.04 for k in range(1, 10)])
    with pytest.raises(ImgStoreError, match=r"would have 51,000,000,\d+ steps .*clock not set"):
        imgstore.MultiStore([unset, steady], rate=30)
    # numpy numbers are numbers; a lone path is not a list of them; a frame number must be one
    with imgstore.MultiStore([steady, steady], rate=np.int64(10), tolerance=np.float32(0.05), names=["a", "b"]) as m:
        assert len(m) == 12 and m.step_index_at_time(math.inf) == 11 and m.step_index_at_time(-math.inf) == 0
    with pytest.raises(ImgStoreError, match="a list of stores or paths, got the one path"):
        imgstore.MultiStore(str(steady))
    with imgstore.MultiStore([steady, one]) as multi, pytest.raises(FrameArgumentError, match="must be an integer"):
        multi.step_at_frame_number("x")


def test_companions_may_be_urls_or_absolute_but_not_the_store_itself(tmp_path, rig):
    listed = ["http://127.0.0.1:1/top", str(rig[1]), "../deep"]
    path = tmp_path / "master"
    _write(path, [T0])
    metadata = yaml.safe_load((path / "metadata.yaml").read_text())
    metadata[COMPANIONS_KEY] = listed
    (path / "metadata.yaml").write_text(yaml.safe_dump(metadata))
    with imgstore.new_for_filename(str(path)) as store:
        assert store.companions == ["http://127.0.0.1:1/top", str(rig[1]), os.path.join(str(path), "../deep")]
    metadata[COMPANIONS_KEY] = ["."]
    (path / "metadata.yaml").write_text(yaml.safe_dump(metadata))
    with imgstore.new_for_filename(str(path)) as store, pytest.raises(ImgStoreError, match="lists the store itself"):
        _ = store.companions


def test_a_store_being_written_is_followed_through_refresh(tmp_path, rig):
    writer = imgstore.new_for_format("npy", path=str(tmp_path / "live"), imgshape=(4, 6), chunksize=5)
    for k in range(3):
        writer.add_image(np.full((4, 6), k + 1, np.uint8), k, T0 + k / 25)
    with imgstore.MultiStore([tmp_path / "live", rig[0]]) as multi:
        assert len(multi) == 3
        for k in range(3, 12):
            writer.add_image(np.full((4, 6), k + 1, np.uint8), k, T0 + k / 25)
        assert multi.refresh() == 9 and len(multi) == 12
        assert int(multi[11].images[0].flat[0]) == 12 and decode_grid(multi[11].images[1]) == 11
    writer.close()


def test_to_dask_gives_every_cameras_frame_at_every_step(rig):
    pytest.importorskip("dask.array")
    with imgstore.MultiStore(rig, fill="black") as multi:
        arrays = multi.to_dask(frames_per_task=7)
        assert list(arrays) == multi.names
        assert arrays["side"].shape == (50, 48, 64, 3) and arrays["deep"].dtype == np.uint16
        computed = {name: array.compute() for name, array in arrays.items()}
        for step in multi:
            for name, img in zip(multi.names, step.images):
                np.testing.assert_array_equal(computed[name][step.index], img)


def test_a_refused_group_closes_the_stores_it_opened(tmp_path, rig, monkeypatch):
    early = _write(tmp_path / "early", [T0 - 100 + k for k in range(3)])
    closed = []
    real_close = imgstore.stores._ImgStore.close

    def close(self, *args, **kwargs):
        closed.append(self.filename)
        return real_close(self, *args, **kwargs)

    monkeypatch.setattr(imgstore.stores._ImgStore, "close", close)
    with pytest.raises(ImgStoreError, match="do not overlap"):
        imgstore.MultiStore([rig[0], early])
    assert closed == [str(rig[0]), str(early)]
    with pytest.raises(ImgStoreError, match="rate must be"):
        imgstore.MultiStore(rig, rate="fast")


def test_linked_cameras_open_as_a_group_from_the_master(tmp_path, rig):
    """``imgstore-save --companion`` lists the other cameras in the new store's metadata (relative to
    it); ``MultiStore.linked`` opens the master with them."""
    import subprocess
    import sys

    save = str(Path(sys.executable).parent / "imgstore-save")
    master = tmp_path / "rig" / "front"
    result = subprocess.run(
        [save, str(master), "--source", str(rig[0]), "--format", "npy", "--companion", str(rig[1]),
         "--companion", str(rig[2]), "-q"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    from imgstore.multi import COMPANIONS_KEY

    listed = imgstore.new_for_filename(str(master)).user_metadata[COMPANIONS_KEY]
    assert listed == [os.path.relpath(str(rig[1]), str(master)), os.path.relpath(str(rig[2]), str(master))]
    with imgstore.MultiStore.linked(str(master), fill="black") as multi:
        assert multi.names == ["front", "side", "deep"] and multi.master == 0 and len(multi) == 50
        assert decode_grid(multi[20].images[1]) == 9
    with pytest.raises(ImgStoreError, match="lists no companion stores"):
        imgstore.MultiStore.linked(str(rig[1]))
    # the master store itself offers its group
    with imgstore.new_for_filename(str(master)) as store:
        assert [os.path.normpath(p) for p in store.companions] == [os.path.normpath(str(r)) for r in rig[1:]]
        with store.open_group(sync="number", fill="hold") as group:
            assert group.names == ["front", "side", "deep"] and group.stores[0] is store
            assert group.sync == "number" and group.fill == "hold"
        assert store.get_image(None, frame_index=3)[1][0] == 3  # closing the group left the master open
    with imgstore.new_for_filename(str(rig[1])) as alone:
        assert alone.companions == []
