"""The viewer's status bar: the frame number, local time, index and ``PAUSED`` drawn below each frame.

Pure functions of the frame's metadata (:func:`status_texts`, :func:`layout_statusbar`,
:func:`render_statusbar`, :func:`compose_frame`), so that tests can draw the canvas the viewer
should show and compare it with a screenshot.
"""

from __future__ import annotations

import datetime
import math
from typing import Any, NamedTuple, Optional, Sequence, Tuple

import cv2
import numpy as np

from ..util import motif_get_recording_timezone
from ._cli import ToolError

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
    label: str = "index",
) -> Tuple[str, str]:
    """The left (``#number  local time``) and right (``index I/N [PAUSED]``) texts of the status bar.

    ``short``: for narrow windows, ``#number HH:MM:SS.mmm`` (the time of day in the store's zone)
    and ``I/N [PAUSED]``. ``label`` names the position (``step`` for several cameras).
    """
    if short:
        clock = when.time().isoformat(timespec="milliseconds") if when is not None else "time ?"
        right = f"{frame_index}/{frame_count}" + (" PAUSED" if paused else "")
        return f"#{_format_number(frame_number)} {clock}", right
    left = f"#{_format_number(frame_number)}  {format_frame_time(when)}"
    right = f"{label} {frame_index}/{frame_count}"
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
