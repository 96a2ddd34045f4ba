"""``imgstore-export PATH OUT``: a store, or part of it, to one ordinary video file or an image sequence.

The video is written by the codec layer (``codecs.video_file``: H.264 in yuv420p for
.mp4/.mkv/.mov, MJPEG for .avi) at a constant frame rate; the real frame numbers and times go
into a sidecar ``OUT.frames.csv``. This module keeps the command line, the frame selection and
the sidecar.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import logging
import math
import os
import re
import sys
from fractions import Fraction
from typing import Any, Callable, Iterator, List, Optional, Sequence

import numpy as np

from ..codecs.video_file import DEFAULT_CRF, VideoFileError, VideoFileWriter, video_file_format
from ..errors import UnsupportedFormatError
from ._cameras import add_camera_arguments
from ._cli import ToolError, add_common_arguments, error_reason, positive_number, progress, run, whole_number
from ._prefetch import read_ahead
from ._selection import add_selection_arguments, select_frames
from ._transform_args import add_transform_arguments, pipeline_from

PROG = "imgstore-export"
DEFAULT_FPS = 25
IMAGE_FORMATS = ("png", "jpg", "tif", "npy")
_IMAGE_EXTENSIONS = {".png": "png", ".jpg": "jpg", ".jpeg": "jpg", ".tif": "tif", ".tiff": "tif", ".npy": "npy"}
#: dtypes each image format holds exactly (None: any)
_IMAGE_DTYPES = {"png": ("uint8", "uint16"), "jpg": ("uint8",), "tif": ("uint8", "uint16", "float32"), "npy": None}
_PATTERN = re.compile(r"%0?\d*d")
DEFAULT_NAME = "frame_%06d"
SIDECAR_SUFFIX = ".frames.csv"

log = logging.getLogger(__name__)

DESCRIPTION = """\
Export a store, or part of it, to one ordinary video file or to an image sequence.

OUT decides what is written:
  *.mp4 *.mkv *.mov   H.264 video (libx264, yuv420p), plus OUT.frames.csv
  *.avi               MJPEG video, plus OUT.frames.csv
  DIR/ or an existing directory
                      one image per frame, named frame_%06d.<ext> (e.g. frame_001234.png)
  a name with %d, %06d...
                      one image per frame named by the pattern, e.g. 'out/img_%05d.png'
                      (the extension, if any, gives the image format)

Frames are exported in store order. The video plays at a constant --fps; OUT.frames.csv maps
each video frame (one row per frame, in video order) to the store's frame_index, frame_number
and frame_time, so the real timing is not lost. Grey frames are converted to colour for
H.264/MJPEG; 16-bit frames are reduced to 8 bits for video (use png/tif/npy to keep them).
Videos need even sizes: an odd last row or column is left out (with a warning).

Range selection (all bounds inclusive; options combine, a frame must satisfy all of them):
  --start/--end by camera frame number, --start-index/--end-index by position in the store,
  --start-time/--end-time by frame time, then --every N keeps every N-th selected frame."""

EPILOG = """\
examples:
  imgstore-export my-store my-store.mp4
  imgstore-export my-store clip.mkv --start-time 2023-11-14T22:13:20 --end-time 2023-11-14T22:14:20
  imgstore-export my-store frames/ --image-format npy --start 1000 --end 1999 --every 10
  imgstore-export my-store 'pngs/img_%05d.png' --name index
  imgstore-export top side front rig.mp4 --mosaic --overlay

exit status: 0 success, 1 the export failed (unreadable store, output exists...), 2 bad usage."""


# ----------------------------------------------------------------------------------------------
# argument types
# ----------------------------------------------------------------------------------------------
def _fps(text: str) -> Fraction:
    positive_number(maximum=1000)(text)  # says what is wrong
    return Fraction(text.strip()).limit_denominator(100000)


# ----------------------------------------------------------------------------------------------
# what OUT means
# ----------------------------------------------------------------------------------------------
class Target:
    """Where frames go: ``kind`` is 'video' or 'images'."""

    def __init__(
        self,
        kind: str,
        path: str,
        image_format: Optional[str] = None,
        namer: Optional[Callable[[int], str]] = None,
        directory: Optional[str] = None,
    ) -> None:
        self.kind = kind
        self.path = path
        self.image_format = image_format
        self.namer = namer
        self.directory = directory


def resolve_target(out: str, image_format: Optional[str], fail: Callable[[str], Any]) -> Target:
    """Read OUT (and --image-format) as a video file, an image directory or a file-name pattern."""
    name = os.path.basename(out)
    if _PATTERN.search(out):
        if len(_PATTERN.findall(out)) != 1 or not _PATTERN.search(name):
            fail(f"OUT {out!r}: put exactly one %d-style number in the file name (e.g. 'frames/img_%06d.png')")
        ext = os.path.splitext(out)[1]
        if _PATTERN.search(ext):  # 'frames.%04d': the number is the extension
            ext = ""
        if ext:
            fmt = _IMAGE_EXTENSIONS.get(ext.lower())
            if fmt is None:
                fail(f"OUT {out!r}: unknown image extension {ext!r} (use .png, .jpg, .tif or .npy)")
            if image_format and image_format != fmt:
                fail(f"OUT {out!r} ends in {ext} but --image-format is {image_format}")
            pattern = out
        else:
            fmt = image_format or "png"
            pattern = f"{out}.{fmt}"

        def from_pattern(value: int) -> str:
            return _PATTERN.sub(lambda m: m.group(0) % value, pattern, count=1)

        return Target("images", out, fmt, from_pattern, os.path.dirname(pattern) or ".")
    if out.endswith(("/", os.sep)) or os.path.isdir(out):
        fmt = image_format or "png"
        directory = out

        def in_directory(value: int) -> str:
            return os.path.join(directory, f"{DEFAULT_NAME % value}.{fmt}")

        return Target("images", out, fmt, in_directory, directory)
    if video_file_format(out) is None:
        fail(
            f"OUT {out!r}: end it in .mp4, .mkv, .mov or .avi for a video, in '/' for a directory of "
            "images, or put a %d-style number in it for an image sequence"
        )
    return Target("video", out)


# ----------------------------------------------------------------------------------------------
# frame selection
# ----------------------------------------------------------------------------------------------
def default_fps(times: np.ndarray) -> Fraction:
    """The store's measured frame rate, rounded (below 1 fps: kept as a simple fraction), else 25."""
    from .info import measured_fps

    fps = measured_fps(times)
    if fps is None or not math.isfinite(fps):
        return Fraction(DEFAULT_FPS)
    if fps >= 1:
        return Fraction(round(fps))
    return Fraction(fps).limit_denominator(100) or Fraction(1, 100)


# ----------------------------------------------------------------------------------------------
# writers
# ----------------------------------------------------------------------------------------------
def write_video(path: str, fps: Fraction, crf: Optional[int], images: Iterator[np.ndarray]) -> None:
    """``images`` to the video file ``path`` (see ``codecs.video_file``); no file is left when it fails.

    The images are read ahead in a thread while the encoder works (see ``_prefetch``).
    """
    writer = VideoFileWriter(path, fps, crf)
    try:
        for img in read_ahead(images):
            with _in_tool_words():
                writer.write(img)
        with _in_tool_words():
            writer.close()
    except BaseException:
        writer.abort()
        raise


@contextlib.contextmanager
def _in_tool_words() -> Iterator[None]:
    """The video writer's failures as this tool words them: reasons as every tool gives them, and
    for frames no video holds, what to export instead."""
    try:
        yield
    except VideoFileError as exc:
        raise ToolError(f"{exc.path}: {exc.failure}: {error_reason(exc.reason)}") from None
    except UnsupportedFormatError as exc:
        raise ToolError(f"{exc}; export an image sequence with --image-format npy") from None


def write_image(path: str, img: np.ndarray, fmt: str) -> None:
    """One image file, exactly as the store returned the frame (BGR for colour)."""
    allowed = _IMAGE_DTYPES[fmt]
    if allowed is not None and img.dtype.name not in allowed:
        raise ToolError(
            f"{path}: {fmt} cannot hold {img.dtype} frames exactly ({', '.join(allowed)}); use --image-format npy"
        )
    if fmt == "npy":
        with open(path, "wb") as f:
            np.save(f, img, allow_pickle=False)
        return
    import cv2

    ok, data = cv2.imencode("." + fmt, img)
    if not ok:
        raise ToolError(f"{path}: OpenCV could not encode a {img.dtype} frame of shape {img.shape} as {fmt}")
    with open(path, "wb") as f:
        f.write(data.tobytes())


def write_sidecar(path: str, indexes: np.ndarray, numbers: np.ndarray, times: np.ndarray) -> None:
    """``frame_index,frame_number,frame_time``: one row per exported frame, in export order."""
    tmp = path + ".part"
    try:
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["frame_index", "frame_number", "frame_time"])
            for i in indexes:
                writer.writerow([int(i), numbers[i].item(), repr(float(times[i]))])
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


# ----------------------------------------------------------------------------------------------
# command line
# ----------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "paths",
        nargs="+",
        metavar="PATH",
        help="the store: its directory or its metadata.yaml (several, the cameras of one rig, with --mosaic)",
    )
    parser.add_argument("out", metavar="OUT", help="video file, directory (ending in '/') or %%d file-name pattern")

    add_selection_arguments(parser, "export")

    add_transform_arguments(parser, overlay=False)  # --overlay is below (per tile with --mosaic)

    video = parser.add_argument_group("video output (.mp4 .mkv .mov .avi)")
    video.add_argument(
        "--fps",
        type=_fps,
        metavar="FPS",
        help="playback frame rate (default: the store's measured rate, rounded; 25 when unknown)",
    )
    video.add_argument(
        "--crf",
        type=whole_number(0, 51),
        metavar="Q",
        help=f"H.264 quality, 0 (best) .. 51 (smallest) (default {DEFAULT_CRF}; not for .avi)",
    )

    images = parser.add_argument_group("image-sequence output (DIR/ or a %d pattern)")
    images.add_argument(
        "--image-format",
        choices=IMAGE_FORMATS,
        help="file format (default: the pattern's extension, else png); png, tif and npy keep pixels "
        "exactly (png/tif: uint8 and uint16; npy: any dtype), jpg is lossy",
    )
    images.add_argument(
        "--name",
        choices=("number", "index"),
        default=None,
        help="number files by camera frame number (default) or by store position (frame_index)",
    )

    mosaic = parser.add_argument_group("several cameras (a video of them side by side)")
    mosaic.add_argument(
        "--mosaic",
        action="store_true",
        help="step the stores together (each camera's frame nearest in time to the first camera's) and "
        "tile every step into one video frame; OUT.frames.csv lists each camera's frame per video frame; "
        "the range options select steps by the first camera's frame numbers and times",
    )
    mosaic.add_argument(
        "--layout", metavar="RxC", help="tiles in ROWS x COLUMNS, e.g. 2x2 (default: as square as fits)"
    )
    add_camera_arguments(mosaic)
    mosaic.add_argument(
        "--overlay",
        action="store_true",
        help="draw each frame's number and time on it, after the transforms (with --mosaic: each tile's "
        "camera name, frame number and time)",
    )

    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing video (and its .frames.csv) or write into a non-empty directory "
        "(files of the same name are replaced, others are left alone)",
    )
    add_common_arguments(parser)
    return parser


def _check_option_use(parser: argparse.ArgumentParser, args: argparse.Namespace, target: Target) -> None:
    if target.kind == "video":
        misplaced = [
            opt for opt, value in (("--image-format", args.image_format), ("--name", args.name)) if value is not None
        ]
        if misplaced:
            parser.error(f"{' and '.join(misplaced)} apply to image sequences, not to the video {target.path!r}")
        if args.crf is not None and not video_file_format(target.path).takes_crf:
            parser.error("--crf applies to H.264 (.mp4, .mkv, .mov), not to MJPEG .avi")
    else:
        misplaced = [opt for opt, value in (("--fps", args.fps), ("--crf", args.crf)) if value is not None]
        if misplaced:
            parser.error(f"{' and '.join(misplaced)} apply to video files, not to the image sequence {target.path!r}")


def _refuse_unwritable(target: Target) -> None:
    """Say before any work that the output cannot be made because a file stands where a folder must."""
    folder = os.path.dirname(target.path) if target.kind == "video" else target.directory
    while folder and not os.path.lexists(folder):
        folder = os.path.dirname(folder)
    if folder and not os.path.isdir(folder):
        raise ToolError(f"{target.path}: cannot be written: {folder} is a file, not a folder")


def _refuse_existing(target: Target, names: List[str], overwrite: bool) -> None:
    if overwrite:
        return
    hint = "use --overwrite to replace it"
    if target.kind == "video":
        for path in (target.path, target.path + SIDECAR_SUFFIX):
            if os.path.lexists(path):
                raise ToolError(f"{path}: already exists ({hint})")
        return
    if os.path.isdir(target.path) and not _PATTERN.search(target.path) and os.listdir(target.path):
        raise ToolError(f"{target.path}: directory is not empty (use --overwrite to write into it)")
    for name in names:
        if os.path.lexists(name):
            raise ToolError(f"{name}: already exists ({hint})")


def _body(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    from ..store.factory import new_for_filename
    from .info import frame_arrays, recording_zone

    target = resolve_target(args.out, args.image_format, parser.error)
    _check_option_use(parser, args, target)
    if len(args.paths) > 1 and not args.mosaic:
        parser.error("several stores are exported together with --mosaic")
    camera_options = args.tolerance is not None or args.fill != "none" or args.sync != "time"
    if not args.mosaic and (args.layout is not None or camera_options):
        parser.error("--layout, --sync, --tolerance and --fill apply to --mosaic")
    if args.mosaic:
        return _mosaic_body(parser, args, target)
    args.path = args.paths[0]

    with new_for_filename(args.path) as store:
        numbers, times = frame_arrays(store)
        selected = select_frames(numbers, times, args, recording_zone(store), parser.error)
        if not len(selected):
            raise ToolError(f"{args.path}: no frames selected ({store.frame_count} frames in the store)")

        names: List[str] = []
        if target.kind == "images":
            by_index = args.name == "index"
            names = [target.namer(int(i) if by_index else int(numbers[i])) for i in selected]
            if len(set(names)) != len(names):
                raise ToolError(
                    f"{args.path}: frame numbers repeat among the selected frames, so file names would collide; "
                    "use --name index"
                )
        _refuse_unwritable(target)
        _refuse_existing(target, names, args.overwrite)

        chosen = list(args.transforms) + ([("overlay", "")] if args.overlay else [])
        pipeline = pipeline_from(chosen, store.image_shape, args.path, recording_zone(store))
        frames = progress(selected, total=len(selected), quiet=args.quiet, desc="export")
        if target.kind == "video":
            fps = args.fps if args.fps is not None else default_fps(times)
            images = (_transformed(store, int(i), pipeline) for i in frames)
            write_video(target.path, fps, args.crf, images)
            write_sidecar(target.path + SIDECAR_SUFFIX, selected, numbers, times)
            summary = f"{len(selected)} frames to {target.path} at {float(fps):g} fps (+ {target.path}{SIDECAR_SUFFIX})"
        else:
            os.makedirs(target.directory, exist_ok=True)
            for i, name in zip(frames, names):
                write_image(name, _transformed(store, int(i), pipeline), target.image_format)
            summary = f"{len(selected)} {target.image_format} files to {target.path}"
    if not args.quiet:
        print(f"{PROG}: wrote {summary}", file=sys.stderr)
    return 0


def _transformed(store: Any, position: int, pipeline: Any) -> np.ndarray:
    """The frame at ``position``, through the transforms (if any)."""
    img, (number, when) = store.get_image(None, frame_index=position)
    return pipeline(img, number, when) if pipeline else img


def _mosaic_body(parser: argparse.ArgumentParser, args: argparse.Namespace, target: Target) -> int:
    from ._export_mosaic import export_mosaic

    if target.kind != "video":
        parser.error(f"--mosaic writes a video file (.mp4 .mkv .mov .avi), not the image sequence {target.path!r}")
    _refuse_unwritable(target)
    _refuse_existing(target, [], args.overwrite)
    summary = export_mosaic(args, parser.error, select_frames, write_video, default_fps)
    if not args.quiet:
        print(f"{PROG}: wrote {summary}", file=sys.stderr)
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of ``imgstore-export``."""
    parser = build_parser()
    return run(PROG, lambda args: _body(parser, args), parser, argv)


if __name__ == "__main__":
    sys.exit(main())
