"""``imgstore.transforms`` against plain numpy references, and through ``imgstore-save`` and ``imgstore-export``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import imgstore
from imgstore.errors import ImgStoreError
from imgstore.transforms import (
    TRANSFORMS_KEY,
    ColorMap,
    Crop,
    Flip,
    Grey,
    Overlay,
    Pipeline,
    Resize,
    Rotate,
    parse_transform,
)

BIN = Path(sys.executable).parent


def _frame(shape, dtype=np.uint8, seed=0):
    rng = np.random.default_rng(seed)
    top = np.iinfo(dtype).max
    return rng.integers(0, top, shape, dtype=dtype, endpoint=True)


def test_each_transform_against_plain_indexing() -> None:
    img = _frame((30, 40, 3))
    assert np.array_equal(Crop(5, 7, 20, 10)(img), img[7:17, 5:25])
    h = img.shape[0]
    rotated = Rotate(90)(img)  # clockwise: the bottom-left pixel goes to the top left
    assert rotated.shape == (40, 30, 3)
    assert all(np.array_equal(rotated[x, h - 1 - y], img[y, x]) for y in (0, 13, 29) for x in (0, 21, 39))
    assert np.array_equal(Rotate(180)(img), img[::-1, ::-1]) and np.array_equal(Rotate(270)(Rotate(90)(img)), img)
    assert np.array_equal(Flip("h")(img), img[:, ::-1]) and np.array_equal(Flip("v")(img), img[::-1])
    b, g, r = (img[:, :, c].astype(np.float64) for c in range(3))
    assert np.abs(Grey()(img).astype(int) - np.rint(0.114 * b + 0.587 * g + 0.299 * r)).max() <= 1
    flat = np.full((30, 40), 77, np.uint8)
    assert np.array_equal(Resize(20, 15)(flat), np.full((15, 20), 77, np.uint8))
    assert Resize(80, 60)(_frame((30, 40, 1))).shape == (60, 80, 1)  # one channel stays one channel
    deep = np.array([[0, 1000], [2000, 4095]], np.uint16)
    levels = np.array([[0, 62], [125, 255]], np.uint8)  # 0..4095 stretched over 0..255, rounded
    assert np.array_equal(ColorMap("viridis", 0, 4095)(deep), cv2.applyColorMap(levels, cv2.COLORMAP_VIRIDIS))
    assert np.array_equal(ColorMap("jet")(deep), cv2.applyColorMap((deep >> 8).astype(np.uint8), cv2.COLORMAP_JET))


def test_overlay_draws_in_a_band_and_leaves_the_rest() -> None:
    img = np.full((60, 200), 200, np.uint8)
    out = Overlay()(img, 1234, 1_700_000_000.25)
    band = int(np.argmax((out == 200).all(axis=1)))  # the first untouched row
    assert 5 < band < 30 and (out[band:] == 200).all() and (out[:band] == 255).any()
    assert (Overlay()(np.zeros((8, 8), np.uint16), 1, float("nan")) >= 0).all()  # no time: 'time ?'


TRANSFORMS = st.one_of(
    st.builds(Crop, st.integers(0, 5), st.integers(0, 5), st.integers(1, 20), st.integers(1, 20)),
    st.builds(Resize, st.integers(1, 50), st.integers(1, 50)),
    st.sampled_from([Rotate(90), Rotate(180), Rotate(270), Flip("h"), Flip("v"), Grey(), Overlay()]),
    st.floats(0.1, 3.0).map(lambda f: parse_transform("resize", f"{f:.2f}")),
)


@settings(max_examples=150, deadline=None)
@given(steps=st.lists(TRANSFORMS, max_size=5), h=st.integers(20, 40), w=st.integers(20, 40), colour=st.booleans())
def test_a_pipeline_says_the_shape_its_frames_come_out_in(steps, h, w, colour) -> None:
    shape = (h, w, 3) if colour else (h, w)
    pipeline = Pipeline(steps)
    try:
        expected = pipeline.shape(shape)
    except ImgStoreError as exc:
        assert "crop" in str(exc) and "outside" in str(exc)
        return
    out = pipeline(_frame(shape), 7, 1_700_000_000.0)
    assert out.shape == expected and out.dtype == np.uint8


def test_bad_transforms_are_refused_in_words() -> None:
    for name, value, words in (
        ("crop", "1,2,3", "X,Y,WIDTH,HEIGHT"),
        ("resize", "big", "WIDTHxHEIGHT"),
        ("rotate", "45", "90, 180 or 270"),
        ("flip", "x", r"h \(left-right\) or v"),
        ("colormap", "rainbowish", "not one of"),
        ("colormap", "jet:9:1", "low must be below high"),
    ):
        with pytest.raises(ImgStoreError, match=words):
            parse_transform(name, value)
    with pytest.raises(ImgStoreError, match="crop 30,0,20,10 is outside the 40x30 frame"):
        Pipeline([Crop(30, 0, 20, 10)]).shape((30, 40))
    with pytest.raises(ImgStoreError, match="frames must be grey"):
        Pipeline([ColorMap("jet")]).shape((30, 40, 3))


def test_save_and_export_apply_transforms_in_the_order_given(tmp_path: Path) -> None:
    src = tmp_path / "src"
    with imgstore.new_for_format("npy", path=str(src), imgshape=(48, 64, 3), chunksize=10) as store:
        for i in range(12):
            store.add_image(_frame((48, 64, 3), seed=i), i, 1_700_000_000 + i / 10)
    out = subprocess.run(
        [BIN / "imgstore-save", tmp_path / "cut", "--source", src, "--format", "npy", "-q",
         "--crop", "8,4,40,30", "--rotate", "270", "--flip", "v", "--grey"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    pipeline = Pipeline([Crop(8, 4, 40, 30), Rotate(270), Flip("v"), Grey()])
    with imgstore.new_for_filename(str(tmp_path / "cut")) as cut, imgstore.new_for_filename(str(src)) as whole:
        assert cut.image_shape == (40, 30)
        assert cut.user_metadata[TRANSFORMS_KEY] == ["crop 8,4,40,30", "rotate 270", "flip v", "grey"]
        for (img, _), (orig, _) in zip(cut, whole):
            assert np.array_equal(img, pipeline(orig))
    out = subprocess.run(
        [BIN / "imgstore-export", src, str(tmp_path / "frames") + "/", "--image-format", "npy", "-q",
         "--resize", "32x24", "--flip", "h"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    first = np.load(tmp_path / "frames" / "frame_000000.npy")
    assert np.array_equal(first, Flip("h")(Resize(32, 24)(_frame((48, 64, 3), seed=0))))
    bad = subprocess.run(
        [BIN / "imgstore-export", src, tmp_path / "x.mp4", "--crop", "60,0,10,10"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert bad.returncode == 1 and f"{src}: --crop 60,0,10,10 is outside the 64x48 frame" in bad.stderr
