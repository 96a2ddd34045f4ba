"""Video stores move both ways: upstream imgstore 0.4.0 (OpenCV) reads ours, we read its.

Upstream runs only in the oracle interpreter. It can write only ``mjpeg/avi`` with pip's OpenCV,
so H.264 stores are checked in one direction. Upstream's own random access is not frame-exact
on files with B-frames, so its sequential reads are what must match.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
from pathlib import Path
from types import ModuleType

import pytest

import imgstore
from imgstore.index.sealedfile import SEALED_INDEX_FILENAME

from upstream_oracle import SCRIPTS_DIR, run_script

T0 = 1_600_000_000.0
FORMATS_UPSTREAM_READS = ["mjpeg/avi", "avc1/mp4", "h264/mkv"]
SHAPES = {"grey": (48, 64), "color": (48, 64, 3), "odd": (33, 47, 3)}


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"_imgstore_video_{name}", SCRIPTS_DIR / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


WRITER = _load("write_store")
READER = _load("read_store")


def _spec(path: Path, fmt: str, shape: tuple, count: int = 23) -> dict:
    return {
        "path": str(path),
        "format": fmt,
        "imgshape": list(shape),
        "imgdtype": "uint8",
        "chunksize": 10,
        "frame_numbers": [100 + 2 * i for i in range(count)],
        "frame_times": [T0 + 0.04 * i for i in range(count)],
        "noise": False,
        "metadata": {"rig": "arena-2", "übersicht": {"α": 1}},  # noqa: RUF001 - a Greek key on purpose
    }


def _check_sequential(dump: dict, spec: dict, reader: str) -> None:
    assert "error" not in dump, f"{reader} failed: {dump.get('error')}"
    expected_shape = [spec["imgshape"][0] & -2, spec["imgshape"][1] & -2, *spec["imgshape"][2:]]
    assert dump["props"]["image_shape"] == expected_shape
    assert dump["frame_metadata"]["values"] == {
        "frame_number": spec["frame_numbers"],
        "frame_time": spec["frame_times"],
    }
    reads = dump["sequential"]
    assert [r["frame_number"] for r in reads] == spec["frame_numbers"]
    assert [r["digest"]["code"] for r in reads] == list(range(len(spec["frame_numbers"]))), reader
    assert all(r["digest"]["shape"] == expected_shape for r in reads)
    assert "EOFError" in dump["sequential_end"]["raises"]


@pytest.fixture(scope="module")
def ours_read_by_upstream(tmp_path_factory) -> dict:
    """Every (format, shape) store we write, as upstream dumps it: one oracle call for all."""
    root = tmp_path_factory.mktemp("ours-video")
    specs = {}
    for fmt in FORMATS_UPSTREAM_READS:
        for kind, shape in SHAPES.items():
            spec = _spec(root / f"{fmt.replace('/', '_')}-{kind}", fmt, shape)
            WRITER.write_store(imgstore, spec)
            specs[(fmt, kind)] = spec
    dumps = run_script("read_store.py", [s["path"] for s in specs.values()])
    return {key: (spec, dumps[spec["path"]]) for key, spec in specs.items()}


@pytest.mark.parametrize("kind", list(SHAPES))
@pytest.mark.parametrize("fmt", FORMATS_UPSTREAM_READS)
def test_upstream_reads_our_video_stores(ours_read_by_upstream, fmt, kind):
    spec, dump = ours_read_by_upstream[(fmt, kind)]
    _check_sequential(dump, spec, "upstream")
    assert dump["props"]["user_metadata"] == spec["metadata"]
    if fmt == "mjpeg/avi":  # intra-only: even upstream's seeking lands on the right frame
        assert [r["digest"]["code"] for r in dump["by_index"]] == list(range(len(spec["frame_numbers"])))


@pytest.mark.parametrize("kind", list(SHAPES))
def test_we_read_upstream_mjpeg_stores(tmp_path, kind):
    spec = _spec(tmp_path / f"theirs-{kind}", "mjpeg/avi", SHAPES[kind])
    result = run_script("write_store.py", [spec])[spec["path"]]
    assert "error" not in result, result.get("error")
    dump = READER.dump_store(imgstore, spec["path"])
    _check_sequential(dump, spec, "ours")
    codes = list(range(len(spec["frame_numbers"])))
    assert [r["digest"]["code"] for r in dump["by_index"]] == codes
    assert [r["digest"]["code"] for r in dump["by_number"]] == codes


def test_upstream_cannot_write_h264_but_we_can(tmp_path):
    """The reason H.264 goes one way: upstream with pip's OpenCV fails at the first frame."""
    spec = _spec(tmp_path / "theirs-avc1", "avc1/mp4", SHAPES["grey"], count=2)
    result = run_script("write_store.py", [spec])[spec["path"]]
    assert "error" in result
    WRITER.write_store(imgstore, _spec(tmp_path / "ours-avc1", "avc1/mp4", SHAPES["grey"], count=2))


@pytest.mark.skipif(shutil.which("ffprobe") is None, reason="ffprobe is not installed (Debian package ffmpeg)")
@pytest.mark.parametrize("fmt", imgstore.VideoImgStore.supported_formats())
def test_ffprobe_reads_our_chunks(tmp_path, fmt):
    path = tmp_path / "s"
    WRITER.write_store(imgstore, _spec(path, fmt, SHAPES["color"], count=12))
    chunk = sorted(p for p in path.iterdir() if p.suffix in (".avi", ".mp4", ".mkv"))[0]
    out = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-count_frames",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=width,height,nb_read_frames",
            "-of",
            "csv=p=0",
            str(chunk),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert out == "64,48,10", f"ffprobe on {chunk.name}: {out}"


@pytest.mark.parametrize("count", [0, 10])
def test_a_store_ending_on_a_full_chunk_has_upstreams_files(tmp_path, count):
    """With no frame, or a frame count that fills its last chunk, upstream ends the store with an
    empty chunk (an index and a video file without frames); ours ends the same, and upstream then
    finds the extra data added after the last frame there."""
    extra = [{"after": count - 1, "data": {"label": "after-last"}}] if count else []
    specs = {
        side: {**_spec(tmp_path / side, "mjpeg/avi", SHAPES["grey"], count=count), "chunksize": 5, "extra": extra}
        for side in ("ours", "theirs")
    }
    result = run_script("write_store.py", [specs["theirs"]])[specs["theirs"]["path"]]
    assert "error" not in result, result.get("error")
    WRITER.write_store(imgstore, specs["ours"])
    # the same files, and our sealed index, which upstream never looks at
    assert sorted(os.listdir(tmp_path / "ours")) == sorted([*os.listdir(tmp_path / "theirs"), SEALED_INDEX_FILENAME])
    dump = run_script("read_store.py", [specs["ours"]["path"]])[specs["ours"]["path"]]
    assert "error" not in dump, dump.get("error")
    assert dump["props"]["frame_count"] == count
    ours = READER.dump_store(imgstore, specs["ours"]["path"])
    assert dump["props"]["frame_time_min"] == ours["props"]["frame_time_min"]
    if count:
        assert [r["label"] for r in dump["extra_data"]["records"]] == ["after-last"]
    else:
        assert dump["extra_data"] is None
