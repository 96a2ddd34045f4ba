"""Frames that carry their own identity, and digests of images as recorded in the fixture answers.

Pure numpy; nothing here imports imgstore. The schemes are defined in
``../shared/fixtures/README.md``: ``grid`` (4x4 cells holding a 12-bit id and a 4-bit checksum)
and ``barcode16`` (16 vertical bars, white = 1, most significant bit first).
"""

from __future__ import annotations

import hashlib
import math
from typing import Any

import numpy as np

HIGH_LEVEL = 232
LOW_LEVEL = 24
THRESHOLD = 128
NOISE_AMPLITUDE = 20
GRID_CELLS = 4
BARCODE_BARS = 16
MAX_GRID_ID = (1 << 12) - 1
THUMB_BLOCKS = 8
MEAN_DECIMALS = 4
THUMB_DECIMALS = 2


def level_scale(dtype: Any) -> float:
    """The factor that maps an 8-bit level to ``dtype``: 1 for 8-bit, 257 for 16-bit, 1/255 for float."""
    dt = np.dtype(dtype)
    if dt.kind == "f":
        return 1.0 / 255.0
    if dt.kind in "ui" and dt.itemsize == 1:
        return 1.0
    if dt.kind in "ui" and dt.itemsize == 2:
        return 257.0
    raise ValueError(f"no level scale for dtype {dt}; use uint8, uint16 or a float dtype")


def grid_checksum(frame_id: int) -> int:
    """The 4-bit checksum ``(n0 + 3*n1 + 5*n2 + 5) & 15`` over the id's nibbles, n0 lowest."""
    n0, n1, n2 = frame_id & 15, (frame_id >> 4) & 15, (frame_id >> 8) & 15
    return (n0 + 3 * n1 + 5 * n2 + 5) & 15


def grid_word(frame_id: int) -> int:
    """The 16-bit word (id, then checksum) that the grid cells spell, most significant bit first."""
    if not 0 <= frame_id <= MAX_GRID_ID:
        raise ValueError(f"frame_id {frame_id} does not fit the grid's 12 bits (0..{MAX_GRID_ID})")
    return (frame_id << 4) | grid_checksum(frame_id)


def _cell_edges(size: int, n: int) -> list[int]:
    """Edges ``round(k*size/n)`` of ``n`` cells along an axis of ``size`` pixels."""
    return [round(k * size / n) for k in range(n + 1)]


def _cell_centres(size: int, n: int) -> list[int]:
    """The pixel at the centre of each of ``n`` cells, relative to the axis size."""
    return [min(size - 1, int((2 * k + 1) * size / (2 * n))) for k in range(n)]


def _first_channel(img: np.ndarray) -> np.ndarray:
    """The 2-D plane a decoder reads: the image itself when grey, channel 0 when colour."""
    arr = np.asarray(img)
    if arr.ndim == 3:
        return arr[:, :, 0]
    if arr.ndim != 2:
        raise ValueError(f"expected a 2-D or 3-D image, got shape {arr.shape}")
    return arr


def _is_set(value: float, dtype: Any) -> bool:
    """Whether a sampled value is above the (dtype-scaled) threshold."""
    return float(value) > THRESHOLD * level_scale(dtype)


def decode_grid(img: np.ndarray) -> int:
    """The frame id spelled by the 4x4 grid of ``img``, or -1 when the checksum does not hold."""
    plane = _first_channel(img)
    h, w = plane.shape
    if h < GRID_CELLS or w < GRID_CELLS:
        return -1
    word = 0
    for y in _cell_centres(h, GRID_CELLS):
        for x in _cell_centres(w, GRID_CELLS):
            word = (word << 1) | int(_is_set(plane[y, x], plane.dtype))
    frame_id, checksum = word >> 4, word & 15
    return frame_id if grid_checksum(frame_id) == checksum else -1


def decode_barcode16(img: np.ndarray) -> int:
    """The number spelled by 16 vertical bars (white = 1, most significant bit first)."""
    plane = _first_channel(img)
    h, w = plane.shape
    if h < 1 or w < BARCODE_BARS:
        return -1
    rows = plane[h // 4 : max(h // 4 + 1, 3 * h // 4)]
    value = 0
    for x in _cell_centres(w, BARCODE_BARS):
        value = (value << 1) | int(_is_set(rows[:, x].astype(np.float64).mean(), plane.dtype))
    return value


DECODERS = {"grid": decode_grid, "barcode16": decode_barcode16}


def _grid_levels(frame_id: int, h: int, w: int) -> np.ndarray:
    """An ``(h, w)`` float array of 8-bit levels (232 for 1, 24 for 0) spelling ``frame_id``."""
    word = grid_word(frame_id)
    levels = np.empty((h, w), dtype=np.float64)
    ys, xs = _cell_edges(h, GRID_CELLS), _cell_edges(w, GRID_CELLS)
    for r in range(GRID_CELLS):
        for c in range(GRID_CELLS):
            bit = (word >> (15 - (r * GRID_CELLS + c))) & 1
            levels[ys[r] : ys[r + 1], xs[c] : xs[c + 1]] = HIGH_LEVEL if bit else LOW_LEVEL
    return levels


def _to_dtype(levels: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Scale 8-bit levels to ``dtype`` and cast, clipping integer types to their range."""
    scaled = levels * level_scale(dtype)
    if dtype.kind == "f":
        return scaled.astype(dtype)
    info = np.iinfo(dtype)
    return np.clip(np.rint(scaled), info.min, info.max).astype(dtype)


def make_grid_frame(
    frame_id: int,
    shape: tuple,
    dtype: Any = np.uint8,
    noise: bool = True,
    seed: int | None = None,
) -> np.ndarray:
    """A frame whose 4x4 grid spells ``frame_id`` (0..4095); ``decode_grid`` inverts it.

    ``shape`` is ``(h, w)`` for grey or ``(h, w, 3)`` for BGR colour (B = G = level,
    R = 255 - level). ``noise`` adds deterministic noise of at most +-20 levels (seeded by
    ``seed``, else by ``frame_id``), which never moves a pixel across the threshold.
    """
    dt = np.dtype(dtype)
    if len(shape) not in (2, 3) or (len(shape) == 3 and shape[2] != 3):
        raise ValueError(f"shape must be (h, w) or (h, w, 3), got {shape!r}")
    h, w = int(shape[0]), int(shape[1])
    levels = _grid_levels(frame_id, h, w)
    if len(shape) == 3:
        levels = np.stack([levels, levels, 255.0 - levels], axis=-1)
    if noise:
        rng = np.random.default_rng(frame_id if seed is None else seed)
        levels = levels + rng.integers(-NOISE_AMPLITUDE, NOISE_AMPLITUDE + 1, size=levels.shape)
    return _to_dtype(levels, dt)


def _round(value: float, decimals: int) -> float:
    """``value`` as a Python float rounded to ``decimals`` (NaN stays NaN)."""
    value = float(value)
    return value if math.isnan(value) else round(value, decimals)


def thumbnail(img: np.ndarray) -> list:
    """8x8 (x channels) block means, block edges ``np.linspace(0, size, 9).astype(int)``, 2 decimals."""
    arr = np.asarray(img)
    ys = np.linspace(0, arr.shape[0], THUMB_BLOCKS + 1).astype(int)
    xs = np.linspace(0, arr.shape[1], THUMB_BLOCKS + 1).astype(int)
    thumb = np.full((THUMB_BLOCKS, THUMB_BLOCKS, *arr.shape[2:]), np.nan)
    for i in range(THUMB_BLOCKS):
        for j in range(THUMB_BLOCKS):
            block = arr[ys[i] : ys[i + 1], xs[j] : xs[j + 1]]
            if block.shape[0] and block.shape[1]:
                thumb[i, j] = block.astype(np.float64).mean(axis=(0, 1))
    return np.vectorize(lambda v: _round(v, THUMB_DECIMALS), otypes=[float])(thumb).tolist()


def digest(img: np.ndarray, lossy: bool, scheme: str = "grid") -> dict:
    """The fixture-answer ``digest`` of ``img``: shape, dtype, sha256, mean, code (+ thumb if lossy)."""
    arr = np.asarray(img)
    out: dict = {
        "shape": [int(n) for n in arr.shape],
        "dtype": str(arr.dtype),
        "sha256": hashlib.sha256(np.ascontiguousarray(arr).tobytes()).hexdigest(),
        "mean": _round(arr.astype(np.float64).mean(), MEAN_DECIMALS) if arr.size else float("nan"),
        "code": DECODERS[scheme](arr) if arr.size else -1,
    }
    if lossy:
        out["thumb"] = thumbnail(arr)
    return out


def _thumb_mad(actual: list, expected: list) -> float:
    """Mean absolute difference of two thumbnails (inf when their shapes differ)."""
    a, e = np.asarray(actual, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    if a.shape != e.shape:
        return math.inf
    return float(np.mean(np.abs(a - e)))


def compare_digest(actual: dict, expected: dict, lossy: bool, tolerance: float) -> None:
    """Assert that ``actual`` matches ``expected`` by the fixture README's rules for lossless or lossy stores."""
    for key in ("shape", "dtype"):
        assert actual[key] == expected[key], f"{key}: got {actual[key]!r}, expected {expected[key]!r}"
    if not lossy:
        assert actual["sha256"] == expected["sha256"], (
            f"pixels differ (lossless): sha256 {actual['sha256'][:12]}.. != {expected['sha256'][:12]}.., "
            f"mean {actual['mean']} vs {expected['mean']}, code {actual['code']} vs {expected['code']}"
        )
        assert actual["code"] == expected["code"], f"frame code: got {actual['code']}, expected {expected['code']}"
        return
    assert actual["code"] == expected["code"], f"frame code: got {actual['code']}, expected {expected['code']}"
    mean_diff = abs(actual["mean"] - expected["mean"])
    assert mean_diff <= tolerance, (
        f"mean: got {actual['mean']}, expected {expected['mean']} (|diff| {mean_diff:.3f} > {tolerance})"
    )
    mad = _thumb_mad(actual["thumb"], expected["thumb"])
    assert mad <= tolerance, f"thumbnail mean abs difference {mad:.3f} > {tolerance}"
