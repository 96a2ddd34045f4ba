"""A sealed store in S3 opens from its seal alone (``store.seal.open_from_seal``), and its chunk
files are checked against the seal as they are read.

S3 lists at most 1,000 names per request, so listing a long store whole costs a request per
1,000 files. A sealed store there opens from ``metadata.yaml``, the seal and one listing of the
names after its last chunk: three requests, however many files it holds. Every answer is checked
against the same store read without its seal on this disk; a seal that does not fit (another
store's, cut, bit-flipped, a store that grew since) is ignored with a warning; a chunk file that
changed since the store was sealed is an error naming it when it is read, never a wrong frame.
"""

from __future__ import annotations

import logging
import pickle
import shutil
from pathlib import Path
from typing import Callable, Dict, List

import numpy as np
import pytest

import imgstore
from imgstore.errors import FrameReadError, ImgStoreError, StoreChangedError
from imgstore.index.chunkfile import load_chunk_index, save_chunk_index
from imgstore.index.sealedfile import SEALED_INDEX_FILENAME
from imgstore.store.sealing import seal_store

from framecodes import decode_grid
from remote_servers import put_tree, s3_server  # noqa: F401 - fixture
from test_sealed_index import IGNORED, MISFITS, answers, record, unsealed_copy

BUCKET = "recordings"


def upload(store: Path, name: str) -> str:
    """``store`` put into the test bucket as it is; its URL."""
    put_tree(store, BUCKET, f"alone/{name}")
    return f"s3://{BUCKET}/alone/{name}"


def opened(url: str, options: dict, caplog: pytest.LogCaptureFixture) -> imgstore.stores._ImgStore:
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="imgstore.store.seal"):
        return imgstore.new_for_filename(url, storage_options=options)


def read_or_fail(store: imgstore.stores._ImgStore, positions: List[int]) -> Dict[int, object]:
    """Per store position: the grid code read there, or the error reading it raised."""
    out: Dict[int, object] = {}
    for i in positions:
        try:
            out[i] = decode_grid(store.get_image(None, frame_index=i)[0])
        except ImgStoreError as exc:
            out[i] = exc
    return out


def test_a_sealed_store_of_over_1000_files_opens_in_three_requests(tmp_path: Path, s3_server, caplog) -> None:  # noqa: F811
    """1,003 chunk folders (two listing pages): metadata.yaml, the seal, one listing after its last chunk."""
    store = record(tmp_path / "s", "npy", frames=1003, chunksize=1)
    with imgstore.new_for_filename(str(unsealed_copy(store, tmp_path / "plain"))) as plain:
        expected = answers(plain)
    url = upload(store, "big")
    traffic = s3_server.traffic
    traffic.reset()
    with opened(url, s3_server, caplog) as remote:
        asked = list(traffic.requests)
        assert len(remote.chunks) == 1003
        got = answers(remote)
        codes = [decode_grid(remote.get_image(None, frame_index=i)[0]) for i in (1, 500, 1001)]
    assert [r.split("?")[0] for r in asked] == [
        "GET /recordings/alone/big/metadata.yaml",
        f"GET /recordings/alone/big/{SEALED_INDEX_FILENAME}",
        "GET /recordings",
    ], asked
    assert "start-after=alone%2Fbig%2F001003~" in asked[2], asked  # (the writer left chunk 1003 empty)
    assert f"from {SEALED_INDEX_FILENAME}" in caplog.text and IGNORED not in caplog.text
    assert got == expected and codes == [1, 500, 1001]


def test_reading_a_chunk_costs_what_it_did_with_a_listing(tmp_path: Path, s3_server, caplog) -> None:  # noqa: F811
    """The seal's sizes are checked with the answers the reads get anyway: no request of their own."""
    store = record(tmp_path / "s", "mjpeg/avi")
    url = upload(store, "cost")
    traffic = s3_server.traffic
    with opened(url, s3_server, caplog) as remote:
        traffic.reset()
        assert decode_grid(remote.get_image(None, frame_index=12)[0]) == 12
        assert [r.split("?")[0] for r in traffic.requests] == [
            "GET /recordings/alone/cost/000001.npz",  # its packet table
            "GET /recordings/alone/cost/000001.avi",  # the frame's bytes
        ]


def _add_video_chunk(store: Path) -> None:
    for suffix in (".avi", ".npz"):
        shutil.copyfile(store / f"000009{suffix}", store / f"000010{suffix}")


def _journal_of_a_new_chunk(store: Path) -> None:
    """A writer at work on chunk 10 (its journal only) when the store was uploaded."""
    (store / "000010.journal").write_bytes(b"")


STALE = {
    **{
        name: (MISFITS[name], "npy") for name in ("another-stores-seal", "bit-flipped", "cut", "store-metadata-changed")
    },
    "chunk-added": (MISFITS["chunk-added"], "npy"),
    "video-chunk-added": (_add_video_chunk, "mjpeg/avi"),
    "journal-of-a-new-chunk": (_journal_of_a_new_chunk, "mjpeg/avi"),
}


@pytest.mark.parametrize("misfit", sorted(STALE))
def test_a_seal_that_does_not_fit_is_ignored_with_a_warning(tmp_path: Path, s3_server, caplog, misfit: str) -> None:  # noqa: F811
    change, fmt = STALE[misfit]
    store = record(tmp_path / "s", fmt)
    change(store)
    with imgstore.new_for_filename(str(unsealed_copy(store, tmp_path / "plain"))) as plain:
        expected = answers(plain)
    with caplog.at_level(logging.WARNING), opened(upload(store, f"stale-{misfit}"), s3_server, caplog) as remote:
        got = answers(remote)
    assert IGNORED in caplog.text
    assert got == expected


def _extra_data_of_an_empty_chunk(store: Path) -> None:
    (store / "000010.extra.json").write_text('{"frame_index": 0}\n')


def _notes_and_folders(store: Path) -> None:
    for i in range(150):  # more names than one listing after the last chunk asks for
        (store / f"notes-{i:03d}.txt").write_text("x")
    (store / "analysis").mkdir()
    (store / "analysis" / "tracks.csv").write_text("x")
    (store / "README").write_text("x")


FOLLOWERS: Dict[str, Callable[[Path], None]] = {
    "extra-data-of-an-empty-chunk": _extra_data_of_an_empty_chunk,
    "notes-and-folders": _notes_and_folders,
}


@pytest.mark.parametrize("fmt", ["npy", "mjpeg/avi"])
@pytest.mark.parametrize("follower", sorted(FOLLOWERS))
def test_what_may_follow_the_last_chunk_keeps_the_seal(tmp_path: Path, s3_server, caplog, follower, fmt) -> None:  # noqa: F811
    if follower == "extra-data-of-an-empty-chunk" and fmt == "npy":
        pytest.skip("a folder chunk keeps its extra data inside its folder")
    store = record(tmp_path / "s", fmt)
    FOLLOWERS[follower](store)
    with imgstore.new_for_filename(str(unsealed_copy(store, tmp_path / "plain"))) as plain:
        expected = answers(plain)
    traffic = s3_server.traffic
    url = upload(store, f"follow-{follower}-{fmt.replace('/', '-')}")
    traffic.reset()
    with opened(url, s3_server, caplog) as remote:
        assert len(traffic.requests) == 3, traffic.requests
        got = answers(remote)
    assert f"from {SEALED_INDEX_FILENAME}" in caplog.text and IGNORED not in caplog.text
    assert got == expected


# -- chunk files changed since the store was sealed: checked as they are read -------------------
def _other_chunks_file(store: Path) -> None:
    """Chunk 3's video replaced by chunk 4's (as many frames, another size)."""
    assert (store / "000004.avi").stat().st_size != (store / "000003.avi").stat().st_size
    shutil.copyfile(store / "000004.avi", store / "000003.avi")


def _other_chunks_file_same_size(store: Path) -> None:
    """Chunk 3's video replaced by chunk 4's, cut or padded to chunk 3's size."""
    size = (store / "000003.avi").stat().st_size
    (store / "000003.avi").write_bytes(((store / "000004.avi").read_bytes() + bytes(size))[:size])


def _video_missing(store: Path) -> None:
    (store / "000003.avi").unlink()


def _index_missing(store: Path) -> None:
    (store / "000003.npz").unlink()


def _index_rewritten(store: Path) -> None:
    """Chunk 3's index rewritten to other numbers by a tool that does not reseal (its size changes)."""
    numbers = np.arange(1000, 1009)
    save_chunk_index(str(store / "000003"), numbers, 1_700_000_000.0 + numbers / 25.0)


CHANGED = {
    "other-size": (_other_chunks_file, StoreChangedError, "000003.avi has"),
    "same-size": (_other_chunks_file_same_size, FrameReadError, "does not match its packet table"),
    "video-missing": (_video_missing, StoreChangedError, "000003.avi is missing"),
    "index-missing": (_index_missing, StoreChangedError, "000003.npz is missing"),
    "index-rewritten": (_index_rewritten, StoreChangedError, "000003.npz has"),
}


def _without_packet_tables(store: Path) -> None:
    """The chunk indexes as upstream writes them (no packet table: readers demux the chunk), resealed."""
    for index in sorted(store.glob("0*.npz")):
        base = str(index.with_suffix(""))
        save_chunk_index(base, *load_chunk_index(base))
    seal_store(str(store))


@pytest.mark.parametrize("tables", ["packet-tables", "demuxed"])
@pytest.mark.parametrize("change", sorted(CHANGED))
def test_a_chunk_changed_since_sealing_is_an_error_when_read_never_a_wrong_frame(
    tmp_path: Path,
    s3_server,  # noqa: F811 - fixture
    caplog,
    change: str,
    tables: str,
) -> None:
    alter, error, message = CHANGED[change]
    store = record(tmp_path / "s", "mjpeg/avi", frames=60)
    if tables == "demuxed":
        _without_packet_tables(store)
        if change == "same-size":  # nothing tells the file apart: its own frames, as on this disk
            error, message = None, ""
    alter(store)
    with opened(upload(store, f"changed-{change}-{tables}"), s3_server, caplog) as remote:
        read = read_or_fail(remote, list(range(60)))
    for position, got in read.items():  # (``record``'s frame ``i`` spells ``i``)
        if 30 <= position < 40 and error is not None:
            assert isinstance(got, error) and message in str(got), (position, got)
            assert "sealed" in str(got) or error is FrameReadError
        elif not 30 <= position < 40:
            assert got == position, (position, got)
        else:  # a same-size file without a packet table reads as the file it is
            assert isinstance(got, (int, FrameReadError)), (position, got)
    assert IGNORED not in caplog.text  # opened from the seal: the chunk was checked when read


def test_a_missing_chunk_folder_is_an_error_naming_it(tmp_path: Path, s3_server, caplog) -> None:  # noqa: F811
    store = record(tmp_path / "s", "npy")
    shutil.rmtree(store / "000003")
    with opened(upload(store, "folder-missing"), s3_server, caplog) as remote:
        with pytest.raises(FrameReadError, match=r"000003/000000\.npy is missing"):
            remote.get_image(None, frame_index=30)
        assert decode_grid(remote.get_image(None, frame_index=40)[0]) == 40


def test_dask_tasks_check_the_seal_in_other_processes_too(tmp_path: Path, s3_server, caplog) -> None:  # noqa: F811
    """A task carries its chunk's sealed sizes: unpickled elsewhere, its reader still checks them."""
    da = pytest.importorskip("dask.array")
    store = record(tmp_path / "s", "mjpeg/avi", frames=60)
    _other_chunks_file(store)
    with opened(upload(store, "dask"), s3_server, caplog) as remote:
        frames = pickle.loads(pickle.dumps(remote.to_dask(frames_per_task=10)))
        assert isinstance(frames, da.Array)
        assert [decode_grid(img) for img in frames[40:42].compute(scheduler="sync")] == [40, 41]
        with pytest.raises(StoreChangedError, match=r"000003\.avi has"):
            frames[31].compute(scheduler="sync")


def test_extra_data_of_a_store_opened_from_its_seal(tmp_path: Path, s3_server, caplog) -> None:  # noqa: F811
    """Extra data is found when asked for (its files are not in the seal: the store is listed then)."""
    store = tmp_path / "s"
    with imgstore.new_for_format("mjpeg/avi", mode="w", basedir=str(store), imgshape=(24, 32), chunksize=10) as w:
        for i in range(25):
            w.add_image(np.zeros((24, 32), np.uint8), i, 1_700_000_000.0 + i / 25)
            w.add_extra_data(temperature=20.0 + i)
    with imgstore.new_for_filename(str(store)) as local:
        expected = local.get_extra_data()
    with opened(upload(store, "extra"), s3_server, caplog) as remote:
        assert f"from {SEALED_INDEX_FILENAME}" in caplog.text
        got = remote.get_extra_data()
    assert got is not None and got.equals(expected)
