"""Hostile input to the parsers test_bad_input.py does not fuzz: journals, extra data, ``.index.sqlite``.

Whatever the bytes, only our documented exception types come out (or a valid result), nothing
hangs, nothing is executed. ``metadata.yaml`` and ``index.npz`` are fuzzed in test_bad_input.py;
YAML alias bombs are checked here, since a safe loader alone does not stop them from blowing up
code that walks the result.
"""

from __future__ import annotations

import os
import sqlite3
import struct
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import imgstore
from imgstore.durability.journal import MAGIC, read_journal
from imgstore.errors import ChunkIndexError, ExtraDataError, ImgStoreError, IndexFileError, MetadataError
from imgstore.index import ImgStoreIndex
from imgstore.io.extra import read_records

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _record(number: int, time_: float) -> bytes:
    payload = struct.pack("<qd", number, time_)
    return payload + struct.pack("<I", zlib.crc32(payload))


@FUZZ
@given(body=st.binary(max_size=400), signed=st.booleans())
def test_fuzz_journal_bytes(tmp_path: Path, body: bytes, signed: bool) -> None:
    path = tmp_path / "f.journal"
    path.write_bytes((MAGIC if signed else b"") + body)
    try:
        contents = read_journal(str(path))
    except ChunkIndexError as exc:
        assert str(path) in str(exc)
        return
    assert len(contents.frame_number) == len(contents.frame_time) <= len(body) // 20
    assert contents.frame_number.dtype == np.int64 and contents.frame_time.dtype == np.float64


@FUZZ
@given(
    records=st.lists(st.tuples(st.integers(-(2**63), 2**63 - 1), st.floats(allow_nan=True)), max_size=20),
    cut=st.integers(0, 500),
    flip=st.integers(0, 4000),
)
def test_fuzz_journal_records(tmp_path: Path, records, cut: int, flip: int) -> None:
    """A journal cut anywhere, or with any one bit flipped, yields exactly the records before the damage."""
    data = bytearray(MAGIC + b"".join(_record(n, t) for n, t in records))
    if flip < len(data) * 8 and flip >= len(MAGIC) * 8:
        data[flip // 8] ^= 1 << (flip % 8)
        damaged_record = (flip // 8 - len(MAGIC)) // 20
    else:
        damaged_record = len(records)
    data = data[: len(data) - min(cut, len(data) - len(MAGIC))] if cut % 3 == 0 else data
    path = tmp_path / "f.journal"
    path.write_bytes(bytes(data))
    contents = read_journal(str(path))
    whole = min(damaged_record, (len(data) - len(MAGIC)) // 20)
    assert contents.frame_number.tolist() == [n for n, _ in records[:whole]]
    np.testing.assert_array_equal(contents.frame_time, [t for _, t in records[:whole]])


JSONISH = st.text(alphabet='[]{},:"0123456789.-eEtruefalsnNI \n\\abc', max_size=200)


@FUZZ
@given(text=JSONISH)
def test_fuzz_extra_data_text(tmp_path: Path, text: str) -> None:
    path = tmp_path / "000000.extra.json"
    path.write_text(text, encoding="utf-8")
    try:
        records = read_records(str(path))
    except ExtraDataError as exc:
        assert str(path) in str(exc)
        return
    assert isinstance(records, list) and all(isinstance(r, dict) for r in records)


@FUZZ
@given(content=st.binary(max_size=200))
def test_fuzz_extra_data_bytes_through_the_store(extra_store: Path, content: bytes) -> None:
    (extra_store / "000000" / "index.extra.json").write_bytes(content)
    store = imgstore.new_for_filename(str(extra_store))
    try:
        df = store.get_extra_data()
    except ExtraDataError:
        return
    assert df is None or len(df) >= 0


@pytest.fixture(scope="module")
def extra_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("fuzz") / "store"
    with imgstore.new_for_format("npy", mode="w", basedir=str(path), imgshape=(4, 4), imgdtype="uint8") as store:
        for i in range(3):
            store.add_image(np.full((4, 4), i, np.uint8), i, 1000.0 + i)
            store.add_extra_data(value=i)
    return path


@pytest.fixture(scope="module")
def sqlite_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("fuzz") / "index.sqlite"
    index = ImgStoreIndex.from_arrays([0, 1], [np.arange(5), np.arange(5, 9)], [np.arange(5.0), np.arange(5.0, 9.0)])
    index.to_file(str(path))
    return path.read_bytes()


@FUZZ
@given(
    flips=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=8),
    cut=st.one_of(st.none(), st.integers(0, 10**6)),
)
def test_fuzz_index_sqlite_bytes(tmp_path: Path, sqlite_bytes: bytes, flips, cut) -> None:
    data = bytearray(sqlite_bytes)
    for position, value in flips:
        data[position % len(data)] = value
    if cut is not None:
        data = data[: cut % len(data)]
    path = tmp_path / "damaged.sqlite"
    path.write_bytes(bytes(data))
    try:
        index = ImgStoreIndex.new_from_file(str(path))
    except IndexFileError as exc:
        assert str(path) in str(exc)
        return
    assert index.frame_count >= 0


SQL_VALUES = st.one_of(
    st.none(), st.integers(-(2**63), 2**63 - 1), st.floats(), st.text(max_size=5), st.binary(max_size=5)
)


@FUZZ
@given(
    rows=st.lists(st.tuples(SQL_VALUES, SQL_VALUES, SQL_VALUES, SQL_VALUES), max_size=6),
    version=st.one_of(st.just("1"), SQL_VALUES),
)
def test_fuzz_index_sqlite_values(tmp_path: Path, rows, version) -> None:
    """A well-formed database with hostile values: rejected by name, or read as numbers."""
    path = tmp_path / "values.sqlite"
    if path.exists():
        path.unlink()
    db = sqlite3.connect(str(path))
    with db:
        db.execute("CREATE TABLE frames (chunk INTEGER, frame_idx INTEGER, frame_number INTEGER, frame_time REAL)")
        db.execute("CREATE TABLE chunks (chunk INTEGER, chunk_path TEXT)")
        db.execute("CREATE TABLE index_information (name TEXT, value TEXT)")
        db.execute("INSERT INTO index_information VALUES ('version', ?)", (version,))
        db.executemany("INSERT INTO frames VALUES (?, ?, ?, ?)", rows)
        db.execute("INSERT INTO chunks VALUES (0, '/etc/passwd')")
    db.close()
    try:
        index = ImgStoreIndex.new_from_file(str(path))
    except IndexFileError as exc:
        assert str(path) in str(exc)
        return
    assert index.table.frame_number.dtype == np.int64
    assert all(isinstance(t, float) for t in index.get_all_metadata()["frame_time"])


def test_yaml_alias_bomb_in_metadata_is_refused_quickly(tmp_path: Path) -> None:
    """Nine levels of nine aliases is 387 million nodes once expanded: refused, never walked."""
    store = tmp_path / "bomb"
    with imgstore.new_for_format("npy", mode="w", basedir=str(store), imgshape=(4, 4), imgdtype="uint8") as s:
        s.add_image(np.zeros((4, 4), np.uint8), 0, 0.0)
    text = (store / "metadata.yaml").read_text()
    bomb = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    bomb += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]
    (store / "metadata.yaml").write_text(text + "\n".join(bomb) + "\n")
    t0 = time.monotonic()
    with pytest.raises(MetadataError):
        imgstore.new_for_filename(str(store))
    assert time.monotonic() - t0 < 5


def test_nothing_is_unpickled_from_a_store(tmp_path: Path) -> None:
    """An index whose arrays are pickled objects (which could run code when loaded) is refused."""
    store = tmp_path / "pickled"
    with imgstore.new_for_format("npy", mode="w", basedir=str(store), imgshape=(4, 4), imgdtype="uint8") as s:
        s.add_image(np.zeros((4, 4), np.uint8), 0, 0.0)
    marker = tmp_path / "executed"

    class Payload:
        def __reduce__(self):
            return (os.mkdir, (str(marker),))

    np.savez(
        store / "000000" / "index.npz", frame_number=np.array([Payload()], dtype=object), frame_time=np.array([0.0])
    )
    try:
        store_ = imgstore.new_for_filename(str(store))
        assert store_.frame_count == 0
    except ImgStoreError:
        pass
    assert not marker.exists()
