"""The store's index cache (``imgstore/index/cache.py``): same answers as reading every chunk index,
never a stale one, and never in the way (read-only stores, writers, damaged files, upstream)."""

from __future__ import annotations

import io
import logging
import os
import shutil
from pathlib import Path
from typing import List, Optional

import numpy as np
import pytest
import yaml

import imgstore
from imgstore.index import ImgStoreIndex, cachefile
from imgstore.index import cache as _indexcache
from imgstore.index.cachefile import cache_path
from imgstore.index.chunkfile import save_chunk_index
from imgstore.index.sealedfile import SEALED_INDEX_FILENAME

from upstream_oracle import run_upstream

CHUNKS = 12
PER_CHUNK = 5
T0 = 1_600_000_000.0


@pytest.fixture(autouse=True)
def settled_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Files written by a test count as settled (the racy window has its own test)."""
    monkeypatch.setattr(_indexcache, "SETTLE_NS", -(10**12))


def make_store(
    path: Path, chunks: int = CHUNKS, per_chunk: int = PER_CHUNK, fmt: str = "npy", sealed: bool = False
) -> Path:
    """A store of ``chunks`` full chunks; frame i has number 100 + i and time T0 + i / 25.

    Unsealed unless asked, as upstream and older versions write stores: a sealed index is read
    instead of the cache (see test_sealed_index.py).
    """
    shape = (4, 6)
    with imgstore.new_for_format(fmt, path=str(path), imgshape=shape, imgdtype=np.uint8, chunksize=per_chunk) as s:
        for i in range(chunks * per_chunk):
            s.add_image(np.full(shape, i % 256, np.uint8), 100 + i, T0 + i / 25)
    if not sealed:
        (path / SEALED_INDEX_FILENAME).unlink()
    return path


def index_base(store: Path, chunk_n: int) -> str:
    return str(store / f"{chunk_n:06d}" / "index")


def cache_file(store: Path) -> Path:
    """Where the store's index cache is kept: in the user's cache folder, not in the store."""
    return Path(cache_path(str(store)))


def reference(store: Path) -> ImgStoreIndex:
    """The index read from every chunk index file, without the cache."""
    s = imgstore.new_for_filename(str(store), index=ImgStoreIndex())  # lists the chunks, reads none
    chunks = s.view.layout.scan()[1]
    s.close()
    return ImgStoreIndex.new_from_chunks(chunks)


def opened(store: Path) -> ImgStoreIndex:
    s = imgstore.new_for_filename(str(store))
    s.close()
    return s._index


def assert_same(index: ImgStoreIndex, expected: ImgStoreIndex) -> None:
    assert index.chunks == expected.chunks
    assert index.frame_count == expected.frame_count
    got, want = index.get_all_metadata(), expected.get_all_metadata()
    assert got["frame_number"] == want["frame_number"]
    assert np.array_equal(got["frame_time"], want["frame_time"], equal_nan=True)  # a frame may have no time
    for key in want:  # the types upstream returns: lists of Python ints and floats
        assert [type(v) for v in got[key]] == [type(v) for v in want[key]]
    assert index.table.frame_number.dtype == expected.table.frame_number.dtype
    for name in ("frame_min", "frame_max", "frame_time_min", "frame_time_max"):
        assert getattr(index, name) == getattr(expected, name)
    for chunk_n in expected.chunks:
        assert index.get_chunk_metadata(chunk_n)["frame_number"] == expected.get_chunk_metadata(chunk_n)["frame_number"]
    numbers = expected.table.frame_number
    for value in (numbers[0], numbers[-1], numbers[len(numbers) // 2], -5, 10**9):
        assert index.find_chunk("frame_number", value) == expected.find_chunk("frame_number", value)
        assert index.find_chunk_nearest("frame_number", value) == expected.find_chunk_nearest("frame_number", value)
    for t in (T0, T0 + 0.013, T0 + 1.5, T0 - 9, T0 + 10**6):
        assert index.find_chunk_nearest("frame_time", t) == expected.find_chunk_nearest("frame_time", t)


class LoadSpy:
    """Records the chunk index files read from disk (not from the cache)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.loaded: List[str] = []
        original_direct, original_load = _indexcache.read_npz_frame_arrays, _indexcache.load_chunk_index

        def direct(path: str, buffer: object = None):  # type: ignore[no-untyped-def]
            self.loaded.append(path[: -len(".npz")])
            return original_direct(path, buffer)

        def load(base: str):  # type: ignore[no-untyped-def]
            if base not in self.loaded:
                self.loaded.append(base)
            return original_load(base)

        monkeypatch.setattr(_indexcache, "read_npz_frame_arrays", direct)
        monkeypatch.setattr(_indexcache, "load_chunk_index", load)


def cached_chunks(store: Path) -> Optional[List[int]]:
    cache = cachefile.read_cache(str(cache_file(store)))
    return None if cache is None else sorted(cache.entries)


def rewrite_chunk(store: Path, chunk_n: int, numbers: np.ndarray, times: Optional[np.ndarray] = None) -> None:
    if times is None:
        times = T0 + np.arange(len(numbers)) / 25 + 1000
    save_chunk_index(index_base(store, chunk_n), numbers, times)


# ------------------------------------------------------------------------------------------------
def test_cache_written_on_first_open_and_used_after(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = make_store(tmp_path / "s")
    expected = reference(store)
    assert not cache_file(store).exists()
    assert_same(opened(store), expected)
    assert cached_chunks(store) == list(range(CHUNKS + 1))  # the empty last chunk is cached too
    spy = LoadSpy(monkeypatch)
    index = opened(store)
    assert spy.loaded == []  # every chunk came from the cache
    assert_same(index, expected)


def test_small_store_gets_no_cache(tmp_path: Path) -> None:
    store = make_store(tmp_path / "s", chunks=2)
    assert_same(opened(store), reference(store))
    assert not cache_file(store).exists()


def test_video_store_cached_too(tmp_path: Path) -> None:
    store = make_store(tmp_path / "v", chunks=9, per_chunk=2, fmt="mjpeg/avi")
    expected = reference(store)
    assert_same(opened(store), expected)
    assert cached_chunks(store) is not None
    assert_same(opened(store), expected)
    s = imgstore.new_for_filename(str(store))
    img, (number, _) = s.get_image(None, frame_index=7)
    assert number == 107 and img.shape == (4, 6)
    s.close()


def test_rewritten_chunk_index_is_reread(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = make_store(tmp_path / "s")
    opened(store)
    rewrite_chunk(store, 3, np.arange(5000, 5000 + PER_CHUNK))
    spy = LoadSpy(monkeypatch)
    index = opened(store)
    assert spy.loaded == [index_base(store, 3)]
    assert index.get_chunk_metadata(3)["frame_number"] == list(range(5000, 5000 + PER_CHUNK))
    assert_same(index, reference(store))
    spy.loaded.clear()
    assert_same(opened(store), reference(store))  # the cache was rewritten with the new chunk
    assert spy.loaded == []


def _npz_bytes(numbers: np.ndarray, times: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, frame_number=numbers, frame_time=times)
    return buffer.getvalue()


def test_in_place_rewrite_same_size_and_mtime_is_detected(tmp_path: Path) -> None:
    """Same inode, same size, mtime set back: the ctime still tells."""
    store = make_store(tmp_path / "s")
    path = index_base(store, 5) + ".npz"
    save_chunk_index(index_base(store, 5), np.arange(PER_CHUNK) + 105, T0 + np.arange(PER_CHUNK))
    opened(store)
    before = os.stat(path)
    new = _npz_bytes(np.arange(PER_CHUNK) + 777, T0 + np.arange(PER_CHUNK))
    assert len(new) == before.st_size
    with open(path, "r+b") as f:
        f.write(new)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = os.stat(path)
    assert (after.st_ino, after.st_size, after.st_mtime_ns) == (before.st_ino, before.st_size, before.st_mtime_ns)
    index = opened(store)
    assert index.get_chunk_metadata(5)["frame_number"] == list(range(777, 777 + PER_CHUNK))
    assert_same(index, reference(store))


def test_touched_index_is_reread(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = make_store(tmp_path / "s")
    opened(store)
    path = index_base(store, 2) + ".npz"
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    spy = LoadSpy(monkeypatch)
    assert_same(opened(store), reference(store))
    assert spy.loaded == [index_base(store, 2)]


def test_added_chunk_appears(tmp_path: Path) -> None:
    store = make_store(tmp_path / "s")
    opened(store)
    os.mkdir(store / f"{CHUNKS + 1:06d}")
    rewrite_chunk(store, CHUNKS + 1, np.array([9000, 9001]))
    index = opened(store)
    assert index.chunks[-1] == CHUNKS + 1
    assert index.frame_count == CHUNKS * PER_CHUNK + 2
    assert_same(index, reference(store))


def test_removed_chunk_disappears(tmp_path: Path) -> None:
    store = make_store(tmp_path / "s")
    opened(store)
    shutil.rmtree(store / f"{4:06d}")
    index = opened(store)
    assert 4 not in index.chunks
    assert index.frame_count == (CHUNKS - 1) * PER_CHUNK
    assert_same(index, reference(store))
    assert 4 not in cached_chunks(store)


def test_removed_index_file_warns_each_time(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = make_store(tmp_path / "s")
    opened(store)
    os.unlink(index_base(store, 6) + ".npz")
    for _ in range(2):  # the first open rewrites the cache, the second uses it
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            index = opened(store)
        assert 6 not in index.chunks
        assert sum("skipping chunk 6" in r.getMessage() for r in caplog.records) == 1
        assert_same(index, reference(store))


def test_corrupt_index_is_remembered_and_its_repair_seen(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    store = make_store(tmp_path / "s")
    path = Path(index_base(store, 7) + ".npz")
    path.write_bytes(path.read_bytes()[:100])  # cut short
    for attempt in range(2):  # the second open takes the failure from the cache
        spy = LoadSpy(monkeypatch)
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            index = opened(store)
        assert 7 not in index.chunks
        said = [r.getMessage() for r in caplog.records if "skipping chunk 7" in r.getMessage()]
        assert len(said) == 1 and "index.npz" in said[0]  # once per open, naming the file
        assert_same(index, reference(store))
        assert (index_base(store, 7) in spy.loaded) == (attempt == 0)
        monkeypatch.undo()
        monkeypatch.setattr(_indexcache, "SETTLE_NS", -(10**12))
    rewrite_chunk(store, 7, np.array([70, 71]))
    assert opened(store).get_chunk_metadata(7)["frame_number"] == [70, 71]


def test_npz_replaced_by_yaml(tmp_path: Path) -> None:
    store = make_store(tmp_path / "s")
    opened(store)
    base = index_base(store, 1)
    os.unlink(base + ".npz")
    with open(base + ".yaml", "w") as f:
        yaml.safe_dump({"frame_number": [1, 2, 3], "frame_time": [T0, T0 + 1, T0 + 2]}, f)
    index = opened(store)
    assert index.get_chunk_metadata(1)["frame_number"] == [1, 2, 3]
    assert_same(index, reference(store))
    assert_same(opened(store), reference(store))  # now from the cache


def test_chunk_with_journal_is_always_reread(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = make_store(tmp_path / "s")
    (Path(index_base(store, 8) + ".journal")).write_bytes(b"")
    opened(store)
    assert 8 not in cached_chunks(store)
    for _ in range(2):
        spy = LoadSpy(monkeypatch)
        assert_same(opened(store), reference(store))
        assert index_base(store, 8) in spy.loaded
        monkeypatch.undo()
        monkeypatch.setattr(_indexcache, "SETTLE_NS", -(10**12))
    rewrite_chunk(store, 8, np.array([31, 32]))
    assert opened(store).get_chunk_metadata(8)["frame_number"] == [31, 32]


def test_video_chunk_with_journal_is_always_reread(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Video stores keep every chunk's files in one folder, which is listed instead of stat-ed."""
    store = make_store(tmp_path / "v", chunks=9, per_chunk=2, fmt="mjpeg/avi")
    (store / "000004.journal").write_bytes(b"")
    opened(store)
    assert 4 not in cached_chunks(store) and 3 in cached_chunks(store)
    spy = LoadSpy(monkeypatch)
    assert_same(opened(store), reference(store))
    assert spy.loaded == [str(store / "000004")]


def test_recent_files_are_not_cached_until_settled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = make_store(tmp_path / "s")
    monkeypatch.setattr(_indexcache, "SETTLE_NS", 3600 * 10**9)  # everything is "just written"
    assert_same(opened(store), reference(store))
    assert not cache_file(store).exists()
    monkeypatch.setattr(_indexcache, "SETTLE_NS", -(10**12))
    opened(store)
    assert cached_chunks(store) == list(range(CHUNKS + 1))
    rewrite_chunk(store, 0, np.array([1, 2, 3]))
    monkeypatch.setattr(_indexcache, "SETTLE_NS", 3600 * 10**9)
    index = opened(store)  # chunk 0 is read from its file, the others from the cache
    assert index.get_chunk_metadata(0)["frame_number"] == [1, 2, 3]
    assert 0 not in (cached_chunks(store) or [])
    assert_same(index, reference(store))


def test_unwritable_store_opens_without_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = make_store(tmp_path / "s")

    def refuse(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(cachefile.CacheWriter, "__enter__", refuse)
    assert_same(opened(store), reference(store))
    assert sorted(p.name for p in store.iterdir() if p.is_file()) == ["metadata.yaml"]  # no cache, no temporary


def test_disk_full_while_writing_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = make_store(tmp_path / "s")
    original = cachefile.CacheWriter.add
    calls = []

    def add(self: object, *args: object, **kwargs: object) -> None:
        calls.append(1)
        if len(calls) >= 5:  # the disk stays full
            raise OSError(28, "No space left on device")
        original(self, *args, **kwargs)

    monkeypatch.setattr(cachefile.CacheWriter, "add", add)
    assert_same(opened(store), reference(store))
    assert sorted(p.name for p in store.iterdir() if p.is_file()) == ["metadata.yaml"]


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes into read-only directories")
def test_read_only_directory(tmp_path: Path) -> None:
    store = make_store(tmp_path / "s")
    expected = reference(store)
    store.chmod(0o555)
    try:
        assert_same(opened(store), expected)
        assert cache_file(store).exists()  # in the user's cache folder: the store is not written to
    finally:
        store.chmod(0o755)


def test_no_cache_while_a_writer_holds_the_store(tmp_path: Path) -> None:
    store = make_store(tmp_path / "s")
    (store / ".lock").write_text("")
    assert_same(opened(store), reference(store))
    assert not cache_file(store).exists()


@pytest.mark.parametrize(
    "damage",
    ["truncate", "garbage", "empty", "version", "header", "lengths"],
)
def test_damaged_cache_is_ignored_and_rewritten(tmp_path: Path, damage: str) -> None:
    store = make_store(tmp_path / "s")
    opened(store)
    path = cache_file(store)
    data = bytearray(path.read_bytes())
    if damage == "truncate":
        data = data[: len(data) - 7]
    elif damage == "garbage":
        data = bytearray(os.urandom(len(data)))
    elif damage == "empty":
        data = bytearray()
    elif damage == "version":
        data[24] += 1
    elif damage == "header":
        data[-3:] = b"}}}"
    elif damage == "lengths":  # a chunk said one frame longer and another one shorter
        data = bytearray(bytes(data).replace(b",5,true]", b",6,true]", 1).replace(b",5,true]", b",4,true]", 1))
    path.write_bytes(bytes(data))
    assert_same(opened(store), reference(store))
    assert cached_chunks(store) == list(range(CHUNKS + 1))


def test_float_frame_numbers_keep_their_types(tmp_path: Path) -> None:
    store = make_store(tmp_path / "s")
    rewrite_chunk(store, 2, np.array([1.5, 2.5, 3.5]))
    for _ in range(2):  # writes the cache, then reads it
        index = opened(store)
        assert index.table.frame_number.dtype == np.float64
        assert_same(index, reference(store))
    rewrite_chunk(store, 2, np.array([7, 8, 9]))  # whole numbers again: int64 as without cache
    for _ in range(2):
        index = opened(store)
        assert index.table.frame_number.dtype == np.int64
        assert_same(index, reference(store))
    assert type(index.get_all_metadata()["frame_number"][0]) is int


def test_unsorted_numbers_and_times(tmp_path: Path) -> None:
    store = make_store(tmp_path / "s")
    rng = np.random.default_rng(0)
    for chunk_n in (3, 7):
        rewrite_chunk(store, chunk_n, rng.integers(0, 200, PER_CHUNK), T0 + rng.uniform(0, 10, PER_CHUNK))
    times = T0 + np.arange(PER_CHUNK) / 25
    times[2] = np.nan
    rewrite_chunk(store, 9, np.arange(PER_CHUNK) + 145, times)
    expected = reference(store)
    for _ in range(2):
        index = opened(store)
        assert_same(index, expected)
        for value in rng.integers(-5, 250, 40).tolist():
            assert index.find_chunk("frame_number", value) == expected.find_chunk("frame_number", value)
            assert index.find_chunk_nearest("frame_number", value) == expected.find_chunk_nearest("frame_number", value)
        for t in (T0 + rng.uniform(-1, 12, 40)).tolist():
            assert index.find_chunk_nearest("frame_time", t) == expected.find_chunk_nearest("frame_time", t)


def test_store_moved_keeps_its_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = make_store(tmp_path / "s")
    expected = reference(store)
    opened(store)
    moved = tmp_path / "elsewhere"
    store.rename(moved)
    spy = LoadSpy(monkeypatch)
    assert_same(opened(moved), expected)
    assert spy.loaded == []


def test_copied_store_rebuilds_its_cache(tmp_path: Path) -> None:
    store = make_store(tmp_path / "s")
    opened(store)
    copy = tmp_path / "copy"
    shutil.copytree(store, copy)  # same mtimes, new inodes: every entry is stale
    rewrite_chunk(copy, 4, np.array([1, 2]))
    assert_same(opened(copy), reference(copy))


def test_reindex_updates_the_index(tmp_path: Path) -> None:
    store = make_store(tmp_path / "s")
    rewrite_chunk(store, 0, np.array([-2, -1, 0, 1, 2]), T0 + np.arange(5) / 25)
    opened(store)
    s = imgstore.new_for_filename(str(store))
    s.reindex()
    s.close()
    assert_same(opened(store), reference(store))


UPSTREAM_READS = """
def main(path):
    import imgstore
    store = imgstore.new_for_filename(path)
    md = store.get_frame_metadata()
    img, (number, time) = store.get_image(None, frame_index=17)
    out = {"frame_count": store.frame_count, "frame_number": md["frame_number"], "frame_time": md["frame_time"],
           "pixel": int(img[0, 0]), "number": number, "chunks": list(store.chunks)}
    store.close()
    return out
"""


@pytest.mark.parametrize("fmt", ["npy", "mjpeg/avi"])
def test_upstream_reads_a_store_with_the_cache(tmp_path: Path, fmt: str) -> None:
    store = make_store(tmp_path / "s", chunks=10, per_chunk=3, fmt=fmt)
    opened(store)
    assert cache_file(store).exists()
    result = run_upstream(UPSTREAM_READS, str(store))
    ours = imgstore.new_for_filename(str(store))
    md = ours.get_frame_metadata()
    assert result["frame_count"] == ours.frame_count == 30
    assert result["frame_number"] == md["frame_number"]
    assert result["frame_time"] == md["frame_time"]
    assert result["number"] == 117
    assert result["chunks"] == list(ours.chunks)
    ours.close()
    assert cache_file(store).exists()


@pytest.mark.parametrize("sealed", [False, True], ids=["unsealed", "sealed"])
def test_reading_a_store_leaves_its_directory_byte_identical(tmp_path: Path, sealed: bool) -> None:
    """Opening (which writes the index cache, or reads the seal), reading every frame and
    refreshing change no file of the store: the cache is in the user's cache folder."""
    import hashlib

    store = make_store(tmp_path / "s", sealed=sealed)

    def tree() -> dict:
        return {
            str(p.relative_to(store)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(store.rglob("*"))
            if p.is_file()
        }

    before = tree()
    with imgstore.new_for_filename(str(store)) as s:
        for _ in s:
            pass
        s.refresh()
    assert cache_file(store).is_file() != sealed  # a sealed store needs no cache
    assert tree() == before
    assert str(cache_file(store)).startswith(os.environ["IMGSTORE_CACHE_DIR"])
