"""The viewer's picture of several cameras: their frames of one step in a grid, each tile with its own status line.

Each tile's line names the camera, its frame number and the frame's time of day (in the master
camera's zone, so that the cameras' times compare). A camera without a frame within the
tolerance is marked: its line reads ``NO FRAME`` on red and its tile is crossed out; a frame held
from earlier (``--fill hold``) reads ``HELD`` on amber; a frame that follows dropped frames of its
camera (a gap in its frame numbers) reads ``DROP n`` on magenta. Below the grid, one status bar
for the step: the master's frame number and time, ``step I/N`` and ``PAUSED``.

Pure functions of the step (:func:`mosaic_layout`, :func:`tile_texts`, :func:`render_mosaic`), so
that tests can draw what the window should show and compare it with a screenshot.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Optional, Sequence, Tuple

import cv2
import numpy as np

from ..mosaic import check_canvas, grid_layout, mosaic_of, time_of_day
from ..multi import HELD, MATCHED, MISSING, CameraFrame, MultiStore, Step
from ..util import motif_get_recording_timezone
from ._view_statusbar import (
    StatusBarLayout,
    _format_number,
    choose_statusbar,
    frame_datetime,
    layout_statusbar,
    render_statusbar,
    status_texts,
)

#: the background (BGR) of a tile's status line: a frame matched, held, missing, or after dropped frames
BAR_COLOURS = {MATCHED: (0, 0, 0), HELD: (0, 120, 200), MISSING: (0, 0, 170), "dropped": (140, 0, 140)}
#: a missing camera's tile: dark grey, crossed out in the missing colour
MISSING_TILE_LEVEL = 40
_STEP_LABEL = "step"


@dataclasses.dataclass(frozen=True)
class MosaicLayout:
    """Where everything is on the canvas: a ``rows`` x ``cols`` grid of ``tile_h`` x ``tile_w`` tiles,
    each with its status line below it (``tile_bar``), and the step's bar at the bottom."""

    rows: int
    cols: int
    tile_h: int
    tile_w: int
    tile_bar: Optional[StatusBarLayout]
    step_bar: Optional[StatusBarLayout]

    @property
    def cell_h(self) -> int:
        return self.tile_h + (self.tile_bar.height if self.tile_bar is not None else 0)

    @property
    def width(self) -> int:
        return self.cols * self.tile_w

    @property
    def height(self) -> int:
        return self.rows * self.cell_h + (self.step_bar.height if self.step_bar is not None else 0)

    def tile_origin(self, camera: int) -> Tuple[int, int]:
        """``(y, x)`` of the top left corner of camera ``camera``'s tile (its status line is below it)."""
        return (camera // self.cols) * self.cell_h, (camera % self.cols) * self.tile_w


def mosaic_layout(
    multi: MultiStore, grid: Optional[Tuple[int, int]] = None, statusbar: bool = True
) -> Tuple[MosaicLayout, Any]:
    """The canvas layout for ``multi`` (``grid``: rows and columns, default as square as fits) and the
    time zone its times are shown in (the master camera's). Status lines fit the longest texts any
    step can show, so that the window keeps its size."""
    rows, cols = grid if grid is not None else grid_layout(len(multi.stores))
    tile_h = max(int(store.image_shape[0]) for store in multi.stores)
    tile_w = max(int(store.image_shape[1]) for store in multi.stores)
    check_canvas(rows, cols, tile_h, tile_w)
    master = multi.stores[multi.master]
    tz = motif_get_recording_timezone(master)
    if not statusbar:
        return MosaicLayout(rows, cols, tile_h, tile_w, None, None), tz
    lefts, rights = [], ["NO FRAME"]
    for store, name in zip(multi.stores, multi.names):
        numbers = store.view.table.frame_number
        lefts += [_tile_left(name, n) for n in (numbers.min(), numbers.max())] if len(numbers) else [name]
        gap = _largest_gap(numbers)
        rights += ["HELD 00:00:00.000"] + ([f"DROP {gap} 00:00:00.000"] if gap else [])
    tile_bar = layout_statusbar(tile_w, lefts, rights)
    times = [frame_datetime(master, t, tz) for t in (master.frame_time_min, master.frame_time_max)]
    numbers = [master.frame_min, master.frame_max]
    samples = {}
    for short in (False, True):
        left = [status_texts(n, w, 0, len(multi), True, short)[0] for n in numbers for w in times]
        right = [status_texts(0, None, len(multi) - 1, len(multi), True, short, _STEP_LABEL)[1]]
        samples[short] = (left, right)
    step_bar = choose_statusbar(cols * tile_w, samples[False], samples[True])
    return MosaicLayout(rows, cols, tile_h, tile_w, tile_bar, step_bar), tz


def _largest_gap(numbers: np.ndarray) -> int:
    """The most frame numbers missing between two neighbours of a camera (0: none)."""
    if len(numbers) < 2 or numbers.dtype.kind not in "iu":
        return 0
    return max(0, int(np.diff(numbers).max()) - 1)


def dropped_before(multi: MultiStore, camera: int, frame: CameraFrame) -> int:
    """How many frame numbers the camera skipped just before ``frame`` (its frames dropped there)."""
    numbers = multi.stores[camera].view.table.frame_number
    if frame.frame_index < 1 or numbers.dtype.kind not in "iu":
        return 0
    return max(0, int(numbers[frame.frame_index]) - int(numbers[frame.frame_index - 1]) - 1)


def _tile_left(name: str, number: Any) -> str:
    return f"{name} #{_format_number(number)}"


def tile_texts(frame: CameraFrame, tz: Any, dropped: int = 0) -> Tuple[str, str, str]:
    """A tile's status line: left text, right text, and its kind (a key of ``BAR_COLOURS``)."""
    if frame.status == MISSING:
        return frame.camera, "NO FRAME", MISSING
    clock = time_of_day(frame.frame_time, tz)
    if frame.status == HELD:
        return _tile_left(frame.camera, frame.frame_number), f"HELD {clock}", HELD
    if dropped:
        return _tile_left(frame.camera, frame.frame_number), f"DROP {dropped} {clock}", "dropped"
    return _tile_left(frame.camera, frame.frame_number), clock, MATCHED


def coloured_bar(bar: np.ndarray, background: Tuple[int, int, int]) -> np.ndarray:
    """A grey status bar (white text on black) as BGR: the text stays white, the black becomes ``background``."""
    text = bar.astype(np.uint16)[:, :, None]
    bg = np.array(background, np.uint16)
    return (bg + ((255 - bg) * text + 127) // 255).astype(np.uint8)


def missing_tile(h: int, w: int) -> np.ndarray:
    """The tile of a camera without a frame: dark grey, crossed out."""
    tile = np.full((h, w, 3), MISSING_TILE_LEVEL, np.uint8)
    colour = BAR_COLOURS[MISSING]
    cv2.line(tile, (0, 0), (w - 1, h - 1), colour, 2, cv2.LINE_AA)
    cv2.line(tile, (0, h - 1), (w - 1, 0), colour, 2, cv2.LINE_AA)
    return tile


def render_mosaic(
    layout: MosaicLayout,
    multi: MultiStore,
    step: Step,
    tz: Any,
    step_count: int,
    paused: bool,
) -> np.ndarray:
    """The canvas the window shows for ``step``: every camera's tile and status line, then the step's bar."""
    canvas = np.zeros((layout.height, layout.width, 3), np.uint8)
    shapes: Sequence[Tuple[int, int]] = [(layout.tile_h, layout.tile_w)]
    for camera, (img, frame) in enumerate(zip(step.images, step.frames)):
        y, x = layout.tile_origin(camera)
        if frame.status == MISSING or img is None:
            tile = missing_tile(layout.tile_h, layout.tile_w)
        else:
            tile = mosaic_of([img], shapes, (1, 1))
        canvas[y : y + layout.tile_h, x : x + layout.tile_w] = tile
        if layout.tile_bar is not None:
            left, right, kind = tile_texts(frame, tz, dropped_before(multi, camera, frame))
            bar = coloured_bar(render_statusbar(layout.tile_bar, left, right), BAR_COLOURS[kind])
            canvas[y + layout.tile_h : y + layout.cell_h, x : x + layout.tile_w] = bar
    if layout.step_bar is not None:
        master = multi.stores[multi.master]
        when = frame_datetime(master, step.time, tz)
        number = step.frame_number if step.frame_number is not None else ""
        texts = status_texts(number, when, step.index, step_count, paused, layout.step_bar.short, _STEP_LABEL)
        bar = render_statusbar(layout.step_bar, *texts)
        canvas[layout.height - layout.step_bar.height :] = bar[:, :, None]
    return canvas
