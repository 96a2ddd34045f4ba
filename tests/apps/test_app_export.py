"""``imgstore-export``, run as a user runs it: the installed console script in a subprocess.

Frames carry their own id (``framecodes``' grid, id = frame number), so a decoded video says
exactly which frames it holds and in which order.
"""

from __future__ import annotations

import csv
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List, Tuple

import av
import cv2
import numpy as np
import pytest

import imgstore

from framecodes import decode_grid, make_grid_frame
from toolrun import interrupt_once_started, run_parallel

TOOL = str(Path(sys.executable).parent / "imgstore-export")
pytestmark = pytest.mark.skipif(not os.path.exists(TOOL), reason="imgstore-export is not installed: pip install -e .")

T0 = 1_700_000_000.0  # 2023-11-14 23:13:20 in Berlin
ZONE = "Europe/Berlin"
SHAPE = (48, 64)
COLOUR_SHAPE = (48, 64, 3)
#: grey store: numbers 100..139 without 105, 120 and 121, at 20 fps
NUMBERS = [n for n in range(100, 140) if n not in (105, 120, 121)]
COLOUR_FRAMES = 30


def grey_time(number: int) -> float:
    return T0 + (number - 100) / 20


def run_all(*commands: List[Any]) -> List[subprocess.CompletedProcess]:
    """Run several ``imgstore-export`` commands at once (start-up time dominates)."""
    return run_parallel(TOOL, *commands)


def decode_video(path: Path) -> Tuple[List[int], Any]:
    """Frame ids of every frame of a video file, in order, and its average frame rate."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        ids = [decode_grid(frame.to_ndarray(format="bgr24")) for frame in container.decode(stream)]
        return ids, stream.average_rate


def read_sidecar(path: Path) -> List[Tuple[int, int, float]]:
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert rows and list(rows[0]) == ["frame_index", "frame_number", "frame_time"]
    return [(int(r["frame_index"]), int(r["frame_number"]), float(r["frame_time"])) for r in rows]


def one_error_line(result: subprocess.CompletedProcess, status: int, *words: str) -> str:
    assert result.returncode == status, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for word in words:
        assert word in lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> Dict[str, Path]:
    base = tmp_path_factory.mktemp("export-stores")
    grey = base / "grey"
    with imgstore.new_for_format(
        "npy", path=str(grey), imgshape=SHAPE, chunksize=10, metadata={"timezone": ZONE}
    ) as store:
        for n in NUMBERS:
            store.add_image(make_grid_frame(n, SHAPE), n, grey_time(n))
    colour = base / "colour"
    with imgstore.new_for_format("avc1/mp4", path=str(colour), imgshape=COLOUR_SHAPE, chunksize=10) as store:
        for i in range(COLOUR_FRAMES):
            store.add_image(make_grid_frame(i, COLOUR_SHAPE), i, T0 + i / 30)
    repeats = base / "repeats"
    with imgstore.new_for_format("npy", path=str(repeats), imgshape=(8, 8)) as store:
        for i, n in enumerate((1, 2, 2, 3)):
            store.add_image(np.zeros((8, 8), np.uint8), n, T0 + i)
    return {"grey": grey, "colour": colour, "repeats": repeats}


@pytest.fixture(scope="module")
def exports(stores: Dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Dict[str, Any]:
    """The successful exports, run together: each test checks one of them."""
    out = tmp_path_factory.mktemp("exports")
    grey, colour = stores["grey"], stores["colour"]
    commands = {
        "mp4": [grey, out / "all.mp4"],  # with the progress bar
        "avi": [colour, out / "part.avi", "-q", "--start-index", "5", "--end-index", "20", "--every", "3", "--fps", 10],
        "png": [grey, f"{out / 'pngs'}/", "-q", "--start", "103", "--end", "112"],
        "npy": [
            grey,
            out / "seq" / "img_%04d.npy",
            "-q",
            "--name",
            "index",
            "--start-time",
            "2023-11-14T23:13:20.5",
            "--end-time",
            T0 + 1.0,
        ],
    }
    results = dict(zip(commands, run_all(*commands.values())))
    return {"out": out, **results}


def test_video_mp4_holds_every_frame_in_order(stores: Dict[str, Path], exports: Dict[str, Any]) -> None:
    result, out = exports["mp4"], exports["out"]
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert "export" in result.stderr and f"wrote {len(NUMBERS)} frames to" in result.stderr  # progress + summary
    ids, rate = decode_video(out / "all.mp4")
    assert ids == NUMBERS
    assert rate == 20  # the store's measured frame rate
    assert not (out / "all.mp4.part").exists()
    assert read_sidecar(out / "all.mp4.frames.csv") == [(i, n, grey_time(n)) for i, n in enumerate(NUMBERS)]


def test_video_avi_index_range_every_fps(exports: Dict[str, Any]) -> None:
    result, out = exports["avi"], exports["out"]
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # --quiet
    ids, rate = decode_video(out / "part.avi")
    assert ids == [5, 8, 11, 14, 17, 20]
    assert rate == 10
    assert read_sidecar(out / "part.avi.frames.csv") == [(i, i, T0 + i / 30) for i in ids]


def test_png_directory_exact_pixels(exports: Dict[str, Any]) -> None:
    result, out = exports["png"], exports["out"]
    assert result.returncode == 0, result.stderr
    expected = [n for n in range(103, 113) if n != 105]
    assert sorted(os.listdir(out / "pngs")) == [f"frame_{n:06d}.png" for n in expected]
    for n in expected:
        img = cv2.imread(str(out / "pngs" / f"frame_{n:06d}.png"), cv2.IMREAD_UNCHANGED)
        np.testing.assert_array_equal(img, make_grid_frame(n, SHAPE))


def test_npy_pattern_named_by_index_time_range(exports: Dict[str, Any]) -> None:
    # 23:13:20.5 in Berlin (the recording's zone) = T0 + 0.5 s = frame 110 at index 9;
    # T0 + 1.0 s = frame 120, which was dropped: the last frame is 119 at index 18
    result, out = exports["npy"], exports["out"]
    assert result.returncode == 0, result.stderr
    indexes = list(range(9, 19))
    assert [NUMBERS[i] for i in indexes] == list(range(110, 120))
    assert sorted(os.listdir(out / "seq")) == [f"img_{i:04d}.npy" for i in indexes]
    for i in indexes:
        img = np.load(out / "seq" / f"img_{i:04d}.npy")
        assert img.dtype == np.uint8
        np.testing.assert_array_equal(img, make_grid_frame(NUMBERS[i], SHAPE))


def test_refusals_and_overwrite(stores: Dict[str, Path], tmp_path: Path) -> None:
    taken = tmp_path / "taken.mp4"
    taken.write_bytes(b"not a video")
    replaced = tmp_path / "replaced.mp4"
    replaced.write_bytes(b"not a video")
    full = tmp_path / "full"
    full.mkdir()
    (full / "notes.txt").write_text("keep me")
    grey = stores["grey"]
    refused, overwritten, nonempty, collide = run_all(
        [grey, taken, "-q"],
        [grey, replaced, "-q", "--overwrite", "--end-index", "2"],
        [grey, full, "-q"],
        [stores["repeats"], f"{tmp_path / 'rep'}/", "-q"],
    )
    one_error_line(refused, 1, str(taken), "--overwrite")
    assert taken.read_bytes() == b"not a video"
    assert not (tmp_path / "taken.mp4.frames.csv").exists()
    assert overwritten.returncode == 0, overwritten.stderr
    assert decode_video(replaced)[0] == NUMBERS[:3]
    one_error_line(nonempty, 1, str(full), "not empty")
    assert os.listdir(full) == ["notes.txt"]
    one_error_line(collide, 1, "--name index")


def test_help_missing_store_and_bad_usage(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-store"
    helped, failed, bad = run_all(["--help"], [missing, tmp_path / "x.mp4"], [missing, "x.gif", "--every", "0"])
    assert helped.returncode == 0
    for option in ("--start", "--end-index", "--start-time", "--every", "--fps", "--image-format", "--name"):
        assert option in helped.stdout
    one_error_line(failed, 1, str(missing))
    assert not (tmp_path / "x.mp4").exists()
    assert bad.returncode == 2 and "--every" in bad.stderr


def _camera(path: Path, start: float, count: int, shape: Tuple[int, ...]) -> Path:
    with imgstore.new_for_format("npy", path=str(path), imgshape=shape, chunksize=20) as store:
        for i in range(count):
            store.add_image(make_grid_frame(i, shape, noise=False), 1000 + i, start + i / 25)
    return path


def test_mosaic_of_several_cameras_with_every_cameras_frames_in_the_sidecar(tmp_path: Path) -> None:
    """Two cameras side by side, the second starting late: each video frame is one step, its tiles the
    cameras' frames; the sidecar names each camera's frame (blank where it had none)."""
    top = _camera(tmp_path / "top", T0, 40, (64, 96))
    side = _camera(tmp_path / "side", T0 + 0.4 + 0.002, 20, (48, 64, 3))  # from top's step 10 to 29
    out = tmp_path / "rig.mp4"
    overlay = tmp_path / "overlay.avi"
    plain, drawn = run_all(
        [str(top), str(side), str(out), "--mosaic", "--start", "1005", "--end", "1034", "--layout", "1x2", "-q"],
        [str(top), str(side), str(overlay), "--mosaic", "--overlay", "-q"],
    )
    assert plain.returncode == 0 and drawn.returncode == 0, plain.stderr + drawn.stderr
    with av.open(str(out)) as container:
        frames = [f.to_ndarray(format="bgr24") for f in container.decode(video=0)]
    assert len(frames) == 30 and frames[0].shape == (64, 192, 3)
    assert [decode_grid(f[:, :96]) for f in frames] == list(range(5, 35))
    side_tiles = [f[8:56, 96 + 16 : 96 + 80] for f in frames]  # a 48x64 frame centred in its 64x96 tile
    assert [decode_grid(t) for t in side_tiles[5:25]] == list(range(20))
    assert all(t.max() < 40 for t in side_tiles[:5] + side_tiles[25:])  # no frame: black
    with open(str(out) + ".frames.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0])[:5] == ["step", "time", "top_frame_index", "top_frame_number", "top_frame_time"]
    assert [int(r["step"]) for r in rows] == list(range(5, 35))
    assert rows[5]["side_frame_number"] == "1000" and float(rows[5]["side_frame_time"]) == pytest.approx(T0 + 0.402)
    assert rows[0]["side_frame_index"] == "" and rows[-1]["side_frame_number"] == ""
    with av.open(str(overlay)) as container:
        assert sum(1 for _ in container.decode(video=0)) == 40


def test_mosaic_usage_errors(tmp_path: Path) -> None:
    top = _camera(tmp_path / "top", T0, 5, (16, 16))
    side = _camera(tmp_path / "side", T0, 5, (16, 16))
    results = run_all(
        [str(top), str(side), str(tmp_path / "a.mp4")],
        [str(top), str(side), str(tmp_path / "frames") + "/", "--mosaic"],
        [str(top), str(tmp_path / "c.mp4"), "--layout", "2x2"],
        [str(top), str(tmp_path / "d.mp4"), "--fill", "hold"],
    )
    for result, words in zip(results, (["--mosaic"], ["--mosaic", "video file"], ["--mosaic"], ["--mosaic"])):
        assert result.returncode == 2 and all(w in result.stderr for w in words), result.stderr
    # a layout the cameras do not fit, or no video could hold: one line, as every refusal of the cameras
    too_small, too_large = run_all(
        [str(top), str(side), str(tmp_path / "b.mp4"), "--mosaic", "--layout", "1x1"],
        [str(top), str(side), str(tmp_path / "b.mp4"), "--mosaic", "--layout", "3000x1"],
    )
    for result, words in ((too_small, "--layout 1x1 has no room for 2"), (too_large, "48000 pixels: too large")):
        assert result.returncode == 1 and len(result.stderr.splitlines()) == 1 and words in result.stderr
    assert not any((tmp_path / name).exists() for name in ("a.mp4", "b.mp4", "c.mp4", "d.mp4", "frames"))


def test_a_first_camera_frame_without_a_time_is_exported_with_its_overlay(tmp_path: Path) -> None:
    """A frame may have no time (NaN): its step has no reference time; the overlay says 'time ?'."""
    top = tmp_path / "top"
    with imgstore.new_for_format("npy", path=str(top), imgshape=(32, 48), chunksize=20) as store:
        for i in range(10):
            store.add_image(make_grid_frame(i, (32, 48), noise=False), i, math.nan if i == 4 else T0 + i / 25)
    side = _camera(tmp_path / "side", T0 + 0.001, 10, (32, 48))
    out = tmp_path / "rig.mp4"
    (result,) = run_all([str(top), str(side), str(out), "--mosaic", "--overlay", "--fill", "hold", "-q"])
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(open(str(out) + ".frames.csv", newline="")))
    assert rows[4]["top_frame_index"] == "4" and rows[4]["side_frame_index"] == ""  # no time: nothing matches


def test_ctrl_c_leaves_no_video_and_no_sidecar(tmp_path: Path) -> None:
    """Interrupted while frames are read ahead and encoded: the reading thread stops, the partial
    video is removed, and no sidecar claims a complete export."""
    store_path = tmp_path / "long"
    with imgstore.new_for_format("npy", path=str(store_path), imgshape=(480, 640), chunksize=500) as store:
        frame = make_grid_frame(1, (480, 640))
        for i in range(3000):
            store.add_image(frame, i, T0 + i / 25)
    out = tmp_path / "out.mp4"
    returncode, stderr = interrupt_once_started([TOOL, store_path, out], tmp_path / "out.mp4.part")
    assert returncode == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["long"]
