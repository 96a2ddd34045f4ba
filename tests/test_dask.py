"""Stores as Dask arrays: values, task boundaries, pickling, and a real multi-process cluster."""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np
import pytest

import imgstore
from imgstore.errors import ImgStoreError, MissingDependencyError

from framecodes import decode_grid, make_grid_frame

dask = pytest.importorskip("dask")
da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")
cloudpickle = pytest.importorskip("cloudpickle")

import imgstore.dask as imgdask  # noqa: E402 - after the optional dependencies are known to be there

BENCHMARK = Path(__file__).resolve().parent.parent / "benchmarks" / "dask_speedup.py"
T0 = 1_700_000_000.0
GOP = 10

#: name -> (format, frame shape, frames, chunksize, encoder settings); several chunks each, the last one short
STORES: Dict[str, Tuple[str, Tuple[int, ...], int, int, dict]] = {
    "npy-grey": ("npy", (48, 64), 50, 20, {}),
    "png-color": ("png", (48, 64, 3), 30, 12, {}),
    "avc1-grey": ("avc1/mp4", (48, 64), 60, 25, {"gop": GOP}),
    "avc1-color": ("avc1/mp4", (48, 64, 3), 45, 20, {"gop": GOP}),
    "mjpeg-grey": ("mjpeg/avi", (48, 64), 40, 15, {}),
    "mjpeg-color": ("mjpeg/avi", (48, 64, 3), 40, 15, {}),
}


def frame_number_of(i: int) -> int:
    return 1000 + 3 * i  # numbers with gaps, not positions


def write_store(path: Path, fmt: str, shape: Tuple[int, ...], frames: int, chunksize: int, **kw) -> Path:
    with imgstore.new_for_format(fmt, path=str(path), imgshape=shape, chunksize=chunksize, **kw) as store:
        for i in range(frames):
            store.add_image(make_grid_frame(i, shape), frame_number_of(i), T0 + i / 25)
    return path


@pytest.fixture(scope="module")
def stores(tmp_path_factory) -> Dict[str, Path]:
    root = tmp_path_factory.mktemp("dask-stores")
    return {name: write_store(root / name, fmt, shape, n, cs, **kw) for name, (fmt, shape, n, cs, kw) in STORES.items()}


@pytest.fixture(scope="module")
def client():
    """One real cluster for the module: two worker processes, one thread each."""
    with (
        distributed.LocalCluster(
            n_workers=2,
            processes=True,
            threads_per_worker=1,
            dashboard_address=None,
            scheduler_kwargs={"dashboard_address": ":0"},  # its HTTP server on a free port, not 8787
        ) as cluster,
        distributed.Client(cluster, set_as_default=False) as client,
    ):
        yield client


def read_all(path: Path) -> Tuple[np.ndarray, List[int], List[float]]:
    """Every frame, read one by one with get_next_image."""
    frames, numbers, times = [], [], []
    with imgstore.new_for_filename(str(path)) as store:
        while True:
            try:
                img, (number, time) = store.get_next_image()
            except EOFError:
                break
            frames.append(img)
            numbers.append(number)
            times.append(time)
    return np.stack(frames), numbers, times


def task_starts(array) -> List[int]:
    return [int(s) for s in np.cumsum((0, *array.chunks[0][:-1]))]


def keyframe_positions(video_path: Path) -> List[int]:
    """Presentation positions of a video file's keyframes, demuxed here with PyAV directly."""
    import av

    pts, keys = [], []
    with av.open(str(video_path)) as container:
        for packet in container.demux(container.streams.video[0]):
            if packet.pts is None or packet.size == 0:
                continue
            pts.append(packet.pts)
            if packet.is_keyframe:
                keys.append(packet.pts)
    ordered = sorted(pts)
    return sorted(ordered.index(k) for k in keys)


# ------------------------------------------------------------------------------------------------
# values
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(STORES))
def test_array_holds_every_frame_in_store_order(stores, name):
    _, shape, n, chunksize, _ = STORES[name]
    expected, _, _ = read_all(stores[name])
    array = imgdask.to_dask(str(stores[name]))
    assert array.shape == (n, *shape) and array.dtype == np.uint8
    assert array.chunks[0] == tuple(min(chunksize, n - s) for s in range(0, n, chunksize))  # one task per chunk
    values = array.compute(scheduler="sync")
    np.testing.assert_array_equal(values, expected)
    assert [decode_grid(img) for img in values] == list(range(n))  # each frame is the one asked for


@pytest.mark.parametrize("name", list(STORES))
def test_distributed_per_frame_mean_equals_frame_by_frame(stores, client, name):
    expected, _, _ = read_all(stores[name])
    expected_means = expected.reshape(len(expected), -1).mean(axis=1)
    array = imgdask.to_dask(str(stores[name]))
    means = client.compute(array.mean(axis=tuple(range(1, array.ndim)))).result()
    np.testing.assert_allclose(means, expected_means, rtol=1e-12)


def test_distributed_with_frames_per_task_and_xarray(stores, client):
    expected, numbers, _ = read_all(stores["avc1-grey"])
    frames = imgdask.to_xarray(str(stores["avc1-grey"]), frames_per_task=7)
    means = client.compute(frames.mean(dim=("y", "x")).data).result()
    np.testing.assert_allclose(means, expected.reshape(len(expected), -1).mean(axis=1), rtol=1e-12)
    assert frames["frame_number"].values.tolist() == numbers


# ------------------------------------------------------------------------------------------------
# task boundaries
# ------------------------------------------------------------------------------------------------
def test_frames_per_task_in_an_image_store_is_a_fixed_count_across_chunks(stores):
    expected, _, _ = read_all(stores["npy-grey"])  # 50 frames, chunks of 20
    array = imgdask.to_dask(str(stores["npy-grey"]), frames_per_task=15)
    assert array.chunks[0] == (15, 15, 15, 5)
    np.testing.assert_array_equal(array.compute(scheduler="sync"), expected)


@pytest.mark.parametrize("frames_per_task", [4, 12, 33, 100])
def test_frames_per_task_in_a_video_store_starts_tasks_at_keyframes(stores, frames_per_task):
    path = stores["avc1-grey"]  # 60 frames, chunks of 25, a keyframe every GOP frames
    _, _, n, chunksize, _ = STORES["avc1-grey"]
    clean_starts = set()
    for chunk_start in range(0, n, chunksize):
        video = path / f"{chunk_start // chunksize:06d}.mp4"
        clean_starts.update(chunk_start + k for k in keyframe_positions(video))
    assert set(range(0, n, chunksize)) <= clean_starts and len(clean_starts) > n // chunksize

    array = imgdask.to_dask(str(path), frames_per_task=frames_per_task)
    starts = task_starts(array)
    assert set(starts) <= clean_starts
    assert sum(array.chunks[0]) == n
    if frames_per_task < GOP:  # tasks never hold less than a GOP: one GOP (or chunk tail) each
        assert starts == sorted(clean_starts)
    else:  # each boundary is the clean start nearest its multiple of frames_per_task
        for nominal in range(frames_per_task, n, frames_per_task):
            best = min(abs(s - nominal) for s in clean_starts | {n})
            assert any(abs(s - nominal) == best for s in [*starts, n])
    expected, _, _ = read_all(path)
    np.testing.assert_array_equal(array.compute(scheduler="sync"), expected)


def test_slicing_computes_only_the_tasks_it_needs(stores, monkeypatch):
    array = imgdask.to_dask(str(stores["avc1-grey"]))  # tasks: frames 0-24, 25-49, 50-59
    expected, _, _ = read_all(stores["avc1-grey"])
    ran: List[int] = []
    read = imgdask.ReadFrames.__call__

    def counting_read(task):
        ran.append(task.runs[0].start)
        return read(task)

    monkeypatch.setattr(imgdask.ReadFrames, "__call__", counting_read)
    for sel, tasks in ((slice(30, 33), 1), (slice(20, 27), 2), (slice(55, 60), 1), (slice(None), 3)):
        ran.clear()
        np.testing.assert_array_equal(array[sel].compute(scheduler="sync"), expected[sel])
        assert len(ran) == tasks, (sel, ran)


# ------------------------------------------------------------------------------------------------
# scattered frames: frames=
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(STORES))
def test_frames_selects_just_those_frames_in_the_order_given(stores, name):
    expected, numbers, _ = read_all(stores[name])
    n = len(expected)
    picks = [n - 1, 3, 4, 17, 17, 0, -2, n // 2]  # out of order, repeated, from the end
    array = imgdask.to_dask(str(stores[name]), frames=picks)
    assert array.shape == (len(picks), *expected.shape[1:]) and array.dtype == expected.dtype
    values = array.compute(scheduler="sync")
    np.testing.assert_array_equal(values, expected[picks])
    assert [decode_grid(img) for img in values] == [p % n for p in picks]
    frames = imgdask.to_xarray(str(stores[name]), frames=picks)
    assert frames["frame_number"].values.tolist() == [numbers[p] for p in picks]
    np.testing.assert_array_equal(frames.values, expected[picks])


def test_frames_of_one_chunk_in_increasing_order_share_a_task(stores, monkeypatch):
    path = stores["avc1-grey"]  # 60 frames, chunks of 25
    read: List[Tuple[int, ...]] = []
    call = imgdask.ReadPicked.__call__

    def counting_call(task):
        read.append((task.run.path[-10:], task.positions))
        return call(task)

    monkeypatch.setattr(imgdask.ReadPicked, "__call__", counting_call)
    picks = [2, 9, 24, 25, 40, 30, 59]
    array = imgdask.to_dask(str(path), frames=picks)
    assert array.chunks[0] == (3, 2, 1, 1)  # 2 9 24 | 25 40 | 30 (back) | 59 (next chunk)
    array.compute(scheduler="sync")
    assert sorted(positions for _, positions in read) == [(0, 15), (2, 9, 24), (5,), (9,)]
    assert imgdask.to_dask(str(path), frames=picks, frames_per_task=2).chunks[0] == (2, 1, 2, 1, 1)
    assert imgdask.to_dask(str(path), frames=[]).shape == (0, 48, 64)


def test_bad_frames_are_refused(stores):
    for bad in ([60], [-61], [1.5], [True, False], [[1, 2]], "12", 5, np.array([2**64 - 1], np.uint64)):
        with pytest.raises(ImgStoreError, match="frames"):
            imgdask.to_dask(str(stores["avc1-grey"]), frames=bad)


def test_bad_frames_per_task_and_write_stores_are_refused(stores, tmp_path):
    for bad in (0, -3, 2.5, True, "10"):
        with pytest.raises(ImgStoreError, match="frames_per_task"):
            imgdask.to_dask(str(stores["npy-grey"]), frames_per_task=bad)
    with imgstore.new_for_format("npy", path=str(tmp_path / "w"), imgshape=(8, 8)) as writing:
        with pytest.raises(ImgStoreError, match="open for writing"):
            imgdask.to_dask(writing)


def test_empty_store_is_an_empty_array(tmp_path):
    with imgstore.new_for_format("npy", path=str(tmp_path / "e"), imgshape=(8, 10), chunksize=5):
        pass
    array = imgdask.to_dask(str(tmp_path / "e"))
    assert array.shape == (0, 8, 10)
    assert array.compute(scheduler="sync").shape == (0, 8, 10)
    assert imgdask.frame_metadata(str(tmp_path / "e"))["frame_number"].shape == (0,)


# ------------------------------------------------------------------------------------------------
# frame numbers and times
# ------------------------------------------------------------------------------------------------
def test_frame_metadata_and_xarray_coordinates(stores):
    with imgstore.new_for_filename(str(stores["png-color"])) as store:
        md = imgdask.frame_metadata(store)
        assert md["frame_number"].tolist() == store.get_frame_metadata()["frame_number"]
        assert md["frame_time"].tolist() == store.get_frame_metadata()["frame_time"]
        frames = imgdask.to_xarray(store)
        assert frames.dims == ("frame", "y", "x", "channel")
        assert frames["channel"].values.tolist() == ["blue", "green", "red"]
        np.testing.assert_array_equal(frames["frame_time"].values, md["frame_time"])
        one = frames.set_xindex("frame_number").sel(frame_number=frame_number_of(17)).values
        np.testing.assert_array_equal(one, store.get_image(frame_number_of(17))[0])
    grey = imgdask.to_xarray(str(stores["npy-grey"]))
    assert grey.dims == ("frame", "y", "x") and grey.sizes["frame"] == 50


def test_store_method_and_sensor_decoding(tmp_path):
    raw = np.random.default_rng(3).integers(0, 256, (6, 16, 20), dtype=np.uint8)
    with imgstore.new_for_format(
        "npy", path=str(tmp_path / "bayer"), imgshape=(16, 20), chunksize=4, encoding="cv_bayerbg"
    ) as store:
        for i, frame in enumerate(raw):
            store.add_image(frame, i, T0 + i)
    with imgstore.new_for_filename(str(tmp_path / "bayer")) as store:
        colour = store.to_dask()
        assert colour.shape == (6, 16, 20, 3)
        np.testing.assert_array_equal(colour.compute(scheduler="sync")[4], store.get_image(4)[0])
        store.disable_decoding()
        as_stored = store.to_dask(frames_per_task=5)
        assert as_stored.chunks[0] == (5, 1)
        np.testing.assert_array_equal(as_stored.compute(scheduler="sync"), raw)
        assert pickle.loads(pickle.dumps(store)).get_image(2)[0].shape == (16, 20)  # decoding stays off


# ------------------------------------------------------------------------------------------------
# pickling: stores and graphs
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["npy-grey", "avc1-color"])
def test_read_store_pickles_as_a_freshly_opened_store(stores, name, monkeypatch, tmp_path):
    monkeypatch.chdir(stores[name].parent)
    with imgstore.new_for_filename(name) as store:  # a relative path
        img7, md7 = store.get_image(None, frame_index=7)
        data = cloudpickle.dumps(store)
    monkeypatch.chdir(tmp_path)  # the copy must not depend on the working directory
    copy = pickle.loads(data)
    assert type(copy) is type(store)
    assert copy.mode == "r" and copy.frame_count == store.frame_count
    assert copy.view.metadata.format == store.view.metadata.format
    assert copy.filename == str(stores[name])
    _, (number0, _) = copy.get_next_image()  # a fresh position: the first frame
    assert number0 == frame_number_of(0)
    img, md = copy.get_image(None, frame_index=7)
    np.testing.assert_array_equal(img, img7)
    assert md == md7
    copy.close()


def test_write_store_refuses_to_pickle(tmp_path):
    with imgstore.new_for_format("npy", path=str(tmp_path / "w"), imgshape=(8, 8)) as store:
        with pytest.raises(ImgStoreError, match=r"cannot pickle store .*open for writing"):
            pickle.dumps(store)


@pytest.mark.parametrize("name", ["mjpeg-color", "png-color"])
def test_graph_pickles_and_runs_after_unpickling(stores, name):
    array = imgdask.to_dask(str(stores[name]), frames_per_task=9)
    graph = dict(array.__dask_graph__())
    for dumps in (pickle.dumps, cloudpickle.dumps):
        restored = pickle.loads(dumps(graph))
        blocks = dask.get(restored, list(dask.core.flatten(array.__dask_keys__())))
        np.testing.assert_array_equal(np.concatenate(blocks), read_all(stores[name])[0])


def test_tasks_close_every_file_they_open(stores, monkeypatch):
    from imgstore.codecs import video_av

    opened, closed = [], []
    init, close = video_av.PyAVChunkReader.__init__, video_av.PyAVChunkReader.close

    def counting_init(self, path, *args, **kwargs):
        opened.append(path)
        init(self, path, *args, **kwargs)

    def counting_close(self):
        closed.append(self._path)
        close(self)

    monkeypatch.setattr(video_av.PyAVChunkReader, "__init__", counting_init)
    monkeypatch.setattr(video_av.PyAVChunkReader, "close", counting_close)
    array = imgdask.to_dask(str(stores["avc1-grey"]), frames_per_task=20)
    assert not opened  # building the graph reads no frames
    array.sum().compute(scheduler="sync")
    assert len(opened) >= 3 and sorted(opened) == sorted(closed)


# ------------------------------------------------------------------------------------------------
# optional dependencies
# ------------------------------------------------------------------------------------------------
def test_missing_dask_or_xarray_is_named(stores, monkeypatch):
    monkeypatch.setitem(sys.modules, "xarray", None)
    with pytest.raises(MissingDependencyError, match=r"needs the xarray package: pip install xarray"):
        imgdask.to_xarray(str(stores["npy-grey"]))
    monkeypatch.setitem(sys.modules, "dask.array", None)
    with pytest.raises(ImportError, match=r"needs the dask package: pip install 'imgstore-ng\[dask\]'"):
        imgdask.to_dask(str(stores["npy-grey"]))


def test_import_imgstore_imports_no_dask():
    optional = ("dask", "distributed", "xarray")
    code = f"import sys, imgstore; assert not [m for m in sys.modules if m.split('.')[0] in {optional!r}]"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_speedup_benchmark_runs(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(BENCHMARK), "--quick", "--dir", str(tmp_path)], capture_output=True, text=True, timeout=240
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "speed-up of 2 workers over 1" in proc.stdout and "load average" in proc.stdout
