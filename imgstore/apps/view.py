"""``imgstore-view PATH``: play a store in an OpenCV window.

The window (its title is the store's path) shows each frame with a status bar below it: the frame
number and the frame's local time in the store's time zone on the left, the frame's index in the
store, the frame count and ``PAUSED`` on the right, on one line. Where the full texts do not fit
(stores narrower than about 400 pixels) the bar shows the time of day without the date and zone,
and ``I/N`` without the word ``index``; only under about 200 pixels does it take two lines.
Playback stops at the end of the store (exit status 0) unless ``--loop``.

Keys: space pauses/plays; ``q`` or Esc quits; Left or ``,`` steps one frame back and Right or ``.``
one frame forward (both pause); ``[`` and ``]`` jump ``--jump`` seconds (default 10) back and
forward by frame time; Home and End go to the first and the last frame. Stepping back shows
frames kept from earlier (the last 64 or so), without decoding them again.

The rendering of the status bar (:func:`status_texts`, :func:`layout_statusbar`,
:func:`render_statusbar`, :func:`compose_frame`) is pure, so that tests can draw the canvas
the viewer should show and compare it with a screenshot.
"""

from __future__ import annotations

import argparse
import collections
import datetime
import logging
import math
import os
import re
import sys
import time
from typing import Any, Dict, NamedTuple, Optional, Sequence, Tuple

import cv2
import numpy as np

from ..stores import new_for_filename
from ..ui import fit_window
from ..util import motif_get_recording_timezone
from ._cli import ToolError, add_common_arguments, run
from ._x11 import DisplayError, MapReminder, XDisplay, is_x11_platform

PROG = "imgstore-view"
_log = logging.getLogger("imgstore.view")
WINDOW_NAME = "imgstore-view"

#: frames kept for stepping back (fewer when frames are big: at most CACHE_BYTES in all)
CACHE_FRAMES = 64
CACHE_BYTES = 512 * 1024 * 1024
#: the window is made no larger than this fraction of the screen (upstream's 75 %)
SCREEN_FRACTION = 0.75
DEFAULT_SCREEN = (1024, 768)
#: how often a paused viewer looks for keys (ms)
PAUSED_POLL_MS = 30

# waitKeyEx codes of the keys that have no character: X11 keysyms (GTK, and Qt under X11),
# Windows virtual keys << 16, macOS (Cocoa) function keys and Qt key codes
KEYS_LEFT = frozenset({65361, 0x250000, 0xF702, 0x01000012})
KEYS_RIGHT = frozenset({65363, 0x270000, 0xF703, 0x01000014})
KEYS_HOME = frozenset({65360, 0x240000, 0xF729, 0x01000010})
KEYS_END = frozenset({65367, 0x230000, 0xF72B, 0x01000011})
KEY_ESC = 27

# ----------------------------------------------------------------------------------------------
# the status bar: pure functions of the frame's metadata
# ----------------------------------------------------------------------------------------------
FONT = cv2.FONT_HERSHEY_SIMPLEX
BAR_PAD_H = 6  # pixels left and right of the text (at scale 1 of the layout)
BAR_PAD_V = 4  # pixels above and below each line
BAR_GAP = 16  # least space between the left and the right text on one line
BAR_MIN_SCALE = 0.3
#: the smallest font scale read without effort (about 10-pixel digits)
READABLE_SCALE = 0.45
#: the full texts are shown on one line at down to this fraction of the natural font scale
FULL_MIN_SHRINK = 0.6
#: the short texts stay on one line down to this font scale; below it, two lines
SHORT_MIN_SCALE = 0.34


class StatusBarLayout(NamedTuple):
    """How a status bar of ``width`` pixels is drawn: short or full texts, font scale and thickness, one line or two."""

    width: int
    scale: float
    thickness: int
    two_lines: bool
    line_height: int  # text height plus descent plus padding, per line
    baseline: int  # from the bottom of a line's box to the text's baseline
    pad: int  # pixels left and right of the text
    short: bool = False  # the short texts of ``status_texts(..., short=True)``

    @property
    def height(self) -> int:
        return self.line_height * (2 if self.two_lines else 1)


def _format_number(value: Any) -> str:
    """A frame number as an integer when it is one."""
    try:
        f = float(value)
    except (TypeError, ValueError):
        return str(value)
    if math.isfinite(f) and f == int(f):
        return str(int(f))
    return str(value)


def format_frame_time(when: Optional[datetime.datetime]) -> str:
    """An aware datetime as ``YYYY-MM-DD HH:MM:SS.mmm+HH:MM`` (``time ?`` when unknown)."""
    if when is None:
        return "time ?"
    return when.isoformat(sep=" ", timespec="milliseconds")


def status_texts(
    frame_number: Any,
    when: Optional[datetime.datetime],
    frame_index: int,
    frame_count: int,
    paused: bool,
    short: bool = False,
) -> Tuple[str, str]:
    """The left (``#number  local time``) and right (``index I/N [PAUSED]``) texts of the status bar.

    ``short``: for narrow windows, ``#number HH:MM:SS.mmm`` (the time of day in the store's zone)
    and ``I/N [PAUSED]``.
    """
    if short:
        clock = when.time().isoformat(timespec="milliseconds") if when is not None else "time ?"
        right = f"{frame_index}/{frame_count}" + (" PAUSED" if paused else "")
        return f"#{_format_number(frame_number)} {clock}", right
    left = f"#{_format_number(frame_number)}  {format_frame_time(when)}"
    right = f"index {frame_index}/{frame_count}"
    if paused:
        right += "  PAUSED"
    return left, right


def _text_width(text: str, scale: float, thickness: int) -> int:
    return cv2.getTextSize(text, FONT, scale, thickness)[0][0] if text else 0


def natural_scale(width: int) -> float:
    """The font scale a bar ``width`` pixels wide starts from: it grows with the image (0.4 .. 2)."""
    return min(2.0, max(0.4, int(width) / 640.0))


def choose_statusbar(
    width: int, full: Tuple[Sequence[str], Sequence[str]], short: Tuple[Sequence[str], Sequence[str]]
) -> StatusBarLayout:
    """The layout that keeps the bar on one line: the full texts where they fit, else the short ones.

    ``full`` and ``short`` are the (left, right) sample texts of each kind. The full texts are
    used where one line of them needs a font no smaller than ``FULL_MIN_SHRINK`` of the natural
    one (and readable); the short texts where they fit at ``SHORT_MIN_SCALE`` or more. Only
    windows too narrow for that (under about 200 pixels) get two lines.
    """
    layout = layout_statusbar(width, *full, one_line=True)
    if layout.scale >= max(READABLE_SCALE, FULL_MIN_SHRINK * natural_scale(width)):
        return layout
    layout = layout_statusbar(width, *short, one_line=True)
    if layout.scale < SHORT_MIN_SCALE:
        layout = layout_statusbar(width, *short)
    return layout._replace(short=True)


def layout_statusbar(
    width: int, left_samples: Sequence[str], right_samples: Sequence[str], one_line: bool = False
) -> StatusBarLayout:
    """The layout for a bar ``width`` pixels wide that fits the longest of the sample texts.

    The font grows with the image width (so that a big image shrunk to the screen keeps a
    readable bar). When the left and right texts do not fit on one line they go on two lines
    (unless ``one_line``); when a line still does not fit the font shrinks. Lay out once per
    store, with the longest texts it can show, so that the bar (and the window) keep their size
    from frame to frame.
    """
    width = int(width)
    scale = natural_scale(width)
    thickness = 1 if scale < 1.2 else 2
    lw = max((_text_width(t, scale, thickness) for t in left_samples), default=0)
    rw = max((_text_width(t, scale, thickness) for t in right_samples), default=0)
    pad = round(BAR_PAD_H * scale)
    two_lines = not one_line and lw + rw + round(BAR_GAP * scale) + 2 * pad > width
    widest = max(lw, rw) if two_lines else lw + rw + round(BAR_GAP * scale)
    if widest + 2 * pad > width and widest > 0:
        scale = max(BAR_MIN_SCALE, scale * (width - 2 * pad) / widest)
        thickness = 1
        while scale > BAR_MIN_SCALE and _needed(left_samples, right_samples, scale, two_lines) + 2 * pad > width:
            scale = max(BAR_MIN_SCALE, scale * 0.98)  # text width is not quite proportional to the scale
    (_, text_h), descent = cv2.getTextSize("0123456789#:-+/PAUSEDindex", FONT, scale, thickness)
    pad_v = max(2, round(BAR_PAD_V * scale))
    return StatusBarLayout(
        width=width,
        scale=scale,
        thickness=thickness,
        two_lines=two_lines,
        line_height=text_h + descent + 2 * pad_v + 1,
        baseline=descent + pad_v,
        pad=pad,
    )


def _needed(left_samples: Sequence[str], right_samples: Sequence[str], scale: float, two_lines: bool) -> int:
    """Pixels the widest texts take at ``scale`` (thickness 1), side by side or on two lines."""
    lw = max((_text_width(t, scale, 1) for t in left_samples), default=0)
    rw = max((_text_width(t, scale, 1) for t in right_samples), default=0)
    return max(lw, rw) if two_lines else lw + rw + round(BAR_GAP * scale)


def render_statusbar(layout: StatusBarLayout, left: str, right: str) -> np.ndarray:
    """The status bar: white text on a black ``(layout.height, layout.width)`` uint8 strip."""
    bar = np.zeros((layout.height, layout.width), np.uint8)
    pad, lh = layout.pad, layout.line_height
    if layout.two_lines:
        places = [(left, pad, lh - layout.baseline), (right, pad, 2 * lh - layout.baseline)]
    else:
        rx = layout.width - pad - _text_width(right, layout.scale, layout.thickness)
        places = [(left, pad, lh - layout.baseline), (right, rx, lh - layout.baseline)]
    for text, x, y in places:
        if text:
            cv2.putText(bar, text, (int(x), int(y)), FONT, layout.scale, 255, layout.thickness, cv2.LINE_AA)
    return bar


def to_display(img: np.ndarray) -> np.ndarray:
    """``img`` as 8 bits for the screen (grey stays 2-D grey; BGRA loses alpha), as imshow scales it."""
    arr = np.asarray(img)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    elif arr.ndim == 3 and arr.shape[2] == 4:
        arr = cv2.cvtColor(arr, cv2.COLOR_BGRA2BGR)
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] != 3):
        raise ToolError(f"cannot show an image of shape {arr.shape}")
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == np.uint16:
        return (arr >> 8).astype(np.uint8)
    if arr.dtype == np.bool_:
        return arr.astype(np.uint8) * 255
    if arr.dtype.kind == "f":
        return np.clip(np.nan_to_num(arr) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return np.clip(arr, 0, 255).astype(np.uint8)


def compose_frame(img: np.ndarray, bar: Optional[np.ndarray]) -> np.ndarray:
    """The canvas the window shows: the image (8-bit) with the status bar below it, if any."""
    shown = to_display(img)
    if bar is None:
        return shown
    if bar.shape[1] != shown.shape[1]:
        raise ValueError(f"status bar is {bar.shape[1]} pixels wide, the image {shown.shape[1]}")
    if shown.ndim == 3:
        bar = cv2.cvtColor(bar, cv2.COLOR_GRAY2BGR)
    return np.concatenate([shown, bar], axis=0)


# ----------------------------------------------------------------------------------------------
# the player: which frame is shown, and a cache of recent frames (no GUI here)
# ----------------------------------------------------------------------------------------------
class Player:
    """Moves through a store by index, keeping recently decoded frames for stepping back."""

    def __init__(self, store: Any, cache_frames: int = CACHE_FRAMES) -> None:
        self.store = store
        md = store.get_frame_metadata()
        self.numbers = np.asarray(md["frame_number"])
        self.times = np.asarray(md["frame_time"], dtype=np.float64)
        self.count = len(self.numbers)
        if self.count == 0:
            raise ToolError(f"store {store.full_path} has no frames")
        frame_bytes = max(1, int(np.prod(store.image_shape)) * 2)
        self.cache_frames = max(2, min(int(cache_frames), CACHE_BYTES // frame_bytes))
        self._cache: collections.OrderedDict[int, Tuple[np.ndarray, Tuple[Any, float]]] = collections.OrderedDict()
        self._store_position = -1  # the index of the frame the store read last
        self.index = -1  # the index of the frame shown
        self.decodes = 0  # frames read from the store (for tests)

    def _remember(self, index: int, img: np.ndarray, md: Tuple[Any, float]) -> None:
        self._cache[index] = (img, md)
        self._cache.move_to_end(index)
        while len(self._cache) > self.cache_frames:
            self._cache.popitem(last=False)

    def _index_of(self, md: Tuple[Any, float]) -> int:
        """The store position of the frame the store just returned with metadata ``md``."""
        number, when = md
        hits = np.flatnonzero(self.numbers == number)
        if len(hits) > 1:
            same_time = hits[self.times[hits] == when]
            hits = same_time if len(same_time) else hits
        if not len(hits):
            raise ToolError(f"frame #{number} of store {self.store.full_path} is not in its frame index")
        return int(hits[0])

    def frame(self, index: int) -> Tuple[np.ndarray, Tuple[Any, float]]:
        """The frame at store position ``index``, from the cache when it is there."""
        cached = self._cache.get(index)
        if cached is not None:
            self._cache.move_to_end(index)
            return cached
        if index == self._store_position + 1:
            img, md = self.store.get_next_image()
        else:
            img, md = self.store.get_image(None, frame_index=index)
        self._decoded(index, md)
        self._remember(index, img, md)
        return img, md

    def _decoded(self, index: int, md: Tuple[Any, float]) -> None:
        self.decodes += 1
        self._store_position = index
        _log.debug("decoded frame index %d (frame #%s)", index, _format_number(md[0]))

    def current(self) -> Tuple[np.ndarray, Tuple[Any, float]]:
        return self.frame(self.index)

    def go_to_index(self, index: int) -> bool:
        """Show the frame at ``index`` (clamped to the store); whether the shown frame changed."""
        index = min(max(int(index), 0), self.count - 1)
        changed = index != self.index
        self.frame(index)
        self.index = index
        return changed

    def step(self, delta: int) -> bool:
        return self.go_to_index(self.index + delta)

    def _adopt(self, img: np.ndarray, md: Tuple[Any, float]) -> bool:
        index = self._index_of(md)
        self._decoded(index, md)
        self._remember(index, img, md)
        changed = index != self.index
        self.index = index
        return changed

    def go_to_number(self, frame_number: Any) -> bool:
        """Show the frame numbered ``frame_number``, or the one with the nearest number."""
        return self._adopt(*self.store.get_image(frame_number, exact_only=False))

    def jump_seconds(self, seconds: float) -> bool:
        """Show the frame whose time is nearest the shown frame's time plus ``seconds``.

        A frame still in the cache is shown from there; any other is read with ``get_nearest_image``.
        """
        now = float(self.times[self.index])
        if not math.isfinite(now):
            return False
        target = now + seconds
        with np.errstate(invalid="ignore"):
            distance = np.abs(self.times - target)
        if np.isfinite(distance).any():
            nearest = int(np.nanargmin(distance))  # ties: the first in store order, as the store
            if nearest in self._cache:
                return self.go_to_index(nearest)
        return self._adopt(*self.store.get_nearest_image(target))


# ----------------------------------------------------------------------------------------------
# the window
# ----------------------------------------------------------------------------------------------
def open_display(path: str) -> Optional[XDisplay]:
    """Our own connection to the X display (None off X11 or without libX11: OpenCV finds out itself).

    Checks that the display opens before OpenCV tries: Qt would abort the whole process otherwise.
    """
    if not is_x11_platform():
        return None
    try:
        return XDisplay.open()
    except DisplayError as exc:
        raise ToolError(f"cannot show {path}: {exc}") from None


def _cv2_message(exc: Exception) -> str:
    """An OpenCV error in one line."""
    msg = getattr(exc, "err", None) or str(exc)
    lines = [line.strip() for line in str(msg).splitlines() if line.strip()]
    return lines[-1] if lines else type(exc).__name__


NO_GUI_HINT = (
    "this OpenCV has no windows (opencv-python-headless?): "
    "pip uninstall -y opencv-python-headless && pip install opencv-python"
)


def opencv_has_gui() -> bool:
    """Whether this OpenCV build can open windows (``opencv-python-headless`` cannot)."""
    match = re.search(r"^\s*GUI:\s*(\S+)", cv2.getBuildInformation(), re.MULTILINE)
    return match is None or match.group(1).upper() != "NONE"


class Window:
    """The OpenCV window: created at the canvas size (shrunk to fit the screen).

    With OpenCV's Qt backend on X11 the window is told again that it is mapped, after its first
    frame and twice more in its first seconds: Qt 5's xcb plugin sometimes loses a new window's
    MapNotify event, and then never copies a frame to the screen (see :mod:`imgstore.apps._x11`).
    """

    def __init__(self, title: str, canvas_size: Tuple[int, int], xdisplay: Optional[XDisplay]) -> None:
        self.name = WINDOW_NAME
        self._xdisplay = xdisplay
        if not opencv_has_gui():
            raise ToolError(f"cannot show {title}: {NO_GUI_HINT}")
        try:
            cv2.namedWindow(self.name, cv2.WINDOW_NORMAL | cv2.WINDOW_KEEPRATIO | cv2.WINDOW_GUI_NORMAL)
        except cv2.error as exc:
            raise ToolError(f"cannot show {title}: cannot open a window: {_cv2_message(exc)}") from None
        self.open = True
        self._reminder = MapReminder(xdisplay)
        try:
            cv2.setWindowTitle(self.name, title)
        except cv2.error:
            pass
        screen = xdisplay.screen_size() if xdisplay is not None else DEFAULT_SCREEN
        w, h = fit_window(canvas_size, screen, SCREEN_FRACTION)
        cv2.resizeWindow(self.name, w, h)

    def show(self, canvas: np.ndarray) -> None:
        cv2.imshow(self.name, canvas)

    def wait_key(self, ms: int) -> int:
        key = cv2.waitKeyEx(max(1, int(ms)))
        self._reminder.tick()
        return key

    def closed_by_user(self) -> bool:
        try:
            return cv2.getWindowProperty(self.name, cv2.WND_PROP_VISIBLE) < 1
        except cv2.error:
            return True

    def close(self) -> None:
        if self.open:
            self.open = False
            try:
                cv2.destroyWindow(self.name)
                cv2.waitKey(1)
            except cv2.error:
                pass
        self._reminder.stop()
        if self._xdisplay is not None:
            self._xdisplay.close()
            self._xdisplay = None


# ----------------------------------------------------------------------------------------------
# the command
# ----------------------------------------------------------------------------------------------
QUIT, PAUSE, BACK, FORWARD, JUMP_BACK, JUMP_FORWARD, FIRST, LAST = (
    "quit",
    "pause",
    "back",
    "forward",
    "jump-back",
    "jump-forward",
    "first",
    "last",
)
_CHAR_ACTIONS: Dict[int, str] = {
    ord("q"): QUIT,
    ord("Q"): QUIT,
    KEY_ESC: QUIT,
    ord(" "): PAUSE,
    ord(","): BACK,
    ord("."): FORWARD,
    ord("["): JUMP_BACK,
    ord("]"): JUMP_FORWARD,
}


def key_action(key: int) -> Optional[str]:
    """What a ``waitKeyEx`` code asks for (None: nothing)."""
    if key < 0:
        return None
    for keys, action in ((KEYS_LEFT, BACK), (KEYS_RIGHT, FORWARD), (KEYS_HOME, FIRST), (KEYS_END, LAST)):
        if key in keys:
            return action
    return _CHAR_ACTIONS.get(key)


def store_statusbar(store: Any, width: int) -> Tuple[StatusBarLayout, Any]:
    """The status bar layout for ``store`` (fits its longest texts) and the time zone it shows times in."""
    tz = motif_get_recording_timezone(store)
    count = store.frame_count
    numbers = [n for n in (store.frame_min, store.frame_max) if math.isfinite(float(n))] or [0]
    when = [frame_datetime(store, t, tz) for t in (store.frame_time_min, store.frame_time_max)]
    samples = {}
    for short in (False, True):
        lefts = [status_texts(n, w, 0, count, True, short)[0] for n in numbers for w in when]
        rights = [status_texts(0, None, max(count - 1, 0), count, True, short)[1]]
        samples[short] = (lefts, rights)
    return choose_statusbar(width, samples[False], samples[True]), tz


def frame_datetime(store: Any, frame_time: float, tz: Any) -> Optional[datetime.datetime]:
    """The frame time as an aware datetime in ``tz`` (None when the time is not a number)."""
    try:
        t = float(frame_time)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(t):
        return None
    try:
        return store.convert_frame_time_to_datetime(t, tz=tz)
    except (OverflowError, OSError, ValueError):
        return None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Play a store in a window. Keys: space pause/play, q/Esc quit, Left/',' and Right/'.' "
        "one frame back/forward, '[' / ']' jump back/forward by --jump seconds, Home/End first/last frame.",
    )
    parser.add_argument("path", nargs=1, help="the store (its directory or its metadata.yaml)")
    parser.add_argument(
        "--fps", default=30.0, type=float, help="play back at this speed (0 = as fast as possible; default 30)"
    )
    parser.add_argument(
        "--hide-statusbar", default=False, action="store_true", help="hide the status bar (frame number and time)"
    )
    start = parser.add_mutually_exclusive_group()
    start.add_argument("--start", type=float, metavar="N", help="start at frame number N (or the nearest number)")
    start.add_argument("--start-index", type=int, metavar="I", help="start at the I-th frame of the store (from 0)")
    parser.add_argument("--loop", action="store_true", help="start again from the first frame at the end")
    parser.add_argument("--paused", action="store_true", help="start paused")
    parser.add_argument(
        "--jump", type=float, default=10.0, metavar="SECONDS", help="how far '[' and ']' jump (default 10 s)"
    )
    add_common_arguments(parser, quiet=None)  # the viewer prints nothing but errors anyway
    return parser


def _view(args: argparse.Namespace) -> int:
    path = args.path[0]
    if args.fps < 0 or not math.isfinite(args.fps):
        raise ToolError(f"--fps must be 0 or more, not {args.fps}")
    store = new_for_filename(path)
    window: Optional[Window] = None
    try:
        player = Player(store)
        if args.start_index is not None:
            if not 0 <= args.start_index < player.count:
                raise ToolError(
                    f"--start-index {args.start_index} is outside store {path} (frames 0..{player.count - 1})"
                )
            player.go_to_index(args.start_index)
        elif args.start is not None:
            player.go_to_number(int(args.start) if float(args.start).is_integer() else args.start)
        else:
            player.go_to_index(0)

        height, width = player.current()[0].shape[:2]
        layout, tz = (None, None) if args.hide_statusbar else store_statusbar(store, width)
        canvas_h = height + (layout.height if layout is not None else 0)

        xdisplay = open_display(path)
        try:
            window = Window(os.path.abspath(path), (width, canvas_h), xdisplay)
        except BaseException:
            if xdisplay is not None:
                xdisplay.close()
            raise
        return _play(player, window, layout, tz, args)
    finally:
        if window is not None:
            window.close()
        store.close()


def _play(player: Player, window: Window, layout: Optional[StatusBarLayout], tz: Any, args: argparse.Namespace) -> int:
    period = 0.0 if args.fps == 0 else 1.0 / args.fps
    paused = bool(args.paused)
    dirty = True
    due = time.monotonic() + period
    while True:
        if dirty:
            img, (number, when) = player.current()
            bar = None
            if layout is not None:
                dt = frame_datetime(player.store, when, tz)
                texts = status_texts(number, dt, player.index, player.count, paused, layout.short)
                bar = render_statusbar(layout, *texts)
            canvas = compose_frame(img, bar)
            window.show(canvas)
            dirty = False
        wait_ms = PAUSED_POLL_MS if paused else round((due - time.monotonic()) * 1000.0)
        key = window.wait_key(wait_ms)
        if window.closed_by_user():
            return 0
        action = key_action(key)
        if action == QUIT:
            return 0
        if action == PAUSE:
            paused = not paused
            dirty = True
            due = time.monotonic() + period
        elif action in (BACK, FORWARD):
            player.step(-1 if action == BACK else 1)
            paused = True
            dirty = True
        elif action in (JUMP_BACK, JUMP_FORWARD):
            player.jump_seconds(-args.jump if action == JUMP_BACK else args.jump)
            dirty = True
        elif action in (FIRST, LAST):
            player.go_to_index(0 if action == FIRST else player.count - 1)
            dirty = True
        if paused or time.monotonic() < due:
            continue
        # time for the next frame
        due = max(due + period, time.monotonic()) if period else time.monotonic()
        if player.index + 1 < player.count:
            player.step(1)
        elif args.loop:
            player.go_to_index(0)
        else:
            return 0  # the end of the store, as upstream
        dirty = True


def main(argv: Optional[Sequence[str]] = None) -> int:
    return run(PROG, _view, build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
