"""``imgstore.codecs.video``: which formats keep odd frame sizes, and the warning where one is cropped."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

import imgstore
from imgstore.codecs.video import AVC1_MP4, FFV1_MKV, MJPEG_AVI, dropped_edges, stored_shape

from framecodes import make_grid_frame

ODD = (241, 321)


def test_only_formats_that_need_even_sizes_crop() -> None:
    assert FFV1_MKV.written_shape(ODD) == ODD
    assert FFV1_MKV.written_shape((*ODD, 3)) == (*ODD, 3)
    assert AVC1_MP4.written_shape(ODD) == (240, 320) and MJPEG_AVI.written_shape((*ODD, 3)) == (240, 320, 3)
    assert stored_shape("ffv1/mkv", ODD) == ODD
    assert stored_shape("libx264", ODD) == (240, 320)  # Motif's H.264: written at even sizes
    assert dropped_edges((241, 321), (240, 320)) == "row 240 (the last) and column 320 (the last)"
    assert dropped_edges((240, 321, 3), (240, 320, 3)) == "column 320 (the last)"
    assert dropped_edges((20, 20), (16, 20)) == "rows 16..19 (the last 4)"


@pytest.mark.parametrize("dtype", ["uint8", "uint16"])
@pytest.mark.parametrize("shape", [ODD, (*ODD, 3), (1, 1), (3, 5, 3)], ids=["grey", "colour", "1x1", "3x5-colour"])
def test_ffv1_keeps_odd_sizes_whole(tmp_path: Path, caplog: pytest.LogCaptureFixture, shape: tuple, dtype: str) -> None:
    rng = np.random.default_rng(7)
    high = 256 if dtype == "uint8" else 65536
    frames = [rng.integers(0, high, size=shape, dtype=dtype) for _ in range(5)]
    path = str(tmp_path / "s")
    with caplog.at_level(logging.WARNING, logger="imgstore"):
        with imgstore.new_for_format("ffv1/mkv", path=path, imgshape=shape, imgdtype=dtype, chunksize=3) as store:
            for i, frame in enumerate(frames):
                store.add_image(frame, i, float(i))
        with imgstore.new_for_filename(path) as store:
            assert store.image_shape == shape
            for i, frame in enumerate(frames):
                img = store.get_image(None, frame_index=i)[0]
                assert img.shape == shape and img.dtype == np.dtype(dtype)
                np.testing.assert_array_equal(img, frame)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], [r.getMessage() for r in caplog.records]


@pytest.mark.parametrize(
    ("fmt", "shape", "dropped"),
    [
        ("avc1/mp4", ODD, "row 240 (the last) and column 320 (the last)"),
        ("mjpeg/avi", (240, 321, 3), "column 320 (the last)"),
        ("h264/mkv", (241, 320), "row 240 (the last)"),
    ],
)
def test_formats_that_need_even_sizes_warn_once_at_creation(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, fmt: str, shape: tuple, dropped: str
) -> None:
    path = str(tmp_path / "s")
    with caplog.at_level(logging.WARNING, logger="imgstore"):
        store = imgstore.new_for_format(fmt, path=path, imgshape=shape, chunksize=4)
        at_creation = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
        for i in range(9):  # three chunks: no more warnings while writing
            store.add_image(make_grid_frame(i, shape, noise=False), i, float(i))
        store.close()
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warnings == at_creation and len(warnings) == 1, warnings
    even = (shape[0] & -2, shape[1] & -2)
    assert f"format '{fmt}'" in warnings[0] and f"{shape[1]}x{shape[0]}" in warnings[0]
    assert f"stored as {even[1]}x{even[0]}" in warnings[0] and dropped in warnings[0] and path in warnings[0]
    with imgstore.new_for_filename(path) as reread:
        assert reread.image_shape[:2] == even


def test_even_sizes_give_no_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="imgstore"):
        with imgstore.new_for_format("avc1/mp4", path=str(tmp_path / "s"), imgshape=(240, 320)) as store:
            store.add_image(make_grid_frame(1, (240, 320)), 1, 1.0)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
