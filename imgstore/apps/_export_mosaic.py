"""``imgstore-export A B ... OUT.mp4 --mosaic``: several cameras, synchronized, tiled into one video.

The cameras are stepped together by ``MultiStore`` on the first camera's clock; the selection
options pick steps as they pick frames of one store (frame numbers and times of the first camera,
positions = steps). Each output frame is the mosaic of one step (grey when every camera is grey: a
third of the work for the encoder), optionally with each tile's camera name, frame number and
time drawn on it; ``OUT.frames.csv`` lists every camera's frame index, number and time per output
frame (empty where a camera had no frame).
"""

from __future__ import annotations

import argparse
import csv
import os
from typing import Any, Callable, Iterator, List, Optional, Tuple

import numpy as np

from ..errors import ImgStoreError
from ..mosaic import as_8bit, check_canvas, grid_layout, mosaic_of, parse_layout, time_of_day
from ..multi import CameraFrame, Step
from ._cameras import open_cameras
from ._cli import ToolError, progress
from ._transform_args import pipeline_from

#: overlay text: scale and thickness for OpenCV's Hershey font, and the height of its band
_TEXT_SCALE, _TEXT_THICKNESS, _BAND = 0.45, 1, 18


def export_mosaic(
    args: argparse.Namespace,
    fail: Callable[[str], Any],
    select: Callable[..., np.ndarray],
    write_video: Callable[..., None],
    default_fps: Callable[[np.ndarray], Any],
) -> str:
    """Write the mosaic video and its sidecar; the summary line. (The single-store export's own
    selection, video writer and frame-rate rule are passed in, so both work alike.)"""
    layout = _layout(args.layout, len(args.paths))
    with open_cameras(args.paths, args) as multi:
        master = multi.stores[multi.master]
        table = master.view.table
        selected = select(table.frame_number, table.frame_time, args, master.created[1], fail)
        if not len(selected):
            raise ToolError(f"{args.paths[0]}: no steps selected ({len(multi)} steps)")
        zone = master.created[1]
        shapes = [store.image_shape for store in multi.stores]
        rows, cols = layout if layout is not None else grid_layout(len(shapes))
        try:  # before any frame is read: a mosaic no video holds
            check_canvas(rows, cols, max(s[0] for s in shapes), max(s[1] for s in shapes))
        except ImgStoreError as exc:
            raise ToolError(str(exc)) from None
        canvas = (rows * max(s[0] for s in shapes), cols * max(s[1] for s in shapes))
        pipeline = pipeline_from(args.transforms, canvas, "the mosaic")  # transforms of the whole picture
        steps: List[Step] = []

        def images() -> Iterator[np.ndarray]:
            for position in progress(selected, total=len(selected), quiet=args.quiet, desc="export"):
                step = multi[int(position)]
                steps.append(_frames_only(step))
                tiles = [_with_overlay(img, frame, zone) if args.overlay else img
                         for img, frame in zip(step.images, step.frames)]  # fmt: skip
                mosaic = mosaic_of(tiles, shapes, layout, keep_grey=True)
                yield pipeline(mosaic, step.frame_number, step.time) if pipeline else mosaic

        fps = args.fps if args.fps is not None else default_fps(table.frame_time)
        write_video(args.out, fps, args.crf, images())
        _write_sidecar(args.out + ".frames.csv", multi.names, steps)
    return (
        f"{len(selected)} steps of {len(multi.names)} cameras to {args.out} at {float(fps):g} fps "
        f"(+ {args.out}.frames.csv)"
    )


def _layout(text: Optional[str], n: int) -> Optional[Tuple[int, int]]:
    if text is None:
        return None
    try:
        return parse_layout(text, n)
    except ImgStoreError as exc:
        raise ToolError(f"--{exc}") from None


def _frames_only(step: Step) -> Step:
    """The step without its pixels (the sidecar needs only the frames)."""
    return Step(step.index, step.time, step.frame_number, step.frames, ())


def _with_overlay(img: Optional[np.ndarray], frame: CameraFrame, zone: Any) -> Optional[np.ndarray]:
    """The tile with a band at its top: camera name, frame number and time (or 'no frame')."""
    from .._opencv import cv2

    if img is None:
        return None
    tile = as_8bit(img).copy()
    if frame.frame_index >= 0:
        text = f"{frame.camera}  #{frame.frame_number}  {time_of_day(frame.frame_time, zone)}"
    else:
        text = f"{frame.camera}  no frame"
    tile[:_BAND] = tile[:_BAND] // 3  # a darker band keeps the text readable on any picture
    white = (255, 255, 255) if tile.ndim == 3 and tile.shape[2] == 3 else 255  # grey tiles stay grey
    cv2.putText(tile, text, (4, _BAND - 5), cv2.FONT_HERSHEY_SIMPLEX, _TEXT_SCALE, white, _TEXT_THICKNESS,
                cv2.LINE_AA)  # fmt: skip
    return tile


def _write_sidecar(path: str, names: List[str], steps: List[Step]) -> None:
    """``step,time`` then ``<camera>_frame_index,_frame_number,_frame_time`` per camera, one row per output frame."""
    tmp = path + ".part"
    header = ["step", "time"] + [f"{name}_{column}" for name in names for column in ("frame_index", "frame_number",
                                                                                     "frame_time")]  # fmt: skip
    try:
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(header)
            for step in steps:
                row: List[Any] = [step.index, repr(step.time)]
                for frame in step.frames:
                    row += _columns(frame)
                writer.writerow(row)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _columns(frame: CameraFrame) -> List[Any]:
    if frame.frame_index < 0:
        return ["", "", ""]
    return [frame.frame_index, frame.frame_number, repr(frame.frame_time)]
