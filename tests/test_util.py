"""``imgstore.util``: the helpers upstream's scripts import, checked against OpenCV itself."""

from __future__ import annotations

import random
import string
import subprocess
import sys

import cv2
import numpy as np
import pytest

from imgstore.util import FourCC, ImageCodecProcessor, ensure_color, ensure_grayscale


def test_fourcc_is_opencvs_for_any_printable_code():
    rng = random.Random(7)
    codes = ["MJPG", "avc1", "H264", "XVID", "FFV1"] + [
        "".join(rng.choice(string.printable) for _ in range(4)) for _ in range(500)
    ]
    for code in codes:
        assert FourCC(*code) == cv2.VideoWriter_fourcc(*code), code


@pytest.mark.usefixtures("opencv")
def test_codec_processor_knows_every_opencv_conversion_to_bgr():
    """The encodings come from OpenCV's own constants (read lazily, through ``dir``)."""
    names = [n for n in dir(cv2) if n.startswith("COLOR_BAYER_") and n.endswith("2BGR")]
    assert names
    for name in names:
        code = ImageCodecProcessor.cv2_enum_to_code(getattr(cv2, name))
        assert ImageCodecProcessor.check_code(code)
    raw = np.random.default_rng(0).integers(0, 256, (8, 8), dtype=np.uint8)
    bgr = ImageCodecProcessor.from_cv2_enum(cv2.COLOR_BAYER_BG2BGR).convert_to_bgr(raw)
    np.testing.assert_array_equal(bgr, cv2.cvtColor(raw, cv2.COLOR_BAYER_BG2BGR))


def test_colour_helpers_match_opencv():
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4)
    np.testing.assert_array_equal(ensure_color(grey), cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR))
    colour = np.random.default_rng(1).integers(0, 256, (3, 4, 3), dtype=np.uint8)
    np.testing.assert_array_equal(ensure_grayscale(colour), cv2.cvtColor(colour, cv2.COLOR_BGR2GRAY))


def test_importing_imgstore_loads_no_opencv():
    """OpenCV is loaded on first use: a store of npy or PyAV video frames never needs it."""
    probe = "import sys, imgstore, imgstore.stores, imgstore.util, imgstore.index\nprint('cv2' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
