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

The status bar is drawn by :mod:`imgstore.apps._view_statusbar`, the frames are read by the
:class:`Player` (:mod:`imgstore.apps._view_player`) and shown in the :class:`Window`
(:mod:`imgstore.apps._view_window`); this module holds the keys, the command line and the loop.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from typing import Any, Dict, Optional, Sequence

from ..stores import new_for_filename
from ._cli import ToolError, add_common_arguments, run
from ._view_player import CACHE_BYTES, CACHE_FRAMES, Player
from ._view_statusbar import (
    BAR_GAP,
    BAR_MIN_SCALE,
    BAR_PAD_H,
    BAR_PAD_V,
    FONT,
    FULL_MIN_SHRINK,
    READABLE_SCALE,
    SHORT_MIN_SCALE,
    StatusBarLayout,
    choose_statusbar,
    compose_frame,
    format_frame_time,
    frame_datetime,
    layout_statusbar,
    natural_scale,
    render_statusbar,
    status_texts,
    store_statusbar,
    to_display,
)
from ._view_statusbar import _text_width as _text_width  # the tests measure the bar's texts with it
from ._view_window import (
    DEFAULT_SCREEN,
    NO_GUI_HINT,
    SCREEN_FRACTION,
    WINDOW_NAME,
    Window,
    open_display,
    opencv_has_gui,
)

__all__ = [
    "BACK",
    "BAR_GAP",
    "BAR_MIN_SCALE",
    "BAR_PAD_H",
    "BAR_PAD_V",
    "DEFAULT_SCREEN",
    "FONT",
    "FULL_MIN_SHRINK",
    "SCREEN_FRACTION",
    "SHORT_MIN_SCALE",
    "CACHE_BYTES",
    "CACHE_FRAMES",
    "FIRST",
    "FORWARD",
    "JUMP_BACK",
    "JUMP_FORWARD",
    "LAST",
    "NO_GUI_HINT",
    "PAUSE",
    "QUIT",
    "READABLE_SCALE",
    "WINDOW_NAME",
    "Player",
    "StatusBarLayout",
    "Window",
    "build_parser",
    "choose_statusbar",
    "compose_frame",
    "format_frame_time",
    "frame_datetime",
    "key_action",
    "layout_statusbar",
    "main",
    "natural_scale",
    "open_display",
    "opencv_has_gui",
    "render_statusbar",
    "status_texts",
    "store_statusbar",
    "to_display",
]

PROG = "imgstore-view"
#: how often a paused viewer looks for keys (ms)
PAUSED_POLL_MS = 30

# waitKeyEx codes of the keys that have no character: X11 keysyms (GTK, and Qt under X11),
# Windows virtual keys << 16, macOS (Cocoa) function keys and Qt key codes
KEYS_LEFT = frozenset({65361, 0x250000, 0xF702, 0x01000012})
KEYS_RIGHT = frozenset({65363, 0x270000, 0xF703, 0x01000014})
KEYS_HOME = frozenset({65360, 0x240000, 0xF729, 0x01000010})
KEYS_END = frozenset({65367, 0x230000, 0xF72B, 0x01000011})
KEY_ESC = 27

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
