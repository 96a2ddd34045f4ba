"""``imgstore-view``: a real OpenCV window on a virtual X server, driven by keys and checked by screenshots.

The GUI test needs ``Xvfb`` (package xvfb), ``xdotool`` and ``import`` (imagemagick); without them
it is skipped, except in CI (``CI=true``) where it fails. Every frame of the test store draws its
frame number as a 4x4 grid (``framecodes``), so a screenshot tells which frame the window shows;
the status bar under it must equal what the viewer's own (pure) renderer draws for that frame.
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator, Sequence, Union
from zoneinfo import ZoneInfo

import cv2
import numpy as np
import pytest

import imgstore
from imgstore.apps import _x11, view

from framecodes import decode_grid, make_grid_frame

VIEW = Path(sys.executable).parent / "imgstore-view"
H, W = 240, 320
N_FRAMES = 50
FIRST_NUMBER = 100  # frame numbers (= the ids drawn) are 100.., so that they differ from indexes
T0 = 1717236000.0  # 2024-06-01 10:00:00 UTC
DT = 0.5  # seconds between frames: the 10 s jumps move 20 frames
TZ_NAME = "Europe/Berlin"  # the store's recording zone; the status bar shows local times in it
KEY_TIMEOUT = 20.0  # seconds to wait for the window to show what a key asks for (generous: CI is loaded)
GUI_TOOLS = {"Xvfb": "xvfb", "xdotool": "xdotool", "import": "imagemagick"}
#: X libraries opencv-python's Qt windows load (without them Qt aborts the process), and their packages
GUI_LIBRARIES = {"SM": "libsm6", "ICE": "libice6", "Xext": "libxext6"}


def missing_gui_packages() -> list:
    """The Debian packages a real window under Xvfb still needs here, as ``name (package)``."""
    import ctypes.util

    missing = [f"{tool} ({pkg})" for tool, pkg in GUI_TOOLS.items() if shutil.which(tool) is None]
    missing += [f"lib{lib} ({pkg})" for lib, pkg in GUI_LIBRARIES.items() if ctypes.util.find_library(lib) is None]
    return missing


def _skip_or_fail(message: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


# ----------------------------------------------------------------------------------------------
# fixtures: the store, and a virtual X display
# ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def grey_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("view") / "grey store"
    store = imgstore.new_for_format(
        "png", path=str(path), imgshape=(H, W), imgdtype=np.uint8, chunksize=20, metadata={"timezone": TZ_NAME}
    )
    for i in range(N_FRAMES):
        store.add_image(make_grid_frame(FIRST_NUMBER + i, (H, W)), FIRST_NUMBER + i, T0 + i * DT)
    store.close()
    return path


@pytest.fixture(scope="module")
def xdisplay(tmp_path_factory: pytest.TempPathFactory):
    """A fresh ``Xvfb`` (1024x768x24) on a display number it picks itself; yields ``':N'``.

    ``-noreset``: an X server resets when its last client leaves, and refuses connections while
    it does: in a loop of connections without it, about 1 in 10 failed ("Can't open display").
    """
    missing = missing_gui_packages()
    if missing:
        packages = " ".join(m.split("(")[1].rstrip(")") for m in missing)
        _skip_or_fail(f"the viewer test needs {', '.join(missing)}: apt-get install {packages}")
    if not view.opencv_has_gui():
        _skip_or_fail(f"the viewer test needs OpenCV with windows: {view.NO_GUI_HINT}")
    with running_xvfb(tmp_path_factory.mktemp("xvfb"), "1024x768x24") as display:
        env = dict(os.environ, DISPLAY=display)
        out = subprocess.run(["xdotool", "getdisplaygeometry"], env=env, capture_output=True, text=True, timeout=10)
        assert out.returncode == 0, f"Xvfb {display} does not answer: {out.stderr.strip()}"
        yield display


@contextlib.contextmanager
def running_xvfb(log_dir: Path, geometry: str) -> Iterator[str]:
    """An ``Xvfb`` of ``geometry`` (``WxHxDEPTH``) on a display number it picks itself, its log in
    ``log_dir``; yields ``':N'`` and stops it afterwards."""
    log_path = log_dir / "xvfb.log"
    read_fd, write_fd = os.pipe()
    with open(log_path, "wb") as log:
        # -displayfd: Xvfb takes a free display number and writes it once it accepts connections
        proc = subprocess.Popen(
            ["Xvfb", "-displayfd", str(write_fd), "-noreset", "-screen", "0", geometry, "-nolisten", "tcp"],
            pass_fds=(write_fd,),
            stdout=log,
            stderr=log,
        )
    os.close(write_fd)
    try:
        yield f":{_read_display_number(read_fd, proc, log_path)}"
    finally:
        os.close(read_fd)
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _read_display_number(fd: int, proc: subprocess.Popen, log_path: Path) -> int:
    deadline = time.monotonic() + 15
    data = b""
    os.set_blocking(fd, False)
    while b"\n" not in data:
        try:
            chunk = os.read(fd, 64)
        except BlockingIOError:
            chunk = None
        if chunk:
            data += chunk
            continue
        if proc.poll() is not None or chunk == b"":
            pytest.fail(f"Xvfb exited ({proc.returncode}): {log_path.read_text(errors='replace')[-500:]}")
        if time.monotonic() > deadline:
            pytest.fail("Xvfb did not start within 15 s")
        time.sleep(0.05)
    return int(data.strip())


# ----------------------------------------------------------------------------------------------
# the viewer under X: what the window shows
# ----------------------------------------------------------------------------------------------
class Viewer:
    """A running ``imgstore-view`` on ``display``: send keys, read back the frame it shows."""

    def __init__(self, store: Union[Path, Sequence[Path]], display: str, args: list, workdir: Path) -> None:
        """``store``: one store, or several (a mosaic, titled by their paths joined by `` + ``)."""
        self.env = dict(os.environ, DISPLAY=display)
        self.workdir = workdir
        self.stderr_path = workdir / "viewer.stderr"
        self.shots = 0
        self.last_shot: Path = workdir / "none.png"
        stores = [store] if isinstance(store, Path) else list(store)
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                [str(VIEW), *map(str, stores), "--verbose", *args], env=self.env, stdout=subprocess.DEVNULL, stderr=err
            )
        self.started = time.monotonic()
        title = " + ".join(os.path.abspath(s) for s in stores)
        title = "".join("\\" + c if c in ".[]()*+?{}|^$\\" else c for c in title)  # POSIX ERE
        try:
            # --pid: the view tests share one X server and one store, so a previous viewer's window
            # (same title) may still be closing; only this process's window counts
            out = self._xdotool(
                "search", "--sync", "--onlyvisible", "--pid", str(self.proc.pid), "--name", f"^{title}$", timeout=15
            )
        except subprocess.TimeoutExpired:
            self.stop()
            pytest.fail(f"no window titled {store}; viewer stderr: {self.stderr()[-800:]}")
        self.window = out.split()[0]

    def _xdotool(self, *args: str, timeout: float = 10) -> str:
        out = subprocess.run(["xdotool", *args], env=self.env, capture_output=True, text=True, timeout=timeout)
        assert out.returncode == 0, f"xdotool {' '.join(args)}: {out.stderr.strip()}"
        return out.stdout

    def key(self, name: str, quits: bool = False) -> None:
        """Press and release ``name`` in the viewer's window. A key that ``quits`` may close the
        window on its press, before xdotool sends the release: xdotool then fails with BadWindow,
        which is fine once the viewer has ended (the caller checks its exit status)."""
        out = subprocess.run(
            ["xdotool", "key", "--window", self.window, name], env=self.env, capture_output=True, text=True, timeout=10
        )
        if quits and out.returncode != 0 and "BadWindow" in out.stderr:
            self.proc.wait(timeout=10)
            return
        assert out.returncode == 0, (
            f"xdotool key {name}: {out.stderr.strip()}; viewer exit status {self.proc.poll()}, "
            f"stderr: {self.stderr()[-1500:]}"
        )

    def screenshot(self) -> np.ndarray:
        self.shots += 1
        self.last_shot = self.workdir / f"shot{self.shots:03d}.png"
        subprocess.run(["import", "-window", self.window, str(self.last_shot)], env=self.env, check=True, timeout=10)
        img = cv2.imread(str(self.last_shot), cv2.IMREAD_COLOR)
        assert img is not None, f"cannot read screenshot {self.last_shot}"
        return img

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def _locate(shot: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """The part of ``shot`` (BGR) where the ``expected`` canvas (grey) is; the whole shot when sizes agree."""
    eh, ew = expected.shape[:2]
    sh, sw = shot.shape[:2]
    assert sh >= eh and sw >= ew, f"window {sw}x{sh} is smaller than the canvas {ew}x{eh} (scaled?)"
    if (sh, sw) == (eh, ew):
        return shot
    scores = cv2.matchTemplate(shot[:, :, 1], expected, cv2.TM_SQDIFF)
    _, _, (x, y), _ = cv2.minMaxLoc(scores)
    return shot[y : y + eh, x : x + ew]


def _expected_bar(store: Path, index: int, paused: bool) -> np.ndarray:
    """The status bar for the frame at ``index``, from our own texts and the viewer's renderer."""
    number, when = FIRST_NUMBER + index, T0 + index * DT
    local = datetime.datetime.fromtimestamp(when, ZoneInfo(TZ_NAME))
    with imgstore.new_for_filename(str(store)) as s:
        layout, tz = view.store_statusbar(s, W)
    assert str(tz) == TZ_NAME
    assert layout.short and not layout.two_lines  # a 320-pixel store: the short texts, on one line
    left = f"#{number} {local.time().isoformat(timespec='milliseconds')}"
    right = f"{index}/{N_FRAMES}" + (" PAUSED" if paused else "")
    assert (left, right) == view.status_texts(number, local, index, N_FRAMES, paused, short=True)
    return view.render_statusbar(layout, left, right)


def _shows(viewer: Viewer, store: Path, index: int, paused: bool = True) -> np.ndarray:
    """Wait until the window shows the frame at ``index`` with its status bar; the canvas seen."""
    bar = _expected_bar(store, index, paused)
    expected = np.concatenate([make_grid_frame(FIRST_NUMBER + index, (H, W)), bar], axis=0)
    deadline = time.monotonic() + KEY_TIMEOUT
    while True:
        canvas = _locate(viewer.screenshot(), expected)
        image, shown_bar = canvas[:H], canvas[H:]
        code = decode_grid(image)
        bar_ok = np.array_equal(shown_bar[:, :, 1], bar)
        if code == FIRST_NUMBER + index and bar_ok:
            break
        if time.monotonic() > deadline or viewer.proc.poll() is not None:
            pytest.fail(
                f"expected frame #{FIRST_NUMBER + index} (index {index}, paused={paused}); the window shows "
                f"frame code {code}, status bar {'as expected' if bar_ok else 'different'} "
                f"(screenshot {viewer.last_shot}); viewer stderr: {viewer.stderr()[-800:]}"
            )
        time.sleep(0.05)
    # grey frames are shown grey, pixel for pixel
    assert np.array_equal(canvas[:, :, 0], canvas[:, :, 1]) and np.array_equal(canvas[:, :, 1], canvas[:, :, 2])
    assert np.array_equal(canvas[:, :, 1], expected), f"pixels differ from the frame (screenshot {viewer.last_shot})"
    return canvas


def _shown_index(viewer: Viewer) -> int:
    """The index of the frame the window shows now (-1 when it shows none yet)."""
    code = decode_grid(viewer.screenshot()[:H, :W])
    return code - FIRST_NUMBER if FIRST_NUMBER <= code < FIRST_NUMBER + N_FRAMES else -1


def _settled_index(viewer: Viewer) -> int:
    """The index of the frame shown, once two screenshots 0.3 s apart agree (after a pause key)."""
    deadline = time.monotonic() + KEY_TIMEOUT
    last = _shown_index(viewer)
    while True:
        time.sleep(0.3)
        now = _shown_index(viewer)
        if now == last and now >= 0:
            return now
        assert time.monotonic() < deadline, f"the window does not settle on a frame ({viewer.last_shot})"
        last = now


def _decoded_indexes(stderr: str) -> list:
    return [int(m) for m in re.findall(r"decoded frame index (\d+)", stderr)]


def test_view_plays_pauses_steps_and_quits(grey_store: Path, xdisplay: str, tmp_path: Path) -> None:
    start = 10
    # --loop: on a loaded machine the checks below can outlast the 50 frames; the window must stay
    viewer = Viewer(grey_store, xdisplay, ["--start", str(FIRST_NUMBER + start), "--fps", "4", "--loop"], tmp_path)
    try:
        # playing: wait for a frame after the start, then pause
        deadline = time.monotonic() + KEY_TIMEOUT
        while _shown_index(viewer) <= start:
            assert time.monotonic() < deadline, "the viewer does not play"
            time.sleep(0.1)
        viewer.key("space")
        paused_at = _settled_index(viewer)  # the frame shown when the key arrived
        assert start < paused_at < start + 20
        _shows(viewer, grey_store, paused_at, paused=True)
        time.sleep(0.6)  # paused: nothing moves
        _shows(viewer, grey_store, paused_at, paused=True)

        viewer.key("Right")
        _shows(viewer, grey_store, paused_at + 1)
        viewer.key("Left")
        _shows(viewer, grey_store, paused_at)
        viewer.key("Left")
        _shows(viewer, grey_store, paused_at - 1)
        viewer.key("comma")
        _shows(viewer, grey_store, paused_at - 2)
        viewer.key("period")
        _shows(viewer, grey_store, paused_at - 1)
        viewer.key("bracketright")  # +10 s = +20 frames
        _shows(viewer, grey_store, paused_at + 19)
        viewer.key("bracketleft")
        _shows(viewer, grey_store, paused_at - 1)
        viewer.key("End")
        _shows(viewer, grey_store, N_FRAMES - 1)

        # play again: the frames move on, and the status bar drops PAUSED
        viewer.key("Home")
        _shows(viewer, grey_store, 0)
        viewer.key("space")
        deadline = time.monotonic() + KEY_TIMEOUT
        while True:
            shot = viewer.screenshot()
            playing_at = decode_grid(shot[:H, :W]) - FIRST_NUMBER
            if 0 < playing_at < N_FRAMES:
                break
            assert time.monotonic() < deadline, "the viewer does not play after space"
            time.sleep(0.1)
        # the same screenshot: the bar of that frame, without PAUSED
        bar = _expected_bar(grey_store, playing_at, paused=False)
        assert np.array_equal(shot[H:, :W, 1], bar), f"status bar while playing ({viewer.last_shot})"
        viewer.key("space")
        _shows(viewer, grey_store, _settled_index(viewer), paused=True)

        viewer.key("q", quits=True)
        assert viewer.proc.wait(timeout=10) == 0, viewer.stderr()
    finally:
        viewer.stop()
    # stepping back, and jumping back to a frame seen a moment ago, showed kept frames: every
    # frame was read from the store once
    decoded = _decoded_indexes(viewer.stderr())
    assert decoded[0] == start
    duplicates = sorted({i for i in decoded if decoded.count(i) > 1})
    assert not duplicates, f"frames decoded more than once: {duplicates} ({decoded})"
    assert "Traceback" not in viewer.stderr()


def test_view_stops_at_the_end(grey_store: Path, xdisplay: str) -> None:
    env = dict(os.environ, DISPLAY=xdisplay)
    started = time.monotonic()
    out = subprocess.run(
        [str(VIEW), str(grey_store), "--start-index", str(N_FRAMES - 5), "--fps", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 0, out.stderr
    assert out.stderr == ""
    assert time.monotonic() - started < 20


def test_view_esc_quits_and_hidden_statusbar(grey_store: Path, xdisplay: str, tmp_path: Path) -> None:
    viewer = Viewer(grey_store, xdisplay, ["--start-index", "3", "--paused", "--hide-statusbar"], tmp_path)
    try:
        deadline = time.monotonic() + KEY_TIMEOUT
        while True:
            shot = viewer.screenshot()
            if shot.shape[:2] == (H, W) and decode_grid(shot) == FIRST_NUMBER + 3:
                break
            assert time.monotonic() < deadline, f"expected frame index 3 without a status bar ({viewer.last_shot})"
            time.sleep(0.05)
        viewer.key("Escape", quits=True)
        assert viewer.proc.wait(timeout=10) == 0, viewer.stderr()
    finally:
        viewer.stop()


def _send_unmap_notify(display: str, window: int) -> None:
    """Tell the window's creator (only) that ``window`` was unmapped, while it stays on screen.

    This puts Qt where it is when it loses a new window's MapNotify: it believes the window is
    not mapped, so it stops copying frames to it.
    """
    xlib = _x11._load_xlib()
    assert xlib is not None, "libX11 is needed to talk to the X server"
    dpy = xlib.XOpenDisplay(display.encode())
    assert dpy, f"cannot open {display}"
    try:
        event = _x11._XEvent()
        event.xmap.type = 18  # UnmapNotify: the same layout as MapNotify (from_configure = 0)
        event.xmap.event = event.xmap.window = window
        assert xlib.XSendEvent(dpy, window, 0, 0, ctypes.byref(event))
        xlib.XSync(dpy, 0)
    finally:
        xlib.XCloseDisplay(dpy)


@pytest.mark.skipif(not _x11.opencv_uses_qt(), reason="the lost MapNotify is a Qt (opencv-python) defect")
def test_a_window_qt_believes_unmapped_paints_again_when_told_it_is_mapped(
    grey_store: Path, xdisplay: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The black-window defect on demand: Qt loses a MapNotify and the window stops showing frames;
    the MapNotify the viewer sends again (``XDisplay.announce_mapped``) makes it paint."""
    viewer = Viewer(grey_store, xdisplay, ["--start-index", "3", "--paused"], tmp_path)
    try:
        _shows(viewer, grey_store, 3)
        monkeypatch.setenv("DISPLAY", xdisplay)
        with _x11.XDisplay.open() as xd:
            assert xd.windows_of(viewer.proc.pid) == [int(viewer.window)]
            # after the viewer's own reminders (its first seconds), so that only ours can help
            deadline = time.monotonic() + KEY_TIMEOUT
            while True:
                reminders = re.findall(r"told (\d+) of (\d+) window\(s\) again that they are mapped", viewer.stderr())
                if len(reminders) == len(_x11.MAP_REMINDERS) or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            assert reminders == [("1", "1")] * len(_x11.MAP_REMINDERS), viewer.stderr()
            _send_unmap_notify(xdisplay, int(viewer.window))
            viewer.key("Right")
            deadline = time.monotonic() + KEY_TIMEOUT
            while 4 not in _decoded_indexes(viewer.stderr()):
                assert time.monotonic() < deadline, f"the viewer did not read frame 4: {viewer.stderr()[-800:]}"
                time.sleep(0.05)
            time.sleep(1.0)
            assert _shown_index(viewer) == 3, "Qt painted a window it believes unmapped: the test proves nothing"

            assert xd.announce_mapped(int(viewer.window))
            _shows(viewer, grey_store, 4)
        viewer.key("q", quits=True)
        assert viewer.proc.wait(timeout=10) == 0, viewer.stderr()
    finally:
        viewer.stop()


# ----------------------------------------------------------------------------------------------
# errors: one line on stderr, exit status 1 (no X server needed)
# ----------------------------------------------------------------------------------------------
def _run_view(args: list, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([str(VIEW), *args], env=env, capture_output=True, text=True, timeout=60)


def _one_error_line(out: subprocess.CompletedProcess) -> str:
    assert out.returncode == 1, (out.returncode, out.stderr)
    lines = out.stderr.splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("imgstore-view: error: "), lines[0]
    return lines[0]


@pytest.mark.skipif(sys.platform in ("win32", "darwin"), reason="DISPLAY is an X11 matter")
def test_view_without_display_fails_in_one_line(grey_store: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    line = _one_error_line(_run_view([str(grey_store)], env))
    assert str(grey_store) in line and "DISPLAY" in line


@pytest.mark.skipif(sys.platform in ("win32", "darwin"), reason="DISPLAY is an X11 matter")
def test_view_with_a_dead_display_fails_in_one_line(grey_store: Path) -> None:
    number = next(n for n in range(900, 1000) if not os.path.exists(f"/tmp/.X11-unix/X{n}"))
    env = dict(os.environ, DISPLAY=f":{number}")
    line = _one_error_line(_run_view([str(grey_store)], env))
    assert str(grey_store) in line and f":{number}" in line


def test_view_missing_store_fails_in_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "no such store"
    line = _one_error_line(_run_view([str(missing)], dict(os.environ)))
    assert str(missing) in line


def test_view_start_index_outside_the_store(grey_store: Path) -> None:
    line = _one_error_line(_run_view([str(grey_store), "--start-index", str(N_FRAMES)], dict(os.environ)))
    assert str(grey_store) in line


# ----------------------------------------------------------------------------------------------
# the pieces without a window
# ----------------------------------------------------------------------------------------------
def test_player_steps_back_from_its_cache(grey_store: Path) -> None:
    with imgstore.new_for_filename(str(grey_store)) as store:
        player = view.Player(store, cache_frames=8)
        player.go_to_index(5)
        for _ in range(10):
            player.step(1)
        assert player.index == 15 and player.decodes == 11
        for expected in range(14, 7, -1):  # 7 frames back: all still kept
            player.step(-1)
            img, (number, _) = player.current()
            assert player.index == expected and number == FIRST_NUMBER + expected
            assert decode_grid(img) == FIRST_NUMBER + expected
        assert player.decodes == 11
        player.step(-1)  # index 7 was dropped from the 8 kept
        assert player.decodes == 12
        assert player.jump_seconds(10.0)  # +20 frames, by time: read with get_nearest_image
        assert player.index == 27 and decode_grid(player.current()[0]) == FIRST_NUMBER + 27
        assert player.decodes == 13
        assert player.jump_seconds(-10.0)  # back to index 7, still kept
        assert player.index == 7 and player.decodes == 13
        assert decode_grid(player.current()[0]) == FIRST_NUMBER + 7
        assert player.jump_seconds(-0.3)  # the nearest frame is 6 (0.2 s away), not 7 (0.3 s)
        assert player.index == 6 and player.decodes == 14
        player.go_to_number(FIRST_NUMBER + 40)
        assert player.index == 40 and player.decodes == 15
        assert player.step(100) and player.index == N_FRAMES - 1
        assert not player.step(1) and player.index == N_FRAMES - 1
        assert player.step(-1000) and player.index == 0


def test_status_bar_layout_keeps_its_size() -> None:
    left, right = view.status_texts(123456, None, 99, 100, True)
    assert left == "#123456  time ?" and right == "index 99/100  PAUSED"
    when = datetime.datetime(2024, 6, 1, 12, 0, 0, 123000, tzinfo=ZoneInfo(TZ_NAME))
    left, right = view.status_texts(7.0, when, 7, 100, False)
    assert left == "#7  2024-06-01 12:00:00.123+02:00" and right == "index 7/100"
    for width in (64, 320, 640, 1920):
        layout = view.layout_statusbar(width, [left], [right + "  PAUSED"])
        a = view.render_statusbar(layout, left, right + "  PAUSED")
        b = view.render_statusbar(layout, "#8", "index 8/100")
        assert a.shape == b.shape == (layout.height, width) and a.dtype == np.uint8
        assert a.any() and not np.array_equal(a, b)
    assert view.layout_statusbar(1920, [left], [right]).two_lines is False
    assert view.layout_statusbar(320, [left], [right]).two_lines is True


@pytest.mark.parametrize("width", [200, 240, 320, 360, 440, 480, 640, 1024, 1920])
def test_status_bar_of_a_narrow_store_fits_one_line(grey_store: Path, width: int) -> None:
    """Narrow stores (under ~400 px) show the time of day and ``I/N``; the bar never wraps or overflows."""
    with imgstore.new_for_filename(str(grey_store)) as s:
        layout, tz = view.store_statusbar(s, width)
        last = datetime.datetime.fromtimestamp(s.frame_time_max, tz)
    assert not layout.two_lines and layout.scale >= view.READABLE_SCALE - 0.06
    assert layout.short == (width < 400)  # where the full texts would need too small a font
    left, right = view.status_texts(FIRST_NUMBER + N_FRAMES - 1, last, N_FRAMES - 1, N_FRAMES, True, layout.short)
    bar = view.render_statusbar(layout, left, right)
    assert bar.shape == (layout.height, width)
    assert bar[:, : layout.pad // 2].max() == 0 and bar[:, width - layout.pad // 2 :].max() == 0  # margins clear
    gap = bar[:, view._text_width(left, layout.scale, layout.thickness) + layout.pad + 2 : -(layout.pad + 2)]
    assert (gap.max(axis=0) == 0).any(), "the left and right texts touch"
    if layout.short:
        assert left == f"#{FIRST_NUMBER + N_FRAMES - 1} {last.time().isoformat(timespec='milliseconds')}"
        assert right == f"{N_FRAMES - 1}/{N_FRAMES} PAUSED"


def test_status_bar_of_a_very_narrow_store_takes_two_lines() -> None:
    full = (["#149  2024-06-01 12:00:24.500+02:00"], ["index 49/50  PAUSED"])
    short = (["#149 12:00:24.500"], ["49/50 PAUSED"])
    layout = view.choose_statusbar(120, full, short)
    assert layout.short and layout.two_lines


def test_compose_frame_keeps_grey_grey_and_colour_colour() -> None:
    layout = view.layout_statusbar(W, ["#1"], ["index 1/2"])
    bar = view.render_statusbar(layout, "#1", "index 1/2")
    grey = view.compose_frame(make_grid_frame(1, (H, W)), bar)
    assert grey.shape == (H + layout.height, W) and grey.dtype == np.uint8
    colour = view.compose_frame(make_grid_frame(1, (H, W, 3)), bar)
    assert colour.shape == (H + layout.height, W, 3)
    deep = view.compose_frame(make_grid_frame(1, (H, W), dtype=np.uint16), None)
    assert deep.dtype == np.uint8 and decode_grid(deep) == 1


def test_key_actions() -> None:
    assert view.key_action(-1) is None
    assert view.key_action(ord("q")) == view.key_action(27) == view.QUIT
    assert view.key_action(ord(" ")) == view.PAUSE
    assert view.key_action(65361) == view.key_action(ord(",")) == view.BACK
    assert view.key_action(65363) == view.key_action(ord(".")) == view.FORWARD
    assert view.key_action(ord("[")) == view.JUMP_BACK and view.key_action(ord("]")) == view.JUMP_FORWARD
