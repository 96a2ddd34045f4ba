"""ImgStoreIndex: lookups against a brute-force reference, and the .index.sqlite round trip."""

from __future__ import annotations

import math
import sqlite3

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from imgstore.errors import IndexFileError
from imgstore.index import FRAME_MD, ImgStoreIndex


def _index(chunks: list[list[int]], times: list[list[float]] | None = None) -> ImgStoreIndex:
    if times is None:
        times = [[float(n) * 0.5 for n in c] for c in chunks]
    ids = [i for i, c in enumerate(chunks) if c]
    return ImgStoreIndex.from_arrays(
        ids,
        [np.asarray(chunks[i], dtype=np.int64) for i in ids],
        [np.asarray(times[i], dtype=np.float64) for i in ids],
    )


def _flat(chunks: list[list]) -> list[tuple[int, int, object]]:
    """(chunk, frame_idx, value) of every frame in store order."""
    return [(c, i, v) for c, values in enumerate(chunks) for i, v in enumerate(values)]


def _reference_exact(chunks, value):
    for c, i, v in _flat(chunks):
        if v == value:
            return c, i
    return -1, -1


def _reference_nearest(chunks, value):
    flat = _flat(chunks)
    if not flat:
        return -1, -1
    c, i, _ = min(flat, key=lambda r: abs(r[2] - value))  # min keeps the first of equals: store order
    return c, i


chunk_lists = st.lists(st.lists(st.integers(-50, 50), max_size=6), max_size=6)


@settings(max_examples=300, deadline=None)
@given(chunks=chunk_lists, query=st.integers(-60, 60))
def test_lookups_by_number_match_brute_force(chunks, query):
    index = _index(chunks)
    assert index.find_chunk("frame_number", query) == _reference_exact(chunks, query)
    assert index.find_chunk_nearest("frame_number", query) == _reference_nearest(chunks, query)


@settings(max_examples=300, deadline=None)
@given(chunks=chunk_lists, query=st.floats(-40, 40, allow_nan=False))
def test_lookups_by_time_match_brute_force(chunks, query):
    index = _index(chunks)
    times = [[n * 0.5 for n in c] for c in chunks]
    assert index.find_chunk_nearest("frame_time", query) == _reference_nearest(times, query)


@settings(max_examples=200, deadline=None)
@given(chunks=chunk_lists)
def test_positions_and_metadata(chunks):
    index = _index(chunks)
    flat = _flat(chunks)
    assert index.frame_count == len(flat)
    for position, (c, i, _) in enumerate(flat):
        assert index.find_chunk("index", position) == (c, i)
    assert index.find_chunk("index", len(flat)) == (-1, -1)
    assert index.get_all_metadata()["frame_number"] == [v for _, _, v in flat]
    assert index.chunks == tuple(i for i, c in enumerate(chunks) if c)
    for c, values in enumerate(chunks):
        assert index.get_chunk_metadata(c)["frame_number"] == values


def test_integer_like_queries():
    index = _index([[10, 11, 12], [13, 14]])
    for query in (13, np.int32(13), np.int64(13), np.uint16(13), pd.Series([13]).iloc[0], 13.0):
        assert index.find_chunk("frame_number", query) == (1, 0)
    assert index.find_chunk("index", np.int64(4)) == (1, 1)
    assert index.find_chunk_nearest("frame_number", np.float32(12.4)) == (0, 2)


def test_summary_values_are_plain_floats():
    index = _index([[5, 3, 9]], [[1.5, 0.5, 2.5]])
    assert (index.frame_min, index.frame_max, index.frame_time_min, index.frame_time_max) == (3.0, 9.0, 0.5, 2.5)
    assert all(type(v) is float for v in (index.frame_min, index.frame_max, index.frame_time_min))
    empty = _index([])
    assert np.isnan(empty.frame_min) and empty.frame_count == 0
    assert empty.find_chunk_nearest("frame_number", 3) == (-1, -1)


def test_sqlite_round_trip_keeps_everything(tmp_path):
    chunks = [[6050, 6055], [6056, 0], [], [1, 2, 2], [3]]
    index = _index(chunks)
    path = tmp_path / ".index.sqlite"
    index.to_file(str(path))
    loaded = ImgStoreIndex.new_from_file(str(path))
    assert loaded.get_all_metadata() == index.get_all_metadata()
    assert loaded.chunks == index.chunks
    assert (loaded.frame_min, loaded.frame_max) == (index.frame_min, index.frame_max)
    assert loaded.find_chunk_nearest("frame_number", 4) == index.find_chunk_nearest("frame_number", 4)
    index.to_file(str(path))  # overwriting an existing file works (written aside, then renamed)
    assert list(tmp_path.iterdir()) == [path]


def test_sqlite_schema_is_upstreams(tmp_path):
    path = tmp_path / "i.sqlite"
    _index([[1, 2], [3]]).to_file(str(path))
    db = sqlite3.connect(path)
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert tables == {"frames", "chunks", "index_information", "summary"}
    assert db.execute("SELECT value FROM index_information WHERE name='version'").fetchone() == ("1",)
    assert db.execute("SELECT chunk, frame_idx, frame_number FROM frames ORDER BY rowid").fetchall() == [
        (0, 0, 1),
        (0, 1, 2),
        (1, 0, 3),
    ]
    summary = dict(db.execute("SELECT name, value FROM summary"))
    assert summary == {"frame_time_min": 0.5, "frame_time_max": 1.5, "frame_min": 1.0, "frame_max": 3.0}


@pytest.mark.parametrize("content", [b"", b"not a database at all" * 10])
def test_garbage_sqlite_is_refused(tmp_path, content):
    path = tmp_path / "bad.sqlite"
    path.write_bytes(content)
    with pytest.raises(IndexFileError, match=r"bad\.sqlite"):
        ImgStoreIndex.new_from_file(str(path))


def test_wrong_version_is_refused(tmp_path):
    path = tmp_path / "v.sqlite"
    _index([[1]]).to_file(str(path))
    db = sqlite3.connect(path)
    db.execute("UPDATE index_information SET value='7'")
    db.commit()
    db.close()
    with pytest.raises(IndexFileError, match="version"):
        ImgStoreIndex.new_from_file(str(path))


def test_large_index_answers_without_scanning():
    """One million frames: every kind of lookup agrees with numpy's own answer."""
    n = 1_000_000
    numbers = np.arange(n, dtype=np.int64) * 2 + 7
    times = 1.6e9 + np.arange(n) / 25.0
    index = ImgStoreIndex.from_arrays(list(range(100)), np.split(numbers, 100), np.split(times, 100))
    assert index.find_chunk("frame_number", 7 + 2 * 123_456) == (12, 3456)
    assert index.find_chunk_nearest("frame_number", 8 + 2 * 999_998) == (99, 9998)
    assert index.find_chunk_nearest("frame_time", 1.6e9 + 1000.01) == (2, 5000)
    assert index.find_chunk("index", 765_432) == (76, 5432)


@settings(max_examples=300, deadline=None)
@given(chunks=chunk_lists, query=st.one_of(st.floats(-60, 60, allow_nan=False), st.sampled_from([-1e12, 1e12])))
def test_float_queries_on_integer_numbers_match_brute_force(chunks, query):
    index = _index(chunks)
    assert index.find_chunk("frame_number", query) == _reference_exact(chunks, query)
    assert index.find_chunk_nearest("frame_number", query) == _reference_nearest(chunks, query)


def test_infinite_queries():
    index = _index([[3, 1, 2]])
    assert index.find_chunk_nearest("frame_number", float("inf")) == (0, 0)
    assert index.find_chunk_nearest("frame_number", float("-inf")) == (0, 1)
    assert index.find_chunk("frame_number", float("inf")) == (-1, -1)


def test_create_database_makes_upstreams_empty_index(tmp_path):
    """``ImgStoreIndex.create_database`` lays out upstream's tables; the empty index reads back empty."""
    path = tmp_path / "empty.sqlite"
    conn = sqlite3.connect(path)
    ImgStoreIndex.create_database(conn)
    conn.close()
    conn = sqlite3.connect(path)
    tables = sorted(r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'"))
    assert tables == ["chunks", "frames", "index_information", "summary"]
    index = ImgStoreIndex(conn)
    assert (index.frame_count, index.chunks, index.frame_time_min, index.frame_time_max) == (0, (), 0.0, 0.0)
    assert math.isnan(index.frame_min) and FRAME_MD == ("frame_number", "frame_time")
