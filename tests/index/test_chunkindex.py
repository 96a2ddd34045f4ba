"""Chunk index files read without np.load (``imgstore/index/chunkfile.py``): the same arrays np.load gives,
and every file np.load would refuse still refused."""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest

from imgstore.errors import ChunkIndexError
from imgstore.index.chunkfile import ReadBuffer, load_chunk_index, read_npz_frame_arrays, save_chunk_index

T0 = 1_600_000_000.0
STORE_KEYS = {"imgshape": [480, 640], "format": "npy", "chunksize": 200, "class": "DirectoryImgStore", "version": 2}


def reference(path: Path) -> tuple:
    with np.load(path, allow_pickle=False) as npz:
        return npz["frame_number"], npz["frame_time"]


def test_our_index_is_read_directly(tmp_path: Path) -> None:
    base = str(tmp_path / "index")
    numbers, times = np.arange(1000) * 3 - 7, T0 + np.arange(1000) / 25
    save_chunk_index(base, numbers, times, extra=STORE_KEYS)
    direct = read_npz_frame_arrays(base + ".npz")
    assert direct is not None and len(direct[0]) == 1000
    got = load_chunk_index(base)
    assert got[0].dtype == np.int64 and got[1].dtype == np.float64
    np.testing.assert_array_equal(got[0], numbers)
    np.testing.assert_array_equal(got[1], times)
    got[0][0] = 5  # writable, as np.load's arrays are


@pytest.mark.parametrize(
    "arrays",
    [
        {"frame_number": [1, 2, 3], "frame_time": [T0, T0 + 1, T0 + 2.5]},  # upstream: lists
        {"frame_number": np.array([4, 5], np.int32), "frame_time": np.array([1.0, 2.0], np.float32)},
        {"frame_number": np.array([1.0, 2.0]), "frame_time": np.array([3, 4])},
        {"frame_number": np.array([1.5, 2.0]), "frame_time": np.array([3.0, 4.0])},
        {"frame_number": np.array([7, 8], ">i8"), "frame_time": np.array([1.0, 2.0], ">f8")},
        {"frame_number": np.zeros(0, np.int64), "frame_time": np.zeros(0)},
        {"frame_number": np.asfortranarray(np.arange(4)), "frame_time": np.arange(4.0)},
    ],
    ids=["lists", "int32", "whole-floats", "fractions", "big-endian", "empty", "fortran"],
)
@pytest.mark.parametrize("compressed", [False, True])
def test_same_as_np_load(tmp_path: Path, arrays: dict, compressed: bool) -> None:
    path = tmp_path / "index.npz"
    (np.savez_compressed if compressed else np.savez)(path, **arrays, **STORE_KEYS)
    numbers, times = load_chunk_index(str(tmp_path / "index"))
    want_numbers, want_times = reference(path)
    np.testing.assert_array_equal(numbers, want_numbers)
    np.testing.assert_array_equal(times, want_times.astype(np.float64))
    assert times.dtype == np.float64
    whole = want_numbers.dtype.kind in "iu" or np.all(want_numbers == np.round(want_numbers))
    assert numbers.dtype == (np.int64 if whole else np.float64)


def test_only_plain_files_are_read_directly(tmp_path: Path) -> None:
    np.savez_compressed(tmp_path / "c.npz", frame_number=[1], frame_time=[1.0])
    np.savez(tmp_path / "i.npz", frame_number=np.array([1], np.int32), frame_time=[1.0])
    np.savez(tmp_path / "p.npz", frame_number=[1], frame_time=[1.0])
    assert read_npz_frame_arrays(str(tmp_path / "c.npz")) is None
    assert read_npz_frame_arrays(str(tmp_path / "i.npz")) is None
    assert read_npz_frame_arrays(str(tmp_path / "p.npz")) is not None
    assert read_npz_frame_arrays(str(tmp_path / "missing.npz")) is None


def test_read_buffer_is_reused_and_grown(tmp_path: Path) -> None:
    buffer = ReadBuffer()
    for n in (10, 1000, 5):
        save_chunk_index(str(tmp_path / f"i{n}"), np.arange(n), T0 + np.arange(n, dtype=float))
        numbers, times = read_npz_frame_arrays(str(tmp_path / f"i{n}.npz"), buffer)
        assert numbers.tolist() == list(range(n)) and times[-1] == T0 + n - 1
        del numbers, times  # views of the buffer: dropped before its next read


def _corrupt(path: Path, offset_from_data: int) -> None:
    with zipfile.ZipFile(path) as z:
        info = z.getinfo("frame_number.npy")
    data = bytearray(path.read_bytes())
    # the member's data starts after its local header (30 bytes, name, extra)
    start = (
        info.header_offset
        + 30
        + len(info.filename.encode())
        + int.from_bytes(data[info.header_offset + 28 : info.header_offset + 30], "little")
    )
    data[start + offset_from_data] ^= 0x40
    path.write_bytes(bytes(data))


def test_corrupt_data_is_refused(tmp_path: Path) -> None:
    base = tmp_path / "index"
    save_chunk_index(str(base), np.arange(100), T0 + np.arange(100.0))
    _corrupt(tmp_path / "index.npz", 200)  # a byte of the numbers, past the npy header
    with pytest.raises(ChunkIndexError, match=r"index\.npz"):
        load_chunk_index(str(base))


def test_truncated_file_is_refused(tmp_path: Path) -> None:
    base = tmp_path / "index"
    save_chunk_index(str(base), np.arange(100), T0 + np.arange(100.0))
    path = tmp_path / "index.npz"
    path.write_bytes(path.read_bytes()[:900])
    with pytest.raises(ChunkIndexError, match=r"index\.npz"):
        load_chunk_index(str(base))


def test_pickled_arrays_are_refused(tmp_path: Path) -> None:
    np.savez(tmp_path / "index.npz", frame_number=np.array([1, None], dtype=object), frame_time=[1.0, 2.0])
    with pytest.raises(ChunkIndexError, match="unsafe"):
        load_chunk_index(str(tmp_path / "index"))


def test_missing_array_is_named(tmp_path: Path) -> None:
    np.savez(tmp_path / "index.npz", frame_number=[1, 2])
    with pytest.raises(ChunkIndexError, match="lacks frame_time"):
        load_chunk_index(str(tmp_path / "index"))


def test_unequal_lengths_are_refused(tmp_path: Path) -> None:
    np.savez(tmp_path / "index.npz", frame_number=[1, 2, 3], frame_time=[1.0, 2.0])
    with pytest.raises(ChunkIndexError, match="3 entries"):
        load_chunk_index(str(tmp_path / "index"))


def test_zip_with_a_comment_and_other_members(tmp_path: Path) -> None:
    """Members in another order, extra members and a zip comment: still the right arrays."""
    path = tmp_path / "index.npz"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        for name, value in (("extra", np.arange(3)), ("frame_time", np.array([5.0, 6.0])), ("frame_number", [9, 10])):
            buffer = io.BytesIO()
            np.save(buffer, np.asarray(value))
            z.writestr(name + ".npy", buffer.getvalue())
        z.comment = b"written by hand"
    assert read_npz_frame_arrays(str(path)) is not None
    numbers, times = load_chunk_index(str(tmp_path / "index"))
    assert numbers.tolist() == [9, 10] and times.tolist() == [5.0, 6.0]


def test_not_a_zip(tmp_path: Path) -> None:
    (tmp_path / "index.npz").write_bytes(os.urandom(300))
    with pytest.raises(ChunkIndexError, match=r"index\.npz"):
        load_chunk_index(str(tmp_path / "index"))
