"""The command line of ``imgstore-save``: its options, their value types and the help text."""

from __future__ import annotations

import argparse
from typing import Any, Tuple

from ._cli import add_common_arguments, positive_number, whole_number
from ._selection import parse_time
from ._transform_args import add_transform_arguments
from .sources import TESTSRC

PROG = "imgstore-save"
DEFAULT_FORMAT = "mjpeg/avi"  # upstream's default, 'mjpeg', is an alias of it
#: frames for testsrc when --frames is not given, so that the example command ends
TESTSRC_FRAMES = 250


EPILOG = f"""\
sources:
  {TESTSRC:<22}a synthetic camera: moving colour bars, a disc, the frame number drawn in
                        (--size, --fps, --color, --realtime; {TESTSRC_FRAMES} frames unless --frames)
  0, 1, ...             a camera (OpenCV); runs until Ctrl-C or --frames
  VIDEO                 a video file (PyAV); frames numbered 0, 1, ...; times = the container's
                        creation_time tag, else a date and time in its name (20161113T000000Z),
                        else the file's modification time, plus each
                        frame's timestamp relative to the first frame (or --start-time, --fps);
                        video deeper than 8 bits is kept 16-bit where the format holds it
  STORE                 a store (its directory or metadata.yaml): frame numbers, frame times,
                        user metadata and extra data are copied (with --frames N, the extra
                        data of the first N frames)
  FOLDER or 'GLOB'      images (png, jpg, tif...) sorted by name, numbers in names compared as
                        numbers, every page of a multi-page TIFF; frames numbered 0, 1, ...;
                        times = the files' modification times (or --start-time, --fps)
  URL                   a stream (rtsp://, http://...; PyAV); times = when opened + timestamps

Ctrl-C or SIGTERM stops between two frames and closes the store: what was written stays
readable (exit status 130). Exit status 1: the source or the store failed; 2: bad usage.

examples:
  imgstore-save /tmp/demo --source testsrc --format avc1/mp4
  imgstore-save converted --source recording.mp4 --format avc1/mp4 --crf 18
  imgstore-save as-png --source old-store/metadata.yaml --format png
  imgstore-save from-images --source 'frames/*.tif' --format npy
"""


def _format_name(value: str) -> str:
    """Upstream's spellings ('mjpeg') as the registry names them ('mjpeg/avi'); a format that needs
    OpenCV where it cannot load is refused with what to install."""
    from .._opencv import opencv_problem
    from ..codecs import COLOR_SUFFIX, needs_opencv, split_format

    base, color = split_format(value)
    problem = opencv_problem() if needs_opencv(base) else None
    if problem is not None:
        raise argparse.ArgumentTypeError(f"format '{value}' needs OpenCV: {problem}")
    return base + COLOR_SUFFIX if color else base


def _crf(value: str) -> Any:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {value!r}") from None
    return int(number) if number.is_integer() else number


def _preset(value: str) -> Any:
    """x264/x265 presets are names ('veryfast'), SVT-AV1's are numbers (0-13)."""
    return int(value) if value.isdigit() else value


def _size(value: str) -> Tuple[int, int]:
    parts = value.lower().split("x")
    try:
        width, height = (int(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be WIDTHxHEIGHT, e.g. 640x480, got {value!r}") from None
    if width < 2 or height < 2:
        raise argparse.ArgumentTypeError(f"width and height must be at least 2, got {value!r}")
    return width, height


def build_parser() -> argparse.ArgumentParser:
    from ..store.factory import get_supported_formats

    formats = get_supported_formats()
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Record a camera, or convert a video file, a store or images, into a new store.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("dest", help="directory of the new store (must not exist, or be an empty directory)")
    parser.add_argument(
        "--source",
        default="0",
        metavar="SOURCE",
        help=f"what to save: a video file, a store, a folder or glob of images, a camera index, a URL "
        f"or '{TESTSRC}' (default: 0, the first camera)",
    )
    parser.add_argument(
        "--format",
        type=_format_name,
        choices=formats,
        default=DEFAULT_FORMAT,
        metavar="FORMAT",
        help=f"store format, one of: {', '.join(formats)} (default: {DEFAULT_FORMAT}; 'mjpeg' means {DEFAULT_FORMAT})",
    )
    parser.add_argument(
        "--chunksize",
        type=whole_number(1),
        metavar="N",
        help="frames per chunk (default: the format's, 200 for image formats, 10000 for video formats)",
    )
    parser.add_argument(
        "--frames",
        type=whole_number(0),
        metavar="N",
        help=f"stop after N frames; 0: no limit (default: the whole source; {TESTSRC_FRAMES} for {TESTSRC})",
    )
    parser.add_argument("--preview", action="store_true", help="show frames in a window as they are saved (Esc stops)")
    parser.add_argument(
        "--companion",
        action="append",
        metavar="STORE",
        help="another camera's store recorded with this one (repeat for several): listed in the new "
        "store's metadata (imgstore_companions, relative to it), so that imgstore.MultiStore.linked(DEST) "
        "opens the group",
    )

    video = parser.add_argument_group("video encoder settings (video formats that have them)")
    video.add_argument("--crf", type=_crf, help="quality: lower is better and larger (x264/x265: 0-51, AV1: 0-63)")
    video.add_argument("--preset", type=_preset, help="speed/size trade-off: ultrafast ... veryslow (AV1: 0-13)")
    video.add_argument("--gop", type=whole_number(1), metavar="N", help="frames between keyframes")
    video.add_argument("--quality", type=int, metavar="Q", help="mjpeg/avi quality, 2 (best) .. 31 (smallest)")

    timing = parser.add_argument_group("frame times of images, videos and testsrc")
    timing.add_argument(
        "--fps",
        type=positive_number(),
        help="time frame N at START + N / FPS (testsrc: default 25; images and videos: instead of file "
        "modification times and the video's timestamps)",
    )
    timing.add_argument(
        "--start-time",
        type=parse_time,
        metavar="T",
        help="the first frame's time, epoch seconds or an ISO datetime (naive: this computer's time zone), "
        "instead of the first file's modification time or the video's creation_time tag",
    )

    add_transform_arguments(parser)

    synth = parser.add_argument_group(f"--source {TESTSRC}")
    synth.add_argument("--size", type=_size, metavar="WxH", help="frame size (default: 640x480)")
    synth.add_argument("--color", action="store_true", default=None, help="colour (BGR) frames (default: grey)")
    synth.add_argument(
        "--realtime", action="store_true", default=None, help="deliver frames at --fps (default: as fast as possible)"
    )
    add_common_arguments(parser)
    return parser
