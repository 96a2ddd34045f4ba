"""Text on images with OpenCV's Hershey fonts, at upstream's import path ``imgstore.font``.

``fit_text`` finds the font scale that makes a text span most of an image's width;
``FontRenderer`` writes strings and paragraphs; ``FontRendererStatusBar`` lays out a
one-line status bar (a left and a right text) at the top or the bottom of a frame. Positions
are OpenCV's: ``(x, y)`` is the left end of the text's baseline, ``y`` counted down from the top.
Importing ``imgstore`` does not import this module.
"""

from __future__ import annotations

import logging
from typing import Any, NamedTuple, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

__all__ = [
    "DEFAULT_FONT",
    "FONT_POS_BOTTOM",
    "FONT_POS_TOP",
    "FONT_POS_TOP_LEFT",
    "Box",
    "FontRenderer",
    "FontRendererStatusBar",
    "fit_text",
    "measure_string",
]

_log = logging.getLogger(__name__)

#: place the text at the top of the image (``fit_text``, status bars)
FONT_POS_TOP = 0
#: place the text at the bottom of the image (``fit_text``, status bars)
FONT_POS_BOTTOM = 1
#: start the text at the image's top left corner (``FontRenderer.write_string``/``write_paragraph``)
FONT_POS_TOP_LEFT = 2
#: the font used when none is named
DEFAULT_FONT = cv2.FONT_HERSHEY_SIMPLEX

Color = Union[int, float, Sequence[float]]
Position = Union[int, Tuple[int, int]]

#: ``fit_text`` stops once the text spans more than this fraction of the image width
_FIT_FRACTION = 0.9
_FIT_TRIES = 20
_BISECT_STEPS = 30


def measure_string(s: str, name: int, scale: float, thickness: int) -> Tuple[int, int]:
    """The ``(width, height)`` in pixels of ``s`` drawn in font ``name``.

    The height is OpenCV's text height plus about one pixel per unit of scale, which OpenCV
    leaves out.
    """
    (w, h), _baseline = cv2.getTextSize(s, name, scale, thickness)
    return w, h + int(scale + 0.5)


def _padded_size(txt: str, name: int, scale: float) -> Tuple[int, int, int]:
    """Thickness, and width and height plus one pixel, of ``txt`` at ``scale`` (thicker as it grows)."""
    thickness = int(max(1, scale // 2))
    w, h = measure_string(txt, name, scale, thickness)
    return thickness, w + 1, h + 1


def _fitting_scale(txt: str, name: int, width: int) -> Tuple[float, int, int]:
    """Scale, thickness and padded text height that make ``txt`` span 90-100 % of ``width`` pixels.

    As upstream: the scale starts at 1 and is doubled while the text is too narrow and cut by a
    quarter while it is too wide, at most 20 times. That search can end on a text wider than
    ``width`` (it may jump back and forth over the range); the scale is then bisected down to
    the largest that fits.
    """
    scale, thickness = 1.0, 1
    text_w, text_h = width, 0
    for _ in range(_FIT_TRIES):
        fraction = text_w / float(width)
        if fraction > _FIT_FRACTION and text_w < width:
            break
        scale *= 2.0 if fraction < _FIT_FRACTION else 0.75
        thickness, text_w, text_h = _padded_size(txt, name, scale)
    if text_w >= width:
        scale, thickness, text_h = _largest_fitting_scale(txt, name, width, scale)
    return scale, thickness, text_h


def _largest_fitting_scale(txt: str, name: int, width: int, too_wide: float) -> Tuple[float, int, int]:
    """Scale (below ``too_wide``), thickness and padded height of the largest ``txt`` narrower than ``width``.

    When nothing fits (a long text, a few pixels wide image) the smallest scale tried is used.
    """
    low, high = 0.0, too_wide
    best = None
    for _ in range(_BISECT_STEPS):
        mid = (low + high) / 2.0
        thickness, text_w, text_h = _padded_size(txt, name, mid)
        if text_w < width:
            low, best = mid, (mid, thickness, text_h)
        else:
            high = mid
    if best is None:
        _log.debug("fit_text: %r does not fit %d pixels at any scale", txt, width)
        thickness, _, text_h = _padded_size(txt, name, high)
        best = (high, thickness, text_h)
    return best


def fit_text(
    txt: str,
    img: Optional[np.ndarray],
    pos: int = FONT_POS_TOP,
    color: Color = (255, 255, 255),
    name: int = cv2.FONT_HERSHEY_SIMPLEX,
    only_measure: bool = False,
    img_shape: Optional[Sequence[int]] = None,
) -> Tuple[float, int]:
    """Write ``txt`` across the top or bottom of ``img``, as large as fits; return ``(scale, thickness)``.

    The text is drawn from x = 1, just under the top edge (``FONT_POS_TOP``) or with its baseline
    3 pixels above the bottom edge (``FONT_POS_BOTTOM``), spanning 90-100 % of the width (less
    when the font cannot be scaled that finely; never wider than the image, unless the image is
    too narrow for the text at any scale).
    With ``only_measure``, or when ``img`` is None and ``img_shape`` (height, width) is given,
    nothing is drawn. Raises ValueError for another ``pos`` or without an image or a shape.
    """
    if pos not in (FONT_POS_TOP, FONT_POS_BOTTOM):
        raise ValueError(
            f"pos must be FONT_POS_TOP ({FONT_POS_TOP}) or FONT_POS_BOTTOM ({FONT_POS_BOTTOM}), not {pos!r}"
        )
    if img is None and img_shape is None:
        raise ValueError("fit_text needs an image (img) or its shape (img_shape)")
    height, width = (img.shape if img_shape is None else img_shape)[:2]
    if width <= 0:
        raise ValueError(f"fit_text: the image is {width} pixels wide")

    scale, thickness, text_h = _fitting_scale(txt, name, width)
    if not only_measure and img is not None:
        origin = (1, text_h + 3) if pos == FONT_POS_TOP else (1, height - 3)
        cv2.putText(img, txt, origin, name, scale, color, thickness)
    return scale, thickness


class FontRenderer:
    """Writes text in one font (OpenCV font ``name``, ``scale`` and ``thickness``)."""

    def __init__(self, name: int, scale: float, thickness: int) -> None:
        self.name = name
        self.scale = scale
        self.thickness = thickness

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, scale={self.scale!r}, thickness={self.thickness!r})"

    def measure_string(self, s: str) -> Tuple[int, int]:
        """The ``(width, height)`` of ``s`` in this font (see ``measure_string``)."""
        return measure_string(s, self.name, self.scale, self.thickness)

    def _draw(self, img: np.ndarray, s: str, origin: Tuple[int, int], color: Color) -> None:
        cv2.putText(img, s, (int(origin[0]), int(origin[1])), self.name, self.scale, color, self.thickness)

    def write_string(
        self,
        s: str,
        pos: Position,
        color: Color,
        img: Optional[np.ndarray] = None,
        bgcolor: Optional[Color] = None,
    ) -> np.ndarray:
        """Write ``s`` with its baseline's left end at ``pos`` (x, y); return the image written on.

        ``pos`` may be ``FONT_POS_TOP_LEFT``: the text then starts at the top left corner.
        Without ``img`` a black BGR image is made, large enough for the text at ``pos``
        (which then counts from the top of the text, not its baseline). ``bgcolor`` fills the
        text's box first.
        """
        size: Optional[Tuple[int, int]] = None
        if _is_top_left(pos):
            size = self.measure_string(s)
            pos = (0, size[1])
        x, y = pos  # type: ignore[misc]
        if img is None:
            size = size or self.measure_string(s)
            img = np.zeros((size[1] + y + 1, size[0] + x + 1, 3), np.uint8)
            y += size[1]
        if bgcolor is not None:
            w, h = size or self.measure_string(s)
            cv2.rectangle(img, (int(x), int(y)), (int(x + w), int(y - h)), bgcolor, -1)
        self._draw(img, s, (x, y), color)
        return img

    def write_paragraph(self, s: str, pos: Position, color: Color, img: Optional[np.ndarray] = None) -> np.ndarray:
        """Write the lines of ``s`` one under the other from ``pos`` (the top left of the first line).

        Lines are 1.2 line heights apart. Without ``img`` a black BGR image just large enough
        is made. Returns the image written on.
        """
        x, y = (0, 0) if _is_top_left(pos) else pos  # type: ignore[misc]
        placed = []
        widest = 0
        for line in s.split("\n"):
            w, h = self.measure_string(line)
            widest = max(widest, w)
            placed.append((line, (x, y + h)))
            y += int(1.2 * h)
        if img is None:
            img = np.zeros((y, widest + x, 3), np.uint8)
        for line, origin in placed:
            self.write_string(line, origin, color, img=img)
        return img


def _is_top_left(pos: Any) -> bool:
    return bool(np.isscalar(pos) and pos == FONT_POS_TOP_LEFT)


class Box(NamedTuple):
    """A rectangle laid out by ``FontRendererStatusBar.layout``.

    For a text, ``(x, y)`` is the left end of its baseline and ``w``, ``h`` its size; for the
    bar, ``(x, y)`` is its top left corner.
    """

    x: int
    y: int
    w: int
    h: int


class FontRendererStatusBar(FontRenderer):
    """A status bar across the top or the bottom of a frame: a text on the left, one on the right.

    Lay it out once for the frame size and the longest texts (``layout``, or the
    ``new_for_image*`` constructors), then ``render`` each frame's texts.
    """

    POS_TOP = FONT_POS_TOP
    POS_BOTTOM = FONT_POS_BOTTOM
    POS_TOP_LEFT = FONT_POS_TOP_LEFT

    def __init__(self, name: int, scale: float = 1, thickness: int = 1) -> None:
        super().__init__(name, scale, thickness)
        self.pos: Optional[int] = None
        #: where the left and the right texts go (None: no such text), and the bar itself
        self.left_box: Optional[Box] = None
        self.right_box: Optional[Box] = None
        self.bar_box: Optional[Box] = None

    @classmethod
    def new_for_image(
        cls,
        img: np.ndarray,
        font_name: int = DEFAULT_FONT,
        pos: int = POS_BOTTOM,
        **layout_and_init_args: Any,
    ) -> FontRendererStatusBar:
        """A status bar laid out for ``img``; the font shrinks when the texts would not fit its width.

        ``layout_and_init_args`` are the constructor's ``scale`` and ``thickness`` and
        ``layout``'s ``ltext``, ``rtext``, ``padv`` and ``padh``.
        """
        height, width = img.shape[:2]
        args = dict(layout_and_init_args)
        both = " " + args.get("ltext", "") + args.get("rtext", "")
        padh = args.get("padh", 12)
        text_w, _ = measure_string(both, font_name, args.get("scale", 1), args.get("thickness", 1))
        if text_w + 2 * padh > width:
            args["scale"], args["thickness"] = fit_text(
                both, img=None, name=font_name, only_measure=True, img_shape=(height, width - 2 * padh)
            )
        return cls.new_for_image_size((width, height), font_name, pos, **args)

    @classmethod
    def new_for_image_size(
        cls,
        frame_size: Tuple[int, int],
        font_name: int = DEFAULT_FONT,
        pos: int = POS_BOTTOM,
        **layout_and_init_args: Any,
    ) -> FontRendererStatusBar:
        """A status bar laid out for frames of ``frame_size`` (width, height), at the font size given.

        ``layout_and_init_args`` as for ``new_for_image``.
        """
        layout_args = dict(layout_and_init_args)
        init_args = {key: layout_args.pop(key) for key in ("scale", "thickness") if key in layout_args}
        renderer = cls(font_name, **init_args)
        renderer.layout(pos, frame_size, **layout_args)
        return renderer

    def layout(
        self,
        pos: int,
        winsize: Tuple[int, int],
        ltext: str = "",
        rtext: str = "",
        padv: int = 4,
        padh: int = 12,
    ) -> None:
        """Place the bar at ``pos`` (``POS_TOP`` or ``POS_BOTTOM``) of a ``winsize`` (width, height) frame.

        ``ltext`` starts ``padh`` pixels from the left edge and ``rtext`` ends ``padh`` pixels
        from the right one; the bar is as high as the taller text plus ``padv`` above and below,
        the texts' baselines ``padv`` from its outer edge. Texts that are empty are not drawn.
        """
        if pos not in (FONT_POS_TOP, FONT_POS_BOTTOM):
            raise ValueError(
                f"a status bar goes at POS_TOP ({FONT_POS_TOP}) or POS_BOTTOM ({FONT_POS_BOTTOM}), not {pos!r}"
            )
        width, height = winsize
        lw, lh = self.measure_string(ltext) if ltext else (0, 0)
        rw, rh = self.measure_string(rtext) if rtext else (0, 0)
        bar_h = max(lh, rh) + 2 * padv
        if pos == FONT_POS_BOTTOM:
            left_y = right_y = height - padv
            bar_y = height - bar_h
        else:
            left_y, right_y = lh + padv, rh + padv
            bar_y = 0
        self.pos = pos
        self.left_box = Box(padh, left_y, lw, lh) if ltext else None
        self.right_box = Box(width - rw - padh, right_y, rw, rh) if rtext else None
        self.bar_box = Box(0, bar_y, width, bar_h)

    def render(
        self,
        img: np.ndarray,
        ltext: str = "",
        lcolor: Color = (255, 255, 255),
        rtext: str = "",
        rcolor: Color = (255, 255, 255),
        bgcolor: Optional[Color] = None,
    ) -> None:
        """Draw the bar onto ``img`` in place: ``bgcolor`` fills it first, then the texts go where laid out.

        A text is drawn only where ``layout`` placed a text on that side.
        """
        if bgcolor is not None and self.bar_box is not None:
            x, y, w, h = self.bar_box
            cv2.rectangle(img, (x, y), (x + w, y + h), bgcolor, -1)
        if ltext and self.left_box is not None:
            self._draw(img, ltext, self.left_box[:2], lcolor)
        if rtext and self.right_box is not None:
            self._draw(img, rtext, self.right_box[:2], rcolor)

    def extract(self, img: np.ndarray) -> Tuple[Optional[np.ndarray], Optional[np.ndarray]]:
        """The parts of ``img`` (views) under the left and the right text, or None where there is none."""
        return _crop(img, self.left_box), _crop(img, self.right_box)


def _crop(img: np.ndarray, box: Optional[Box]) -> Optional[np.ndarray]:
    if box is None or not box.w:
        return None
    return img[box.y - box.h : box.y + 1, box.x : box.x + box.w + 1]
