"""Frames that carry their own id, for ``imgstore-test``: a 4x4 grid of cells, 10 bits of id then 6 of checksum.

A frame read back can be told from its neighbours even through lossy compression, so that a check
knows which frame came back, not just that one did.
"""

from __future__ import annotations

from typing import List, Tuple

import numpy as np

GRID = 4
ID_BITS = 10
CHECK_BITS = GRID * GRID - ID_BITS
MAX_ID = (1 << ID_BITS) - 1
HIGH, LOW, THRESHOLD = 200, 56, 128  # 8-bit levels; 16-bit frames are scaled by 257
NOISE = 12  # deterministic noise on every pixel, never near the threshold


def _checksum(frame_id: int) -> int:
    return ((frame_id * 0x2B) ^ (frame_id >> 4) ^ 0x15) & ((1 << CHECK_BITS) - 1)


def _scale(dtype: np.dtype) -> float:
    return 257.0 if np.dtype(dtype).itemsize == 2 else 1.0


def _cell_edges(size: int) -> List[int]:
    return [round(k * size / GRID) for k in range(GRID + 1)]


def pattern_levels(frame_id: int, height: int, width: int) -> np.ndarray:
    """``(height, width)`` 8-bit levels (float) whose grid spells ``frame_id``, with seeded noise."""
    if not 0 <= frame_id <= MAX_ID:
        raise ValueError(f"frame id {frame_id} outside 0..{MAX_ID}")
    word = (frame_id << CHECK_BITS) | _checksum(frame_id)
    levels = np.empty((height, width), dtype=np.float64)
    ys, xs = _cell_edges(height), _cell_edges(width)
    for r in range(GRID):
        for c in range(GRID):
            bit = (word >> (GRID * GRID - 1 - (r * GRID + c))) & 1
            levels[ys[r] : ys[r + 1], xs[c] : xs[c + 1]] = HIGH if bit else LOW
    rng = np.random.default_rng(frame_id)
    return levels + rng.integers(-NOISE, NOISE + 1, size=levels.shape)


def make_frame(frame_id: int, shape: Tuple[int, ...], dtype: str) -> np.ndarray:
    """A grey ``(h, w)`` or BGR ``(h, w, 3)`` frame spelling ``frame_id``.

    Colour frames hold the pattern in blue and its negative in red (green is a dimmer copy), so
    that swapped channels are caught by the decoder even through lossy compression.
    """
    levels = pattern_levels(frame_id, shape[0], shape[1])
    if len(shape) == 3:
        levels = np.stack([levels, levels * 0.5 + 64, 255.0 - levels], axis=-1)
    dt = np.dtype(dtype)
    return np.clip(np.rint(levels * _scale(dt)), 0, np.iinfo(dt).max).astype(dt)


def decode_plane(plane: np.ndarray, negative: bool = False) -> int:
    """The id a 2-D plane spells (cell interiors against the threshold), or -1 on a bad checksum."""
    scale = _scale(plane.dtype)
    plane = np.asarray(plane, dtype=np.float64)
    if negative:
        plane = 255.0 * scale - plane
    h, w = plane.shape
    if h < 2 * GRID or w < 2 * GRID:
        return -1
    ys, xs = _cell_edges(h), _cell_edges(w)
    word = 0
    for r in range(GRID):
        for c in range(GRID):
            y0, y1, x0, x1 = ys[r], ys[r + 1], xs[c], xs[c + 1]
            my, mx = max(1, (y1 - y0) // 4), max(1, (x1 - x0) // 4)
            cell = plane[y0 + my : y1 - my, x0 + mx : x1 - mx]
            word = (word << 1) | int(cell.mean() > THRESHOLD * scale)
    frame_id = word >> CHECK_BITS
    return frame_id if _checksum(frame_id) == word & ((1 << CHECK_BITS) - 1) else -1


def decode_frame(img: np.ndarray) -> int:
    """The id a frame spells: grey directly, colour from its blue channel."""
    img = np.asarray(img)
    return decode_plane(img if img.ndim == 2 else img[:, :, 0])
