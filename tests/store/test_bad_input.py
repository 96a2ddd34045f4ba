"""Bad input: every way a store on disk or a caller can be wrong, and what the library must do.

Each case checks three things: the exception type (upstream's builtin type, and our specific
``imgstore.errors`` class), that the message names the offending file or value and the problem,
and that nothing already written is lost (stores refused for writing stay byte-for-byte
unchanged, stores with a broken chunk still serve their other chunks).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sqlite3
from pathlib import Path
from typing import Any, Dict, List, Tuple

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import imgstore
from imgstore import errors
from imgstore.index import ImgStoreIndex

SHAPE = (4, 5)
CHUNKSIZE = 3
N_FRAMES = 7  # chunks 0 and 1 full, chunk 2 holds one frame
FRAME_NUMBERS = [100 + 3 * i for i in range(N_FRAMES)]
FRAME_TIMES = [1_600_000_000.0 + 0.25 * i for i in range(N_FRAMES)]
REQUIRED_KEYS = ("class", "version", "imgshape", "imgdtype", "chunksize", "format")

Frame = Tuple[np.ndarray, int, float]


# ----------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------
def frame_image(i: int, shape: Tuple[int, ...] = SHAPE, dtype: Any = np.uint8) -> np.ndarray:
    """A frame whose pixels differ from every other frame's."""
    return ((np.arange(int(np.prod(shape))).reshape(shape) + 7 * i) % 256).astype(dtype)


def expected_frames(n: int = N_FRAMES) -> List[Frame]:
    return [(frame_image(i), FRAME_NUMBERS[i], FRAME_TIMES[i]) for i in range(n)]


def open_writer(path: Path, fmt: str = "npy", **kw: Any) -> Any:
    kw.setdefault("imgshape", SHAPE)
    kw.setdefault("chunksize", CHUNKSIZE)
    return imgstore.new_for_format(fmt, path=str(path), **kw)


def make_store(path: Path, fmt: str = "npy", n: int = N_FRAMES, extra: bool = False) -> List[Frame]:
    """Write ``n`` frames (optionally one extra-data record after each) and return them."""
    frames = expected_frames(n)
    with open_writer(path, fmt) as store:
        for i, (img, number, time) in enumerate(frames):
            store.add_image(img, number, time)
            if extra:
                store.add_extra_data(i=i, label=f"f{i}")
    return frames


def read_all(path: Path) -> List[Tuple[np.ndarray, int, float]]:
    """Every frame of the store, via ``get_next_image`` until ``EOFError``."""
    out = []
    with imgstore.new_for_filename(str(path)) as store:
        while True:
            try:
                img, (number, time) = store.get_next_image()
            except EOFError:
                return out
            out.append((img, number, time))


def assert_frames_equal(actual: List[Frame], expected: List[Frame]) -> None:
    assert [(n, t) for _, n, t in actual] == [(n, t) for _, n, t in expected]
    for (got, _, _), (want, _, _) in zip(actual, expected):
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)


def assert_store_reads_back(path: Path, expected: List[Frame]) -> None:
    assert not (path / ".lock").exists()
    assert_frames_equal(read_all(path), expected)


def snapshot(path: Path) -> Dict[str, Any]:
    """Every entry under ``path`` with file contents: to prove a refused operation changed nothing."""
    snap: Dict[str, Any] = {}
    for root, dirs, files in os.walk(path):
        for d in dirs:
            snap[os.path.relpath(os.path.join(root, d), path) + "/"] = None
        for f in files:
            full = os.path.join(root, f)
            snap[os.path.relpath(full, path)] = Path(full).read_bytes()
    return snap


def metadata_path(path: Path) -> Path:
    return path / "metadata.yaml"


def store_block(path: Path) -> Dict[str, Any]:
    return yaml.safe_load(metadata_path(path).read_text())["__store"]


def write_store_block(path: Path, smd: Dict[str, Any]) -> None:
    metadata_path(path).write_text(yaml.safe_dump({"__store": smd}))


def chunk_index(path: Path, chunk_n: int) -> Path:
    return path / f"{chunk_n:06d}" / "index.npz"


def frame_file(path: Path, chunk_n: int, idx: int, fmt: str = "npy") -> Path:
    return path / f"{chunk_n:06d}" / f"{idx:06d}.{fmt}"


def message(excinfo: pytest.ExceptionInfo) -> str:
    return str(excinfo.value)


class Touch:
    """An object whose unpickling creates a marker file: proof that something was unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> Any:
        return (Path.touch, (Path(self.marker),))


@pytest.fixture
def store(tmp_path: Path) -> Path:
    path = tmp_path / "store"
    make_store(path)
    return path


def test_pickle_payload_is_live(tmp_path: Path) -> None:
    """Control: the payload used below really runs code when unpickled (so its absence proves safety)."""
    marker = tmp_path / "control-marker"
    np.save(tmp_path / "x.npy", np.array([Touch(marker)], dtype=object), allow_pickle=True)
    np.load(tmp_path / "x.npy", allow_pickle=True)
    assert marker.exists()


# ----------------------------------------------------------------------------------------------
# metadata.yaml missing
# ----------------------------------------------------------------------------------------------
def test_missing_metadata_dir_exists(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(errors.StoreNotFoundError) as excinfo:
        imgstore.new_for_filename(str(tmp_path / "empty"))
    assert isinstance(excinfo.value, ValueError)
    assert isinstance(excinfo.value, FileNotFoundError)
    assert str(tmp_path / "empty") in message(excinfo)
    assert "metadata.yaml" in message(excinfo)


def test_missing_metadata_dir_missing(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(errors.StoreNotFoundError) as excinfo:
        imgstore.new_for_filename(str(missing))
    assert isinstance(excinfo.value, ValueError)
    assert str(missing) in message(excinfo)
    assert "does not exist" in message(excinfo)
    assert not missing.exists()


def test_missing_metadata_file_path_given(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    target = tmp_path / "empty" / "metadata.yaml"
    with pytest.raises(errors.StoreNotFoundError) as excinfo:
        imgstore.new_for_filename(str(target))
    assert isinstance(excinfo.value, ValueError)
    assert str(target) in message(excinfo)


def test_chunk_folders_without_metadata_refused_for_reading(store: Path) -> None:
    metadata_path(store).unlink()
    expect_open_refused(store, errors.StoreNotFoundError, str(store), "metadata.yaml")


def test_chunk_folders_without_metadata_refused_for_writing(store: Path) -> None:
    metadata_path(store).unlink()
    before = snapshot(store)
    with pytest.raises(errors.StoreExistsError) as excinfo:
        open_writer(store)
    assert isinstance(excinfo.value, ValueError)
    assert str(store) in message(excinfo)
    assert "000000" in message(excinfo)
    assert snapshot(store) == before


def expect_open_refused(store: Path, error: type, *parts: str) -> None:
    """Opening ``store`` raises ``error`` (a ValueError) whose message contains every part."""
    with pytest.raises(error) as excinfo:
        imgstore.new_for_filename(str(store))
    assert isinstance(excinfo.value, ValueError)
    for part in parts:
        assert part in message(excinfo)


# ----------------------------------------------------------------------------------------------
# metadata.yaml corrupt
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "content",
    [b"__store: [unclosed\n", b"__store:\n  class: x\n bad: indent\n", b"\xff\xfe\x00\x81garbage", b"a: b: c\n"],
    ids=["unclosed-flow", "bad-indent", "binary", "nested-colon"],
)
def test_invalid_yaml(store: Path, content: bytes) -> None:
    metadata_path(store).write_bytes(content)
    expect_open_refused(store, errors.MetadataError, str(metadata_path(store)), "YAML")


@pytest.mark.parametrize(
    ("content", "got"),
    [("- a\n- b\n", "list"), ("42\n", "int"), ("", "NoneType"), ("just text\n", "str")],
    ids=["list", "int", "empty", "str"],
)
def test_metadata_not_a_mapping(store: Path, content: str, got: str) -> None:
    metadata_path(store).write_text(content)
    expect_open_refused(store, errors.MetadataError, str(metadata_path(store)), "mapping", got)


@pytest.mark.parametrize("content", ["genotype: wt\n", "__store: 5\n", "__store: [1, 2]\n", "__store:\n"])
def test_metadata_without_store_block(store: Path, content: str) -> None:
    metadata_path(store).write_text(content)
    expect_open_refused(store, errors.MetadataError, str(metadata_path(store)), "__store")


@pytest.mark.parametrize("key", REQUIRED_KEYS)
def test_metadata_missing_required_key(store: Path, key: str) -> None:
    smd = store_block(store)
    del smd[key]
    write_store_block(store, smd)
    expect_open_refused(store, errors.MetadataError, str(metadata_path(store)), key, "lacks")


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("imgshape", "4x5"),
        ("imgshape", [4]),
        ("imgshape", [4, 5, 3, 1]),
        ("imgshape", [4, -5]),
        ("imgshape", [4.0, 5]),
        ("imgshape", [True, 5]),
        ("imgshape", None),
        ("imgdtype", 7),
        ("imgdtype", "notadtype"),
        ("imgdtype", "object"),
        ("imgdtype", "U3"),
        ("imgdtype", None),
        ("imgdtype", {"formats": ["u1", "u1"], "names": ["a", "a"]}),  # keys sorted as safe_dump writes them
        ("chunksize", "200"),
        ("chunksize", 0),
        ("chunksize", -3),
        ("chunksize", 2.5),
        ("chunksize", True),
        ("chunksize", None),
        ("class", 5),
        ("format", ["npy"]),
        ("encoding", ["cv_bayerbg"]),
        ("encoding", {"a": 1}),
    ],
    ids=lambda v: repr(v)[:24],
)
def test_metadata_bad_value_type(store: Path, key: str, value: Any) -> None:
    smd = store_block(store)
    smd[key] = value
    write_store_block(store, smd)
    with pytest.raises(errors.ImgStoreError) as excinfo:
        imgstore.new_for_filename(str(store))
    assert isinstance(excinfo.value, ValueError)
    assert isinstance(excinfo.value, (errors.MetadataError, errors.UnsupportedFormatError))
    assert str(metadata_path(store)) in message(excinfo) or key == "format"
    assert repr(value) in message(excinfo)


def test_unknown_class(store: Path) -> None:
    smd = store_block(store)
    smd["class"] = "HologramImgStore"
    write_store_block(store, smd)
    with pytest.raises(errors.IncompatibleStoreError) as excinfo:
        imgstore.new_for_filename(str(store))
    assert isinstance(excinfo.value, errors.MetadataError)
    assert isinstance(excinfo.value, ValueError)
    assert "HologramImgStore" in message(excinfo)
    assert str(metadata_path(store)) in message(excinfo)
    assert "not supported" in message(excinfo)


@pytest.mark.parametrize("version", [1, 3, "2", None])
def test_unknown_version(store: Path, version: Any) -> None:
    smd = store_block(store)
    smd["version"] = version
    write_store_block(store, smd)
    expect_open_refused(
        store, errors.IncompatibleStoreError, "incompatible store version", repr(version), str(metadata_path(store))
    )


@pytest.mark.parametrize("fmt", ["webp", "avc1/mp4", "png+color+color", ""])
def test_unknown_format(store: Path, fmt: str) -> None:
    smd = store_block(store)
    smd["format"] = fmt
    write_store_block(store, smd)
    expect_open_refused(store, errors.UnsupportedFormatError, f"'{fmt}'", "unknown format")


@pytest.mark.parametrize(
    "template",
    [
        '!!python/object/apply:os.system ["touch {marker}"]\n',
        '__store: !!python/object/apply:os.system ["touch {marker}"]\n',
        'genotype: !!python/object/apply:subprocess.call [["touch", "{marker}"]]\n__store: {{}}\n',
        "__store: !!python/name:os.system\n",
    ],
    ids=["top", "store-block", "user-metadata", "name-tag"],
)
def test_yaml_python_object_tags_are_not_executed(store: Path, tmp_path: Path, template: str) -> None:
    marker = tmp_path / "pwned"
    metadata_path(store).write_text(template.format(marker=marker))
    expect_open_refused(store, errors.MetadataError, str(metadata_path(store)), "tag")
    assert not marker.exists()


# ----------------------------------------------------------------------------------------------
# chunk indexes
# ----------------------------------------------------------------------------------------------
def _remove(path: Path, marker: Path) -> None:
    path.unlink()


def _truncate(path: Path, marker: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _mismatched_lengths(path: Path, marker: Path) -> None:
    np.savez(path, frame_number=np.array([1, 2, 3]), frame_time=np.array([1.0, 2.0]))


def _pickled_object_array(path: Path, marker: Path) -> None:
    np.savez(path, frame_number=np.array([Touch(marker), 1, 2], dtype=object), frame_time=np.array([1.0, 2.0, 3.0]))


def _pickled_frame_time(path: Path, marker: Path) -> None:
    np.savez(path, frame_number=np.array([1, 2, 3]), frame_time=np.array([Touch(marker), 2.0, 3.0], dtype=object))


def _two_dimensional(path: Path, marker: Path) -> None:
    np.savez(path, frame_number=np.array([[1, 2, 3]]), frame_time=np.array([[1.0, 2.0, 3.0]]))


def _no_frame_time(path: Path, marker: Path) -> None:
    np.savez(path, frame_number=np.array([1, 2, 3]))


def _complex_frame_time(path: Path, marker: Path) -> None:
    np.savez(path, frame_number=np.array([1, 2, 3]), frame_time=np.array([1 + 1j, 2 + 0j, 3 + 2j]))


def _datetime_frame_time(path: Path, marker: Path) -> None:
    times = np.array(["2020-01-01", "2020-01-02", "2020-01-03"], dtype="datetime64[D]")
    np.savez(path, frame_number=np.array([1, 2, 3]), frame_time=times)


def _not_a_zip(path: Path, marker: Path) -> None:
    path.write_bytes(b"this is not an npz file at all")


INDEX_DAMAGE = {
    "missing": _remove,
    "truncated": _truncate,
    "different-lengths": _mismatched_lengths,
    "pickled-frame-number": _pickled_object_array,
    "pickled-frame-time": _pickled_frame_time,
    "two-dimensional": _two_dimensional,
    "no-frame-time": _no_frame_time,
    "complex-frame-time": _complex_frame_time,
    "datetime-frame-time": _datetime_frame_time,
    "not-a-zip": _not_a_zip,
}


@pytest.mark.parametrize("damage", list(INDEX_DAMAGE))
def test_bad_chunk_index_skips_that_chunk(store: Path, tmp_path: Path, caplog: Any, damage: str) -> None:
    marker = tmp_path / "pwned"
    INDEX_DAMAGE[damage](chunk_index(store, 1), marker)
    frames = expected_frames()
    kept = frames[:3] + frames[6:]  # chunk 1 (frames 3..5) is lost, chunks 0 and 2 remain
    with caplog.at_level(logging.WARNING, logger="imgstore"):
        with imgstore.new_for_filename(str(store)) as s:
            assert s.frame_count == len(kept)
            assert s.chunks == [0, 2]
            assert s.get_frame_metadata() == {
                "frame_number": [n for _, n, _ in kept],
                "frame_time": [t for _, _, t in kept],
            }
            img, (number, time) = s.get_image(FRAME_NUMBERS[6])
            np.testing.assert_array_equal(img, frame_image(6))
            assert (number, time) == (FRAME_NUMBERS[6], FRAME_TIMES[6])
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert any("000001" in r.getMessage() for r in warnings), [r.getMessage() for r in warnings]
    assert not marker.exists()
    assert_frames_equal(read_all(store), kept)


# ----------------------------------------------------------------------------------------------
# frame files
# ----------------------------------------------------------------------------------------------
def test_npy_frame_with_pickled_object_array(store: Path, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    bad = frame_file(store, 0, 1)
    np.save(bad, np.array([Touch(marker)], dtype=object), allow_pickle=True)
    with imgstore.new_for_filename(str(store)) as s:
        with pytest.raises(errors.FrameReadError) as excinfo:
            s.get_image(FRAME_NUMBERS[1])
        assert isinstance(excinfo.value, ValueError)
        assert str(bad) in message(excinfo)
        assert "pickle" in message(excinfo)
        # the store stays usable: the frames around it still read correctly
        img, (number, _) = s.get_image(FRAME_NUMBERS[2])
        np.testing.assert_array_equal(img, frame_image(2))
        assert number == FRAME_NUMBERS[2]
    assert not marker.exists()


def test_npy_frame_pickled_through_get_next_image(store: Path, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    bad = frame_file(store, 0, 1)
    np.save(bad, np.array([Touch(marker)], dtype=object), allow_pickle=True)
    with imgstore.new_for_filename(str(store)) as s:
        img, _ = s.get_next_image()
        np.testing.assert_array_equal(img, frame_image(0))
        with pytest.raises(errors.FrameReadError) as excinfo:
            s.get_next_image()
        assert str(bad) in message(excinfo)
    assert not marker.exists()


@pytest.mark.parametrize("fmt", ["npy", "png"])
def test_missing_frame_file(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / "store"
    make_store(path, fmt=fmt)
    bad = frame_file(path, 1, 0, fmt)
    bad.unlink()
    with imgstore.new_for_filename(str(path)) as s:
        with pytest.raises(errors.FrameReadError) as excinfo:
            s.get_image(FRAME_NUMBERS[3])
        assert isinstance(excinfo.value, ValueError)
        assert str(bad) in message(excinfo)
        assert "missing" in message(excinfo)
        img, _ = s.get_image(FRAME_NUMBERS[4])
        np.testing.assert_array_equal(img, frame_image(4))


@pytest.mark.parametrize("fmt", ["npy", "png"])
@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty"])
def test_corrupt_frame_file(tmp_path: Path, fmt: str, damage: str) -> None:
    path = tmp_path / "store"
    make_store(path, fmt=fmt)
    bad = frame_file(path, 0, 1, fmt)
    data = bad.read_bytes()
    bad.write_bytes({"garbage": data[:6] + b" not an image", "truncated": data[: len(data) // 2], "empty": b""}[damage])
    with imgstore.new_for_filename(str(path)) as s:
        with pytest.raises(errors.FrameReadError) as excinfo:
            s.get_image(FRAME_NUMBERS[1])
        assert isinstance(excinfo.value, ValueError)
        assert str(bad) in message(excinfo)
        img, _ = s.get_image(FRAME_NUMBERS[0])
        np.testing.assert_array_equal(img, frame_image(0))


# ----------------------------------------------------------------------------------------------
# add_image: shape and dtype
# ----------------------------------------------------------------------------------------------
def write_some_then(path: Path, fmt: str = "npy", n: int = 4, **kw: Any) -> Tuple[Any, List[Frame]]:
    """An open writer holding ``n`` good frames (crossing a chunk boundary), and those frames."""
    frames = expected_frames(n)
    writer = open_writer(path, fmt, **kw)
    for img, number, time in frames:
        writer.add_image(img, number, time)
    return writer, frames


@pytest.mark.parametrize("shape", [(5, 4), (4, 5, 3), (4,), (4, 5, 1), (0, 0), ()])
def test_add_image_wrong_shape(tmp_path: Path, shape: Tuple[int, ...]) -> None:
    path = tmp_path / "store"
    writer, frames = write_some_then(path)
    with pytest.raises(errors.ImageShapeError) as excinfo:
        writer.add_image(np.zeros(shape, dtype=np.uint8), 999, 1.0)
    assert isinstance(excinfo.value, ValueError)
    assert str(shape) in message(excinfo)
    assert str(SHAPE) in message(excinfo)
    assert writer.frame_count == len(frames)
    writer.close()
    assert_store_reads_back(path, frames)


def test_add_image_refused_then_writing_continues(tmp_path: Path) -> None:
    path = tmp_path / "store"
    writer, _ = write_some_then(path, n=2)
    with pytest.raises(errors.ImageShapeError):
        writer.add_image(np.zeros((5, 4), dtype=np.uint8), 999, 1.0)
    with pytest.raises(errors.ImageDtypeError):
        writer.add_image(np.full(SHAPE, -1), 998, 2.0)
    for img, number, time in expected_frames()[2:]:
        writer.add_image(img, number, time)
    writer.close()
    assert_store_reads_back(path, expected_frames())
    assert sorted(p.name for p in (path / "000000").glob("*.npy")) == ["000000.npy", "000001.npy", "000002.npy"]


@pytest.mark.parametrize(
    "bad",
    [
        np.full(SHAPE, 0.5),
        np.full(SHAPE, 256, dtype=np.int64),
        np.full(SHAPE, -1, dtype=np.int64),
        np.full(SHAPE, np.nan),
        np.full(SHAPE, np.inf),
        np.full(SHAPE, 300, dtype=np.uint16),
    ],
    ids=["float-0.5", "256", "minus-1", "nan", "inf", "uint16-300"],
)
def test_add_image_values_do_not_fit_dtype(tmp_path: Path, bad: np.ndarray) -> None:
    path = tmp_path / "store"
    writer, frames = write_some_then(path)
    with pytest.raises(errors.ImageDtypeError) as excinfo:
        writer.add_image(bad, 999, 1.0)
    assert isinstance(excinfo.value, ValueError)
    assert "uint8" in message(excinfo)
    assert str(bad.dtype) in message(excinfo)
    assert writer.frame_count == len(frames)
    assert writer.frame_number == frames[-1][1]
    writer.close()
    assert_store_reads_back(path, frames)


def test_add_image_non_numeric(tmp_path: Path) -> None:
    path = tmp_path / "store"
    writer, frames = write_some_then(path)
    with pytest.raises(errors.ImageDtypeError) as excinfo:
        writer.add_image(np.full(SHAPE, "x"), 999, 1.0)
    assert isinstance(excinfo.value, ValueError)
    assert "not numeric" in message(excinfo)
    writer.close()
    assert_store_reads_back(path, frames)


@pytest.mark.parametrize(
    ("fmt", "store_dtype", "img"),
    [
        ("npy", np.uint8, np.zeros(SHAPE)),
        ("png", np.uint8, np.zeros(SHAPE)),
        ("npy", np.uint8, np.eye(4, 5, dtype=bool)),
        ("npy", np.uint8, np.arange(20, dtype=np.int64).reshape(SHAPE)),
        ("png", np.uint16, np.arange(20, dtype=np.uint8).reshape(SHAPE) * 12),
        ("npy", np.uint16, np.arange(20, dtype=np.uint8).reshape(SHAPE)),
    ],
    ids=["float-zeros-npy", "float-zeros-png", "bool", "int64-small", "uint8-into-uint16-png", "uint8-into-uint16"],
)
def test_add_image_lossless_casts(tmp_path: Path, fmt: str, store_dtype: Any, img: np.ndarray) -> None:
    path = tmp_path / "store"
    with open_writer(path, fmt, imgdtype=store_dtype) as writer:
        writer.add_image(img, 5, 10.0)
    got = read_all(path)
    assert len(got) == 1
    assert got[0][1:] == (5, 10.0)
    assert got[0][0].dtype == np.dtype(store_dtype)
    np.testing.assert_array_equal(got[0][0], img.astype(store_dtype))


# ----------------------------------------------------------------------------------------------
# opening an existing store for writing
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("as_metadata_path", [False, True], ids=["dir", "metadata.yaml"])
@pytest.mark.parametrize("fmt", ["npy", "png"])
def test_existing_store_refused_for_writing(tmp_path: Path, fmt: str, as_metadata_path: bool) -> None:
    path = tmp_path / "store"
    frames = make_store(path, extra=True)
    before = snapshot(path)
    target = metadata_path(path) if as_metadata_path else path
    with pytest.raises(errors.StoreExistsError) as excinfo:
        imgstore.new_for_format(fmt, path=str(target), imgshape=SHAPE, chunksize=CHUNKSIZE)
    assert isinstance(excinfo.value, ValueError)
    assert isinstance(excinfo.value, FileExistsError)
    assert str(path) in message(excinfo)
    assert "already holds a store" in message(excinfo)
    assert snapshot(path) == before
    assert_store_reads_back(path, frames)


def test_existing_store_refused_for_writing_via_basedir(store: Path) -> None:
    before = snapshot(store)
    with pytest.raises(errors.StoreExistsError):
        imgstore.new_for_format("npy", basedir=str(store), imgshape=SHAPE)
    assert snapshot(store) == before


def test_existing_store_refused_for_writing_via_class(store: Path) -> None:
    before = snapshot(store)
    with pytest.raises(errors.StoreExistsError):
        imgstore.DirectoryImgStore(basedir=str(store), mode="w", imgshape=SHAPE, format="npy")
    assert snapshot(store) == before


# ----------------------------------------------------------------------------------------------
# absent frames, reading past the end
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("number", [99, 101, 10_000, -1])
def test_absent_frame_number(store: Path, number: int) -> None:
    with imgstore.new_for_filename(str(store)) as s:
        with pytest.raises(errors.FrameNotFoundError) as excinfo:
            s.get_image(number)
        assert isinstance(excinfo.value, ValueError)
        assert f"frame #{number} not found in any chunk" in message(excinfo)
        img, (n, _) = s.get_image(FRAME_NUMBERS[3])
        np.testing.assert_array_equal(img, frame_image(3))
        assert n == FRAME_NUMBERS[3]


@pytest.mark.parametrize("index", [N_FRAMES, N_FRAMES + 1, 10**9])
def test_absent_frame_index(store: Path, index: int) -> None:
    with imgstore.new_for_filename(str(store)) as s:
        with pytest.raises(errors.FrameNotFoundError) as excinfo:
            s.get_image(None, frame_index=index)
        assert isinstance(excinfo.value, ValueError)
        assert f"frame_index {index} not found in index" in message(excinfo)
        img, _ = s.get_image(None, frame_index=N_FRAMES - 1)
        np.testing.assert_array_equal(img, frame_image(N_FRAMES - 1))


@pytest.mark.parametrize("index", [-1, -N_FRAMES, np.int64(-2)])
def test_negative_frame_index(store: Path, index: Any) -> None:
    with imgstore.new_for_filename(str(store)) as s:
        with pytest.raises(errors.FrameNotFoundError) as excinfo:
            s.get_image(None, frame_index=index)
        assert isinstance(excinfo.value, ValueError)
        assert "seeking to negative index not supported" in message(excinfo)
        assert str(int(index)) in message(excinfo)


def test_get_next_image_past_end(store: Path) -> None:
    with imgstore.new_for_filename(str(store)) as s:
        for i in range(N_FRAMES):
            img, (number, _) = s.get_next_image()
            np.testing.assert_array_equal(img, frame_image(i))
            assert number == FRAME_NUMBERS[i]
        with pytest.raises(EOFError):
            s.get_next_image()
        with pytest.raises(EOFError):
            s.get_next_image()  # stays at the end, no wrap-around
        with pytest.raises(EOFError):
            s.get_next_framenumber()
        img, _ = s.get_image(FRAME_NUMBERS[0])  # seeking back still works
        np.testing.assert_array_equal(img, frame_image(0))


def test_get_next_image_on_empty_store(tmp_path: Path) -> None:
    path = tmp_path / "store"
    make_store(path, n=0)
    with imgstore.new_for_filename(str(path)) as s:
        assert s.frame_count == 0
        with pytest.raises(EOFError):
            s.get_next_image()
        with pytest.raises(errors.FrameNotFoundError):
            s.get_image(0)


# ----------------------------------------------------------------------------------------------
# API of the wrong mode
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("action", "call"),
    [
        ("add images", lambda s: s.add_image(frame_image(0), 1000, 1.0)),
        ("add extra data", lambda s: s.add_extra_data(a=1)),
        ("empty the store", lambda s: s.empty()),
    ],
    ids=["add_image", "add_extra_data", "empty"],
)
def test_writing_api_on_read_store(store: Path, action: str, call: Any) -> None:
    before = snapshot(store)
    with imgstore.new_for_filename(str(store)) as s:
        with pytest.raises(errors.ImgStoreError) as excinfo:
            call(s)
        assert isinstance(excinfo.value, ValueError)
        assert f"cannot {action}" in message(excinfo)
        assert "open for reading" in message(excinfo)
        assert str(store) in message(excinfo)
    assert snapshot(store) == before


@pytest.mark.parametrize(
    "call",
    [
        lambda s: s.get_next_image(),
        lambda s: s.get_image(FRAME_NUMBERS[0]),
        lambda s: s.get_image(None, frame_index=0),
        lambda s: s.get_nearest_image(FRAME_TIMES[0]),
        lambda s: s.get_next_framenumber(),
        lambda s: s.save_index(),
    ],
    ids=["get_next_image", "get_image", "get_image-index", "get_nearest_image", "get_next_framenumber", "save_index"],
)
def test_reading_api_on_write_store(tmp_path: Path, call: Any) -> None:
    path = tmp_path / "store"
    writer, frames = write_some_then(path)
    with pytest.raises(errors.ImgStoreError) as excinfo:
        call(writer)
    assert isinstance(excinfo.value, ValueError)
    assert "open for writing" in message(excinfo)
    assert str(path) in message(excinfo)
    writer.close()
    assert_store_reads_back(path, frames)


def test_writing_to_a_closed_store_is_refused(tmp_path: Path) -> None:
    s = imgstore.new_for_format("npy", path=str(tmp_path / "w"), imgshape=(4, 4))
    s.add_image(np.zeros((4, 4), np.uint8), 0, 0.0)
    s.close()
    with pytest.raises(errors.ImgStoreError) as excinfo:
        s.add_image(np.zeros((4, 4), np.uint8), 1, 1.0)
    assert isinstance(excinfo.value, ValueError)
    assert "closed" in message(excinfo)
    assert imgstore.new_for_filename(str(tmp_path / "w")).get_frame_metadata()["frame_number"] == [0]


def test_a_closed_read_store_still_reads(store: Path) -> None:
    """close() only releases open files; upstream kept answering afterwards, so scripts rely on it."""
    s = imgstore.new_for_filename(str(store))
    first = s.get_next_image()
    s.close()
    again = s.get_image(None, frame_index=0)
    np.testing.assert_array_equal(again[0], first[0])
    assert again[1] == first[1]


# ----------------------------------------------------------------------------------------------
# extra data
# ----------------------------------------------------------------------------------------------
def extra_file(path: Path, chunk_n: int) -> Path:
    return path / f"{chunk_n:06d}" / "index.extra.json"


def extra_values(df: pd.DataFrame) -> List[int]:
    return sorted(df["i"].tolist())


@pytest.mark.parametrize(
    ("bad", "type_name"),
    [(object(), "object"), ({1, object()}, "object"), (lambda: 1, "function"), (Path("x"), "PosixPath")],
    ids=["object", "set-of-object", "lambda", "path"],
)
def test_extra_data_not_json(tmp_path: Path, bad: Any, type_name: str) -> None:
    path = tmp_path / "store"
    frames = expected_frames(5)
    with open_writer(path) as writer:
        for i, (img, number, time) in enumerate(frames[:4]):
            writer.add_image(img, number, time)
            writer.add_extra_data(i=i)
        with pytest.raises(errors.ExtraDataError) as excinfo:
            writer.add_extra_data(i=99, bad=bad)
        assert isinstance(excinfo.value, TypeError)  # what json (so upstream) raised
        assert isinstance(excinfo.value, ValueError)
        assert "JSON" in message(excinfo)
        assert type_name in message(excinfo)
        img, number, time = frames[4]
        writer.add_image(img, number, time)
        writer.add_extra_data(i=4)
    assert_store_reads_back(path, frames)
    with imgstore.new_for_filename(str(path)) as s:
        df = s.get_extra_data()
    assert extra_values(df) == [0, 1, 2, 3, 4]
    for f in imgstore.new_for_filename(str(path)).find_extra_data_files():
        json.loads(Path(f).read_text())  # every file is complete, valid JSON


def _mangle_middle_record(text: str) -> bytes:
    """A closed (terminated) file whose middle record is garbage: corrupt, not unterminated."""
    lines = text.split("\n")
    assert len(lines) >= 3 and text.endswith("]")
    lines[1] = '{"i": GARBAGE},'
    return "\n".join(lines).encode()


EXTRA_CORRUPTION = {
    "text": lambda text: b"this is not json {",
    "not-utf8": lambda text: b"\xff\xfe\x00garbage",
    "object": lambda text: b'{"not": "an array"}',
    "array-of-numbers": lambda text: b"[1, 2, 3]",
    "garbage-mid-file": _mangle_middle_record,
}


@pytest.mark.parametrize("corruption", list(EXTRA_CORRUPTION))
def test_corrupt_extra_data_file(tmp_path: Path, caplog: Any, corruption: str) -> None:
    path = tmp_path / "store"
    make_store(path, extra=True)
    bad = extra_file(path, 1)
    text = bad.read_text()
    lost = [r["i"] for r in json.loads(text)]
    bad.write_bytes(EXTRA_CORRUPTION[corruption](text))
    with imgstore.new_for_filename(str(path)) as s:
        with pytest.raises(errors.ExtraDataError) as excinfo:
            s.get_extra_data()
        assert isinstance(excinfo.value, ValueError)
        assert str(bad) in message(excinfo)
        with caplog.at_level(logging.WARNING, logger="imgstore"):
            df = s.get_extra_data(ignore_corrupt_chunks=True)
    assert extra_values(df) == [i for i in range(N_FRAMES) if i not in lost]
    assert any(str(bad) in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)


@pytest.mark.parametrize(
    "tail",
    ["", ",", ",\n", ',\n{"i": 9', ',\n{"i": 9, "label": "x,y', ',\n{"i": 9, "v": [1, 2'],
    ids=["no-bracket", "comma", "comma-newline", "torn-record", "torn-string-with-comma", "torn-nested-list"],
)
def test_unterminated_extra_data_file(tmp_path: Path, caplog: Any, tail: str) -> None:
    path = tmp_path / "store"
    make_store(path, extra=True)
    bad = extra_file(path, 1)
    text = bad.read_text()
    assert text.rstrip().endswith("]")
    bad.write_text(text.rstrip()[:-1] + tail)
    with caplog.at_level(logging.WARNING, logger="imgstore"):
        with imgstore.new_for_filename(str(path)) as s:
            df = s.get_extra_data()
    assert extra_values(df) == list(range(N_FRAMES))
    assert set(df.columns) >= {"i", "label", "frame_time", "frame_number", "frame_index"}
    assert any(str(bad) in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)


# ----------------------------------------------------------------------------------------------
# .index.sqlite
# ----------------------------------------------------------------------------------------------
def saved_index(store: Path) -> Path:
    with imgstore.new_for_filename(str(store)) as s:
        s.save_index()
    return store / ".index.sqlite"


def test_index_file_garbage(tmp_path: Path) -> None:
    bad = tmp_path / ".index.sqlite"
    bad.write_bytes(b"garbage, not sqlite " * 50)
    with pytest.raises(errors.IndexFileError) as excinfo:
        ImgStoreIndex.new_from_file(str(bad))
    assert isinstance(excinfo.value, ValueError)
    assert str(bad) in message(excinfo)


def test_index_file_missing(tmp_path: Path) -> None:
    bad = tmp_path / ".index.sqlite"
    with pytest.raises(errors.IndexFileError) as excinfo:
        ImgStoreIndex.new_from_file(str(bad))
    assert str(bad) in message(excinfo)
    assert not bad.exists()


@pytest.mark.parametrize("version", ["2", "0", ""])
def test_index_file_wrong_version(store: Path, version: str) -> None:
    path = saved_index(store)
    db = sqlite3.connect(path)
    with db:
        db.execute("UPDATE index_information SET value = ? WHERE name = 'version'", (version,))
    db.close()
    with pytest.raises(errors.IndexFileError) as excinfo:
        ImgStoreIndex.new_from_file(str(path))
    assert isinstance(excinfo.value, ValueError)
    assert str(path) in message(excinfo)
    assert "version" in message(excinfo)
    assert repr(version) in message(excinfo)


def test_index_file_without_version(store: Path) -> None:
    path = saved_index(store)
    db = sqlite3.connect(path)
    with db:
        db.execute("DELETE FROM index_information")
    db.close()
    with pytest.raises(errors.IndexFileError) as excinfo:
        ImgStoreIndex.new_from_file(str(path))
    assert str(path) in message(excinfo)
    assert "version" in message(excinfo)


def test_index_file_empty_database(tmp_path: Path) -> None:
    path = tmp_path / ".index.sqlite"
    sqlite3.connect(path).close()
    path.touch()
    with pytest.raises(errors.IndexFileError) as excinfo:
        ImgStoreIndex.new_from_file(str(path))
    assert str(path) in message(excinfo)


def test_index_file_is_not_modified_by_loading(store: Path) -> None:
    path = saved_index(store)
    before = path.read_bytes()
    index = ImgStoreIndex.new_from_file(str(path))
    assert index.frame_count == N_FRAMES
    assert path.read_bytes() == before


def test_garbage_index_file_in_store_does_not_break_opening(store: Path) -> None:
    (store / ".index.sqlite").write_bytes(b"garbage")
    assert_frames_equal(read_all(store), expected_frames())


# ----------------------------------------------------------------------------------------------
# path / basedir
# ----------------------------------------------------------------------------------------------
def test_new_for_filename_path_and_basedir(store: Path) -> None:
    with pytest.raises(errors.ImgStoreError) as excinfo:
        imgstore.new_for_filename(str(store), basedir=str(store))
    assert isinstance(excinfo.value, ValueError)
    assert "mutually exclusive" in message(excinfo)


@pytest.mark.parametrize("path", [None, ""])
def test_new_for_filename_neither_path_nor_basedir(path: Any) -> None:
    with pytest.raises(errors.ImgStoreError) as excinfo:
        imgstore.new_for_filename(path)
    assert isinstance(excinfo.value, ValueError)
    assert "metadata.yaml" in message(excinfo)


def test_new_for_format_path_and_basedir(tmp_path: Path) -> None:
    with pytest.raises(errors.ImgStoreError) as excinfo:
        imgstore.new_for_format("npy", path=str(tmp_path / "a"), basedir=str(tmp_path / "b"), imgshape=SHAPE)
    assert isinstance(excinfo.value, ValueError)
    assert "mutually exclusive" in message(excinfo)
    assert not (tmp_path / "a").exists()
    assert not (tmp_path / "b").exists()


def test_new_for_format_neither_path_nor_basedir() -> None:
    with pytest.raises(errors.ImgStoreError) as excinfo:
        imgstore.new_for_format("npy", imgshape=SHAPE)
    assert isinstance(excinfo.value, ValueError)


def test_new_for_filename_basedir_is_metadata_file(store: Path) -> None:
    with pytest.raises(errors.ImgStoreError) as excinfo:
        imgstore.new_for_filename(None, basedir=str(metadata_path(store)))
    assert isinstance(excinfo.value, ValueError)
    assert "basedir should be a directory" in message(excinfo)


# ----------------------------------------------------------------------------------------------
# numpy and pandas scalars as frame numbers (positive)
# ----------------------------------------------------------------------------------------------
NUMBER_KINDS = {
    "int": int,
    "np.int32": np.int32,
    "np.int64": np.int64,
    "np.uint16": np.uint16,
    "pandas-series-item": lambda v: pd.Series([v]).iloc[0],
    "pandas-nullable-item": lambda v: pd.Series([v], dtype="Int64").iloc[0],
    "pandas-index-item": lambda v: pd.Index([v])[0],
}


@pytest.mark.parametrize("kind", list(NUMBER_KINDS))
def test_scalar_frame_numbers_add_image(tmp_path: Path, kind: str) -> None:
    convert = NUMBER_KINDS[kind]
    path = tmp_path / "store"
    frames = expected_frames(4)
    with open_writer(path) as writer:
        for img, number, time in frames:
            writer.add_image(img, convert(number), pd.Series([time]).iloc[0])
        assert writer.frame_number == frames[-1][1]
    assert_store_reads_back(path, frames)
    with imgstore.new_for_filename(str(path)) as s:
        assert s.get_frame_metadata()["frame_number"] == [n for _, n, _ in frames]
        assert all(type(n) is int for n in s.get_frame_metadata()["frame_number"])


@pytest.mark.parametrize("kind", list(NUMBER_KINDS))
def test_scalar_frame_numbers_get_image(store: Path, kind: str) -> None:
    convert = NUMBER_KINDS[kind]
    with imgstore.new_for_filename(str(store)) as s:
        for i in (0, 4, 6):
            img, (number, time) = s.get_image(convert(FRAME_NUMBERS[i]))
            np.testing.assert_array_equal(img, frame_image(i))
            assert (number, time) == (FRAME_NUMBERS[i], FRAME_TIMES[i])
            img, (number, _) = s.get_image(None, frame_index=convert(i))
            np.testing.assert_array_equal(img, frame_image(i))
            assert number == FRAME_NUMBERS[i]
        img, (number, _) = s.get_image(convert(FRAME_NUMBERS[2] + 1), exact_only=False)
        assert number == FRAME_NUMBERS[2]


def test_scalar_frame_number_absent_message_is_plain(store: Path) -> None:
    with imgstore.new_for_filename(str(store)) as s:
        with pytest.raises(errors.FrameNotFoundError) as excinfo:
            s.get_image(np.int64(5))
    assert "frame #5 not found in any chunk" in message(excinfo)


# ----------------------------------------------------------------------------------------------
# fuzzing: only our errors may come out of new_for_filename
# ----------------------------------------------------------------------------------------------
YAMLISH = st.text(alphabet=":-[]{}!&*#|>'\"\n ,?%@_.abcxyz0129\\t", max_size=120)
YAML_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=8,
)
STORE_KEYS = [*REQUIRED_KEYS, "encoding", "created_utc", "timezone_local", "uuid", "extension"]


def assert_only_our_errors(path: Path) -> None:
    try:
        with imgstore.new_for_filename(str(path)) as s:
            s.get_frame_metadata()
    except errors.ImgStoreError:
        pass


@pytest.fixture(scope="module")
def fuzz_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("fuzz") / "store"
    make_store(path)
    return path


@pytest.fixture
def fuzz_copy(fuzz_store: Path, tmp_path: Path) -> Path:
    path = tmp_path / "store"
    shutil.copytree(fuzz_store, path)
    return path


FUZZ = settings(
    max_examples=50, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@FUZZ
@given(content=st.binary(max_size=300))
def test_fuzz_metadata_bytes(fuzz_copy: Path, content: bytes) -> None:
    metadata_path(fuzz_copy).write_bytes(content)
    assert_only_our_errors(fuzz_copy)


@FUZZ
@given(content=YAMLISH, prefix=st.sampled_from(["", "__store:\n  ", "__store: ", "a: 1\n__store:\n  class: "]))
def test_fuzz_metadata_yamlish_text(fuzz_copy: Path, content: str, prefix: str) -> None:
    metadata_path(fuzz_copy).write_text(prefix + content)
    assert_only_our_errors(fuzz_copy)


@FUZZ
@given(changes=st.dictionaries(st.sampled_from(STORE_KEYS), YAML_VALUES, min_size=1, max_size=3))
def test_fuzz_metadata_values(fuzz_store: Path, tmp_path_factory: pytest.TempPathFactory, changes: Dict) -> None:
    path = tmp_path_factory.mktemp("fuzzvalues")
    smd = store_block(fuzz_store)
    smd.update(changes)
    write_store_block(path, smd)
    assert_only_our_errors(path)


@FUZZ
@given(content=st.binary(max_size=300))
def test_fuzz_index_bytes(fuzz_copy: Path, content: bytes) -> None:
    chunk_index(fuzz_copy, 1).write_bytes(content)
    with imgstore.new_for_filename(str(fuzz_copy)) as s:
        assert s.chunks == [0, 2]
        img, _ = s.get_image(FRAME_NUMBERS[6])
        np.testing.assert_array_equal(img, frame_image(6))


INDEX_ARRAYS = hnp.arrays(
    dtype=hnp.scalar_dtypes() | hnp.byte_string_dtypes() | hnp.unicode_string_dtypes(),
    shape=hnp.array_shapes(min_dims=0, max_dims=2, min_side=0, max_side=4),
)


@FUZZ
@given(frame_number=INDEX_ARRAYS, frame_time=INDEX_ARRAYS)
@example(frame_number=np.array([], np.complex64), frame_time=np.array([], bool))  # found by the fuzzer
def test_fuzz_index_arrays(fuzz_copy: Path, frame_number: np.ndarray, frame_time: np.ndarray) -> None:
    np.savez(chunk_index(fuzz_copy, 1), frame_number=frame_number, frame_time=frame_time)
    with imgstore.new_for_filename(str(fuzz_copy)) as s:
        assert 0 in s.chunks and 2 in s.chunks
        img, _ = s.get_image(None, frame_index=0)
        np.testing.assert_array_equal(img, frame_image(0))
        if 1 in s.chunks:  # accepted: it must be what was written, as plain numbers
            meta = s._get_chunk_metadata(1)
            assert len(meta["frame_number"]) == len(meta["frame_time"]) == frame_number.size
            assert all(isinstance(t, float) for t in meta["frame_time"])
            assert all(isinstance(n, (int, float)) for n in meta["frame_number"])
