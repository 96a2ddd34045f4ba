"""``imgstore.mosaic``: tiles placed where the layout says, grey kept grey on request, layouts parsed."""

from __future__ import annotations

import numpy as np
import pytest

from imgstore.errors import ImgStoreError
from imgstore.mosaic import grid_layout, mosaic_of, parse_layout


def _frames():
    rng = np.random.default_rng(0)
    big = rng.integers(0, 256, (40, 60), dtype=np.uint8)
    small = rng.integers(0, 256, (20, 30), dtype=np.uint8)
    deep = rng.integers(0, 65536, (40, 60), dtype=np.uint16)
    return big, small, deep


def test_tiles_are_placed_centred_row_by_row() -> None:
    big, small, deep = _frames()
    out = mosaic_of([big, small, None, deep], [big.shape, small.shape, big.shape, deep.shape])
    assert out.shape == (80, 120, 3)
    for channel in range(3):
        assert np.array_equal(out[:40, :60, channel], big)
        assert np.array_equal(out[10:30, 75:105, channel], small)  # centred in its 40x60 tile
        assert not out[:10, 60:].any() and not out[40:80, :60].any()  # around it, and the missing tile: black
        assert np.array_equal(out[40:, 60:, channel], (deep >> 8).astype(np.uint8))


def test_grey_cameras_give_a_grey_mosaic_on_request() -> None:
    big, small, deep = _frames()
    shapes = [big.shape, small.shape, deep.shape]
    colour = mosaic_of([big, small, deep], shapes, (1, 3))
    grey = mosaic_of([big, small, deep], shapes, (1, 3), keep_grey=True)
    assert grey.shape == (40, 180) and np.array_equal(grey, colour[:, :, 0])
    # one colour camera: the mosaic is colour, with the grey tiles in every channel
    bgr = np.dstack([small, small // 2, small // 3])
    mixed = mosaic_of([big, bgr], [big.shape, bgr.shape], keep_grey=True)
    assert mixed.shape == (40, 120, 3)
    assert np.array_equal(mixed[10:30, 75:105], bgr) and np.array_equal(mixed[:, :60, 2], big)


def test_layouts() -> None:
    assert [grid_layout(n) for n in (1, 2, 3, 4, 5, 7)] == [(1, 1), (1, 2), (2, 2), (2, 2), (2, 3), (3, 3)]
    assert parse_layout("2x3", 6) == (2, 3) and parse_layout("1X4", 2) == (1, 4)
    for text, message in (("2x2", "no room for 5"), ("0x9", "no room"), ("two", "ROWSxCOLUMNS"), ("2x", "ROWSx")):
        with pytest.raises(ImgStoreError, match=message):
            parse_layout(text, 5)
    with pytest.raises(ImgStoreError, match="no room for 3 cameras"):
        mosaic_of([None] * 3, [(2, 2)] * 3, (1, 2))


def test_signed_frames_show_their_positive_range_and_huge_mosaics_are_refused() -> None:
    deep = np.array([[-100, 0], [16383, 32767]], np.int16)
    assert mosaic_of([deep], [deep.shape], keep_grey=True).tolist() == [[0, 0], [127, 255]]
    with pytest.raises(ImgStoreError, match=r"-1x-2 layout has no room"):
        mosaic_of([None, None], [(2, 2)] * 2, (-1, -2))
    with pytest.raises(ImgStoreError, match="480000x4 pixels: too large"):
        mosaic_of([None], [(4, 480)], (1, 1000))
