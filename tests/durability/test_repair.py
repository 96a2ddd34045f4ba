"""``repair_store`` and ``imgstore-info --repair``: a lost metadata.yaml rebuilt from the chunks,
and the temporary files of killed index writes removed."""

from __future__ import annotations

import datetime
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

import imgstore
from imgstore.durability.rebuild import lost_metadata

from framecodes import decode_grid, make_grid_frame
from upstream_oracle import run_upstream

INFO = str(Path(sys.executable).parent / "imgstore-info")
T0 = 1_700_000_000.0
SHAPES = {"grey": (33, 48), "colour": (32, 48, 3)}
#: (format, kind): every layout (folders of frames, video files) and a lossless and a lossy format of each
CASES = [("npy", "grey"), ("png", "colour"), ("jpg", "colour"), ("avc1/mp4", "grey"), ("mjpeg/avi", "colour")]


def _write(path: Path, fmt: str, shape: tuple, count: int = 17, chunksize: int = 7) -> dict:
    lossless = fmt in ("npy", "png")
    with imgstore.new_for_format(
        fmt, path=str(path), imgshape=shape, chunksize=chunksize, metadata={"genotype": "wt"}
    ) as store:
        for i in range(count):
            store.add_image(make_grid_frame(i, shape, noise=lossless), 500 + i, T0 + i / 25)
    return yaml.safe_load((path / "metadata.yaml").read_text())["__store"]


def _strip_recorded_block(path: Path) -> None:
    """Make every chunk index hold only its frame arrays, as old writers left them."""
    for index in path.rglob("*.npz"):
        with np.load(index) as npz:
            arrays = {key: npz[key] for key in ("frame_number", "frame_time")}
        np.savez(index, **arrays)


def _frames(path: Path) -> list:
    with imgstore.new_for_filename(str(path)) as store:
        md = store.get_frame_metadata()
        ids = [decode_grid(store.get_image(None, frame_index=i)[0]) for i in range(store.frame_count)]
        return [md["frame_number"], md["frame_time"], ids, store.image_shape]


@pytest.mark.parametrize(("fmt", "kind"), CASES, ids=[f"{f}-{k}" for f, k in CASES])
def test_a_lost_metadata_file_is_rebuilt_from_the_chunks(tmp_path: Path, fmt: str, kind: str) -> None:
    path = tmp_path / "store"
    before = _write(path, fmt, SHAPES[kind])
    frames = _frames(path)
    (path / "metadata.yaml").unlink()
    assert lost_metadata(str(path))

    report = imgstore.repair_store(str(path))

    assert report.metadata_rebuilt
    after = yaml.safe_load((path / "metadata.yaml").read_text())
    # everything the writer copied into the chunk indexes comes back as it was; the user metadata cannot
    assert after["__store"] == before
    assert set(after) == {"__store"}
    assert report.guessed == ["user metadata: none (it lived only in the lost file)"]
    assert _frames(path) == frames
    assert "rebuilt the lost metadata.yaml" in str(report)


@pytest.mark.parametrize(("fmt", "kind"), CASES, ids=[f"{f}-{k}" for f, k in CASES])
def test_what_the_indexes_do_not_record_is_guessed_from_the_frames(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, fmt: str, kind: str
) -> None:
    path = tmp_path / "store"
    before = _write(path, fmt, SHAPES[kind])
    frames = _frames(path)
    (path / "metadata.yaml").unlink()
    _strip_recorded_block(path)

    with caplog.at_level(logging.WARNING, logger="imgstore"):
        report = imgstore.repair_store(str(path / "metadata.yaml"))

    smd = yaml.safe_load((path / "metadata.yaml").read_text())["__store"]
    for key in ("class", "format", "imgshape", "imgdtype", "chunksize", "version", "encoding"):
        assert smd[key] == before[key], key
    assert smd.get("extension") == before.get("extension")
    first = datetime.datetime.fromtimestamp(T0, datetime.timezone.utc).replace(tzinfo=None)
    assert datetime.datetime.fromisoformat(smd["created_utc"]) == first  # the first frame's time
    assert smd["uuid"] != before["uuid"] and len(smd["uuid"]) == 32
    guessed = "\n".join(report.guessed)
    for what in ("format", "image shape", "chunk size 7", "created", "time zone", "uuid", "user metadata"):
        assert what in guessed
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "rebuilding" in r.getMessage()]
    assert len(warned) == len(report.guessed)
    assert _frames(path) == frames


def test_one_chunk_only_gets_the_default_chunk_size_and_says_so(tmp_path: Path) -> None:
    path = tmp_path / "store"
    _write(path, "npy", SHAPES["grey"], count=5, chunksize=50)
    (path / "metadata.yaml").unlink()
    _strip_recorded_block(path)
    report = imgstore.repair_store(str(path))
    assert yaml.safe_load((path / "metadata.yaml").read_text())["__store"]["chunksize"] == 200
    assert any("chunk size 200 (one chunk only, of 5 frames" in g for g in report.guessed)


def test_the_plain_error_points_at_repair_and_repair_rescues(tmp_path: Path) -> None:
    path = tmp_path / "store"
    _write(path, "png", SHAPES["grey"])
    (path / "metadata.yaml").unlink()
    plain = subprocess.run([INFO, str(path)], capture_output=True, text=True, timeout=120)
    assert plain.returncode == 1
    assert plain.stderr.strip().splitlines() == [
        f"imgstore-info: error: path '{path}' holds no metadata.yaml: not an imgstore; it holds chunks, so its "
        f"metadata.yaml was lost: `imgstore-info --repair {path}` rebuilds it"
    ]
    repaired = subprocess.run([INFO, str(path), "--repair"], capture_output=True, text=True, timeout=120)
    assert repaired.returncode == 0, repaired.stderr
    assert repaired.stdout.startswith("repair:        rebuilt the lost metadata.yaml from the chunks (guessed: ")
    assert "frames:        17 (numbers 500 .. 516)" in repaired.stdout


def test_a_folder_without_chunks_is_still_not_a_store(tmp_path: Path) -> None:
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "readme.txt").write_text("no store here")
    assert not lost_metadata(str(tmp_path / "notes"))
    result = subprocess.run([INFO, str(tmp_path / "notes"), "--repair"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert "holds no metadata.yaml: not an imgstore" in result.stderr and "rebuilds it" not in result.stderr


_UPSTREAM_READS = """
def main(path):
    import imgstore
    store = imgstore.new_for_filename(path)
    try:
        numbers = [store.get_next_image()[1][0] for _ in range(2)]
        return {"class": type(store).__name__, "shape": list(store.image_shape), "frames": store.frame_count,
                "numbers": numbers}
    finally:
        store.close()
"""


def test_upstreams_motif_store_is_rebuilt_and_upstream_reads_it(tmp_path: Path, fixtures_dir: Path) -> None:
    """Upstream's Motif recording (format 'libx264', no 'extension' key) without its metadata.yaml."""
    path = tmp_path / "store_mp4"
    shutil.copytree(fixtures_dir / "store_mp4", path)
    (path / "metadata.yaml").unlink()
    report = imgstore.repair_store(str(path))
    smd = yaml.safe_load((path / "metadata.yaml").read_text())["__store"]
    assert (smd["class"], smd["format"], smd["imgshape"], smd["chunksize"]) == (
        "VideoImgStoreFFMPEG",
        "libx264",
        [512, 512],
        100,
    )
    # Motif's frame times count seconds from 1: no clock time, so the creation time is the files'
    assert any("created" in g and "oldest chunk file" in g for g in report.guessed)
    with imgstore.new_for_filename(str(path)) as store:
        assert store.frame_count == 179
    theirs = run_upstream(_UPSTREAM_READS, str(path))
    assert theirs == {"class": "VideoImgStore", "shape": [512, 512], "frames": 179, "numbers": [0, 1]}


# ----------------------------------------------------------------------------------------------
# killed index writes
# ----------------------------------------------------------------------------------------------
def test_repair_removes_the_temporary_files_of_killed_writes(tmp_path: Path) -> None:
    video, folders = tmp_path / "video", tmp_path / "folders"
    _write(video, "mjpeg/avi", SHAPES["grey"])
    _write(folders, "npy", SHAPES["grey"])
    leftovers = [
        video / ".000002.npz.1a2b3c4d.tmp",
        video / "000001.npz.deadbeef.tmp",
        video / ".metadata.yaml.0123abcd.tmp",
        video / ".000001.extra.json.9f8e7d6c.tmp",
        folders / "000001" / ".index.npz.5a5a5a5a.tmp",
        folders / "000002" / "index.npz.abcdef01.tmp",
    ]
    kept = [
        video / "notes.tmp",
        video / "000001.npz.tmp",  # no hex stamp: not a write of ours
        video / ".000001.avi.1a2b3c4d.tmp",  # not an index or metadata file
        folders / "000001" / "index.npz.xyz12345.tmp",
        folders / "scratch" / ".index.npz.1a2b3c4d.tmp",  # not in a chunk folder
    ]
    for p in leftovers + kept:
        p.parent.mkdir(exist_ok=True)
        p.write_bytes(b"PK\x03\x04 cut short")
    frames = [_frames(video), _frames(folders)]

    reports = [imgstore.repair_store(str(video)), imgstore.repair_store(str(folders))]

    assert sorted(map(str, reports[0].temporary_files_removed + reports[1].temporary_files_removed)) == sorted(
        map(str, leftovers)
    )
    assert not any(p.exists() for p in leftovers)
    assert all(p.exists() for p in kept)
    assert "removed 4 temporary file(s) of killed writes" in str(reports[0])
    assert [_frames(video), _frames(folders)] == frames
    assert not imgstore.repair_store(str(video)).changed  # once removed, nothing more to do


def test_a_store_that_needs_nothing_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "store"
    _write(path, "npy", SHAPES["grey"])
    listing = sorted(os.listdir(path))
    report = imgstore.repair_store(str(path))
    assert not report.changed and not report.metadata_rebuilt and not report.temporary_files_removed
    assert sorted(os.listdir(path)) == listing
