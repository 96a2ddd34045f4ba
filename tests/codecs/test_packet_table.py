"""Packet tables of our video chunks: written when a chunk is finished, checked against a real
demux, and read through at a URL frame-exact for about one GOP of bytes per random frame.

A hostile or stale table must give an error or be ignored, never a wrong frame.
"""

from __future__ import annotations

import logging
import random
import shutil
from pathlib import Path

import av
import numpy as np
import pytest

import imgstore
from imgstore.codecs import video_av_read
from imgstore.codecs.video_av_packets import (
    PACKETS_KEY,
    PacketTable,
    decode_packet_table,
    encode_packet_table,
)
from imgstore.errors import FrameReadError
from imgstore.index.chunkfile import save_chunk_index

from framecodes import decode_grid, make_grid_frame
from remote_servers import http_server  # noqa: F401 - fixture
from upstream_oracle import run_upstream

pytest.importorskip("fsspec")
pytest.importorskip("aiohttp")

SHAPE = (96, 128)
T0 = 1_700_000_000.0
#: the formats whose packets lie whole at their positions (Matroska's do not: its chunks have no table)
FORMATS = ["avc1/mp4"]
#: encoder settings: our defaults (sliced, no B-frames), and B-frames with short GOPs
SETTINGS = {"defaults": {}, "bframes": {"bframes": 2, "gop": 10}}


def record(path: Path, fmt: str, settings: dict, frames: int = 130, chunksize: int = 60) -> Path:
    with imgstore.new_for_format(
        fmt, mode="w", basedir=str(path), imgshape=SHAPE, imgdtype="uint8", chunksize=chunksize, **settings
    ) as store:
        for i in range(frames):
            store.add_image(make_grid_frame(i, SHAPE), 1000 + i, T0 + i / 25)
    return path


def table_of(store: Path, chunk: int = 0) -> PacketTable:
    with np.load(store / f"{chunk:06d}.npz") as index:
        return decode_packet_table(index[PACKETS_KEY], "test")


@pytest.mark.parametrize("settings", sorted(SETTINGS))
@pytest.mark.parametrize("fmt", FORMATS)
def test_the_table_is_what_a_demux_of_the_file_finds(tmp_path: Path, fmt: str, settings: str) -> None:
    store = record(tmp_path / "s", fmt, SETTINGS[settings])
    with imgstore.new_for_filename(str(store)) as s:
        paths = [Path(s.view.chunk_path(chunk)) for chunk in (0, 1, 2)]
    for chunk, path in enumerate(paths):
        table = table_of(store, chunk)
        data = path.read_bytes()
        assert table.file_size == len(data)
        with av.open(str(path)) as container:
            packets = [p for p in container.demux(container.streams.video[0]) if p.size]
            assert [p.pts for p in packets] == table.pts.tolist()
            assert [p.is_keyframe for p in packets] == table.key.astype(bool).tolist()
            for packet, pos, size in zip(packets, table.pos.tolist(), table.size.tolist()):
                assert data[pos : pos + size] == bytes(packet)


def test_local_reading_needs_no_demux_pass(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = record(tmp_path / "s", FORMATS[0], SETTINGS["bframes"])

    def no_demux(*args, **kwargs):
        raise AssertionError("the chunk was demuxed to learn its frames")

    monkeypatch.setattr(video_av_read, "packet_index", no_demux)
    with imgstore.new_for_filename(str(store)) as s:
        order = list(range(s.frame_count))
        random.Random(1).shuffle(order)
        assert [decode_grid(s.get_image(None, frame_index=i)[0]) for i in order] == order


def test_dask_tasks_read_through_the_table_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("dask.array")
    store = record(tmp_path / "s", FORMATS[0], SETTINGS["bframes"])

    def no_demux(*args, **kwargs):
        raise AssertionError("the chunk was demuxed to learn its frames")

    monkeypatch.setattr(video_av_read, "packet_index", no_demux)
    frames = imgstore.dask.to_dask(str(store), frames_per_task=25).compute(scheduler="synchronous")
    assert [decode_grid(img) for img in frames] == list(range(130))


def _gop_bytes(table: PacketTable, frame: int) -> int:
    """Bytes of the GOP (in decode order) that holds the packet of frame ``frame`` (presentation order)."""
    target = sorted(table.pts.tolist())[frame]
    at = table.pts.tolist().index(target)
    keys = np.flatnonzero(table.key)
    start = keys[keys <= at].max()
    stop = keys[keys > at].min() if (keys > at).any() else len(table.pts)
    return int(table.pos[stop - 1] + table.size[stop - 1] - table.pos[start])


@pytest.mark.parametrize("settings", sorted(SETTINGS))
@pytest.mark.parametrize("fmt", FORMATS)
def test_a_url_reader_fetches_about_one_gop_per_random_frame(
    http_server,  # noqa: F811 - fixture
    fmt: str,
    settings: str,
) -> None:
    root, url, traffic = http_server
    name = f"gop-{fmt.replace('/', '-')}-{settings}"
    store = record(root / name, fmt, SETTINGS[settings], frames=180, chunksize=180)
    table = table_of(store)
    extension = Path(imgstore.new_for_filename(str(store)).view.chunk_path(0)).suffix
    order = list(range(180))
    random.Random(7).shuffle(order)
    with imgstore.new_for_filename(f"{url}/{name}") as remote:
        remote.get_image(None, frame_index=0)  # the chunk's index (its table) is fetched once
        for i in order[:25]:
            remote.get_image(None, frame_index=(i + 90) % 180)  # somewhere else first: a real seek
            traffic.reset()
            img, (number, _) = remote.get_image(None, frame_index=i)
            assert decode_grid(img) == i and number == 1000 + i
            video = [r for r in traffic.requests if r.endswith(extension)]
            assert traffic.requests == video and len(video) == 1, traffic.requests  # its GOP, at once
            assert traffic.total_bytes <= 1.5 * _gop_bytes(table, i), (i, traffic.total_bytes)


def test_scattered_frames_through_dask_fetch_only_their_gops(http_server) -> None:  # noqa: F811
    """``to_dask(url, frames=...)``: each requested frame costs one range request of about its GOP."""
    pytest.importorskip("dask.array")
    root, url, traffic = http_server
    name = "dask-picks"
    store = record(root / name, FORMATS[0], SETTINGS["bframes"], frames=240, chunksize=120)
    picks = [7, 95, 130, 61, 200, 238, 12]  # none in the same GOP (10) as the one before it
    tables = [table_of(store, 0), table_of(store, 1)]
    needs = sum(_gop_bytes(tables[i // 120], i % 120) for i in picks)
    array = imgstore.dask.to_dask(f"{url}/{name}", frames=picks, frames_per_task=1)
    traffic.reset()
    frames = array.compute(scheduler="threads", num_workers=2)
    assert [decode_grid(img) for img in frames] == picks
    video = [r for r in traffic.requests if r.endswith(".mp4")]
    assert len(video) == len(picks), traffic.requests  # one range request per frame: its GOP
    index = [r for r in traffic.requests if r.endswith(".npz")]
    assert sorted(traffic.requests) == sorted(video + index) and len(index) <= len(picks)  # a task: its chunk's index
    video_bytes = sum(n for path, n in traffic.sent.items() if path.endswith(".mp4"))
    assert video_bytes <= 1.5 * needs, (video_bytes, needs)
    whole = imgstore.dask.to_dask(f"{url}/{name}", frames_per_task=30)
    traffic.reset()
    whole[picks].compute(scheduler="threads", num_workers=2)  # plain indexing: every task the frames lie in
    assert sum(n for path, n in traffic.sent.items() if path.endswith(".mp4")) > 2 * video_bytes


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_url_reader_reads_every_frame_in_order_and_back(http_server, fmt: str) -> None:  # noqa: F811
    root, url, _ = http_server
    name = f"seq-{fmt.replace('/', '-')}"
    record(root / name, fmt, SETTINGS["bframes"])
    with imgstore.new_for_filename(f"{url}/{name}") as remote:
        assert [decode_grid(remote.get_next_image()[0]) for _ in range(130)] == list(range(130))
        assert [decode_grid(remote.get_image(None, frame_index=i)[0]) for i in range(129, -1, -7)] == list(
            range(129, -1, -7)
        )


def _with_table(store: Path, table_bytes: np.ndarray, chunk: int = 0) -> None:
    """Replace chunk ``chunk``'s packet table in its index file, nothing else."""
    path = store / f"{chunk:06d}.npz"
    with np.load(path) as index:
        arrays = {k: index[k] for k in index.files}
    arrays[PACKETS_KEY] = table_bytes
    save_chunk_index(str(path)[:-4], arrays.pop("frame_number"), arrays.pop("frame_time"), extra=arrays)


def _edited(table: PacketTable, **changes) -> np.ndarray:
    return encode_packet_table(table._replace(**changes))


HOSTILE = {
    "offset-past-the-end": lambda t: _edited(t, pos=t.pos + t.file_size),
    "negative-size": lambda t: _edited(t, size=-t.size),
    "shared-timestamps": lambda t: _edited(t, pts=np.zeros_like(t.pts)),
    "first-not-a-keyframe": lambda t: _edited(t, key=np.zeros_like(t.key)),
    "cut-short": lambda t: encode_packet_table(t)[:-9],
    "garbage": lambda t: np.frombuffer(b"not a table at all", np.uint8),
}


@pytest.mark.parametrize("where", ["local", "url"])
@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_hostile_table_is_an_error_naming_the_chunk(tmp_path: Path, http_server, case: str, where: str) -> None:  # noqa: F811
    root, url, _ = http_server
    store = record(root / f"hostile-{case}-{where}", FORMATS[0], {})
    _with_table(store, HOSTILE[case](table_of(store)))
    path = str(store) if where == "local" else f"{url}/hostile-{case}-{where}"
    with imgstore.new_for_filename(path) as s:
        with pytest.raises(FrameReadError, match="000000"):
            s.get_image(None, frame_index=3)
        assert decode_grid(s.get_image(None, frame_index=70)[0]) == 70  # other chunks are read as before


def test_packets_that_do_not_match_their_table_are_an_error(http_server) -> None:  # noqa: F811
    """Bytes changed in the file (same size): the CRC check stops them before the decoder."""
    root, url, _ = http_server
    store = record(root / "flipped", FORMATS[0], {})
    table = table_of(store)
    video = store / "000000.mp4"
    data = bytearray(video.read_bytes())
    data[int(table.pos[5]) + int(table.size[5]) // 2] ^= 0x55
    video.write_bytes(bytes(data))
    with imgstore.new_for_filename(f"{url}/flipped") as remote:
        assert decode_grid(remote.get_image(None, frame_index=0)[0]) == 0  # packets 0..4 are intact
        with pytest.raises(FrameReadError, match="does not match its packet table"):
            remote.get_image(None, frame_index=5)


def test_a_table_of_another_version_of_the_file_is_never_trusted(tmp_path: Path, http_server, caplog) -> None:  # noqa: F811
    """A chunk replaced by a re-encode keeps a stale table. On this disk (sizes differ) it is ignored
    with a warning; at a URL whose listing gives no sizes, its packets fail their CRC: an error."""
    root, url, _ = http_server
    store = record(root / "replaced", FORMATS[0], {})
    other = record(tmp_path / "other", FORMATS[0], {"gop": 7, "crf": 30})
    shutil.copyfile(other / "000000.mp4", store / "000000.mp4")
    with caplog.at_level(logging.WARNING), imgstore.new_for_filename(str(store)) as s:
        assert [decode_grid(s.get_image(None, frame_index=i)[0]) for i in (33, 3, 59)] == [33, 3, 59]
    assert "packet table of a" in caplog.text
    with imgstore.new_for_filename(f"{url}/replaced") as remote:
        with pytest.raises(FrameReadError, match="stale or damaged"):
            remote.get_image(None, frame_index=33)


def test_chunks_without_a_table_are_read_as_before(http_server) -> None:  # noqa: F811
    """Matroska frames are not stored whole at their packets' positions: no table, a demux instead."""
    if "h264/mkv" not in imgstore.VideoImgStore.supported_formats():
        pytest.skip("no h264/mkv here")
    root, url, _ = http_server
    store = record(root / "mkv", "h264/mkv", SETTINGS["bframes"])
    assert PACKETS_KEY not in np.load(store / "000000.npz").files
    with imgstore.new_for_filename(f"{url}/mkv") as remote:
        assert [decode_grid(remote.get_image(None, frame_index=i)[0]) for i in (77, 5, 129)] == [77, 5, 129]


UPSTREAM_READS = """
def main(path):
    import imgstore
    store = imgstore.new_for_filename(path)
    md = store.get_frame_metadata()
    img, (number, time) = store.get_image(None, frame_index=store.frame_count - 1)
    out = {"frame_count": store.frame_count, "frame_number": md["frame_number"], "number": number,
           "shape": list(img.shape)}
    store.close()
    return out
"""


def test_upstream_reads_chunks_with_packet_tables(tmp_path: Path) -> None:
    store = record(tmp_path / "s", "avc1/mp4", {})
    assert PACKETS_KEY in np.load(store / "000000.npz").files
    result = run_upstream(UPSTREAM_READS, str(store))
    assert result["frame_count"] == 130 and result["number"] == 1129
    assert result["frame_number"] == list(range(1000, 1130))


def test_the_table_survives_its_encoding(tmp_path: Path) -> None:
    store = record(tmp_path / "s", FORMATS[0], SETTINGS["bframes"])
    table = table_of(store)
    again = decode_packet_table(encode_packet_table(table), "x")
    assert again._replace(pos=0, size=0, pts=0, key=0, crc=0) == table._replace(pos=0, size=0, pts=0, key=0, crc=0)
    for name in ("pos", "size", "pts", "key", "crc"):
        assert np.array_equal(getattr(again, name), getattr(table, name))


@pytest.mark.parametrize("fmt", FORMATS)
def test_chunks_repair_finishes_get_a_table(http_server, fmt: str) -> None:  # noqa: F811
    """A writer killed mid-chunk: ``repair_store`` writes the chunk's index with the table its
    writer would have written, and the chunk then reads frame-exact through it, here and at a URL."""
    from crashkill import flush_and_kill, frame_number

    root, url, traffic = http_server
    name = f"killed-{fmt.replace('/', '-')}"
    flush_and_kill(str(root / name), fmt, 70, chunksize=1000)
    report = imgstore.repair_store(str(root / name))
    assert report.chunks_indexed == [0] and report.frames_recovered > 0
    count = report.frames_recovered
    table = table_of(root / name)
    assert len(table.pts) >= count
    with imgstore.new_for_filename(str(root / name)) as local:
        assert [decode_grid(local.get_image(None, frame_index=i)[0]) for i in range(count)] == list(range(count))
    with imgstore.new_for_filename(f"{url}/{name}") as remote:
        remote.get_image(None, frame_index=0)
        traffic.reset()
        img, (number, _) = remote.get_image(None, frame_index=count - 1)
        assert decode_grid(img) == count - 1 and number == frame_number(count - 1)
        assert len(traffic.requests) == 1, traffic.requests  # one range request: the table's GOP


def test_only_closed_gops_let_the_decoder_empty_between_them() -> None:
    """The reader empties the decoder before a keyframe only when nothing after it is shown before it."""
    from imgstore.codecs.video_av_packets import _closed_gop_starts

    # decode order of pts: closed GOPs (I P B B | I P B B), then an open GOP whose leading
    # B-frames (shown at 10 and 11) come after its keyframe (12) and need the GOP before
    pts = np.array([0, 3, 1, 2, 4, 7, 5, 6, 12, 10, 11, 15, 13, 14])
    keys = [0, 4, 8]
    assert _closed_gop_starts(pts, keys) == {4}
    assert _closed_gop_starts(np.array([0, 1, 2]), [0, 1, 2]) == {1, 2}
    assert _closed_gop_starts(np.array([5]), [0]) == frozenset()
