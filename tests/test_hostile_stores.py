"""Hostile stores (issue 19): reading one never hangs, never runs out of memory, never leaves the
store, raises only our errors and never returns a wrong frame.

The stores come from ``hostile_corpus.py``: the named cases of the issue, and a mutation fuzzer
over real stores (every file flipped, cut, swapped, rewritten with other values, or replaced by a
FIFO, a directory, a link to ``/dev/zero`` or a dangling link). Each case runs in a worker process
under a memory limit and a timeout (see ``hostile_corpus.Runner``); what must hold is stated in
``hostile_corpus.inspect_store``. The long mode, for the numbers in the docs::

    python tests/hostile_corpus.py --long
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List

import hostile_corpus as corpus
import numpy as np
import pytest
import yaml

import imgstore
from imgstore import errors
from imgstore.codecs import needs_opencv
from imgstore.io.metadata import MAX_METADATA_BYTES, MAX_METADATA_VALUES

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo") or sys.platform == "win32", reason="POSIX only")

#: a named case runs in well under a second; one that hangs is given up on after this
NAMED_TIMEOUT = 6.0
ALL_IDS = list(range(10))
WITHOUT_CHUNK_1 = [0, 1, 2, 3, 8, 9]  # frames 4-7 are chunk 1's
WITHOUT_CHUNK_2 = list(range(8))


@pytest.fixture(scope="session")
def corpus_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("hostile")


@pytest.fixture(scope="session")
def runner(corpus_root: Path) -> Any:
    with corpus.Runner(corpus_root) as worker:
        yield worker


def _only_ours(result: Dict[str, Any]) -> None:
    """Rules 1-3 of ``inspect_store``: no hang, no crash, no foreign error, nothing wrong returned."""
    assert result["outcome"] not in ("hang", "crash"), result
    assert not result["foreign"], result["foreign"]
    assert not result["violations"], result["violations"]
    assert not result["unnamed"], result["unnamed"]


def _refused(error: str, *words: str) -> Callable[[Dict[str, Any]], None]:
    def check(result: Dict[str, Any]) -> None:
        assert result["outcome"] == "refused", result
        assert result["open_error"][0] == error, result["open_error"]
        for word in words:
            assert word in result["open_error"][1], result["open_error"]

    return check


def _reads(ids: List[int], error: str = "", extra: bool = True) -> Callable[[Dict[str, Any]], None]:
    """Opens; the frames ``ids`` read back (None where ``error`` is raised instead)."""

    def check(result: Dict[str, Any]) -> None:
        assert result["outcome"] == "opened", result
        assert [i for i in result["ids"] if i is not None] == ids, result["ids"]
        if error:
            assert result["errors"].get(error), result["errors"]
        else:
            assert None not in result["ids"], result
        if extra:
            assert result["extra_rows"] is not None, result["errors"]

    return check


def _extra_refused(result: Dict[str, Any]) -> None:
    assert result["outcome"] == "opened", result
    assert result["ids"] == ALL_IDS
    assert result["extra_rows"] is None and result["errors"] == {"ExtraDataError": 1}, result


def _quick(check: Callable[[Dict[str, Any]], None], seconds: float) -> Callable[[Dict[str, Any]], None]:
    def timed(result: Dict[str, Any]) -> None:
        check(result)
        assert result["seconds"] < seconds, f"took {result['seconds']:.1f} s"

    return timed


EXPECT: Dict[str, Callable[[Dict[str, Any]], None]] = {
    # the chunk's path would be secret.mp4 beside the store: frames 4-7 must never show up
    "extension-escape": _refused("MetadataError", "extension", "/../../secret.mp4"),
    "fifo-lock": _reads(ALL_IDS),
    "fifo-frame": _reads([0, 2, 3, 4, 5, 6, 7, 8, 9], "FrameReadError"),
    "fifo-frame-png": _reads([0, 2, 3, 4, 5, 6, 7, 8, 9], "FrameReadError"),
    "fifo-index": _reads(WITHOUT_CHUNK_1),
    "fifo-journal": _reads(WITHOUT_CHUNK_2),
    "fifo-extra": _extra_refused,
    "fifo-video-to-recover": _reads(WITHOUT_CHUNK_2),
    "fifo-index-cache": _reads(ALL_IDS),
    "devzero-journal": _reads(WITHOUT_CHUNK_2),
    "devzero-extra": _extra_refused,
    "devzero-index": _reads(WITHOUT_CHUNK_1),
    "index-declares-1e12": _reads(WITHOUT_CHUNK_1),
    "npy-declares-1e6x1e6": _reads([0, 2, 3, 4, 5, 6, 7, 8, 9], "FrameReadError"),
    "metadata-nested-50000": _refused("MetadataError", "nested"),
    "extra-nested-50000": _extra_refused,
    "metadata-20MB-string": _quick(_refused("MetadataError", str(MAX_METADATA_BYTES)), 2.0),
    "metadata-many-values": _quick(_refused("MetadataError", str(MAX_METADATA_VALUES)), 4.0),
    "npy-wrong-shape": _reads([0, 2, 3, 4, 5, 6, 7, 8, 9], "FrameReadError"),
    "npy-wrong-dtype": _reads([0, 2, 3, 4, 5, 6, 7, 8, 9], "FrameReadError"),
    "imgshape-1e6x1e6": _refused("MetadataError", "imgshape", "bytes"),
    "npz-zip-version": _reads(WITHOUT_CHUNK_1),
    "npz-bad-npy-header": _reads(WITHOUT_CHUNK_1),
    "npy-bad-header": _reads([0, 2, 3, 4, 5, 6, 7, 8, 9], "FrameReadError"),
    "mp4-codec-tag-zzzz": _reads([4, 5, 6, 7, 8, 9], "FrameReadError"),
    "mp4-metadata-not-utf8": _reads([4, 5, 6, 7, 8, 9], "FrameReadError"),
    "mkv-cluster-damaged": _reads([4, 5, 6, 7, 8, 9], "FrameReadError"),
    "bmp-declares-huge-width": _reads([0, 2, 3, 4, 5, 6, 7, 8, 9], "FrameReadError"),
}


@pytest.mark.parametrize("name", corpus.NAMED)
def test_named_hostile_store(request: pytest.FixtureRequest, runner: Any, name: str) -> None:
    """Each hostile store of issue 19 (see ``hostile_corpus.NAMED`` for what each one is)."""
    (case,) = corpus.named_cases([name])
    if needs_opencv(case["base"][0]):
        request.getfixturevalue("opencv")  # skips without OpenCV
    result = runner.run(case, timeout=NAMED_TIMEOUT)
    _only_ours(result)
    EXPECT[name](result)


def test_every_named_case_has_an_expectation() -> None:
    assert set(EXPECT) == set(corpus.NAMED)


CI_BASES = {base.name: base for base in corpus.bases(corpus.CI_FORMATS)}


def _assert_fuzz(runner: Any, cases: List[Dict[str, Any]], compares: bool = True) -> None:
    results = [runner.run(case) for case in cases]
    failed = [
        f"{r['description']}: {r['outcome']} {r['foreign'][:2]} {r['violations'][:2]} {r['unnamed'][:2]}"
        for r in results
        if corpus.is_failure(r)
    ]
    assert not failed, f"{len(failed)} of {len(cases)} cases failed:\n" + "\n".join(failed[:20])
    if compares:  # the checks compared frames with the original ones, not only caught errors
        assert any(r["frames_checked"] for r in results)


@pytest.mark.parametrize("base", list(CI_BASES))
def test_mutation_fuzz(runner: Any, corpus_root: Path, base: str) -> None:
    """Every file of a real store, in turn: bit flips, cuts, swaps, other values, not a regular file."""
    _assert_fuzz(runner, corpus.ci_cases(corpus_root, CI_BASES[base]))


@pytest.mark.parametrize("base", [n for n, b in CI_BASES.items() if b.variant == "closed"])
def test_metadata_fuzz(runner: Any, corpus_root: Path, base: str) -> None:
    """Each ``__store`` setting changed to another well-formed value: frames only in the declared shape and dtype."""
    corpus.base_files(corpus_root, CI_BASES[base])
    _assert_fuzz(runner, corpus.metadata_cases(CI_BASES[base]), compares=False)


@pytest.mark.parametrize("fmt", ["npy", "png", "jpg"])
def test_fifo_frame_file_in_fuzzed_store(runner: Any, corpus_root: Path, fmt: str) -> None:
    """A FIFO in place of a frame file of each folder format (left out of ``ci_cases``)."""
    base = corpus.Base(fmt)
    (case,) = [c for c in corpus.fuzz_cases(base, corpus.base_files(corpus_root, base), 1, ("fifo",))
               if corpus.is_frame_file(base, c["target"])][:1]  # fmt: skip
    result = runner.run(case, timeout=NAMED_TIMEOUT)
    _only_ours(result)


# ------------------------------------------------------------------------------------------------
# the limits, from both sides: what is refused, and what still reads
# ------------------------------------------------------------------------------------------------
def _store(path: Path, fmt: str = "npy", **kw: Any) -> Path:
    with imgstore.new_for_format(fmt, path=str(path), imgshape=(4, 5), chunksize=3, **kw) as store:
        for i in range(4):
            store.add_image(np.full((4, 5), i, np.uint8), i, float(i))
    return path


def _nested(depth: int) -> Any:
    value: Any = [1]
    for _ in range(depth - 1):
        value = [value]
    return value


def test_metadata_just_under_the_limits_opens_in_time(tmp_path: Path) -> None:
    path = _store(tmp_path / "s")
    with open(path / "metadata.yaml", "a") as f:
        f.write("note: '" + "x" * (MAX_METADATA_BYTES - 50_000) + "'\n")
        f.write("values: [" + ", ".join(["1"] * (MAX_METADATA_VALUES // 2)) + "]\n")
        f.write("nested: " + "[" * 90 + "]" * 90 + "\n")
    started = time.monotonic()
    store = imgstore.new_for_filename(str(path))
    assert time.monotonic() - started < 5
    assert len(store.user_metadata["values"]) == MAX_METADATA_VALUES // 2
    assert store.frame_count == 4


@pytest.mark.parametrize(
    ("metadata", "word"),
    [
        ({"note": "x" * MAX_METADATA_BYTES}, "bytes"),
        ({"values": list(range(MAX_METADATA_VALUES))}, "values"),
        ({"nested": _nested(10)}, None),  # ten deep: fine
    ],
    ids=["too-large", "too-many-values", "ten-deep"],
)
def test_writer_refuses_metadata_readers_would_refuse(tmp_path: Path, metadata: Any, word: Any) -> None:
    """A store this library writes, it reads: metadata over the limits is refused before anything is written."""
    path = tmp_path / "s"
    if word is None:
        _store(path, metadata=metadata)
        assert imgstore.new_for_filename(str(path)).user_metadata == metadata
        return
    with pytest.raises(errors.MetadataError, match=word):
        _store(path, metadata=metadata)
    assert not (path / "metadata.yaml").exists() and not (path / ".lock").exists()


@pytest.mark.parametrize("extension", [".mp4", ".avi", ".mkv", None, ""])
def test_video_extensions_that_are_file_extensions_are_read(tmp_path: Path, extension: Any) -> None:
    path = tmp_path / "s"
    with imgstore.new_for_format("avc1/mp4", path=str(path), imgshape=(16, 16), chunksize=4) as store:
        for i in range(3):
            store.add_image(np.full((16, 16), 40 * i, np.uint8), i, float(i))
    corpus._write_store_block(path, extension=extension)
    if extension in (None, "", ".mp4"):
        assert imgstore.new_for_filename(str(path)).frame_count == 3
    else:  # a valid extension, but not the one the chunks carry: no chunks found
        assert imgstore.new_for_filename(str(path)).frame_count == 0


@pytest.mark.parametrize("extension", ["/../../secret.mp4", "../x.mp4", ".mp4/..", "mp4", ".m p4", 5, ["x"]])
def test_video_extensions_that_are_paths_are_refused(tmp_path: Path, extension: Any) -> None:
    path = tmp_path / "s"
    with imgstore.new_for_format("avc1/mp4", path=str(path), imgshape=(16, 16), chunksize=4) as store:
        store.add_image(np.zeros((16, 16), np.uint8), 0, 0.0)
    corpus._write_store_block(path, extension=extension)
    with pytest.raises(errors.MetadataError, match="extension") as excinfo:
        imgstore.new_for_filename(str(path))
    assert str(path / "metadata.yaml") in str(excinfo.value)


@pytest.mark.parametrize(
    ("encoding", "imgshape", "imgdtype"),
    [("cv_bayerbg", [4, 5, 3], "uint8"), ("cv_gray", [4, 5, 3], "uint8"), ("cv_bayerbg", [4, 5], "float32")],
)
def test_encoding_that_cannot_convert_the_frames_is_refused(
    tmp_path: Path, encoding: str, imgshape: Any, imgdtype: str
) -> None:
    """OpenCV's conversion would fail on every frame (cv2.error, not ours): the store says so when opened."""
    path = _store(tmp_path / "s")
    corpus._write_store_block(path, encoding=encoding, imgshape=imgshape, imgdtype=imgdtype)
    with pytest.raises(errors.MetadataError, match=encoding):
        imgstore.new_for_filename(str(path))


def test_files_linked_to_regular_files_are_read(tmp_path: Path) -> None:
    """Regular files only, but through symlinks too: a store whose files live elsewhere still reads."""
    path = _store(tmp_path / "s")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for rel in ("metadata.yaml", "000000/index.npz", "000000/000001.npy", "000001/index.npz"):
        target = elsewhere / rel.replace("/", "-")
        os.replace(path / rel, target)
        (path / rel).symlink_to(target)
    with imgstore.new_for_filename(str(path)) as store:
        assert store.frame_count == 4
        assert [int(store.get_image(None, frame_index=i)[0][0, 0]) for i in range(4)] == [0, 1, 2, 3]


def test_index_yaml_alias_bomb_skips_the_chunk(tmp_path: Path, caplog: Any) -> None:
    path = _store(tmp_path / "s")
    (path / "000001" / "index.npz").unlink()
    bomb = ["a0: &a0 [1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    bomb += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]
    (path / "000001" / "index.yaml").write_text("\n".join(bomb) + "\nframe_number: *a8\nframe_time: *a8\n")
    started = time.monotonic()
    with imgstore.new_for_filename(str(path)) as store:
        assert store.chunks == [0]
    assert time.monotonic() - started < 5
    assert any("alias" in r.getMessage() for r in caplog.records)


def test_bpk_frame_larger_than_it_declares_is_refused(tmp_path: Path) -> None:
    """bloscpack would decompress a file's chunks into an array of the size its metadata declares,
    unchecked: a file declaring a small array and holding a large one would overrun it."""
    from imgstore.codecs.bpk import _import_bloscpack

    bloscpack = _import_bloscpack()
    if bloscpack is None:
        pytest.skip("bloscpack is not installed")
    path = _store(tmp_path / "s", fmt="bpk")
    frame = path / "000000" / "000001.bpk"
    small = tmp_path / "small.bpk"
    bloscpack.pack_ndarray_to_file(np.zeros((4, 5), np.uint8), str(small))  # declares the store's (4, 5)
    large = tmp_path / "large.bpk"
    bloscpack.pack_ndarray_to_file(np.full((40, 5), 9, np.uint8), str(large))  # 200 bytes in its chunk
    head = small.read_bytes()[: len(small.read_bytes()) - _chunks_len(small)]
    frame.write_bytes(head + large.read_bytes()[len(large.read_bytes()) - _chunks_len(large) :])
    with imgstore.new_for_filename(str(path)) as store:
        with pytest.raises(errors.FrameReadError, match=r"000001\.bpk"):
            store.get_image(None, frame_index=1)
        assert int(store.get_image(None, frame_index=2)[0][0, 0]) == 2


def _chunks_len(path: Path) -> int:
    """Bytes of a bloscpack file's compressed chunks (each with its checksum), at its end."""
    import io

    from imgstore.codecs.bpk import _import_bloscpack

    file_io = _import_bloscpack().file_io
    f = io.BytesIO(path.read_bytes())
    source = file_io.CompressedFPSource(f)
    start = f.tell()
    for _ in source:
        pass
    return f.tell() - start


def test_metadata_of_a_real_store_is_unchanged_by_the_bounds(tmp_path: Path) -> None:
    """The bounded loader reads exactly what yaml.safe_load reads."""
    path = _store(tmp_path / "s", metadata={"genotype": "wt", "nested": {"a": [1, 2.5, None, "x"]}})
    expected = yaml.safe_load((path / "metadata.yaml").read_text())
    expected.pop("__store")
    assert imgstore.new_for_filename(str(path)).user_metadata == expected
