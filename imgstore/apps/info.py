"""``imgstore-info PATH``: what a store holds, its timeline, dropped frames and metadata.

Everything comes from the frame index (frame numbers and times) and the metadata files: no frame
is decoded, so the answer is instant even for stores of millions of frames.
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import math
import os
import sys
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ._cli import ToolError, add_common_arguments, positive_number, run

PROG = "imgstore-info"
#: gaps listed in the text output by default (the JSON lists them all)
MAX_LISTED_GAPS = 10
#: an interval between frame times longer than this many median intervals is a gap in time (a stall)
STALL_FACTOR = 1.5
#: frame numbers and times a Motif or imgstore recording bookkeeps in its extra data, not measurements
_BOOKKEEPING_COLUMNS = ("frame_number", "frame_time", "frame_index", "_frame_number_before_reindex")

log = logging.getLogger(__name__)

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
  imgstore-info my-store --stall-factor 3     # only intervals over 3x the median are stalls
  imgstore-info my-store --plot timeline.png

exit status: 0 success, 1 the store cannot be read, 2 bad usage."""


# ----------------------------------------------------------------------------------------------
# facts from the frame index (shared with imgstore-export)
# ----------------------------------------------------------------------------------------------
def frame_arrays(store: Any) -> Tuple[np.ndarray, np.ndarray]:
    """``(frame_number, frame_time)`` of every frame in store order, straight from the index arrays."""
    table = store.view.table  # the index's own arrays: no list conversion, no decoding
    return np.asarray(table.frame_number), np.asarray(table.frame_time, dtype=np.float64)


def chunk_layout(store: Any) -> List[Tuple[int, int, int]]:
    """``(chunk number, frame index of its first frame, frames)`` of every non-empty chunk."""
    table = store.view.table
    starts = np.asarray(table.chunk_starts)
    return [(int(c), int(starts[i]), int(starts[i + 1] - starts[i])) for i, c in enumerate(table.chunk_ids)]


def median_interval(times: np.ndarray) -> Optional[float]:
    """The median of the intervals between consecutive frame times (None when it is not positive)."""
    if len(times) < 2:
        return None
    steps = np.diff(times)
    steps = steps[np.isfinite(steps)]
    if not len(steps):
        return None
    median = float(np.median(steps))
    return median if median > 0 else None


def measured_fps(times: np.ndarray) -> Optional[float]:
    """Frames per second from the median frame interval (None when it cannot be measured)."""
    interval = median_interval(times)
    return None if interval is None else 1.0 / interval


def recording_zone(store: Any) -> Any:
    """The recording's time zone (the Motif user-metadata ``timezone``, else the store's)."""
    from ..util import motif_get_recording_timezone

    return motif_get_recording_timezone(store)


def zone_name(tz: Any) -> str:
    return getattr(tz, "key", None) or str(tz)


def _number(value: Any) -> Any:
    """A frame number as a Python int when whole, else a float."""
    value = value.item() if isinstance(value, np.generic) else value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _finite(value: Any) -> Optional[float]:
    value = float(value)
    return value if math.isfinite(value) else None


def _rounded(value: Optional[float], decimals: int) -> Optional[float]:
    return None if value is None else round(value, decimals)


def _json_safe(value: Any) -> Any:
    """Plain JSON values: numpy scalars and arrays unwrapped, dates as ISO strings, NaN/inf as null."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return _json_safe(value.tolist())
    if isinstance(value, np.generic):
        return _json_safe(value.item())
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if value is None or isinstance(value, (bool, int, str)):
        return value
    return str(value)


class StoreFacts:
    """Everything ``imgstore-info`` reports about one store, computed from its index.

    Two kinds of gap: *dropped* frames are gaps in the frame numbers; *stalls* are gaps in time,
    intervals between frame times longer than ``stall_factor`` median intervals beyond what the
    missing frame numbers account for. A camera that stalls without numbering the frames it
    missed (or a video source, numbered by position) shows only the second.
    """

    def __init__(self, store: Any, stall_factor: float = STALL_FACTOR) -> None:
        self.store = store
        self.stall_factor = stall_factor
        self.numbers, self.times = frame_arrays(store)
        self.chunks = chunk_layout(store)
        self.zone = recording_zone(store)
        self.extra, self.extra_error = _read_extra_data(store)
        steps = np.diff(self.numbers)
        self.gap_positions = np.flatnonzero(steps > 1)  # the gap is after this frame index
        self.gap_missing = steps[self.gap_positions] - 1
        self.repeated = int(np.count_nonzero(steps == 0))
        self.backwards = int(np.count_nonzero(steps < 0))
        odd = np.flatnonzero(steps <= 0)
        self.first_out_of_order = int(odd[0]) + 1 if len(odd) else None
        # strictly increasing numbers cannot repeat; otherwise count equal neighbours once sorted
        self.duplicate_numbers = int(np.count_nonzero(np.diff(np.sort(self.numbers)) == 0)) if len(odd) else 0
        self.median_interval = median_interval(self.times)
        self.stall_positions = self._stalls()

    def _stalls(self) -> np.ndarray:
        """Frame indexes after which the next frame came more than ``stall_factor`` median intervals
        later than the frame numbers account for (a gap of n numbers accounts for n + 1 intervals)."""
        if self.median_interval is None:
            return np.zeros(0, dtype=np.int64)
        with np.errstate(invalid="ignore"):
            return np.flatnonzero(np.diff(self.times) > self.stall_factor * self.median_interval * self._steps())

    def _steps(self) -> np.ndarray:
        """Per interval, the frame times its frame numbers account for: the number step, at least 1."""
        steps = np.diff(self.numbers).astype(np.float64)
        return np.where(steps > 1, steps, 1.0)

    @property
    def stall_threshold(self) -> Optional[float]:
        """The shortest interval (s) that counts as a stall (None when the median is unknown)."""
        return None if self.median_interval is None else self.stall_factor * self.median_interval

    # -- time helpers ---------------------------------------------------------------------------
    def datetime_of(self, frame_time: float) -> Optional[datetime.datetime]:
        if not math.isfinite(frame_time):
            return None
        return self.store.convert_frame_time_to_datetime(frame_time, tz=self.zone)

    @property
    def start_time(self) -> float:
        return float(self.store.frame_time_min)

    @property
    def end_time(self) -> float:
        return float(self.store.frame_time_max)

    @property
    def dropped_frames(self) -> int:
        return _number(self.gap_missing.sum()) if len(self.gap_missing) else 0

    def gap(self, k: int) -> Dict[str, Any]:
        """The ``k``-th gap: the frame before it, how many numbers are missing, when."""
        pos = int(self.gap_positions[k])
        after = _number(self.numbers[pos])
        missing = _number(self.gap_missing[k])
        when = self.datetime_of(float(self.times[pos]))
        return {
            "after_frame": after,
            "after_index": pos,
            "first_missing": _number(after + 1),
            "last_missing": _number(after + missing),
            "missing": missing,
            "time": when.isoformat() if when else None,
            "time_epoch": _finite(self.times[pos]),
            "gap_ms": _rounded(_finite((self.times[pos + 1] - self.times[pos]) * 1000.0), 3),
        }

    def stall(self, k: int) -> Dict[str, Any]:
        """The ``k``-th stall: the frame before it, when, how long, and about how many frame times it spans."""
        pos = int(self.stall_positions[k])
        when = self.datetime_of(float(self.times[pos]))
        interval = float(self.times[pos + 1] - self.times[pos])
        return {
            "after_frame": _number(self.numbers[pos]),
            "after_index": pos,
            "next_frame": _number(self.numbers[pos + 1]),
            "time": when.isoformat() if when else None,
            "time_epoch": _finite(self.times[pos]),
            "gap_ms": _rounded(interval * 1000.0, 3),
            # frame times in the stall beyond those its frame numbers account for
            "frame_times_missed": max(0, round(interval / self.median_interval) - int(self._steps()[pos])),
        }

    # -- the whole report -----------------------------------------------------------------------
    def as_dict(self) -> Dict[str, Any]:
        store = self.store
        smd = store.view.metadata
        n = len(self.numbers)
        created_utc, _ = store.created
        created = created_utc.astimezone(self.zone)
        start, end = self.datetime_of(self.start_time), self.datetime_of(self.end_time)
        interval = median_interval(self.times)
        finite_steps = np.diff(self.times)
        finite_steps = finite_steps[np.isfinite(finite_steps)]
        return {
            "path": store.filename,
            "class": type(store).__name__,
            "format": smd.format,
            "encoding": smd.encoding or None,
            "image_shape": list(store.image_shape),
            "dtype": str(smd.imgdtype),
            "lossless": bool(store.lossless),
            "uuid": store.uuid,
            "frames": n,
            "frame_number_first": _number(self.numbers[0]) if n else None,
            "frame_number_last": _number(self.numbers[-1]) if n else None,
            "frame_number_min": _number(self.numbers.min()) if n else None,
            "frame_number_max": _number(self.numbers.max()) if n else None,
            "chunks": len(self.chunks),
            "chunk_list": [{"chunk": c, "first_index": i, "frames": k} for c, i, k in self.chunks],
            "timezone": zone_name(self.zone),
            "created": created.isoformat(),
            "created_epoch": created.timestamp(),
            "start": start.isoformat() if start else None,
            "start_epoch": _finite(self.start_time),
            "end": end.isoformat() if end else None,
            "end_epoch": _finite(self.end_time),
            "duration_s": float(store.duration),
            "fps": _rounded(None if interval is None else 1.0 / interval, 3),
            "frame_interval_ms": {
                "median": _rounded(None if interval is None else interval * 1000.0, 3),
                "min": _rounded(float(finite_steps.min()) * 1000.0, 3) if len(finite_steps) else None,
                "max": _rounded(float(finite_steps.max()) * 1000.0, 3) if len(finite_steps) else None,
            },
            "dropped": {
                "frames": self.dropped_frames,
                "gaps": len(self.gap_positions),
                "ranges": [self.gap(k) for k in range(len(self.gap_positions))],
            },
            "stalls": {
                "factor": self.stall_factor,
                "threshold_ms": _rounded(None if self.stall_threshold is None else self.stall_threshold * 1000.0, 3),
                "count": len(self.stall_positions),
                "ranges": [self.stall(k) for k in range(len(self.stall_positions))],
            },
            "out_of_order": {
                "repeated": self.repeated,
                "backwards": self.backwards,
                "first_index": self.first_out_of_order,
                "duplicate_numbers": self.duplicate_numbers,
            },
            "user_metadata": _json_safe(store.user_metadata),
            "extra_data": self.extra_summary(),
        }

    def extra_summary(self) -> Optional[Dict[str, Any]]:
        if self.extra_error is not None:
            return {"error": self.extra_error}
        if self.extra is None:
            return None
        return {"columns": [str(c) for c in self.extra.columns], "rows": len(self.extra)}


def _read_extra_data(store: Any) -> Tuple[Any, Optional[str]]:
    """``(DataFrame or None, error message or None)``: unreadable extra data do not hide the rest."""
    from ..errors import ImgStoreError

    try:
        return store.get_extra_data(), None
    except (ImgStoreError, ImportError, OSError, ValueError) as exc:
        log.warning("%s: extra data unreadable: %s", store.filename, exc)
        return None, str(exc)


# ----------------------------------------------------------------------------------------------
# text output
# ----------------------------------------------------------------------------------------------
def _when(dt: Optional[datetime.datetime]) -> str:
    return dt.isoformat(sep=" ", timespec="milliseconds") if dt else "unknown"


def _duration_text(seconds: float) -> str:
    whole = datetime.timedelta(seconds=round(seconds))
    return f"{seconds:.3f} s ({whole})" if seconds >= 60 else f"{seconds:.3f} s"


def _chunks_text(chunks: List[Tuple[int, int, int]]) -> str:
    if not chunks:
        return "0"
    sizes = [k for _, _, k in chunks]
    if len(sizes) == 1:
        return f"1 ({sizes[0]} {'frame' if sizes[0] == 1 else 'frames'})"
    if len(set(sizes[:-1])) == 1:
        tail = "" if sizes[-1] == sizes[0] else f", last {sizes[-1]}"
        return f"{len(sizes)} ({sizes[0]} frames each{tail})"
    listed = ", ".join(str(k) for k in sizes[:10])
    more = f", ... ({len(sizes) - 10} more)" if len(sizes) > 10 else ""
    return f"{len(sizes)} ({listed}{more} frames)"


def _yaml_lines(data: Dict[str, Any]) -> List[str]:
    import yaml

    try:
        text = yaml.safe_dump(data, default_flow_style=False, sort_keys=True, allow_unicode=True)
    except yaml.YAMLError:
        text = "".join(f"{k}: {v!r}\n" for k, v in sorted(data.items(), key=lambda kv: str(kv[0])))
    return text.rstrip("\n").splitlines()


def format_text(facts: StoreFacts, doc: Dict[str, Any], max_gaps: int) -> str:
    """The human-readable report."""
    shape = doc["image_shape"]
    kind = "colour" if len(shape) == 3 and shape[2] == 3 else "grey" if len(shape) == 2 else f"{shape[-1]} channels"
    rows: List[Tuple[str, str]] = [
        ("store", doc["path"]),
        ("class", doc["class"]),
        ("format", doc["format"] + (f" (encoding {doc['encoding']})" if doc["encoding"] else "")),
        ("image shape", f"{tuple(shape)} {kind}"),
        ("dtype", doc["dtype"]),
    ]
    n = doc["frames"]
    numbers = f" (numbers {doc['frame_number_first']} .. {doc['frame_number_last']}" if n else ""
    ends = (doc["frame_number_first"], doc["frame_number_last"])
    if n and (doc["frame_number_min"], doc["frame_number_max"]) != ends:
        numbers += f", lowest {doc['frame_number_min']}, highest {doc['frame_number_max']}"
    numbers += ")" if n else ""
    rows.append(("frames", f"{n}{numbers}"))
    rows.append(("chunks", _chunks_text(facts.chunks)))
    rows.append(("time zone", doc["timezone"]))
    rows.append(("start", _when(facts.datetime_of(facts.start_time))))
    rows.append(("end", _when(facts.datetime_of(facts.end_time))))
    rows.append(("duration", _duration_text(doc["duration_s"])))
    if doc["fps"] is not None:
        median_ms = doc["frame_interval_ms"]["median"]
        rows.append(("frame rate", f"{doc['fps']:.3f} fps (median interval {median_ms:.3f} ms)"))
    else:
        rows.append(("frame rate", "unknown (fewer than two timed frames)"))

    dropped = doc["dropped"]
    lines = _aligned(rows)
    if not dropped["gaps"]:
        lines.append(_row("dropped", "none"))
    else:
        frames_word = "frame" if dropped["frames"] == 1 else "frames"
        gaps_word = "gap" if dropped["gaps"] == 1 else "gaps"
        lines.append(_row("dropped", f"{dropped['frames']} {frames_word} in {dropped['gaps']} {gaps_word}"))
        for gap in dropped["ranges"][:max_gaps]:
            at = _at(facts, gap["time_epoch"])
            lines.append(_row("", f"after frame {gap['after_frame']} (at {at}): {gap['missing']} missing"))
        rest = dropped["gaps"] - max_gaps
        if rest > 0:
            lines.append(_row("", f"... and {rest} more {'gap' if rest == 1 else 'gaps'} (--json lists all)"))
    lines.extend(_stall_lines(facts, doc["stalls"], max_gaps))

    order = doc["out_of_order"]
    if order["repeated"] or order["backwards"]:
        text = (
            f"{order['repeated']} repeated, {order['backwards']} backwards "
            f"(first at frame index {order['first_index']})"
        )
    else:
        text = "none (frame numbers strictly increase)"
    lines.append(_row("out of order", text))
    if order["duplicate_numbers"]:
        dup = order["duplicate_numbers"]
        lines.append(_row("", f"{dup} {'frame reuses' if dup == 1 else 'frames reuse'} a frame number seen before"))

    md = facts.store.user_metadata
    if md:
        lines.append("user metadata:")
        lines.extend("  " + line for line in _yaml_lines(md))
    else:
        lines.append(_row("user metadata", "none"))

    extra = doc["extra_data"]
    if extra is None:
        lines.append(_row("extra data", "none"))
    elif "error" in extra:
        lines.append(_row("extra data", f"unreadable: {extra['error']}"))
    else:
        rows_word = "row" if extra["rows"] == 1 else "rows"
        lines.append(_row("extra data", f"{extra['rows']} {rows_word}; columns: {', '.join(extra['columns'])}"))
    return "\n".join(lines)


def _at(facts: StoreFacts, epoch: Optional[float]) -> str:
    """``HH:MM:SS.mmm, +S.SSS s``: a frame time of day and seconds since the first frame."""
    when = facts.datetime_of(epoch) if epoch is not None else None
    if when is None:
        return "unknown time"
    return f"{when.time().isoformat(timespec='milliseconds')}, +{epoch - facts.start_time:.3f} s"


def _stall_lines(facts: StoreFacts, stalls: Dict[str, Any], max_gaps: int) -> List[str]:
    """The ``stalls:`` rows: intervals between frame times far above the median."""
    if stalls["threshold_ms"] is None:
        return [_row("stalls", "unknown (fewer than two timed frames)")]
    rule = f"intervals over {stalls['factor']:g}x the median ({stalls['threshold_ms']:.3f} ms)"
    if not stalls["count"]:
        return [_row("stalls", f"none ({rule})")]
    word = "stall" if stalls["count"] == 1 else "stalls"
    lines = [_row("stalls", f"{stalls['count']} {word}: {rule}")]
    for stall in stalls["ranges"][:max_gaps]:
        missed = stall["frame_times_missed"]
        lines.append(
            _row(
                "",
                f"after frame {stall['after_frame']} (at {_at(facts, stall['time_epoch'])}): "
                f"{stall['gap_ms']:.3f} ms, ~{missed} frame {'time' if missed == 1 else 'times'} without a frame",
            )
        )
    rest = stalls["count"] - max_gaps
    if rest > 0:
        lines.append(_row("", f"... and {rest} more {'stall' if rest == 1 else 'stalls'} (--json lists all)"))
    return lines


_LABEL_WIDTH = 15


def _row(label: str, value: str) -> str:
    return f"{label + ':' if label else '':<{_LABEL_WIDTH}}{value}"


def _aligned(rows: List[Tuple[str, str]]) -> List[str]:
    return [_row(label, value) for label, value in rows]


# ----------------------------------------------------------------------------------------------
# the timeline plot
# ----------------------------------------------------------------------------------------------
def write_plot(path: str, facts: StoreFacts) -> None:
    """Draw :func:`timeline_figure` into an image file (PNG unless the extension says otherwise)."""
    timeline_figure(facts, path).savefig(path)
    log.info("timeline plot written to %s", path)


def timeline_figure(facts: StoreFacts, path: str = "") -> Any:
    """Frame intervals over time (each held over its own span, so a stall is one long flat step,
    not a ramp), stalls shaded, dropped and out-of-order frames marked, chunk boundaries, and the
    numeric extra-data columns: a matplotlib ``Figure``."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise ToolError(f"--plot {path}: matplotlib is not installed: pip install 'imgstore-ng[plot]'") from None

    times = facts.times
    t0 = facts.start_time if math.isfinite(facts.start_time) else 0.0
    x = times - t0
    numeric = _numeric_extra_columns(facts.extra)
    fig = Figure(figsize=(11, 6.5 if numeric else 4.5), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(2 if numeric else 1, 1, sharex=True, squeeze=False)[:, 0]
    ax = axes[0]

    if len(times) > 1:
        intervals = np.diff(times) * 1000.0
        # interval i spans x[i]..x[i+1]: drawn flat over that span (steps), the frame that ended it as a point
        held = np.append(intervals, intervals[-1])
        ax.plot(x, held, drawstyle="steps-post", lw=0.7, color="tab:blue", label="frame interval")
        ax.plot(x[1:], intervals, ".", ms=2, color="tab:blue")
        stalls = facts.stall_positions
        if len(stalls):
            spans = [(x[p], x[p + 1] - x[p]) for p in stalls if math.isfinite(x[p]) and math.isfinite(x[p + 1])]
            ax.broken_barh(
                spans,
                (0, 1),
                transform=ax.get_xaxis_transform(),
                color="tab:red",
                alpha=0.18,
                label=f"stalls: {len(stalls)} over {facts.stall_factor:g}x the median interval",
            )
        if len(facts.gap_positions):
            after = facts.gap_positions + 1
            ax.plot(
                x[after],
                intervals[facts.gap_positions],
                "v",
                color="tab:red",
                ms=7,
                label=f"dropped: {facts.dropped_frames} frames in {len(facts.gap_positions)} gaps",
            )
        odd = np.flatnonzero(np.diff(facts.numbers) <= 0)
        if len(odd):
            ax.plot(
                x[odd + 1],
                intervals[odd],
                "x",
                color="tab:orange",
                ms=7,
                label=f"frame number repeats/goes back ({len(odd)})",
            )
    else:
        ax.text(0.5, 0.5, "fewer than two frames: no intervals", transform=ax.transAxes, ha="center")
    boundaries = [x[i] for _, i, _ in facts.chunks[1:] if math.isfinite(x[i])]
    if boundaries:
        ax.vlines(
            boundaries,
            0,
            1,
            transform=ax.get_xaxis_transform(),
            colors="0.5",
            linestyles="--",
            lw=0.8,
            label=f"chunk boundary ({len(boundaries)})",
        )
    ax.set_ylabel("frame interval (ms)")
    top = ax.get_ylim()[1]
    ax.set_ylim(0, top * 1.3 if top > 0 else 1)  # from zero, with room for the legend
    ax.grid(True, alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper right", fontsize="small")
    fps = median_interval(times)
    rate = f"{1.0 / fps:.3f} fps" if fps else "fps unknown"
    ax.set_title(
        f"{os.path.basename(os.path.normpath(facts.store.filename))}: "
        f"{len(times)} frames, {rate}, {facts.dropped_frames} dropped, {len(facts.stall_positions)} stalls"
    )

    if numeric:
        extra = facts.extra
        ex = _extra_x(facts, extra) - t0
        for column in numeric:
            axes[1].plot(ex, extra[column].to_numpy(dtype=np.float64), ".-", lw=0.8, ms=3, label=str(column))
        axes[1].set_ylabel("extra data")
        axes[1].grid(True, alpha=0.3)
        axes[1].legend(loc="upper right", fontsize="small")
    start = facts.datetime_of(t0) if math.isfinite(facts.start_time) else None
    axes[-1].set_xlabel(f"seconds since {_when(start)} ({zone_name(facts.zone)})" if start else "frame time (s)")
    return fig


def _numeric_extra_columns(extra: Any) -> List[Any]:
    if extra is None or extra.empty:
        return []
    columns = []
    for column in extra.columns:
        series = extra[column]
        if column in _BOOKKEEPING_COLUMNS or series.dtype.kind not in "iuf":
            continue
        if series.notna().any():
            columns.append(column)
    return columns


def _extra_x(facts: StoreFacts, extra: Any) -> np.ndarray:
    """Frame times of the extra-data rows (their own, else their frame's from the index)."""
    if "frame_time" in extra.columns:
        return extra["frame_time"].to_numpy(dtype=np.float64)
    if "frame_index" in extra.columns:
        idx = extra["frame_index"].to_numpy()
        ok = (idx >= 0) & (idx < len(facts.times))
        out = np.full(len(idx), np.nan)
        out[ok] = facts.times[idx[ok].astype(np.int64)]
        return out
    return np.full(len(extra), np.nan)


# ----------------------------------------------------------------------------------------------
# command line
# ----------------------------------------------------------------------------------------------
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
    parser.add_argument("path", metavar="PATH", help="the store: its directory or its metadata.yaml")
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
    add_common_arguments(parser, quiet=None)  # a report has nothing to leave out
    return parser


def _body(args: argparse.Namespace) -> int:
    from .. import new_for_filename, repair_store

    report = repair_store(args.path) if args.repair else None
    with new_for_filename(args.path) as store:
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
            }
            if not args.json:
                sys.stdout.write(_row("repair", str(report).split(": ", 1)[1]) + "\n")
        if args.json:
            sys.stdout.write(json.dumps(doc, indent=2, ensure_ascii=False, allow_nan=False) + "\n")
        else:
            sys.stdout.write(format_text(facts, doc, args.max_gaps) + "\n")
        if args.plot:
            write_plot(args.plot, facts)
            if not args.json:
                sys.stdout.write(_row("timeline plot", args.plot) + "\n")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of ``imgstore-info``."""
    return run(PROG, _body, build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
