"""The transform options of ``imgstore-save`` and ``imgstore-export``: ``--crop``, ``--resize``,
``--rotate``, ``--flip``, ``--grey``, ``--colormap`` (and ``--overlay``), kept in the order given."""

from __future__ import annotations

import argparse
from typing import Any, List, Optional, Sequence, Tuple

from ..errors import ImgStoreError
from ..transforms import Pipeline, parse_transform
from ._cli import ToolError

#: (option, metavar, help); a metavar of None: a flag without a value
TRANSFORM_OPTIONS: Tuple[Tuple[str, Optional[str], str], ...] = (
    ("crop", "X,Y,W,H", "keep the W x H region whose top left corner is at X,Y"),
    ("resize", "WxH|SCALE", "resize to W x H pixels, or by a factor (0.5)"),
    ("rotate", "DEGREES", "rotate clockwise by 90, 180 or 270 degrees"),
    ("flip", "h|v", "mirror left-right (h) or upside down (v)"),
    ("grey", None, "colour frames as grey"),
    ("colormap", "NAME[:LOW:HIGH]", "grey frames (any depth) as colour through an OpenCV colour map, e.g. "
     "viridis or viridis:0:4095 (LOW..HIGH spans the map; default the dtype's range)"),
    ("overlay", None, "draw each frame's number and time on it"),
)  # fmt: skip


class _InOrder(argparse.Action):
    """Append ``(option name, value)`` to ``args.transforms``, so that transforms apply as written."""

    def __call__(self, parser: Any, namespace: Any, values: Any, option_string: Optional[str] = None) -> None:
        chosen = list(getattr(namespace, "transforms", None) or [])
        chosen.append((self.option_strings[0][2:], values if isinstance(values, str) else ""))
        namespace.transforms = chosen


def add_transform_arguments(parser: argparse.ArgumentParser, overlay: bool = True) -> None:
    """The transform options, in their own group (``overlay``: with ``--overlay`` among them)."""
    group = parser.add_argument_group("transforms (applied to each frame, in the order given)")
    for name, metavar, text in TRANSFORM_OPTIONS:
        if name == "overlay" and not overlay:
            continue
        group.add_argument(
            f"--{name}", dest="transforms", action=_InOrder, metavar=metavar, nargs=None if metavar else 0, help=text
        )
    parser.set_defaults(transforms=[])


def pipeline_from(chosen: Sequence[Tuple[str, str]], shape: Tuple[int, ...], where: str, tz: Any = None) -> Pipeline:
    """The transforms ``chosen`` on the command line, checked against frames of ``shape`` from ``where``."""
    try:
        steps: List[Any] = [parse_transform(name, value, tz) if tz is not None else parse_transform(name, value)
                            for name, value in chosen]  # fmt: skip
        pipeline = Pipeline(steps)
        pipeline.shape(tuple(shape))
    except ImgStoreError as exc:
        raise ToolError(f"{where}: --{exc}") from None
    return pipeline
