"""The facts ``imgstore-info`` reports about a store, computed from its frame index and metadata.

Kept apart from the report's text, plot and command line so that ``imgstore-export`` can share the
index facts (frame arrays, measured frame rate, recording time zone) without the rest.
"""

from __future__ import annotations

import datetime
import logging
import math
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

#: an interval between frame times longer than this many median intervals is a gap in time (a stall)
STALL_FACTOR = 1.5

log = logging.getLogger(__name__)


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
