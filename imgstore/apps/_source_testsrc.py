"""The pictures of ``imgstore-save --source testsrc``: colour bars, a ramp and a disc that move, and the frame number.

A pure function of the frame number, drawn with numpy alone (no OpenCV), so that tests can
predict every pixel a recording from the synthetic camera holds.
"""

from __future__ import annotations

import functools
import math
from typing import Tuple

import numpy as np

#: colour bars, BGR: white, yellow, cyan, green, magenta, red, blue, black
_BARS = np.array(
    [
        (235, 235, 235),
        (16, 235, 235),
        (235, 235, 16),
        (16, 235, 16),
        (235, 16, 235),
        (16, 16, 235),
        (235, 16, 16),
        (16, 16, 16),
    ],
    dtype=np.uint8,
)


@functools.lru_cache(maxsize=8)
def _testsrc_background(width: int, height: int, color: bool) -> np.ndarray:
    """Colour bars over the top two thirds, a grey ramp below (two periods wide, to scroll through);
    grey: its ITU-R BT.601 luma, as OpenCV's BGR to grey conversion gives."""
    bars_h = max(1, height * 2 // 3)
    img = np.empty((height, 2 * width, 3), np.uint8)
    bar = (np.arange(2 * width) * 8 // width) % 8
    img[:bars_h] = _BARS[bar][np.newaxis]
    ramp = np.abs((np.arange(2 * width) * 510 // width) % 510 - 255)  # a triangle wave, one period per width
    img[bars_h:] = ramp.astype(np.uint8)[np.newaxis, :, np.newaxis]
    if not color:
        img = np.rint(img @ np.array([0.114, 0.587, 0.299])).astype(np.uint8)
    img.flags.writeable = False
    return img


#: 3x5 pixel glyphs of the characters testsrc draws, one string of 15 bits per character, row by row
_GLYPHS = {
    "#": "101111101111101",
    "0": "111101101101111",
    "1": "010110010010111",
    "2": "111001111100111",
    "3": "111001111001111",
    "4": "101101111001001",
    "5": "111100111001111",
    "6": "111100111101111",
    "7": "111001010010010",
    "8": "111101111101111",
    "9": "111101111001111",
}


def _text_mask(text: str, pixel: int) -> np.ndarray:
    """``text`` in the 3x5 glyphs, each glyph pixel ``pixel`` wide, a glyph pixel apart: a bool mask."""
    glyphs = [np.array([c == "1" for c in _GLYPHS[ch]], bool).reshape(5, 3) for ch in text]
    gap = np.zeros((5, 1), bool)
    row = np.hstack([part for glyph in glyphs for part in (glyph, gap)][:-1])
    return np.kron(row, np.ones((pixel, pixel), bool))


def render_testsrc(number: int, size: Tuple[int, int] = (640, 480), color: bool = False) -> np.ndarray:
    """Frame ``number`` of the synthetic camera: a moving pattern with the number drawn in.

    ``size`` is ``(width, height)``. Colour frames are BGR ``(h, w, 3)``, grey frames ``(h, w)``,
    both uint8. The same arguments always give the same pixels. Drawn with numpy alone, so
    that recording from it needs no OpenCV.
    """
    width, height = int(size[0]), int(size[1])
    background = _testsrc_background(width, height, bool(color))
    bars_h = max(1, height * 2 // 3)
    shift = (4 * number) % width
    img = np.empty((height, width, *background.shape[2:]), np.uint8)
    img[:bars_h] = background[:bars_h, shift : shift + width]  # bars scroll left
    back = (-2 * number) % width
    img[bars_h:] = background[bars_h:, back : back + width]  # the ramp scrolls right

    # a disc on a Lissajous path, one period every 200 frames: black, with a white middle (drawn
    # in black and white, which are the same in grey and colour)
    phase = 2 * math.pi * (number % 200) / 200
    radius = max(2, min(width, height) // 12)
    cx = round(width / 2 + (width / 2 - radius) * math.sin(phase))
    cy = round(height / 2 + (height / 2 - radius) * math.sin(2 * phase))
    top, left = max(0, cy - radius), max(0, cx - radius)
    ys, xs = np.ogrid[top : min(height, cy + radius + 1), left : min(width, cx + radius + 1)]
    distance2 = (xs - cx) ** 2 + (ys - cy) ** 2
    disc = img[top : top + distance2.shape[0], left : left + distance2.shape[1]]
    disc[distance2 <= radius**2] = 0
    disc[distance2 <= max(1, radius * 2 // 3) ** 2] = 255

    # the frame number, white on a black box, top left
    mask = _text_mask(f"#{number}", max(1, height // 60))
    margin = max(2, mask.shape[0] // 3)
    box = img[: mask.shape[0] + 2 * margin, : mask.shape[1] + 2 * margin]
    box[:] = 0
    text = box[margin : margin + mask.shape[0], margin : margin + mask.shape[1]]
    text[mask[: text.shape[0], : text.shape[1]]] = 255
    return img
