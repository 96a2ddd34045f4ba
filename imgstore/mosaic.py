"""Several frames tiled into one picture: the mosaic of a multi-camera step, for viewing and export.

Tiles are as large as the largest frame; smaller frames are centred, 16-bit frames shown by their
top 8 bits, grey frames made colour, and a missing frame's tile is black.
"""

from __future__ import annotations

import datetime
import math
from typing import Any, Optional, Sequence, Tuple

import numpy as np

from .errors import ImgStoreError

__all__ = ["MAX_CANVAS_SIDE", "as_8bit", "check_canvas", "grid_layout", "mosaic_of", "parse_layout", "time_of_day"]

#: the largest mosaic side in pixels (H.264's own limit is 16384 at most levels; 32768 is beyond any video)
MAX_CANVAS_SIDE = 32768


def mosaic_of(
    images: Sequence[Optional[np.ndarray]],
    shapes: Sequence[Tuple[int, ...]],
    layout: Optional[Tuple[int, int]] = None,
    keep_grey: bool = False,
) -> np.ndarray:
    """Tile ``images`` (None: black) into one BGR uint8 image, ``layout`` (rows, columns) or square-ish.

    ``keep_grey``: when every camera is grey (``shapes`` of two dimensions, or one channel), a grey
    ``(h, w)`` mosaic instead; a third of the bytes, and far cheaper for a video encoder to take.
    """
    n = len(images)
    rows, cols = layout if layout is not None else grid_layout(n)
    if rows < 1 or cols < 1 or rows * cols < n:
        raise ImgStoreError(f"a {rows}x{cols} layout has no room for {n} cameras")
    tile_h = max(int(s[0]) for s in shapes)
    tile_w = max(int(s[1]) for s in shapes)
    check_canvas(rows, cols, tile_h, tile_w)
    grey = keep_grey and all(len(s) == 2 or s[2] == 1 for s in shapes)
    out = np.zeros((rows * tile_h, cols * tile_w) + (() if grey else (3,)), np.uint8)
    for i, img in enumerate(images):
        if img is None:
            continue
        tile = as_8bit(img)
        h, w = tile.shape[:2]
        top = (i // cols) * tile_h + (tile_h - h) // 2
        left = (i % cols) * tile_w + (tile_w - w) // 2
        region = out[top : top + h, left : left + w]
        if grey or (tile.ndim == 3 and tile.shape[2] == 3):
            region[:] = tile.reshape(region.shape)
        else:  # grey: one copy per channel (faster than broadcasting or a colour copy)
            grey_tile = tile.reshape(h, w)
            for channel in range(3):
                region[:, :, channel] = grey_tile
    return out


def grid_layout(n: int) -> Tuple[int, int]:
    """``(rows, columns)`` for ``n`` tiles: as square as possible, wider than tall."""
    cols = math.ceil(math.sqrt(n))
    return math.ceil(n / cols), cols


def parse_layout(text: str, n: int) -> Tuple[int, int]:
    """``'RxC'`` (e.g. ``'2x2'``) as ``(rows, columns)``; refused when malformed or without room for ``n`` tiles."""
    try:
        rows, cols = (int(v) for v in str(text).lower().split("x"))
    except ValueError:
        raise ImgStoreError(f"layout must be ROWSxCOLUMNS, e.g. 2x2, not {text!r}") from None
    if rows < 1 or cols < 1 or rows * cols < n:
        raise ImgStoreError(f"layout {text} has no room for {n} cameras")
    return rows, cols


def time_of_day(frame_time: float, tz: Any) -> str:
    """A frame's time of day in ``tz`` to the millisecond, for a tile's label (``time ?`` without a time)."""
    if not math.isfinite(frame_time):
        return "time ?"
    return datetime.datetime.fromtimestamp(frame_time, tz).time().isoformat(timespec="milliseconds")


def check_canvas(rows: int, cols: int, tile_h: int, tile_w: int) -> None:
    """Refuse a mosaic larger than ``MAX_CANVAS_SIDE`` pixels on a side (no video holds it)."""
    height, width = rows * tile_h, cols * tile_w
    if max(height, width) > MAX_CANVAS_SIDE:
        raise ImgStoreError(
            f"a {rows}x{cols} layout of {tile_w}x{tile_h} tiles is {width}x{height} pixels: too large "
            f"(at most {MAX_CANVAS_SIDE} on a side)"
        )


def as_8bit(img: np.ndarray) -> np.ndarray:
    """A frame as 8 bits per channel: unsigned integers keep the top 8 bits of their range, signed
    ones their positive range scaled to 0..255 (negatives black), booleans are 0 or 255, floats
    are clipped to 0..255."""
    if img.dtype == np.uint8:
        return img
    if img.dtype == np.bool_:
        return img.astype(np.uint8) * 255
    if img.dtype.kind == "u":
        return (img >> (img.dtype.itemsize * 8 - 8)).astype(np.uint8)
    if img.dtype.kind == "i":
        top = np.iinfo(img.dtype).max
        return (np.clip(img, 0, None).astype(np.int64) * 255 // top).astype(np.uint8)
    return np.clip(img, 0, 255).astype(np.uint8)
