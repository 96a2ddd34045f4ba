"""Which frames a tool takes: the range options of ``imgstore-export`` and ``imgstore-edit trim``.

``--start/--end`` by camera frame number, ``--start-index/--end-index`` by position in the store,
``--start-time/--end-time`` by frame time (epoch seconds or ISO datetimes, naive ones in the
recording's zone), all bounds inclusive and combined, then ``--every N``.
"""

from __future__ import annotations

import argparse
import datetime
import math
import re
from typing import Any, Callable

import numpy as np

from ._cli import whole_number


def add_selection_arguments(parser: argparse.ArgumentParser, verb: str, every: bool = True) -> None:
    """The range options, in their own group; ``verb`` is what the tool does with the frames."""
    rng = parser.add_argument_group("range selection (inclusive bounds; combined options must all hold)")
    rng.add_argument("--start", type=whole_number(), metavar="N", help=f"first camera frame number to {verb}")
    rng.add_argument("--end", type=whole_number(), metavar="N", help=f"last camera frame number to {verb}")
    rng.add_argument(
        "--start-index", type=whole_number(0), metavar="I", help="first store position (frame_index, from 0)"
    )
    rng.add_argument("--end-index", type=whole_number(0), metavar="I", help="last store position (frame_index)")
    rng.add_argument(
        "--start-time",
        type=parse_time,
        metavar="T",
        help="earliest frame time: epoch seconds (1700000000.5) or an ISO datetime (2023-11-14T22:13:20, "
        "in the recording's time zone unless it has an offset or Z)",
    )
    rng.add_argument("--end-time", type=parse_time, metavar="T", help="latest frame time (as --start-time)")
    if every:
        rng.add_argument(
            "--every", type=whole_number(1), default=1, metavar="N", help="keep every N-th selected frame (default 1)"
        )


def parse_time(text: str) -> Any:
    """Epoch seconds (a float) or an ISO datetime (naive: in the recording's zone)."""
    try:
        value = float(text)
    except ValueError:
        pass
    else:
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"not a finite time: {text!r}")
        return value
    iso = text.strip()
    if iso[-1:] in ("Z", "z"):
        iso = iso[:-1] + "+00:00"
    # any number of second decimals (Python < 3.11 reads only 3 or 6)
    iso = re.sub(r"(:\d\d)[.,](\d+)", lambda m: f"{m.group(1)}.{(m.group(2) + '00000')[:6]}", iso, count=1)
    try:
        return datetime.datetime.fromisoformat(iso)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not epoch seconds or an ISO datetime (e.g. 2023-11-14T22:13:20.5+01:00): {text!r}"
        ) from None


def to_epoch(value: Any, zone: Any) -> float:
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=zone)
        return value.timestamp()
    return float(value)


def select_frames(
    numbers: np.ndarray, times: np.ndarray, args: argparse.Namespace, zone: Any, fail: Callable[[str], Any]
) -> np.ndarray:
    """Frame indexes to export, in store order."""
    n = len(numbers)
    keep = np.ones(n, dtype=bool)
    positions = np.arange(n)
    bounds = (
        ("--start", "--end", args.start, args.end, numbers, lambda v: v),
        ("--start-index", "--end-index", args.start_index, args.end_index, positions, lambda v: v),
        ("--start-time", "--end-time", args.start_time, args.end_time, times, lambda v: to_epoch(v, zone)),
    )
    for low_name, high_name, low, high, values, convert in bounds:
        low = None if low is None else convert(low)
        high = None if high is None else convert(high)
        if low is not None and high is not None and low > high:
            fail(f"{low_name} {low} is after {high_name} {high}")
        with np.errstate(invalid="ignore"):  # NaN frame times are never in a time range
            if low is not None:
                keep &= values >= low
            if high is not None:
                keep &= values <= high
    return np.flatnonzero(keep)[:: getattr(args, "every", 1)]
