"""``imgstore-edit``: trim, split and join stores without losing frame numbers, times, metadata or extra data.

The work is done by :mod:`imgstore.edit`; this module holds the command line, the selection and
the progress bar.
"""

from __future__ import annotations

import argparse
import re
import sys
from typing import Any, List, Optional, Sequence

from .. import edit
from ..stores import new_for_filename
from ._cli import ToolError, add_common_arguments, progress_bar, run, whole_number
from ._selection import add_selection_arguments, select_frames
from ._transform_args import add_transform_arguments, pipeline_from

PROG = "imgstore-edit"
DESCRIPTION = """\
Make new stores from parts of stores, keeping every frame's number and time, the user metadata,
the creation time and zone, and the extra data of the kept frames. Frames are copied without
decoding wherever the format allows (image files; whole video chunks); only the frames of a video
chunk that is cut are encoded again. A new store is written as DEST.partial and renamed when
complete, so an interrupted edit leaves nothing at DEST."""
EPILOG = """\
examples:
  imgstore-edit trim rig-day1 trial3 --start-time 2024-06-01T10:15 --end-time 2024-06-01T10:45
  imgstore-edit trim rig-day1 first-minute --start-index 0 --end-index 1499
  imgstore-edit trim rig-day1 arena2-small --crop 640,0,640,512 --resize 0.5
  imgstore-edit split rig-week hours/ --duration 1h
  imgstore-edit join part1 part2 part3 whole-run"""

_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(h|m|min|s)?\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "min": 60.0, "s": 1.0, None: 1.0}


def duration(text: str) -> float:
    """Seconds from ``90``, ``90s``, ``15m`` or ``1.5h``."""
    match = _DURATION.match(text)
    seconds = float(match.group(1)) * _UNIT_SECONDS[(match.group(2) or "").lower() or None] if match else 0.0
    if not seconds > 0:
        raise argparse.ArgumentTypeError(f"not a positive duration such as 90s, 15m or 1h: {text!r}")
    return seconds


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    trim = commands.add_parser("trim", help="a new store of part of a store (selected as imgstore-export does)")
    trim.add_argument("source", metavar="SOURCE", help="the store")
    trim.add_argument("dest", metavar="DEST", help="the new store's directory (must not exist)")
    add_selection_arguments(trim, "keep")
    add_transform_arguments(trim)  # frames that change are encoded again
    add_common_arguments(trim)

    split = commands.add_parser("split", help="a store cut into several, by duration or frame count")
    split.add_argument("source", metavar="SOURCE", help="the store")
    split.add_argument("dest_dir", metavar="DEST_DIR", help="where the pieces go, as DEST_DIR/<name>.000 ...")
    size = split.add_mutually_exclusive_group(required=True)
    size.add_argument("--duration", type=duration, metavar="D", help="each piece this long: 90s, 15m, 1h")
    size.add_argument("--frames", type=whole_number(1), metavar="N", help="each piece N frames")
    add_common_arguments(split)

    join = commands.add_parser("join", help="stores one after another in time order, as one store")
    join.add_argument("sources", nargs="+", metavar="SOURCE", help="the stores (at least two)")
    join.add_argument("dest", metavar="DEST", help="the new store's directory (must not exist)")
    join.add_argument(
        "--allow-overlap", action="store_true", help="join stores whose times overlap (refused otherwise)"
    )
    add_common_arguments(join)
    return parser


def _edit(args: argparse.Namespace) -> int:
    if args.command == "trim":
        lines = [_trim(args)]
    elif args.command == "split":
        lines = _split(args)
    else:
        lines = [_join(args)]
    if not args.quiet:
        for line in lines:
            print(f"{PROG}: {line}", file=sys.stderr)
    return 0


def _trim(args: argparse.Namespace) -> str:
    with new_for_filename(args.source) as store:
        table = store.view.table

        def fail(message: str) -> None:
            raise ToolError(f"{args.source}: {message}")

        positions = select_frames(table.frame_number, table.frame_time, args, store.created[1], fail)
        if not len(positions):
            raise ToolError(f"{args.source}: no frames selected ({table.frame_count} frames in the store)")
        pipeline = pipeline_from(args.transforms, store.image_shape, args.source, store.created[1])
        with progress_bar(len(positions), args.quiet, "trim") as advance:
            report = edit.write_store(args.dest, [(store, positions)], advance, transform=pipeline)
    return _summary(report)


def _split(args: argparse.Namespace) -> List[str]:
    with new_for_filename(args.source) as store:
        with progress_bar(store.frame_count, args.quiet, "split") as advance:
            reports = edit.split(store, args.dest_dir, seconds=args.duration, frames=args.frames, progress=advance)
    return [_summary(report) for report in reports]


def _join(args: argparse.Namespace) -> str:
    if len(args.sources) < 2:
        raise ToolError("join needs at least two stores")
    total = 0
    for path in args.sources:
        with new_for_filename(path) as store:
            total += store.frame_count
    with progress_bar(total, args.quiet, "join") as advance:
        report = edit.join(args.sources, args.dest, allow_overlap=args.allow_overlap, progress=advance)
    lines = [_summary(report)]
    for end, start in report.gaps:
        lines.append(f"gap of {start - end:.3f} s in {report.path}: from {edit.describe_time(end)} to "
                     f"{edit.describe_time(start)}")  # fmt: skip
    return "\n".join(lines)


def _summary(report: Any) -> str:
    how = f"{report.copied} copied, {report.reencoded} encoded again" if report.reencoded else "all copied"
    motif = f", {report.motif_rows} rows of Motif's extra data" if report.motif_rows else ""
    return f"wrote {report.path}: {report.frames} frames ({how}), {report.extra_records} extra-data records{motif}"


def main(argv: Optional[Sequence[str]] = None) -> int:
    return run(PROG, _edit, build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
