"""``imgstore.font``: text drawn where upstream 0.4.0 draws it, pixel for pixel.

One driver (``_DRIVER``) runs the same cases with upstream's ``imgstore.font`` in the oracle and
with ours here: ``fit_text`` scales and drawings, ``measure_string``, ``FontRenderer`` strings
and paragraphs, and ``FontRendererStatusBar`` layouts, renders and extracts. Drawings are
compared by digest (shape, dtype, SHA-256 and the box of the drawn pixels). Both interpreters
run the same OpenCV, so the pixels must be the same.
"""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from imgstore import font
from imgstore.font import (
    DEFAULT_FONT,
    FONT_POS_BOTTOM,
    FONT_POS_TOP,
    FONT_POS_TOP_LEFT,
    FontRenderer,
    FontRendererStatusBar,
    fit_text,
    measure_string,
)

from upstream_oracle import run_upstream

# Executed as is in both interpreters; ``run_cases(font_module, cases)`` returns plain JSON data.
_DRIVER = r"""
import hashlib

import cv2
import numpy as np


def _digest(img):
    if img is None:
        return None
    a = np.ascontiguousarray(img)
    drawn = np.argwhere(a.reshape(a.shape[0], a.shape[1], -1).any(axis=2)) if a.size else np.zeros((0, 2))
    ink = [int(v) for v in list(drawn.min(0)) + list(drawn.max(0))] if len(drawn) else None
    return {"shape": list(a.shape), "dtype": str(a.dtype), "sha": hashlib.sha256(a.tobytes()).hexdigest(), "ink": ink}


def _color(c):
    return tuple(c) if isinstance(c, list) else c


def _pos(p):
    return tuple(p) if isinstance(p, list) else p


def _boxes(r):
    if hasattr(r, "left_box"):
        found = (r.left_box, r.right_box, r.bar_box)
    else:
        found = (r._layout_l, r._layout_r, r._layout_box)
    return [None if b is None else [int(v) for v in b] for b in found]


def _raises(fn):
    try:
        fn()
    except Exception as exc:
        return type(exc).__name__
    return None


def _case(font, case):
    kind = case["kind"]
    if kind == "fit_text":
        img = np.zeros(case["shape"], np.uint8)
        st = font.fit_text(case["txt"], img, pos=case["pos"], color=_color(case["color"]), name=case["name"],
                           only_measure=case["only_measure"])
        text_w = cv2.getTextSize(case["txt"], case["name"], st[0], st[1])[0][0] + 1
        return {"scale": st[0], "thickness": st[1], "img": _digest(img), "fits": text_w < case["shape"][1]}
    if kind == "fit_text_shape":
        st = font.fit_text(case["txt"], None, name=case["name"], only_measure=case["only_measure"],
                           img_shape=tuple(case["img_shape"]))
        text_w = cv2.getTextSize(case["txt"], case["name"], st[0], st[1])[0][0] + 1
        return {"scale": st[0], "thickness": st[1], "fits": text_w < case["img_shape"][1]}
    if kind == "fit_text_error":
        img = None if case["shape"] is None else np.zeros(case["shape"], np.uint8)
        return {"raises": _raises(lambda: font.fit_text("abc", img, pos=_pos(case["pos"])))}
    if kind == "measure":
        return {"size": list(font.measure_string(case["s"], case["name"], case["scale"], case["thickness"]))}
    if kind in ("write_string", "write_paragraph"):
        r = font.FontRenderer(case["name"], case["scale"], case["thickness"])
        img = None if case["shape"] is None else np.zeros(case["shape"], np.uint8)
        if kind == "write_string":
            got = r.write_string(case["s"], _pos(case["pos"]), _color(case["color"]), img=img,
                                 bgcolor=_color(case["bgcolor"]))
        else:
            got = r.write_paragraph(case["s"], _pos(case["pos"]), _color(case["color"]), img=img)
        return {"img": _digest(got), "same_object": got is img, "measure": list(r.measure_string(case["s"]))}
    if kind == "statusbar":
        cls = font.FontRendererStatusBar
        if case["for"] == "image":
            r = cls.new_for_image(np.zeros(case["shape"], np.uint8), case["name"], case["pos"], **case["args"])
        else:
            r = cls.new_for_image_size(tuple(case["frame_size"]), case["name"], case["pos"], **case["args"])
        out = {"type": type(r).__name__, "name": r.name, "scale": r.scale, "thickness": r.thickness,
               "boxes": _boxes(r), "renders": []}
        for render in case["renders"]:
            img = np.zeros(case["shape"], np.uint8)
            ret = r.render(img, ltext=render["ltext"], lcolor=_color(render["lcolor"]), rtext=render["rtext"],
                           rcolor=_color(render["rcolor"]), bgcolor=_color(render["bgcolor"]))
            done = {"returns": ret, "img": _digest(img)}
            if img.ndim == 3:  # upstream's extract() takes colour images only
                left, right = r.extract(img)
                done.update(left=_digest(left), right=_digest(right))
            out["renders"].append(done)
        return out
    raise ValueError(kind)


def run_cases(font, cases):
    return [_case(font, case) for case in cases]
"""

_UPSTREAM = _DRIVER + "\n\ndef main(cases):\n    import imgstore.font\n    return run_cases(imgstore.font, cases)\n"

TEXTS = ["frame 123", "2024-06-01T10:00:00.123+02:00", "W", "a much longer status text: 0123456789 !?"]
SHAPES = [(48, 64, 3), (120, 320, 3), (480, 640), (1080, 1920, 3), (30, 500, 3)]
FONTS = [cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_PLAIN, cv2.FONT_HERSHEY_DUPLEX | cv2.FONT_ITALIC]
LTEXT, RTEXT = "#000123", "2024-06-01 10:00:00.000"
GREY_BG = (40, 40, 40)


def _colour(shape: tuple, bgr: tuple = (255, 255, 255)) -> object:
    return list(bgr) if len(shape) == 3 else bgr[0]


def _fit_cases() -> list:
    cases = []
    for shape in SHAPES:
        for txt in TEXTS:
            for pos in (FONT_POS_TOP, FONT_POS_BOTTOM):
                cases.append(
                    {
                        "kind": "fit_text",
                        "txt": txt,
                        "shape": list(shape),
                        "pos": pos,
                        "color": _colour(shape, (255, 200, 100)),
                        "name": DEFAULT_FONT,
                        "only_measure": False,
                    }
                )
    for name in FONTS[1:]:
        cases.append(
            {
                "kind": "fit_text",
                "txt": TEXTS[1],
                "shape": [120, 320, 3],
                "pos": FONT_POS_BOTTOM,
                "color": [0, 255, 0],
                "name": name,
                "only_measure": False,
            }
        )
    cases.append(
        {
            "kind": "fit_text",
            "txt": TEXTS[0],
            "shape": [120, 320, 3],
            "pos": FONT_POS_TOP,
            "color": [255, 255, 255],
            "name": DEFAULT_FONT,
            "only_measure": True,
        }
    )
    # upstream's search overflows 127 and 806 pixels (and 48x64 above, for the long texts)
    for img_shape in ([100, 200], [40, 1000], [500, 90], [100, 127], [100, 806]):
        for only_measure in (True, False):
            for txt in (TEXTS[1], "W"):
                cases.append(
                    {
                        "kind": "fit_text_shape",
                        "txt": txt,
                        "name": DEFAULT_FONT,
                        "only_measure": only_measure,
                        "img_shape": img_shape,
                    }
                )
    for shape, pos in (([40, 80, 3], FONT_POS_TOP_LEFT), ([40, 80, 3], 7), ([40, 80, 3], [1, 2]), (None, FONT_POS_TOP)):
        cases.append({"kind": "fit_text_error", "shape": shape, "pos": pos})
    return cases


def _render_cases() -> list:
    cases = []
    for name in FONTS:
        for scale, thickness in ((0.5, 1), (1, 1), (2.5, 3)):
            for s in ("", "Ag", TEXTS[1]):
                cases.append({"kind": "measure", "s": s, "name": name, "scale": scale, "thickness": thickness})
    for s, pos, shape, bgcolor in (
        ("hello", [5, 30], [60, 200, 3], None),
        ("hello", [5, 30], [60, 200, 3], [0, 0, 200]),
        ("hello", [5, 30], None, None),
        ("hello", [3, 4], None, [50, 60, 70]),
        ("Top left", FONT_POS_TOP_LEFT, [60, 200, 3], [90, 0, 0]),
        ("Top left", FONT_POS_TOP_LEFT, None, None),
        ("grey", [2, 20], [30, 100], 128),
    ):
        cases.append(
            {
                "kind": "write_string",
                "name": DEFAULT_FONT,
                "scale": 0.9,
                "thickness": 2,
                "s": s,
                "pos": pos,
                "color": _colour(shape or (1, 1, 3), (10, 250, 250)),
                "shape": shape,
                "bgcolor": bgcolor,
            }
        )
    for s, pos, shape in (
        ("one line", [0, 0], None),
        ("first line\nsecond, longer line\n\nfourth", [10, 5], None),
        ("first line\nsecond line", FONT_POS_TOP_LEFT, None),
        ("first line\nsecond line", [20, 40], [200, 300, 3]),
    ):
        cases.append(
            {
                "kind": "write_paragraph",
                "name": cv2.FONT_HERSHEY_PLAIN,
                "scale": 1.5,
                "thickness": 1,
                "s": s,
                "pos": pos,
                "color": [200, 100, 50],
                "shape": shape,
            }
        )
    return cases


def _renders(shape: tuple) -> list:
    white, yellow = _colour(shape), _colour(shape, (0, 255, 255))
    return [
        {"ltext": LTEXT, "lcolor": white, "rtext": RTEXT, "rcolor": white, "bgcolor": None},
        {"ltext": "#7", "lcolor": yellow, "rtext": "short", "rcolor": white, "bgcolor": _colour(shape, GREY_BG)},
        {"ltext": "", "lcolor": white, "rtext": RTEXT, "rcolor": yellow, "bgcolor": _colour(shape, (0, 0, 90))},
    ]


def _statusbar_cases() -> list:
    cases = []
    for shape in ((240, 320, 3), (480, 1280, 3), (64, 200, 3), (240, 320)):
        for pos in (FONT_POS_BOTTOM, FONT_POS_TOP):
            for args in (
                {"ltext": LTEXT, "rtext": RTEXT},
                {"ltext": LTEXT},
                {"rtext": RTEXT, "padh": 4},
                {"ltext": LTEXT, "rtext": RTEXT, "scale": 2, "thickness": 2, "padv": 8},
            ):
                cases.append(
                    {
                        "kind": "statusbar",
                        "for": "image",
                        "shape": list(shape),
                        "name": DEFAULT_FONT,
                        "pos": pos,
                        "args": args,
                        "renders": _renders(shape),
                    }
                )
    for size, args in (
        ((640, 480), {"ltext": LTEXT, "rtext": RTEXT, "scale": 0.8, "thickness": 2, "padv": 6, "padh": 20}),
        ((320, 240), {"ltext": "a very long left text that does not fit", "rtext": RTEXT}),
        ((320, 240), {}),
    ):
        for pos in (FONT_POS_BOTTOM, FONT_POS_TOP):
            shape = (size[1], size[0], 3)
            cases.append(
                {
                    "kind": "statusbar",
                    "for": "size",
                    "frame_size": list(size),
                    "shape": list(shape),
                    "name": cv2.FONT_HERSHEY_PLAIN,
                    "pos": pos,
                    "args": args,
                    "renders": _renders(shape),
                }
            )
    return cases


def _ours(cases: list) -> list:
    namespace: dict = {}
    exec(compile(_DRIVER, "font-driver", "exec"), namespace)
    return json.loads(json.dumps(namespace["run_cases"](font, cases)))


def _compare(cases: list) -> list:
    """Run ``cases`` with upstream and with ours; return ``(case, ours, theirs)`` of those that differ."""
    theirs = run_upstream(_UPSTREAM, cases)
    ours = _ours(cases)
    assert len(ours) == len(theirs) == len(cases)
    return [(case, o, t) for case, o, t in zip(cases, ours, theirs) if o != t]


def _no_difference(cases: list) -> None:
    different = _compare(cases)
    assert not different, f"{len(different)} of {len(cases)} cases differ from upstream, first: {different[0]}"


def test_fit_text_matches_upstream_where_upstream_fits() -> None:
    """The same scales and drawings, except where upstream's search ends on a text wider than the
    image: ours then fits, with a smaller scale."""
    cases = _fit_cases()
    overflowing = 0
    for case, ours, theirs in _compare(cases):
        assert case["kind"].startswith("fit_text") and theirs.get("fits") is False, (case, ours, theirs)
        assert ours["fits"] and ours["scale"] < theirs["scale"], (case, ours, theirs)
        overflowing += 1
    results = _ours(cases)
    assert overflowing >= 2, "no case where upstream's text overflows: the fix is not tested"
    assert all(r["fits"] for r in results if "fits" in r)
    # the comparison saw drawings and errors, not only empty images
    assert sum(1 for r in results if r.get("img") and r["img"]["ink"]) >= 40
    assert [r["raises"] for r in results if "raises" in r] == ["ValueError"] * 4


def test_font_renderer_matches_upstream() -> None:
    _no_difference(_render_cases())


def test_statusbar_matches_upstream() -> None:
    cases = _statusbar_cases()
    _no_difference(cases)
    results = _ours(cases)
    assert all(r["type"] == "FontRendererStatusBar" for r in results)
    assert {r["scale"] for r in results} >= {1, 2, 0.8}  # fitted scales too
    assert any(0 < r["scale"] < 1 for r in results)


# ----------------------------------------------------------------------------------------------
# what the text does, checked on our own
# ----------------------------------------------------------------------------------------------
def _ink(img: np.ndarray) -> tuple:
    """Rows and columns (first, last) of the drawn pixels."""
    drawn = np.argwhere(img.reshape(img.shape[0], img.shape[1], -1).any(axis=2))
    assert len(drawn), "nothing was drawn"
    return (drawn[:, 0].min(), drawn[:, 0].max()), (drawn[:, 1].min(), drawn[:, 1].max())


@pytest.mark.parametrize("width", [40, 64, 200, 333, 407, 640, 806, 1920])
@pytest.mark.parametrize("txt", TEXTS)
def test_fit_text_spans_most_of_the_width_and_stays_inside(width: int, txt: str) -> None:
    img = np.zeros((400, width, 3), np.uint8)
    scale, thickness = fit_text(txt, img, pos=FONT_POS_BOTTOM)
    (w, _), _ = cv2.getTextSize(txt, DEFAULT_FONT, scale, thickness)
    # never wider than the image; at least 90 % of it, or nearly (small fonts come in coarse steps)
    assert (0.9 if width >= 300 else 0.6) * width < w + 1 < width, (scale, thickness, w)
    assert thickness == max(1, int(scale // 2))
    rows, cols = _ink(img)
    assert cols[1] < width - 1
    assert rows[1] <= 400 - 3 + thickness + 1  # the baseline is 3 pixels above the bottom edge


def test_fit_text_top_and_bottom() -> None:
    top = np.zeros((300, 320, 3), np.uint8)
    bottom = np.zeros_like(top)
    assert fit_text("Hello", top, pos=FONT_POS_TOP) == fit_text("Hello", bottom, pos=FONT_POS_BOTTOM)
    (top_rows, _), (bottom_rows, _) = _ink(top), _ink(bottom)
    assert top_rows[0] >= 1 and top_rows[1] < 150
    assert bottom_rows[0] > 150 and bottom_rows[1] < 300
    grey = np.zeros((300, 320), np.uint8)
    fit_text("Hello", grey, pos=FONT_POS_TOP, color=255)
    assert np.array_equal(grey > 0, top[:, :, 0] > 0)
    measured = np.zeros_like(top)
    assert fit_text("Hello", measured, only_measure=True) == fit_text("Hello", None, img_shape=(300, 320))
    assert not measured.any()


def test_fit_text_errors() -> None:
    img = np.zeros((40, 80, 3), np.uint8)
    for pos in (FONT_POS_TOP_LEFT, 3, (1, 2)):
        with pytest.raises(ValueError, match="pos"):
            fit_text("abc", img, pos=pos)
    with pytest.raises(ValueError, match="img"):
        fit_text("abc", None)
    with pytest.raises(ValueError, match="wide"):
        fit_text("abc", None, img_shape=(10, 0), only_measure=True)
    assert not img.any()


def test_measure_string_adds_the_missing_height() -> None:
    (w, h), _ = cv2.getTextSize("Ag", cv2.FONT_HERSHEY_SIMPLEX, 3.0, 2)
    assert measure_string("Ag", cv2.FONT_HERSHEY_SIMPLEX, 3.0, 2) == (w, h + 3)
    assert FontRenderer(cv2.FONT_HERSHEY_SIMPLEX, 3.0, 2).measure_string("Ag") == (w, h + 3)


def test_write_string_and_paragraph() -> None:
    r = FontRenderer(DEFAULT_FONT, 1.0, 1)
    w, h = r.measure_string("Hello")
    img = r.write_string("Hello", (10, 5), (255, 255, 255))
    assert img.shape == (h + 5 + 1, w + 10 + 1, 3) and img.dtype == np.uint8
    rows, cols = _ink(img)
    assert cols[0] >= 10 and rows[0] >= 5
    on = np.zeros((50, 200, 3), np.uint8)
    assert r.write_string("Hello", (10, 40), (0, 255, 0), img=on, bgcolor=(0, 0, 255)) is on
    assert on[40 - h + 1, 10 + 1].tolist() == [0, 0, 255]  # the background box ends on the baseline
    assert (on[:, :, 1] > 0).any()

    para = r.write_paragraph("one\ntwo, longer\nthree", FONT_POS_TOP_LEFT, (255, 255, 255))
    widths = [r.measure_string(s)[0] for s in ("one", "two, longer", "three")]
    assert para.shape[1] == max(widths)
    line_h = r.measure_string("one")[1]
    assert para.shape[0] >= 3 * line_h
    assert _ink(para)[0][1] < para.shape[0]


def test_statusbar_layout_at_bottom_and_top() -> None:
    bar = FontRendererStatusBar.new_for_image_size((640, 480), ltext=LTEXT, rtext=RTEXT)
    assert (bar.name, bar.scale, bar.thickness, bar.pos) == (DEFAULT_FONT, 1, 1, FONT_POS_BOTTOM)
    lw, lh = bar.measure_string(LTEXT)
    rw, rh = bar.measure_string(RTEXT)
    assert bar.left_box == (12, 476, lw, lh)
    assert bar.right_box == (640 - 12 - rw, 476, rw, rh)
    assert bar.bar_box == (0, 480 - max(lh, rh) - 8, 640, max(lh, rh) + 8)

    img = np.zeros((480, 640, 3), np.uint8)
    assert bar.render(img, ltext=LTEXT, rtext=RTEXT, bgcolor=GREY_BG) is None
    rows, cols = _ink(img)
    assert rows == (bar.bar_box.y, 479) and cols == (0, 639)
    left, right = bar.extract(img)
    assert left.shape == (lh + 1, lw + 1, 3) and right.shape == (rh + 1, rw + 1, 3)
    assert (left == 255).any() and (right == 255).any()

    top = FontRendererStatusBar.new_for_image(
        np.zeros((480, 640, 3), np.uint8), pos=FontRendererStatusBar.POS_TOP, rtext=RTEXT
    )
    assert top.left_box is None and top.right_box == (640 - 12 - rw, rh + 4, rw, rh)
    assert top.bar_box == (0, 0, 640, rh + 8)
    assert top.extract(img)[0] is None


def test_statusbar_shrinks_the_font_to_fit_a_narrow_image() -> None:
    img = np.zeros((240, 200, 3), np.uint8)
    bar = FontRendererStatusBar.new_for_image(img, ltext=LTEXT, rtext=RTEXT)
    assert bar.scale < 1
    both_w = bar.measure_string(" " + LTEXT + RTEXT)[0]
    assert both_w + 2 * 12 <= 200
    bar.render(img, ltext=LTEXT, rtext=RTEXT)
    _, cols = _ink(img)
    assert cols[0] >= 12 and cols[1] < 200 - 12 + 2


def test_statusbar_layout_refuses_other_positions() -> None:
    bar = FontRendererStatusBar(DEFAULT_FONT)
    with pytest.raises(ValueError, match="POS_TOP"):
        bar.layout(FONT_POS_TOP_LEFT, (320, 240), ltext="x")
    img = np.zeros((24, 32, 3), np.uint8)
    bar.render(img, ltext="x", bgcolor=(1, 2, 3))  # not laid out: nothing to draw
    assert not img.any()
    assert repr(bar) == "FontRendererStatusBar(name=0, scale=1, thickness=1)"


def test_statusbar_extract_from_a_grey_image() -> None:
    grey = np.zeros((240, 320), np.uint8)
    bar = FontRendererStatusBar.new_for_image(grey, ltext="#1", rtext="t")
    bar.render(grey, ltext="#1", rtext="t", lcolor=255, rcolor=255)
    left, right = bar.extract(grey)
    assert left.ndim == right.ndim == 2 and (left == 255).any() and (right == 255).any()


_UPSTREAM_SIGNATURES = """
import inspect
import imgstore.font as font

def _params(fn):
    return [[p.name, p.kind.name, repr(p.default)] for p in inspect.signature(fn).parameters.values()]

def main():
    out = {}
    for name in ("fit_text", "measure_string", "FontRenderer", "FontRendererStatusBar"):
        out[name] = _params(getattr(font, name))
    for cls in ("FontRenderer", "FontRendererStatusBar"):
        for meth, fn in vars(getattr(font, cls)).items():
            if callable(fn) or isinstance(fn, classmethod):
                out[cls + "." + meth] = _params(getattr(getattr(font, cls), meth))
    for const in ("FONT_POS_TOP", "FONT_POS_BOTTOM", "FONT_POS_TOP_LEFT", "DEFAULT_FONT"):
        out[const] = getattr(font, const)
    for const in ("POS_TOP", "POS_BOTTOM", "POS_TOP_LEFT"):
        out["FontRendererStatusBar." + const] = getattr(font.FontRendererStatusBar, const)
    return out
"""


def test_names_and_signatures_match_upstream() -> None:
    theirs = run_upstream(_UPSTREAM_SIGNATURES)
    import inspect

    assert len(theirs) >= 15
    for key, expected in theirs.items():
        obj = font
        for part in key.split("."):
            obj = getattr(obj, part)
        if isinstance(expected, list):
            got = [[p.name, p.kind.name, repr(p.default)] for p in inspect.signature(obj).parameters.values()]
            assert got == expected, key
        else:
            assert obj == expected, key
