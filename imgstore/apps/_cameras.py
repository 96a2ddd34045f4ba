"""How the tools that take several cameras (``imgstore-view``, ``imgstore-export --mosaic``) step them
together: the ``--sync``, ``--tolerance`` and ``--fill`` options and the ``MultiStore`` they open."""

from __future__ import annotations

import argparse
from typing import Any, Sequence

from ..errors import ImgStoreError
from ..multi import MultiStore
from ._cli import ToolError


def add_camera_arguments(group: Any) -> None:
    """``--sync``, ``--tolerance`` and ``--fill`` in the tool's argument ``group``."""
    group.add_argument(
        "--sync",
        choices=("time", "number"),
        default="time",
        help="match frames by nearest time (default) or by frame number (hardware-triggered cameras)",
    )
    group.add_argument(
        "--tolerance",
        type=float,
        metavar="SECONDS",
        help="farthest a frame may be from the step's time (default half the first camera's frame interval)",
    )
    group.add_argument(
        "--fill",
        choices=("none", "hold"),
        default="none",
        help="a camera without a frame at a step: none shown (default) or its last frame held",
    )


def open_cameras(paths: Sequence[str], args: argparse.Namespace, linked: bool = False) -> MultiStore:
    """The cameras at ``paths`` stepped together as the options say; ``linked``: the first store
    with the companions its metadata lists (the only path given). Refusals are one-line errors."""
    options = {"sync": args.sync, "tolerance": args.tolerance, "fill": args.fill}
    try:
        if linked:
            if len(paths) > 1:
                raise ToolError("--group takes one store: the others are those its metadata lists")
            return MultiStore.linked(paths[0], **options)
        return MultiStore(list(paths), **options)
    except ImgStoreError as exc:
        raise ToolError(str(exc)) from None
