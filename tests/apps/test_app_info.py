"""``imgstore-info``, run as a user runs it: the installed console script in a subprocess."""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List
from zoneinfo import ZoneInfo

import cv2
import numpy as np
import pytest

import imgstore
from imgstore.index.sealedfile import SEALED_INDEX_FILENAME
from imgstore.util import motif_get_recording_timezone

from framecodes import make_grid_frame
from toolrun import run_parallel

TOOL = str(Path(sys.executable).parent / "imgstore-info")
pytestmark = pytest.mark.skipif(not os.path.exists(TOOL), reason="imgstore-info is not installed: pip install -e .")

T0 = 1_700_000_000.0  # 2023-11-14 17:13:20 in New York
FPS = 25
ZONE = "America/New_York"
SHAPE = (32, 48)
#: 100..159 without 110 and 130..132 (two gaps, 4 dropped frames), then 159 again and 158 (a repeat and a
#: step back): 58 frames in chunks of 20, one every 40 ms
NUMBERS = [*(n for n in range(100, 160) if n != 110 and not 130 <= n <= 132), 159, 158]
TIMES = [T0 + (n - 100) / FPS for n in NUMBERS[:-2]] + [T0 + 60 / FPS, T0 + 61 / FPS]
USER_MD = {"timezone": ZONE, "genotype": "wt", "arena": {"id": 3, "tags": ["a", "b"]}}


def run_all(*commands: List[Any], env: Any = None) -> List[subprocess.CompletedProcess]:
    """Run several ``imgstore-info`` commands at once (start-up time dominates)."""
    return run_parallel(TOOL, *commands, timeout=60, env=env)


def info(*args: Any, env: Any = None) -> subprocess.CompletedProcess:
    return run_all(list(args), env=env)[0]


@pytest.fixture(scope="module")
def gappy_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An npy store with gaps, a repeat and a step back in its frame numbers, user metadata and extra data."""
    path = tmp_path_factory.mktemp("info") / "gappy"
    with imgstore.new_for_format("npy", path=str(path), imgshape=SHAPE, chunksize=20, metadata=USER_MD) as store:
        for n, t in zip(NUMBERS, TIMES):
            store.add_image(make_grid_frame(n, SHAPE), n, t)
            if n in (100, 140):
                store.add_extra_data(temperature=20.5 + n / 100, stimulus="on" if n == 100 else "off")
    return path


@pytest.fixture(scope="module")
def gappy_outputs(gappy_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Dict[str, Any]:
    """Text (at most one gap listed) and ``--json --plot`` on the gappy store, run together."""
    plot = tmp_path_factory.mktemp("plots") / "timeline.png"
    as_text, as_json = run_all(
        [gappy_store, "--max-gaps", "1"], [gappy_store / "metadata.yaml", "--json", "--plot", plot]
    )
    return {"json": as_json, "text": as_text, "plot": plot}


def _iso(t: float) -> str:
    return datetime.datetime.fromtimestamp(t, ZoneInfo(ZONE)).isoformat()


def test_json_facts_are_exact(gappy_store: Path, gappy_outputs: Dict[str, Any]) -> None:
    result = gappy_outputs["json"]
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    doc = json.loads(result.stdout)
    assert doc["class"] == "DirectoryImgStore"
    assert doc["format"] == "npy"
    assert doc["image_shape"] == list(SHAPE)
    assert doc["dtype"] == "uint8"
    assert doc["frames"] == len(NUMBERS) == 58
    assert (doc["frame_number_first"], doc["frame_number_last"]) == (100, 158)
    assert (doc["frame_number_min"], doc["frame_number_max"]) == (100, 159)
    assert doc["chunks"] == 3
    assert [c["frames"] for c in doc["chunk_list"]] == [20, 20, 18]
    assert [c["first_index"] for c in doc["chunk_list"]] == [0, 20, 40]
    assert doc["timezone"] == ZONE
    assert doc["start"] == "2023-11-14T17:13:20-05:00"
    assert doc["start_epoch"] == T0
    assert doc["end"] == _iso(TIMES[-1]) == "2023-11-14T17:13:22.440000-05:00"
    assert doc["end_epoch"] == TIMES[-1]
    assert doc["duration_s"] == TIMES[-1] - T0
    assert doc["fps"] == 25.0
    assert doc["frame_interval_ms"] == {"median": 40.0, "min": 40.0, "max": 160.0}
    assert doc["dropped"]["frames"] == 4
    assert doc["dropped"]["gaps"] == 2
    assert doc["dropped"]["ranges"] == [
        {
            "after_frame": 109,
            "after_index": 9,
            "first_missing": 110,
            "last_missing": 110,
            "missing": 1,
            "time": _iso(TIMES[9]),
            "time_epoch": TIMES[9],
            "gap_ms": 80.0,
        },
        {
            "after_frame": 129,
            "after_index": 28,
            "first_missing": 130,
            "last_missing": 132,
            "missing": 3,
            "time": _iso(TIMES[28]),
            "time_epoch": TIMES[28],
            "gap_ms": 160.0,
        },
    ]
    # the two long intervals are those of the dropped frames: no stall
    assert doc["stalls"] == {"factor": 1.5, "threshold_ms": 60.0, "count": 0, "ranges": []}
    assert doc["out_of_order"] == {"repeated": 1, "backwards": 1, "first_index": 56, "duplicate_numbers": 2}
    assert doc["user_metadata"] == USER_MD
    assert doc["extra_data"]["rows"] == 2
    assert {"temperature", "stimulus", "frame_number", "frame_time", "frame_index"} == set(doc["extra_data"]["columns"])


def test_text_report(gappy_store: Path, gappy_outputs: Dict[str, Any]) -> None:
    result = gappy_outputs["text"]
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    expected = [
        f"store:         {gappy_store}",
        "class:         DirectoryImgStore",
        "format:        npy",
        "image shape:   (32, 48) grey",
        "dtype:         uint8",
        "frames:        58 (numbers 100 .. 158, lowest 100, highest 159)",
        "chunks:        3 (20 frames each, last 18)",
        "time zone:     America/New_York",
        "start:         2023-11-14 17:13:20.000-05:00",
        "end:           2023-11-14 17:13:22.440-05:00",
        "duration:      2.440 s",
        "frame rate:    25.000 fps (median interval 40.000 ms)",
        "dropped:       4 frames in 2 gaps",
        "               after frame 109 (at 17:13:20.360, +0.360 s): 1 missing",
        "               ... and 1 more gap (--json lists all)",
        "stalls:        none (intervals over 1.5x the median (60.000 ms))",
        "out of order:  1 repeated, 1 backwards (first at frame index 56)",
        "               2 frames reuse a frame number seen before",
        "user metadata:",
        "  arena:",
        "    id: 3",
        "    tags:",
        "    - a",
        "    - b",
        "  genotype: wt",
        "  timezone: America/New_York",
    ]
    assert lines[: len(expected)] == expected
    assert lines[len(expected)].startswith("extra data:    2 rows; columns: ")
    assert "temperature" in lines[len(expected)] and "stimulus" in lines[len(expected)]
    assert len(lines) == len(expected) + 1


def test_plot_is_a_png(gappy_outputs: Dict[str, Any]) -> None:
    result = gappy_outputs["json"]
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["frames"] == len(NUMBERS)  # --plot adds nothing to the JSON on stdout
    path = gappy_outputs["plot"]
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    img = cv2.imread(str(path))
    assert img is not None and img.shape[0] > 0 and img.shape[1] > 0
    assert img.shape[:2] == (650, 1100)  # two panels: frame intervals and the numeric extra data


# ----------------------------------------------------------------------------------------------
# stalls: gaps in time that consecutive frame numbers do not show
# ----------------------------------------------------------------------------------------------
STALL_FPS = 30
#: intervals (s) after frame index: 533 ms and 333 ms stalls with consecutive numbers, and one
#: dropped frame (a number gap of 2) whose 67 ms interval is no stall
STALLS = {19: 0.533, 39: 0.333}
DROPPED_AT = 49


@pytest.fixture(scope="module")
def stalled_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("info") / "stalled"
    numbers = [i + (1 if i > DROPPED_AT else 0) for i in range(60)]
    times = [T0]
    for i in range(1, 60):
        step = 2 if numbers[i] - numbers[i - 1] == 2 else 1
        times.append(times[-1] + STALLS.get(i - 1, step / STALL_FPS))
    with imgstore.new_for_format(
        "npy", path=str(path), imgshape=SHAPE, chunksize=25, metadata={"timezone": ZONE}
    ) as store:
        for n, t in zip(numbers, times):
            store.add_image(make_grid_frame(n, SHAPE), n, t)
    return path


def test_stalls_are_reported_next_to_dropped_frames(stalled_store: Path, tmp_path: Path) -> None:
    plot = tmp_path / "t.png"
    as_text, as_json, strict = run_all(
        [stalled_store], [stalled_store, "--json", "--plot", plot], [stalled_store, "--stall-factor", "12"]
    )
    assert as_text.returncode == as_json.returncode == strict.returncode == 0, as_text.stderr + as_json.stderr
    lines = as_text.stdout.splitlines()
    at = lines.index("dropped:       1 frame in 1 gap")
    assert lines[at + 2 : at + 5] == [
        "stalls:        2 stalls: intervals over 1.5x the median (50.000 ms)",
        "               after frame 19 (at 17:13:20.633, +0.633 s): 533.000 ms, ~15 frame times without a frame",
        "               after frame 39 (at 17:13:21.799, +1.800 s): 333.000 ms, ~9 frame times without a frame",
    ]
    stalls = json.loads(as_json.stdout)["stalls"]
    assert (stalls["factor"], stalls["threshold_ms"], stalls["count"]) == (1.5, 50.0, 2)
    assert [(r["after_frame"], r["next_frame"], r["gap_ms"], r["frame_times_missed"]) for r in stalls["ranges"]] == [
        (19, 20, 533.0, 15),
        (39, 40, 333.0, 9),
    ]
    assert "stalls:        1 stall: intervals over 12x the median (400.000 ms)" in strict.stdout.splitlines()
    assert cv2.imread(str(plot)) is not None


def test_stall_factor_must_be_a_positive_number(stalled_store: Path) -> None:
    for bad, why in (("0", "must be above 0"), ("-1", "must be above 0"), ("x", "not a number")):
        result = info(stalled_store, "--stall-factor", bad)
        assert result.returncode == 2 and f"argument --stall-factor: {why}: '{bad}'" in result.stderr


def test_plot_draws_intervals_as_steps_and_shades_stalls(stalled_store: Path) -> None:
    """Each interval is held flat over its own span: a stall is one long step, not a ramp across it."""
    pytest.importorskip("matplotlib", reason="the plot needs matplotlib: pip install 'imgstore-ng[plot]'")
    from imgstore.apps.info import StoreFacts, timeline_figure

    with imgstore.new_for_filename(str(stalled_store)) as store:
        fig = timeline_figure(StoreFacts(store))
        times = store.get_frame_metadata()["frame_time"]
    ax = fig.axes[0]
    (line,) = [ln for ln in ax.get_lines() if ln.get_label() == "frame interval"]
    assert line.get_drawstyle() == "steps-post"
    x, y = (list(map(float, v)) for v in line.get_data())
    start = times[19] - times[0]  # the 533 ms stall, held from its first frame to the next
    i = x.index(pytest.approx(start))
    assert y[i] == pytest.approx(533.0) and x[i + 1] == pytest.approx(start + 0.533)
    shaded = [c for c in ax.collections if "stalls: 2" in str(c.get_label())]
    assert len(shaded) == 1
    spans = sorted((p.get_extents().x0, p.get_extents().x1) for p in shaded[0].get_paths())
    assert spans == [pytest.approx((start, start + 0.533)), pytest.approx((times[39] - times[0], times[40] - times[0]))]
    assert "2 stalls" in ax.get_title()


def test_plot_without_matplotlib(gappy_store: Path, tmp_path: Path) -> None:
    shadow = tmp_path / "shadow" / "matplotlib"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('matplotlib hidden by the test')\n")
    env = dict(os.environ, PYTHONPATH=str(shadow.parent))
    result = info(gappy_store, "--plot", tmp_path / "p.png", env=env)
    assert result.returncode == 1
    err = result.stderr.strip().splitlines()
    assert len(err) == 1, result.stderr
    assert "pip install 'imgstore-ng[plot]'" in err[0] and "p.png" in err[0]
    assert not (tmp_path / "p.png").exists()


def test_motif_fixture_store(fixtures_dir: Path) -> None:
    path = fixtures_dir / "store_mp4"
    as_json = info(path, "--json")
    assert as_json.returncode == 0, as_json.stderr
    doc = json.loads(as_json.stdout)
    with imgstore.new_for_filename(str(path)) as store:
        zone = motif_get_recording_timezone(store)
    assert doc["class"] == "VideoImgStore"
    assert doc["format"] == "libx264"
    assert doc["image_shape"] == [512, 512]
    assert doc["frames"] == 179
    assert [c["frames"] for c in doc["chunk_list"]] == [100, 79]
    assert doc["fps"] == 1.0
    assert doc["duration_s"] == 178.0
    assert (doc["start_epoch"], doc["end_epoch"]) == (1.0, 179.0)
    assert doc["start"] == datetime.datetime.fromtimestamp(1.0, zone).isoformat()
    assert doc["timezone"] == getattr(zone, "key", str(zone))
    assert doc["dropped"] == {"frames": 0, "gaps": 0, "ranges": []}
    assert doc["out_of_order"]["repeated"] == doc["out_of_order"]["backwards"] == 0
    assert doc["user_metadata"] == {} and doc["extra_data"] is None


def test_help_missing_store_and_bad_option(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-store"
    helped, failed, bad = run_all(["--help"], [missing], [missing, "--max-gaps", "-3"])
    assert helped.returncode == 0
    for option in ("--json", "--plot", "--max-gaps", "--repair", "--verbose"):
        assert option in helped.stdout
    assert failed.returncode == 1 and failed.stdout == ""
    err = failed.stderr.strip().splitlines()
    assert len(err) == 1 and str(missing) in err[0], failed.stderr
    assert bad.returncode == 2 and "--max-gaps" in bad.stderr


@pytest.mark.usefixtures("opencv")
def test_repair_a_store_whose_writer_was_killed(tmp_path: Path) -> None:
    from crashkill import write_and_kill

    path = tmp_path / "killed"
    kill = write_and_kill(str(path), "png", 63)
    (before,) = run_all([path, "--json"])
    assert before.returncode == 0 and "stopped without closing it" in before.stderr
    recovered = json.loads(before.stdout)["frames"]
    assert kill.acked - 8 <= recovered <= kill.acked + 1

    (repaired,) = run_all([path, "--repair", "--json"])
    assert repaired.returncode == 0, repaired.stderr
    # repairing is what the warning asked for: no warning about it (OpenCV may still say that
    # it could not decode the frame file the writer was killed writing)
    assert "imgstore-info:" not in repaired.stderr, repaired.stderr
    doc = json.loads(repaired.stdout)
    assert doc["frames"] == recovered
    assert doc["repair"]["chunks_indexed"] == [1] and doc["repair"]["lock_removed"] is True
    assert doc["repair"]["frames_recovered"] == recovered - 40

    (again,) = run_all([path, "--repair"])
    assert again.returncode == 0 and "imgstore-info:" not in again.stderr
    assert "nothing to repair" in again.stdout


def test_seal_a_store_recorded_without_one(tmp_path: Path) -> None:
    """--seal writes the sealed index of a store that has none (upstream's, Motif's, older ones)."""
    from crashkill import write_and_kill

    path = _camera(tmp_path / "cam", T0, 120, 25.0)
    (path / SEALED_INDEX_FILENAME).unlink()
    (sealed,) = run_all([path, "--seal", "--json"])
    assert sealed.returncode == 0, sealed.stderr
    seal = json.loads(sealed.stdout)["seal"]
    assert (seal["chunks"], seal["frames"]) == (3, 120)
    assert (path / SEALED_INDEX_FILENAME).stat().st_size == seal["bytes"] > 0
    (text,) = run_all([path, "--seal"])
    assert "sealed the index of 3 chunks, 120 frames" in text.stdout

    killed = tmp_path / "killed"
    write_and_kill(str(killed), "npy", 63)
    (refused,) = run_all([killed, "--seal"])
    err = refused.stderr.strip().splitlines()
    assert refused.returncode == 1 and len(err) == 1 and str(killed) in err[0] and "repair" in err[0], refused.stderr
    (both,) = run_all([killed, "--repair", "--seal", "--json"])
    assert both.returncode == 0 and json.loads(both.stdout)["seal"]["frames"] == json.loads(both.stdout)["frames"]


def test_repair_refuses_a_store_being_written(tmp_path: Path) -> None:
    path = tmp_path / "live"
    store = imgstore.new_for_format("npy", mode="w", basedir=str(path), imgshape=SHAPE, chunksize=20)
    store.add_image(make_grid_frame(0, SHAPE), 0, T0)
    (refused,) = run_all([path, "--repair"])
    store.close()
    assert refused.returncode == 1
    err = refused.stderr.strip().splitlines()
    assert len(err) == 1 and str(path) in err[0] and "still being written" in err[0], refused.stderr


def _camera(path: Path, start: float, count: int, fps: float, drop: tuple = ()) -> Path:
    with imgstore.new_for_format("npy", path=str(path), imgshape=(8, 8), chunksize=50) as store:
        for i in range(count):
            if i not in drop:
                store.add_image(make_grid_frame(i, (8, 8), noise=False), i, start + i / fps)
    return path


def test_several_stores_are_reported_as_a_group(tmp_path: Path) -> None:
    """Each camera's report, then the group: overlap, clock offsets, drops, steps with a camera missing."""
    t0 = 1_700_000_000.0
    top = _camera(tmp_path / "top", t0, 50, 25.0)
    side = _camera(tmp_path / "side", t0 + 0.4 + 0.004, 30, 25.0, drop=(5, 6))  # late, 2 frames dropped
    text, as_json = run_all([str(top), str(side)], [str(top), str(side), "--json"])
    assert text.returncode == 0 and as_json.returncode == 0, text.stderr + as_json.stderr
    group = json.loads(as_json.stdout)["group"]
    assert [d["path"] for d in json.loads(as_json.stdout)["stores"]] == [str(top), str(side)]
    assert group["reference"] == "top" and group["steps"] == 50
    # side misses the 10 steps before it starts, the 2 frames it dropped and the 10 steps after it stops
    assert group["steps_with_a_camera_missing"] == 22
    top_doc, side_doc = group["cameras"]
    assert side_doc["steps_missing"] == 22 and side_doc["dropped_frames"] == 2 and top_doc["steps_missing"] == 0
    assert side_doc["clock_offset_median_ms"] == pytest.approx(4.0, abs=1e-3)
    assert group["overlap_s"] == pytest.approx(29 / 25 - 0.004 + 0.004, abs=1e-3)
    assert "side: clock offset +4.0 ms" in text.stdout and "50, 22 with a camera missing" in text.stdout


def test_a_group_that_does_not_overlap_is_one_line(tmp_path: Path) -> None:
    t0 = 1_700_000_000.0
    first = _camera(tmp_path / "first", t0, 10, 25.0)
    later = _camera(tmp_path / "later", t0 + 3600, 10, 25.0)
    (result,) = run_all([str(first), str(later)])
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1 and "do not overlap in time" in result.stderr


def test_a_group_whose_first_camera_has_frames_without_time_is_valid_json(tmp_path: Path) -> None:
    top = tmp_path / "top"
    with imgstore.new_for_format("npy", path=str(top), imgshape=(8, 8), chunksize=20) as store:
        for i in range(10):
            store.add_image(np.zeros((8, 8), np.uint8), i, float("nan") if i == 3 else T0 + i / 25)
    side = tmp_path / "side"
    with imgstore.new_for_format("npy", path=str(side), imgshape=(8, 8), chunksize=20) as store:
        for i in range(10):
            store.add_image(np.zeros((8, 8), np.uint8), i, T0 + 0.002 + i / 25)
    (as_json,) = run_all([top, side, "--json"])
    assert as_json.returncode == 0, as_json.stderr
    doc = json.loads(as_json.stdout, parse_constant=lambda name: pytest.fail(f"{name} is not JSON"))
    offsets = {c["camera"]: c["clock_offset_median_ms"] for c in doc["group"]["cameras"]}
    assert offsets == {"top": 0.0, "side": pytest.approx(2.0, abs=1e-3)}
