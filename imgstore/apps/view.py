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

Several stores (``imgstore-view top side front``, or ``--group`` for a store and the companion
stores its metadata lists) are shown together as a mosaic: the cameras are stepped together by
:class:`~imgstore.multi.MultiStore` on the first camera's clock, in a grid (``--layout 2x2``, or
as square as fits). Each tile has its own status line (camera, frame number, time of day); a
camera without a frame at a step is crossed out and marked ``NO FRAME``, a frame held from earlier
``HELD``, a frame after dropped ones ``DROP n``. The keys move all cameras together; ``--start``
is a frame number of the first camera and ``--start-index`` a step.

The status bar is drawn by :mod:`imgstore.apps._view_statusbar`, the frames are read by the
:class:`Player` (:mod:`imgstore.apps._view_player`) and shown in the :class:`Window`
(:mod:`imgstore.apps._view_window`), and a mosaic by :mod:`imgstore.apps._view_mosaic`; this
module holds the keys, the command line and the loop.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from typing import Any, Callable, Dict, Optional, Sequence, Union

import numpy as np

from ..errors import ImgStoreError
from ..mosaic import parse_layout
from ..stores import new_for_filename
from ._cameras import add_camera_arguments, open_cameras
from ._cli import ToolError, add_common_arguments, run
from ._view_mosaic import mosaic_layout, render_mosaic
from ._view_player import CACHE_BYTES, CACHE_FRAMES, Player, StepPlayer
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
    "StepPlayer",
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
    parser.add_argument(
        "path", nargs="+", help="the store (its directory or its metadata.yaml); several: a mosaic of those cameras"
    )
    parser.add_argument(
        "--fps", default=30.0, type=float, help="play back at this speed (0 = as fast as possible; default 30)"
    )
    parser.add_argument(
        "--hide-statusbar", default=False, action="store_true", help="hide the status bar (frame number and time)"
    )
    start = parser.add_mutually_exclusive_group()
    start.add_argument(
        "--start", type=float, metavar="N", help="start at frame number N (or the nearest; several stores: the first's)"
    )
    start.add_argument("--start-index", type=int, metavar="I", help="start at the I-th frame of the store (from 0)")
    parser.add_argument("--loop", action="store_true", help="start again from the first frame at the end")
    parser.add_argument("--paused", action="store_true", help="start paused")
    parser.add_argument(
        "--jump", type=float, default=10.0, metavar="SECONDS", help="how far '[' and ']' jump (default 10 s)"
    )
    cameras = parser.add_argument_group("several cameras (shown side by side, stepped together)")
    cameras.add_argument(
        "--group", action="store_true", help="also show the companion stores the store's metadata lists"
    )
    cameras.add_argument(
        "--layout", metavar="RxC", help="tiles in ROWS x COLUMNS, e.g. 2x2 (default: as square as fits)"
    )
    add_camera_arguments(cameras)
    add_common_arguments(parser, quiet=None)  # the viewer prints nothing but errors anyway
    return parser


def _view(args: argparse.Namespace) -> int:
    if args.fps < 0 or not math.isfinite(args.fps):
        raise ToolError(f"--fps must be 0 or more, not {args.fps}")
    several = len(args.path) > 1 or args.group
    if not several and (args.layout is not None or args.tolerance is not None):
        raise ToolError("--layout and --tolerance apply to several stores (or --group)")
    if several:
        return _view_cameras(args)
    path = args.path[0]
    store = new_for_filename(path)
    try:
        player = Player(store)
        _start(player, args)
        height, width = player.current()[0].shape[:2]
        layout, tz = (None, None) if args.hide_statusbar else store_statusbar(store, width)
        canvas_h = height + (layout.height if layout is not None else 0)

        def draw(paused: bool) -> np.ndarray:
            img, (number, when) = player.current()
            bar = None
            if layout is not None:
                dt = frame_datetime(store, when, tz)
                bar = render_statusbar(
                    layout, *status_texts(number, dt, player.index, player.count, paused, layout.short)
                )
            return compose_frame(img, bar)

        return _show(os.path.abspath(path), (width, canvas_h), player, draw, args)
    finally:
        store.close()


def _view_cameras(args: argparse.Namespace) -> int:
    """Several stores as a mosaic, stepped together."""
    multi = open_cameras(args.path, args, linked=args.group)
    with multi:
        try:
            grid = parse_layout(args.layout, len(multi.stores)) if args.layout is not None else None
        except ImgStoreError as exc:
            raise ToolError(f"--{exc}") from None
        player = StepPlayer(multi)
        _start(player, args)
        layout, tz = mosaic_layout(multi, grid, statusbar=not args.hide_statusbar)

        def draw(paused: bool) -> np.ndarray:
            return render_mosaic(layout, multi, player.current(), tz, player.count, paused)

        title = " + ".join(os.path.abspath(os.fspath(store.filename)) for store in multi.stores)
        return _show(title, (layout.width, layout.height), player, draw, args)


def _start(player: Union[Player, StepPlayer], args: argparse.Namespace) -> None:
    """Put the player where ``--start`` or ``--start-index`` asks (the first frame or step by default)."""
    if args.start_index is not None:
        if not 0 <= args.start_index < player.count:
            where = (
                f"the steps of {' + '.join(args.path)} (0.."
                if isinstance(player, StepPlayer)
                else (f"store {args.path[0]} (frames 0..")
            )
            raise ToolError(f"--start-index {args.start_index} is outside {where}{player.count - 1})")
        player.go_to_index(args.start_index)
    elif args.start is not None:
        player.go_to_number(int(args.start) if float(args.start).is_integer() else args.start)
    else:
        player.go_to_index(0)


def _show(
    title: str,
    canvas_size: Any,
    player: Union[Player, StepPlayer],
    draw: Callable[[bool], np.ndarray],
    args: argparse.Namespace,
) -> int:
    """Open the window and play in it until the end or a quit."""
    xdisplay = open_display(title)
    try:
        window = Window(title, canvas_size, xdisplay)
    except BaseException:
        if xdisplay is not None:
            xdisplay.close()
        raise
    try:
        return _play(player, window, draw, args)
    finally:
        window.close()


def _play(
    player: Union[Player, StepPlayer], window: Window, draw: Callable[[bool], np.ndarray], args: argparse.Namespace
) -> int:
    period = 0.0 if args.fps == 0 else 1.0 / args.fps
    paused = bool(args.paused)
    dirty = True
    due = time.monotonic() + period
    while True:
        if dirty:
            window.show(draw(paused))
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
