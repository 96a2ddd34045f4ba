"""``imgstore-info PATH``: what a store holds, its timeline, dropped frames and metadata.

Everything comes from the frame index (frame numbers and times) and the metadata files: no frame
is decoded, so the answer is instant even for stores of millions of frames.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Optional, Sequence

from ._cli import ToolError, add_common_arguments, positive_number, run
from ._info_facts import (
    STALL_FACTOR,
    StoreFacts,
    chunk_layout,
    frame_arrays,
    measured_fps,
    median_interval,
    recording_zone,
    zone_name,
)
from ._info_plot import timeline_figure, write_plot
from ._info_text import _row, format_text

__all__ = [
    "MAX_LISTED_GAPS",
    "STALL_FACTOR",
    "StoreFacts",
    "build_parser",
    "chunk_layout",
    "format_text",
    "frame_arrays",
    "main",
    "measured_fps",
    "median_interval",
    "recording_zone",
    "timeline_figure",
    "write_plot",
    "zone_name",
]

PROG = "imgstore-info"
#: gaps listed in the text output by default (the JSON lists them all)
MAX_LISTED_GAPS = 10

DESCRIPTION = """\
Show what an imgstore holds: class, format, image shape and dtype, frame and chunk counts, start,
end and duration in the recording's time zone, the measured frame rate, dropped frames (gaps in
the frame numbers), stalls (gaps in time: intervals between frame times well above the median,
which consecutive frame numbers do not show), frame numbers that repeat or go backwards, the user
metadata and a summary of the extra data. Only the frame index is read (no frame is decoded), so this is instant even on
very large stores."""

EPILOG = """\
examples:
  imgstore-info my-store
  imgstore-info my-store/metadata.yaml --json | jq .dropped.frames
  imgstore-info top-camera side-camera          # each camera, then the two as one recording
  imgstore-info my-store --stall-factor 3     # only intervals over 3x the median are stalls
  imgstore-info my-store --plot timeline.png

exit status: 0 success, 1 the store cannot be read, 2 bad usage."""


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more: {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "paths",
        nargs="+",
        metavar="PATH",
        help="the store: its directory or its metadata.yaml; several stores (cameras of one rig) are "
        "reported one by one, then as a group: their overlap in time, each camera's clock offset from "
        "the first's, dropped frames, and the steps at which a camera has no frame",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print one JSON document instead of text, for scripts: numbers as numbers, times as ISO "
        "strings in the recording's zone plus *_epoch seconds, every dropped-frame gap listed",
    )
    parser.add_argument(
        "--plot",
        metavar="FILE.png",
        help="also draw the timeline into FILE.png (replaced if it exists): frame interval in ms over "
        "time with dropped frames marked, chunk boundaries as dashed lines, and the numeric extra-data "
        "columns in a second panel; needs matplotlib (pip install 'imgstore-ng[plot]')",
    )
    parser.add_argument(
        "--max-gaps",
        type=_count,
        default=MAX_LISTED_GAPS,
        metavar="N",
        help=f"list at most N dropped-frame gaps in the text output (default {MAX_LISTED_GAPS}; "
        "the rest are counted; --json lists all)",
    )
    parser.add_argument(
        "--stall-factor",
        type=positive_number(),
        default=STALL_FACTOR,
        metavar="F",
        help=f"an interval between frame times longer than F median intervals is a stall, a gap in time "
        f"(default {STALL_FACTOR:g}: at least one frame time without a frame; a gap in the frame numbers allows "
        "for its missing frames); stalls are listed next to dropped frames, in --json and shaded in --plot",
    )
    parser.add_argument(
        "--repair",
        action="store_true",
        help="first finish a store whose writer died (killed, crashed, power cut): write the indexes of "
        "its unfinished chunks from their journals, close its extra data, remove its stale lock and the "
        "temporary files of killed writes, so that every program (upstream imgstore too) reads the "
        "recovered frames; a store whose metadata.yaml was lost gets a new one, rebuilt from its chunks "
        "(what had to be guessed is listed); refused while the writer is still alive; a store that needs "
        "nothing is left untouched",
    )
    parser.add_argument(
        "--seal",
        action="store_true",
        help="write the store's sealed index (every chunk's frame numbers and times in one file) before "
        "uploading it: a store at a URL then opens in three requests however many chunks it has; for "
        "stores recorded by upstream imgstore, Motif or older versions (this library's writer seals the "
        "stores it closes); refused for a store being written or with unfinished chunks (add --repair)",
    )
    add_common_arguments(parser, quiet=None)  # a report has nothing to leave out
    return parser


def _body(args: argparse.Namespace) -> int:
    if len(args.paths) > 1:
        return _group_body(args)
    from ..durability.repair import repair_store
    from ..store.factory import new_for_filename
    from ..store.sealing import seal_store

    path = args.paths[0]
    report = repair_store(path) if args.repair else None
    sealed = seal_store(path) if args.seal else None
    with new_for_filename(path) as store:
        facts = StoreFacts(store, args.stall_factor)
        doc = facts.as_dict()
        if report is not None:
            doc["repair"] = {
                "chunks_indexed": report.chunks_indexed,
                "frames_recovered": report.frames_recovered,
                "frames_lost": report.frames_lost,
                "extra_data_closed": report.extra_data_closed,
                "stale_journals_removed": report.stale_journals_removed,
                "lock_removed": report.lock_removed,
                "temporary_files_removed": report.temporary_files_removed,
                "metadata_rebuilt": report.metadata_rebuilt,
                "guessed": report.guessed,
                "sealed": report.sealed,
            }
            if not args.json:
                sys.stdout.write(_row("repair", str(report).split(": ", 1)[1]) + "\n")
        if sealed is not None:
            doc["seal"] = {"chunks": sealed.chunks, "frames": sealed.frames, "bytes": sealed.bytes}
            if not args.json:
                sys.stdout.write(_row("seal", str(sealed).split(": ", 1)[1]) + "\n")
        if args.json:
            sys.stdout.write(json.dumps(doc, indent=2, ensure_ascii=False, allow_nan=False) + "\n")
        else:
            sys.stdout.write(format_text(facts, doc, args.max_gaps) + "\n")
        if args.plot:
            write_plot(args.plot, facts)
            if not args.json:
                sys.stdout.write(_row("timeline plot", args.plot) + "\n")
    return 0


def _group_body(args: argparse.Namespace) -> int:
    """Several stores: each one's report, then the group's."""
    from ..store.factory import new_for_filename
    from ._info_group import format_group, group_facts

    if args.plot or args.repair or args.seal:
        raise ToolError("--plot, --repair and --seal take one store")
    stores = []
    try:
        for path in args.paths:
            stores.append(new_for_filename(path))
        facts = [StoreFacts(store, args.stall_factor) for store in stores]
        docs = [f.as_dict() for f in facts]
        group = group_facts(stores, docs)
    finally:
        for store in stores:
            store.close()
    if args.json:
        doc = {"stores": docs, "group": group}
        sys.stdout.write(json.dumps(doc, indent=2, ensure_ascii=False, allow_nan=False) + "\n")
        return 0
    for f, doc in zip(facts, docs):
        sys.stdout.write(format_text(f, doc, args.max_gaps) + "\n\n")
    sys.stdout.write(format_group(group) + "\n")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of ``imgstore-info``."""
    return run(PROG, _body, build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
