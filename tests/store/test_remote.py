"""Stores read from URLs: a real HTTP server with Range requests and an S3 server, on loopback.

Every read must answer as the same store read from disk, and one frame of a long video chunk
must cost a few requests and a small part of the chunk, not a download.
"""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import pytest

import imgstore
from imgstore.errors import FrameNotFoundError, ImgStoreError, RangeRequestsError, StoreNotFoundError

from framecodes import decode_grid, make_grid_frame
from remote_servers import http_server, plain_http_server, s3_server  # noqa: F401 - fixtures

pytest.importorskip("fsspec")
pytest.importorskip("aiohttp")

SHAPE = (240, 320)
T0 = 1_700_000_000.0


def _record(path: Path, fmt: str, frames: int, chunksize: int) -> Path:
    with imgstore.new_for_format(
        fmt, mode="w", basedir=str(path), imgshape=SHAPE, imgdtype="uint8", chunksize=chunksize, metadata={"arena": "B"}
    ) as store:
        for i in range(frames):
            store.add_image(make_grid_frame(i, SHAPE), 10 + 2 * i, T0 + i / 25)
            if i % 50 == 0:
                store.add_extra_data(light=i / 10)
    return path


@pytest.fixture(scope="module")
def served(http_server):  # noqa: F811 - pytest fixture
    """Stores on the HTTP server: a long video chunk, a folder store, and their local twins."""
    root, url, traffic = http_server
    _record(root / "video", "mjpeg/avi", 1500, 1000)
    _record(root / "frames", "png", 120, 50)
    return root, url, traffic


def _same_answers(local: imgstore.stores._ImgStore, remote: imgstore.stores._ImgStore, positions) -> None:
    assert remote.frame_count == local.frame_count and remote.chunks == local.chunks
    assert remote.user_metadata == local.user_metadata
    assert remote.get_frame_metadata() == local.get_frame_metadata()
    for i in positions:
        img, md = remote.get_image(None, frame_index=i)
        assert md == local.get_image(None, frame_index=i)[1]
        assert decode_grid(img) == i
    number = local.get_frame_metadata()["frame_number"][positions[-1]]
    assert remote.get_image(number)[1] == local.get_image(number)[1]
    assert remote.get_nearest_image(T0 + 3.01)[1] == local.get_nearest_image(T0 + 3.01)[1]
    local_extra, remote_extra = local.get_extra_data(), remote.get_extra_data()
    assert remote_extra.equals(local_extra)


@pytest.mark.parametrize("name", ["video", "frames"])
def test_store_over_http_reads_as_on_disk(served, name):
    root, url, _ = served
    with imgstore.new_for_filename(str(root / name)) as local, imgstore.new_for_filename(f"{url}/{name}/") as remote:
        assert type(remote) is type(local)
        _same_answers(local, remote, [0, 1, 57, local.frame_count - 1])


def test_one_frame_of_a_long_chunk_fetches_a_small_part_of_it(served):
    root, url, traffic = served
    chunk = root / "video" / "000000.avi"
    store = imgstore.new_for_filename(f"{url}/video")
    traffic.reset()
    img, _ = store.get_image(None, frame_index=700)
    assert decode_grid(img) == 700
    fetched = traffic.sent.get("/video/000000.avi", 0)
    requests = [r for r in traffic.requests if r.startswith("/video/000000.avi")]
    assert fetched < chunk.stat().st_size / 3, (fetched, chunk.stat().st_size)
    assert len(requests) <= 12, requests
    # the next frames come from what was fetched (or a little more), not from new downloads
    traffic.reset()
    for i in range(701, 711):
        assert decode_grid(store.get_image(None, frame_index=i)[0]) == i
    assert traffic.total_bytes < chunk.stat().st_size / 10


@pytest.mark.parametrize("opener", ["new_for_filename", "class"])
def test_opening_a_url_store_fetches_its_metadata_once(served, opener):
    """The factory learns the store's class from metadata.yaml; the store does not fetch it again."""
    _, url, traffic = served
    traffic.reset()
    store_url = f"{url}/frames"
    store = (
        imgstore.new_for_filename(store_url)
        if opener == "new_for_filename"
        else imgstore.DirectoryImgStore(basedir=store_url)
    )
    with store:
        assert store.frame_count == 120 and store.user_metadata == {"arena": "B"}
    assert [r for r in traffic.requests if r.endswith("metadata.yaml")] == ["/frames/metadata.yaml"]


def test_url_store_is_read_only(served, tmp_path):
    _, url, _ = served
    with pytest.raises(ImgStoreError, match="read-only"):
        imgstore.new_for_format("npy", mode="w", basedir=f"{url}/new", imgshape=SHAPE, imgdtype="uint8")
    with pytest.raises(ImgStoreError, match="read-only"):
        imgstore.repair_store(f"{url}/frames")
    with pytest.raises(StoreNotFoundError, match="not an imgstore"):
        imgstore.new_for_filename(f"{url}/no-such-store")


def test_url_store_pickles_as_its_url(served):
    _, url, _ = served
    store = imgstore.new_for_filename(f"{url}/frames")
    clone = pickle.loads(pickle.dumps(store))
    assert clone.filename == store.filename and clone.frame_count == store.frame_count
    assert decode_grid(clone.get_image(None, frame_index=99)[0]) == 99
    with pytest.raises(FrameNotFoundError):
        clone.get_image(1)


def test_store_in_s3(s3_server, tmp_path):  # noqa: F811 - pytest fixture
    import s3fs

    local = _record(tmp_path / "rec", "mjpeg/avi", 130, 60)
    fs = s3fs.S3FileSystem(**s3_server)
    fs.put(str(local), "recordings/2026/rec", recursive=True)
    with (
        imgstore.new_for_filename(str(local)) as mine,
        imgstore.new_for_filename("s3://recordings/2026/rec", storage_options=s3_server) as remote,
    ):
        _same_answers(mine, remote, [0, 59, 60, 129])
    shutil.rmtree(local)


def test_missing_dependency_message(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_fsspec(name, *args, **kwargs):
        if name == "fsspec" or name.startswith("fsspec."):
            raise ImportError("No module named 'fsspec'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_fsspec)
    with pytest.raises(ImportError, match=r"pip install 'imgstore-ng\[remote\]'"):
        imgstore.new_for_filename("https://example.invalid/store/")


def _plain_mp4(path: Path, frames: int) -> Path:
    """An MP4 as upstream imgstore, Motif or ffmpeg write it: sample table in the header, B-frames."""
    import av

    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=25, options={"preset": "veryfast", "bf": "3", "g": "50"})
        stream.width, stream.height, stream.pix_fmt = SHAPE[1], SHAPE[0], "yuv420p"
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(make_grid_frame(i, SHAPE), format="gray")
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def test_plain_mp4_chunk_reads_frame_exact_from_a_few_ranges(served, tmp_path):
    root, url, traffic = served
    clip = _plain_mp4(tmp_path / "clip.mp4", 1000)
    with imgstore.new_for_format(
        "avc1/mp4", mode="w", basedir=str(root / "plain"), imgshape=SHAPE, imgdtype="uint8"
    ) as store:
        store.insert_chunk(str(clip), [100 + i for i in range(1000)], [T0 + i / 25 for i in range(1000)])
    size = (root / "plain" / "000000.mp4").stat().st_size
    store = imgstore.new_for_filename(f"{url}/plain")
    traffic.reset()
    img, (number, _) = store.get_image(None, frame_index=700)
    assert decode_grid(img) == 700 and number == 800
    assert traffic.sent.get("/plain/000000.mp4", 0) < size / 4, (traffic.sent, size)
    for i in (0, 123, 999, 701, 1):  # B-frames, keyframes, both ends: every frame is the right one
        img, (number, _) = store.get_image(None, frame_index=i)
        assert decode_grid(img) == i and number == 100 + i


def test_dask_array_over_a_url_store(served):
    da = pytest.importorskip("dask.array")
    _, url, _ = served
    store = imgstore.new_for_filename(f"{url}/frames")
    array = store.to_dask()
    means = array.mean(axis=(1, 2)).compute(scheduler="threads")
    local = imgstore.new_for_filename(f"{url}/frames")
    expected = [local.get_image(None, frame_index=i)[0].mean() for i in range(local.frame_count)]
    assert means.tolist() == pytest.approx(expected)
    assert isinstance(array, da.Array)


def test_remote_benchmark_runs(tmp_path):
    """The benchmark of URL reads still runs (tiny sizes; its figures are not checked here)."""
    import subprocess
    import sys

    script = Path(__file__).resolve().parents[2] / "benchmarks" / "remote_reads.py"
    proc = subprocess.run(
        [sys.executable, str(script), "--quick", "--dir", str(tmp_path)], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "one frame of a" in proc.stdout and "open a sealed store of 20 chunks" in proc.stdout
    assert "random frames of a 60-frame store" in proc.stdout and "plain MP4" in proc.stdout
    assert "to_dask(frames=picks)" in proc.stdout
    pytest.importorskip("moto.server")
    pytest.importorskip("s3fs")
    assert "== moto S3 (s3://bench)" in proc.stdout and "skipped" not in proc.stdout


# ----------------------------------------------------------------------------------------------
# servers that do not answer range requests (python -m http.server)
# ----------------------------------------------------------------------------------------------
def test_a_server_without_range_requests_sends_small_chunks_whole_and_large_ones_are_refused(
    plain_http_server,  # noqa: F811 - pytest fixture
) -> None:
    root, url = plain_http_server
    _record(root / "video", "avc1/mp4", 60, 25)
    with imgstore.new_for_filename(f"{url}/video") as store:  # chunk files are sent whole, read from memory
        for i in (0, 31, 59, 7):
            assert decode_grid(store.get_image(None, frame_index=i)[0]) == i
    with pytest.raises(RangeRequestsError, match=r"does not answer HTTP range requests.*serve the store"):
        with imgstore.new_for_filename(f"{url}/video", storage_options={"imgstore_whole_file_limit": 100}) as store:
            store.get_image(None, frame_index=5)


def test_range_requests_are_asked_about_once_per_store(served, monkeypatch) -> None:
    _root, url, _traffic = served
    with imgstore.new_for_filename(f"{url}/video") as store:
        remote_fs = store.view.location.fs._fs  # fsspec's: count the one-byte probes sent through it
        probes = []
        real_cat_file = remote_fs.cat_file

        def counting(path, start=None, end=None, **kwargs):
            if (start, end) == (0, 1):
                probes.append(path)
            return real_cat_file(path, start=start, end=end, **kwargs)

        # fsspec shares this instance with later tests, and its cat_file is an attribute of the
        # instance (deleting it would leave the class's, which opens files: HEAD then GET)
        monkeypatch.setattr(remote_fs, "cat_file", counting)
        for i in (3, 1200, 10, 1499):  # both chunks, back and forth
            assert decode_grid(store.get_image(None, frame_index=i)[0]) == i
    # at most once; chunks with a packet table need none: a range answered with the whole file says so
    assert len(probes) <= 1
