"""``imgstore.ui``: real OpenCV windows on a virtual X server, sized to fit the screen.

A window test starts its own ``Xvfb`` with the helpers of ``test_app_view.py`` (it needs
``Xvfb``, ``xdotool`` and ``import`` from imagemagick; skipped without them, failed in CI), at a
screen size that is not the fallback 1024x768. A child process opens the windows (OpenCV's Qt
aborts a process that loses its display, so the test process never opens one); the test reads
their geometry with ``xdotool`` and their pixels with ``import``. The sizes asked of OpenCV are
also compared with upstream 0.4.0's, whose OpenCV calls the oracle records.
"""

from __future__ import annotations

import json
import math
import os
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from test_app_view import GUI_TOOLS, _skip_or_fail, running_xvfb

import imgstore.ui as ui

from framecodes import decode_grid, make_grid_frame
from upstream_oracle import run_upstream

SCREEN = (1366, 768)  # 3/4 of it is 1024.5 x 576: whole pixels are rounded down
WAIT_S = 20.0
NOT_X11 = sys.platform in ("win32", "darwin")


@pytest.fixture(autouse=True)
def _fresh_screen_resolution():
    """Every test asks for the screen afresh, and leaves no answer behind."""
    ui.get_screen_resolution.cache_clear()
    yield
    ui.get_screen_resolution.cache_clear()


@pytest.fixture(scope="module")
def screen(tmp_path_factory: pytest.TempPathFactory):
    """An ``Xvfb`` of SCREEN pixels on a display number it picks itself; yields ``':N'``."""
    missing = [f"{tool} ({pkg})" for tool, pkg in GUI_TOOLS.items() if shutil.which(tool) is None]
    if missing:
        _skip_or_fail(f"the window test needs {', '.join(missing)}: apt-get install {' '.join(GUI_TOOLS.values())}")
    with running_xvfb(tmp_path_factory.mktemp("xvfb-ui"), f"{SCREEN[0]}x{SCREEN[1]}x24") as display:
        yield display


# ----------------------------------------------------------------------------------------------
# the screen size
# ----------------------------------------------------------------------------------------------
@pytest.mark.skipif(NOT_X11, reason="an X server's screen")
def test_screen_resolution_is_the_x_screen(screen: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISPLAY", screen)
    xdotool = subprocess.run(["xdotool", "getdisplaygeometry"], capture_output=True, text=True, timeout=10)
    assert xdotool.stdout.split() == [str(v) for v in SCREEN]
    assert ui.get_screen_resolution() == "1366x768"
    assert ui.get_and_parse_screen_resolution() == SCREEN
    assert ui.get_and_parse_screen_resolution(scale=0.75) == (1024, 576)
    assert ui.get_and_parse_screen_resolution(0.5, default=(10, 10)) == (683, 384)
    monkeypatch.delenv("DISPLAY")
    assert ui.get_screen_resolution() == "1366x768"  # asked once per process


@pytest.mark.skipif(NOT_X11 or shutil.which("xrandr") is None, reason="xrandr (x11-xserver-utils) on X11")
def test_screen_resolution_from_xrandr_without_libx11(screen: str, monkeypatch: pytest.MonkeyPatch) -> None:
    class NoLibX11:
        @staticmethod
        def open() -> None:
            return None

    monkeypatch.setenv("DISPLAY", screen)
    monkeypatch.setattr(ui, "XDisplay", NoLibX11)
    assert ui.get_screen_resolution() == "1366x768"


@pytest.mark.skipif(NOT_X11, reason="DISPLAY is an X11 matter")
@pytest.mark.parametrize("display", [None, "dead"])
def test_screen_resolution_without_a_display_falls_back(display: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if display is None:
        monkeypatch.delenv("DISPLAY", raising=False)
    else:
        number = next(n for n in range(900, 1000) if not os.path.exists(f"/tmp/.X11-unix/X{n}"))
        monkeypatch.setenv("DISPLAY", f":{number}")
    started = time.monotonic()
    assert ui.get_screen_resolution() == ""
    assert ui.get_and_parse_screen_resolution() == (1024, 768)
    assert ui.get_and_parse_screen_resolution(scale=0.75) == (768, 576)
    assert ui.get_and_parse_screen_resolution(0.5, default=(801, 601)) == (400, 300)
    assert time.monotonic() - started < 5


def test_unparsable_resolution_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ui, "get_screen_resolution", lambda: "about 1080p")
    assert ui.get_and_parse_screen_resolution(2.0, default=(100, 50)) == (200, 100)


@pytest.mark.skipif(NOT_X11, reason="DISPLAY is an X11 matter")
def test_new_window_without_a_display_raises_instead_of_aborting() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    code = (
        "import cv2\nfrom imgstore.ui import new_window\n"
        "try:\n    new_window('no screen', size=(100, 100))\nexcept cv2.error as exc:\n    print('cv2.error:', exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr  # Qt would abort the process (status -6)
    assert out.stdout.startswith("cv2.error: cannot open window 'no screen'") and "DISPLAY" in out.stdout


# ----------------------------------------------------------------------------------------------
# the OpenCV calls new_window makes, against upstream's
# ----------------------------------------------------------------------------------------------
INF, NAN = math.inf, math.nan
WINDOW_CASES = [
    {"size": [400, 300]},
    {"shape": [700, 2000, 3]},  # width-bound: 2000x700 -> 1024x358
    {"shape": [900, 1200]},  # height-bound: 1200x900 -> 768x576
    {"size": [1024, 576]},  # exactly 3/4 of the screen
    {"size": [INF, INF]},
    {"size": [INF, INF], "screen_relative_size": 0.5},
    {"size": [3000, 3000], "expanded_ui": False, "screen_relative_size": 1.0},
    {"size": [400.7, 300.2], "expanded_ui": False},
    {},
    {"expanded_ui": False},
    {"size": [0, 0]},
    {"size": [NAN, 100]},
]

_UPSTREAM_NEW_WINDOW = """
import cv2
import imgstore.ui as ui

def main(screen, cases):
    calls = []
    cv2.namedWindow = lambda *a: calls.append(["namedWindow", *a])
    cv2.resizeWindow = lambda *a: calls.append(["resizeWindow", *a])
    ui._SCREEN_RESOLUTION = screen
    out = []
    for i, case in enumerate(cases):
        del calls[:]
        win = ui.new_window("w%d" % i, **case)
        out.append({"calls": list(calls), "size": win.size, "str": str(win)})
    return out
"""


def _our_new_window_calls(cases: list, monkeypatch: pytest.MonkeyPatch) -> list:
    calls: list = []
    monkeypatch.setattr(cv2, "namedWindow", lambda *a: calls.append(["namedWindow", *a]))
    monkeypatch.setattr(cv2, "resizeWindow", lambda *a: calls.append(["resizeWindow", *a]))
    monkeypatch.setattr(ui, "_open_display_for_window", lambda name: None)
    monkeypatch.setattr(ui, "get_screen_resolution", lambda: f"{SCREEN[0]}x{SCREEN[1]}")
    out = []
    for i, case in enumerate(cases):
        del calls[:]
        win = ui.new_window(f"w{i}", **case)
        assert f"'w{i}'" in repr(win) and f"flags={calls[0][2]:#b}" in repr(win)
        out.append({"calls": list(calls), "size": None if win.size is None else list(win.size), "str": str(win)})
    return out


def test_new_window_asks_opencv_for_what_upstream_asks(monkeypatch: pytest.MonkeyPatch) -> None:
    theirs = run_upstream(_UPSTREAM_NEW_WINDOW, f"{SCREEN[0]}x{SCREEN[1]}", WINDOW_CASES)
    ours = _our_new_window_calls(WINDOW_CASES, monkeypatch)
    for case, o, t in zip(WINDOW_CASES, ours, theirs):
        assert o == t, case
    sizes = [o["size"] for o in ours]
    assert sizes[:7] == [[400, 300], [1024, 358], [768, 576], [1024, 576], [1024, 576], [683, 384], [768, 768]]
    assert sizes[7:] == [[400, 300], None, None, None, None]
    flags = [o["calls"][0][2] for o in ours]
    normal, gui_normal = cv2.WINDOW_NORMAL, cv2.WINDOW_GUI_NORMAL
    assert flags[0] == normal | cv2.WINDOW_GUI_EXPANDED and flags[6] == normal | gui_normal
    assert flags[8] == cv2.WINDOW_AUTOSIZE | cv2.WINDOW_GUI_EXPANDED and flags[9] == cv2.WINDOW_AUTOSIZE | gui_normal


_UPSTREAM_SIGNATURES = """
import inspect
import imgstore.ui as ui

def _params(fn):
    return [[p.name, p.kind.name, repr(p.default)] for p in inspect.signature(fn).parameters.values()]

def main():
    return {name: _params(getattr(ui, name))
            for name in ("new_window", "get_screen_resolution", "get_and_parse_screen_resolution")}
"""


def test_signatures_match_upstream() -> None:
    import inspect

    theirs = run_upstream(_UPSTREAM_SIGNATURES)
    assert len(theirs) == 3
    for name, params in theirs.items():
        signature = inspect.signature(getattr(ui, name))
        assert [[p.name, p.kind.name, repr(p.default)] for p in signature.parameters.values()] == params, name


# ----------------------------------------------------------------------------------------------
# real windows
# ----------------------------------------------------------------------------------------------
# (name, new_window arguments, image shape shown, where the window is moved, how it is shown)
REAL_WINDOWS = [
    ("fit", {"shape": [240, 320, 3], "expanded_ui": False}, [240, 320, 3], [0, 0], "upstream"),
    ("auto", {"expanded_ui": False}, [160, 200], [340, 0], "own"),
    ("shrunk", {"size": [2000, 700]}, [70, 200, 3], [0, 270], "upstream"),
    ("full", {"size": [INF, INF], "screen_relative_size": 0.5}, [100, 100], [60, 300], "own"),
    ("expanded", {"size": [400, 300]}, [300, 400, 3], [700, 0], "own"),
]

_WINDOW_CHILD = r"""
import json, select, sys
import cv2
sys.path.insert(0, sys.argv[2])
from framecodes import make_grid_frame
from imgstore.ui import new_window

windows = []
for i, (name, kwargs, shape, where, how) in enumerate(json.loads(sys.argv[1])):
    win = new_window(name, **{k: tuple(v) if isinstance(v, list) else v for k, v in kwargs.items()})
    cv2.moveWindow(name, *where)
    img = make_grid_frame(100 + i, tuple(shape))
    if how == "upstream":
        win.imshow(name, img)
    else:
        win.imshow(img)
    windows.append({"name": win.name, "str": str(win), "size": win.size, "repr": repr(win)})
for _ in range(5):
    win.waitKey(20)
print(json.dumps(windows), flush=True)
while not select.select([sys.stdin], [], [], 0)[0]:  # until the test closes our stdin
    win.waitKey(30)
"""


class WindowChild:
    """A child process showing REAL_WINDOWS on ``display``."""

    def __init__(self, display: str, workdir: Path) -> None:
        self.env = dict(os.environ, DISPLAY=display)
        self.workdir = workdir
        self.stderr_path = workdir / "child.stderr"
        tests_dir = str(Path(__file__).resolve().parents[1])
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", _WINDOW_CHILD, json.dumps(REAL_WINDOWS), tests_dir],
                env=self.env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
            )
        ready, _, _ = select.select([self.proc.stdout], [], [], 60)
        line = self.proc.stdout.readline() if ready else ""
        if not line:
            self.stop()
            pytest.fail(f"the window child did not start: {self.stderr()[-1500:]}")
        self.windows = json.loads(line)
        self.shots = 0

    def xdotool(self, *args: str) -> str:
        out = subprocess.run(["xdotool", *args], env=self.env, capture_output=True, text=True, timeout=WAIT_S)
        assert out.returncode == 0, f"xdotool {' '.join(args)}: {out.stderr.strip()}; child: {self.stderr()[-800:]}"
        return out.stdout

    def window_id(self, name: str) -> str:
        found = self.xdotool(
            "search", "--all", "--sync", "--onlyvisible", "--pid", str(self.proc.pid), "--name", f"^{name}$"
        )
        ids = found.split()
        assert len(ids) == 1, f"windows named {name}: {ids}"
        return ids[0]

    def geometry(self, window: str) -> tuple:
        """The window's (x, y, width, height), settled (two readings 0.2 s apart agree)."""
        last = None
        deadline = time.monotonic() + WAIT_S
        while True:
            shell = self.xdotool("getwindowgeometry", "--shell", window)
            values = dict(line.split("=", 1) for line in shell.split() if "=" in line)
            now = tuple(int(values[k]) for k in ("X", "Y", "WIDTH", "HEIGHT"))
            if now == last or time.monotonic() > deadline:
                return now
            last = now
            time.sleep(0.2)

    def screenshot(self, window: str) -> np.ndarray:
        self.shots += 1
        path = self.workdir / f"shot{self.shots:03d}.png"
        subprocess.run(["import", "-window", window, str(path)], env=self.env, check=True, timeout=WAIT_S)
        img = cv2.imread(str(path), cv2.IMREAD_COLOR)
        assert img is not None, f"cannot read screenshot {path}"
        return img

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def close(self) -> int:
        self.proc.stdin.close()
        return self.proc.wait(timeout=WAIT_S)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def _shows(child: WindowChild, window: str, expected: np.ndarray) -> None:
    """Wait until the window shows exactly ``expected`` (BGR, or grey as equal channels)."""
    want = expected if expected.ndim == 3 else cv2.cvtColor(expected, cv2.COLOR_GRAY2BGR)
    deadline = time.monotonic() + WAIT_S
    while True:
        shot = child.screenshot(window)
        if shot.shape == want.shape and np.array_equal(shot, want):
            return
        if time.monotonic() > deadline:
            code = decode_grid(shot[:, :, 1]) if shot.shape == want.shape else None
            pytest.fail(f"window shows {shot.shape} (frame code {code}), not the {want.shape} image shown")
        time.sleep(0.1)


def _shows_scaled(child: WindowChild, window: str, frame_id: int, shape: tuple) -> None:
    """Wait until the window shows the grid of ``frame_id`` below a toolbar, smaller than ``shape``."""
    deadline = time.monotonic() + WAIT_S
    while True:
        shot = child.screenshot(window)
        body = shot[shot.shape[0] // 8 :]  # below the toolbar
        rows, cols = np.nonzero((body != shot[-1, 0]).any(axis=2))  # not the window's background
        if len(rows):
            image = body[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
            if decode_grid(image) == frame_id:
                assert image.shape[0] < shape[0] and image.shape[1] <= shape[1], image.shape
                return
        if time.monotonic() > deadline:
            pytest.fail(f"the expanded window does not show frame {frame_id} (screenshot shot{child.shots:03d}.png)")
        time.sleep(0.1)


@pytest.mark.skipif(NOT_X11, reason="the X server test")
def test_windows_appear_with_their_sizes_and_show_frames(screen: str, tmp_path: Path) -> None:
    child = WindowChild(screen, tmp_path)
    try:
        info = {w["name"]: w for w in child.windows}
        assert [w["str"] for w in child.windows] == [w[0] for w in REAL_WINDOWS]
        expected_sizes = {
            "fit": (320, 240),
            "auto": None,
            "shrunk": (1024, 358),
            "full": (683, 384),
            "expanded": (400, 300),
        }
        for name, size in expected_sizes.items():
            assert (tuple(info[name]["size"]) if info[name]["size"] else None) == size, info[name]
        assert "size=auto" in info["auto"]["repr"] and "size=1024x358" in info["shrunk"]["repr"]

        ids = {name: child.window_id(name) for name, *_ in REAL_WINDOWS}
        geometries = {name: child.geometry(window) for name, window in ids.items()}
        for name, size in expected_sizes.items():
            assert geometries[name][2:] == (size or (200, 160)), (name, geometries[name])  # auto: the image's size
        assert geometries["auto"][:2] == (340, 0)

        # windows of the image's size without OpenCV's toolbar show it pixel for pixel
        _shows(child, ids["fit"], make_grid_frame(100, (240, 320, 3)))
        _shows(child, ids["auto"], make_grid_frame(101, (160, 200)))
        # OpenCV's toolbar takes the top of the expanded window: the image is shown smaller, under it
        _shows_scaled(child, ids["expanded"], 104, (300, 400))
        assert child.close() == 0, child.stderr()
    finally:
        child.stop()
    assert "Traceback" not in child.stderr()


# ----------------------------------------------------------------------------------------------
# imports
# ----------------------------------------------------------------------------------------------
def test_import_imgstore_imports_no_gui_and_apps_imports_it_on_first_use() -> None:
    code = """
import sys
import imgstore, imgstore.apps
gui = ("imgstore.ui", "imgstore.font", "imgstore.apps.view", "imgstore.apps._view_window",
       "imgstore.apps._view_statusbar", "imgstore.apps._x11")
assert not [m for m in gui if m in sys.modules], [m for m in gui if m in sys.modules]
assert {"new_window", "FontRendererStatusBar"} <= set(dir(imgstore.apps)) & set(imgstore.apps.__all__)
new_window = imgstore.apps.new_window
import imgstore.ui, imgstore.font
assert new_window is imgstore.ui.new_window
assert imgstore.apps.FontRendererStatusBar is imgstore.font.FontRendererStatusBar
from imgstore.apps import *  # every name of __all__ resolves
try:
    imgstore.apps.no_such_name
except AttributeError as exc:
    assert "no_such_name" in str(exc)
else:
    raise AssertionError("no AttributeError")
print("ok")
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout == "ok\n", out.stderr
