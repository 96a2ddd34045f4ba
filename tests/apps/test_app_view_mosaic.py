"""``imgstore-view A B C``: several cameras in one real window under Xvfb, stepped together, checked by screenshots.

Three cameras of one rig: ``top`` (grey, 320x240, PNG), ``side`` (colour, 160x120, NPY, starting
3 s late, with frames 210-212 dropped) and ``front`` (grey, 320x240, PNG, in UTC, stopping early).
Every frame draws its frame number as a grid (``framecodes``). Which frame each tile must show
is worked out here by brute force (the nearest frame within half the top camera's interval), and
each tile of a screenshot must decode to it, pixel for pixel, with the status line the test
spells out; a camera without a frame must be crossed out and marked ``NO FRAME``.
"""

from __future__ import annotations

import datetime
import os
import re
import subprocess
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple
from zoneinfo import ZoneInfo

import numpy as np
import pytest
import test_app_view
from test_app_view import KEY_TIMEOUT, VIEW, Viewer, _locate

import imgstore
from imgstore.apps import _view_mosaic, view
from imgstore.multi import MultiStore

from framecodes import decode_grid, make_grid_frame

T0 = 1717236000.0  # 2024-06-01 10:00:00 UTC
DT = 0.5
TOLERANCE = DT / 2  # the default: half the first camera's frame interval
ZONE = "Europe/Berlin"  # the first camera's zone: every tile's time is shown in it
H, W = 240, 320
STEPS = 50
DROPPED = (210, 211, 212)


def _camera_frames() -> Dict[str, List[Tuple[int, float]]]:
    """``{camera: [(frame number, frame time), ...]}`` of the three cameras."""
    side = [n for n in range(200, 250) if n not in DROPPED]
    return {
        "top": [(100 + i, T0 + i * DT) for i in range(STEPS)],
        "side": [(n, T0 + 3 + (n - 200) * DT + 0.01) for n in side],
        "front": [(300 + i, T0 + i * DT - 0.02) for i in range(30)],
    }


xdisplay = test_app_view.xdisplay  # the virtual X display, shared with the single-store tests

SHAPES = {"top": (H, W), "side": (120, 160, 3), "front": (H, W)}
FORMATS = {"top": "png", "side": "npy", "front": "png"}
ZONES = {"top": ZONE, "side": ZONE, "front": "UTC"}


def _frame(name: str, number: int) -> np.ndarray:
    grey = make_grid_frame(number, SHAPES[name][:2])
    return np.dstack([grey] * 3) if len(SHAPES[name]) == 3 else grey


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> List[Path]:
    root = tmp_path_factory.mktemp("rig")
    paths = []
    for name, frames in _camera_frames().items():
        path = root / name
        store = imgstore.new_for_format(
            FORMATS[name], path=str(path), imgshape=SHAPES[name], imgdtype=np.uint8, chunksize=20,
            metadata={"timezone": ZONES[name]},
        )  # fmt: skip
        for number, when in frames:
            store.add_image(_frame(name, number), number, when)
        store.close()
        paths.append(path)
    return paths


def expected_numbers(step: int) -> Dict[str, Optional[int]]:
    """Brute force: each camera's frame nearest the top camera's ``step``-th time, within the tolerance."""
    ref = T0 + step * DT
    shown: Dict[str, Optional[int]] = {}
    for name, frames in _camera_frames().items():
        near = [(abs(t - ref), i, n) for i, (n, t) in enumerate(frames) if abs(t - ref) <= TOLERANCE]
        shown[name] = min(near)[2] if near else None
    return shown


def _time_of(name: str, number: int) -> float:
    return dict(_camera_frames()[name])[number]


def _tile_line(name: str, number: Optional[int]) -> Tuple[str, str, Tuple[int, int, int]]:
    """A tile's status line as the test expects it: texts and background colour (BGR)."""
    if number is None:
        return name, "NO FRAME", (0, 0, 170)
    clock = datetime.datetime.fromtimestamp(_time_of(name, number), ZoneInfo(ZONE)).strftime("%H:%M:%S.%f")[:-3]
    if name == "side" and number == 213:  # just after the dropped 210-212
        return f"{name} #{number}", f"DROP 3 {clock}", (140, 0, 140)
    return f"{name} #{number}", clock, (0, 0, 0)


def expected_canvas(rig: List[Path], step: int, paused: bool) -> np.ndarray:
    """The window's picture at ``step``: tiles from the frames themselves, lines from the test's texts."""
    with MultiStore(rig) as multi:
        layout, _ = _view_mosaic.mosaic_layout(multi)
    assert (layout.rows, layout.cols, layout.tile_h, layout.tile_w) == (2, 2, H, W)
    canvas = np.zeros((layout.height, layout.width, 3), np.uint8)
    for camera, (name, number) in enumerate(expected_numbers(step).items()):
        y, x = layout.tile_origin(camera)
        if number is None:
            tile = _view_mosaic.missing_tile(H, W)
        else:
            img = _frame(name, number)
            img = img if img.ndim == 3 else np.dstack([img] * 3)
            tile = np.zeros((H, W, 3), np.uint8)
            h, w = img.shape[:2]
            tile[(H - h) // 2 : (H - h) // 2 + h, (W - w) // 2 : (W - w) // 2 + w] = img
        canvas[y : y + H, x : x + W] = tile
        left, right, colour = _tile_line(name, number)
        bar = view.render_statusbar(layout.tile_bar, left, right)
        canvas[y + H : y + layout.cell_h, x : x + W] = _view_mosaic.coloured_bar(bar, colour)
    local = datetime.datetime.fromtimestamp(T0 + step * DT, ZoneInfo(ZONE))
    left = f"#{100 + step}  {local.isoformat(sep=' ', timespec='milliseconds')}"
    right = f"step {step}/{STEPS}" + ("  PAUSED" if paused else "")
    assert not layout.step_bar.short
    canvas[layout.height - layout.step_bar.height :] = view.render_statusbar(layout.step_bar, left, right)[:, :, None]
    return canvas


def _tile_codes(rig: List[Path], canvas: np.ndarray) -> Dict[str, int]:
    """The frame code each tile of a canvas shows (-1: none)."""
    with MultiStore(rig) as multi:
        layout, _ = _view_mosaic.mosaic_layout(multi)
    codes = {}
    for camera, name in enumerate(SHAPES):
        y, x = layout.tile_origin(camera)
        h, w = SHAPES[name][:2]
        top, left = y + (H - h) // 2, x + (W - w) // 2
        codes[name] = decode_grid(canvas[top : top + h, left : left + w])
    return codes


def _shows(viewer: Viewer, rig: List[Path], step: int, paused: bool = True) -> np.ndarray:
    """Wait until the window shows ``step`` exactly as expected; the canvas seen."""
    expected = expected_canvas(rig, step, paused)
    numbers = expected_numbers(step)
    deadline = time.monotonic() + KEY_TIMEOUT
    while True:
        canvas = _locate_colour(viewer.screenshot(), expected)
        codes = _tile_codes(rig, canvas)
        if all(codes[n] == (v if v is not None else -1) for n, v in numbers.items()):
            if np.array_equal(canvas, expected):
                return canvas
        if time.monotonic() > deadline or viewer.proc.poll() is not None:
            pytest.fail(
                f"expected step {step} ({numbers}); the window shows codes {codes}, pixels "
                f"{'equal' if np.array_equal(canvas, expected) else 'different'} (screenshot {viewer.last_shot}); "
                f"viewer stderr: {viewer.stderr()[-800:]}"
            )
        time.sleep(0.05)


def _locate_colour(shot: np.ndarray, expected: np.ndarray) -> np.ndarray:
    if shot.shape == expected.shape:
        return shot
    return _locate(shot, expected[:, :, 1])


def test_brute_force_expectations_cover_what_the_viewer_must_show() -> None:
    """The steps the GUI test visits include each case: all matched, a late camera, a drop, an early stop."""
    assert expected_numbers(4) == {"top": 104, "side": None, "front": 304}  # side starts 3 s late
    assert expected_numbers(6) == {"top": 106, "side": 200, "front": 306}
    assert expected_numbers(18)["side"] is None  # 212 was dropped
    assert expected_numbers(19)["side"] == 213  # after the drop
    assert expected_numbers(49) == {"top": 149, "side": 243, "front": None}  # front stopped early


def test_view_several_cameras_steps_them_together(rig: List[Path], xdisplay: str, tmp_path: Path) -> None:
    viewer = Viewer(rig, xdisplay, ["--paused", "--start-index", "4"], tmp_path)
    try:
        shot = _shows(viewer, rig, 4)
        # the late camera's tile is crossed out, its line red
        assert tuple(shot[H + 2, W + 2]) == (0, 0, 170)
        for key, step in (("Right", 5), ("Right", 6), ("bracketright", 26), ("Left", 25), ("Home", 0),
                          ("End", 49), ("bracketleft", 29)):  # fmt: skip
            viewer.key(key)
            _shows(viewer, rig, step)
        viewer.key("Home")
        _shows(viewer, rig, 0)
        for step in range(1, 20):  # through the drop, one step at a time
            viewer.key("period")
            # each step seen before the next key: OpenCV's window may keep only one key between two
            # waitKey calls, so keys pressed faster than a busy viewer steps would be lost
            _shows(viewer, rig, step)
        viewer.key("q", quits=True)
        assert viewer.proc.wait(timeout=10) == 0, viewer.stderr()
    finally:
        viewer.stop()
    stderr = viewer.stderr()
    assert "Traceback" not in stderr
    decoded = [int(m) for m in re.findall(r"decoded step (\d+)", stderr)]
    assert decoded[0] == 4
    again = sorted({i for i in decoded if decoded.count(i) > 1})
    assert not again, f"steps read more than once instead of from the cache: {again}"


def test_view_several_cameras_plays_to_the_end(rig: List[Path], xdisplay: str) -> None:
    out = subprocess.run(
        [str(VIEW), *map(str, rig), "--start-index", str(STEPS - 5), "--fps", "0", "--layout", "1x3"],
        env=dict(os.environ, DISPLAY=xdisplay),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (out.returncode, out.stderr) == (0, "")


# ----------------------------------------------------------------------------------------------
# without a window
# ----------------------------------------------------------------------------------------------
def _error_line(args: List[str]) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    out = subprocess.run([str(VIEW), *args], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode != 0
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    return lines[0]


def test_bad_mosaic_options_fail_in_one_line(rig: List[Path]) -> None:
    paths = list(map(str, rig))
    assert "no room for 3 cameras" in _error_line([*paths, "--layout", "1x2"])
    assert "ROWSxCOLUMNS" in _error_line([*paths, "--layout", "two"])
    assert "--layout and --tolerance apply to several stores" in _error_line([paths[0], "--layout", "2x2"])
    assert "positive" in _error_line([*paths, "--tolerance", "0"])
    assert "lists no companion stores" in _error_line([paths[0], "--group"])
    missing = str(rig[0].parent / "no such camera")
    assert missing in _error_line([paths[0], missing])
    assert "outside the steps" in _error_line([*paths, "--start-index", str(STEPS)])


def test_step_player_steps_back_from_its_cache(rig: List[Path]) -> None:
    with MultiStore(rig) as multi:
        player = view.StepPlayer(multi, cache_steps=8)
        player.go_to_index(5)
        for _ in range(6):
            player.step(1)
        assert (player.index, player.decodes) == (11, 7)
        for _ in range(6):
            player.step(-1)
        assert (player.index, player.decodes) == (5, 7)  # all from the cache
        player.jump_seconds(10.0)
        assert player.index == 25 and player.current().frames[0].frame_number == 125
        player.go_to_number(140)
        assert player.index == 40
        player.go_to_number(1000)  # no such number: the nearest, as with one store
        assert player.index == STEPS - 1
        with pytest.raises(view.ToolError, match="NaN"):
            player.go_to_number(float("nan"))


def test_held_frames_are_marked(rig: List[Path]) -> None:
    with MultiStore(rig, fill="hold") as multi:
        layout, tz = _view_mosaic.mosaic_layout(multi)
        canvas = _view_mosaic.render_mosaic(layout, multi, multi[18], tz, len(multi), paused=True)
    y, x = layout.tile_origin(1)
    # side holds #209 (its frame before the dropped ones): shown, with an amber line that says so
    assert decode_grid(canvas[y + 60 : y + 180, x + 80 : x + 240]) == 209
    clock = datetime.datetime.fromtimestamp(_time_of("side", 209), ZoneInfo(ZONE)).strftime("%H:%M:%S.%f")[:-3]
    bar = view.render_statusbar(layout.tile_bar, "side #209", f"HELD {clock}")
    assert np.array_equal(canvas[y + H : y + layout.cell_h, x : x + W], _view_mosaic.coloured_bar(bar, (0, 120, 200)))


def test_hidden_status_bars_leave_the_tiles(rig: List[Path]) -> None:
    with MultiStore(rig) as multi:
        layout, tz = _view_mosaic.mosaic_layout(multi, (1, 3), statusbar=False)
        canvas = _view_mosaic.render_mosaic(layout, multi, multi[6], tz, len(multi), paused=False)
    assert canvas.shape == (H, 3 * W, 3)
    assert [decode_grid(canvas[:, i * W : (i + 1) * W]) for i in (0, 2)] == [106, 306]
    assert decode_grid(canvas[60:180, W + 80 : W + 240]) == 200


def test_a_frame_without_a_time_is_shown_with_time_unknown(tmp_path: Path) -> None:
    paths = []
    for name, nan_at in (("a", 2), ("b", -1)):
        path = tmp_path / name
        with imgstore.new_for_format("npy", path=str(path), imgshape=(24, 32), chunksize=10) as store:
            for i in range(5):
                store.add_image(make_grid_frame(i, (24, 32)), i, float("nan") if i == nan_at else T0 + i * DT)
        paths.append(path)
    with MultiStore(paths) as multi:
        layout, tz = _view_mosaic.mosaic_layout(multi)
        step = multi[2]
        assert _view_mosaic.tile_texts(step.frames[0], tz) == ("a #2", "time ?", "matched")
        assert _view_mosaic.tile_texts(step.frames[1], tz) == ("b", "NO FRAME", "missing")
        canvas = _view_mosaic.render_mosaic(layout, multi, step, tz, len(multi), paused=True)
    assert decode_grid(canvas[:24, :32]) == 2
