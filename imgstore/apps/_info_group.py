"""``imgstore-info A B ...``: what several cameras recorded together (their overlap, clock offsets, gaps).

The cameras are matched on the first one's clock with ``MultiStore``'s defaults (the frame nearest
in time, within half the first camera's median frame interval), every step at once from the frame
indexes: no frame is decoded.
"""

from __future__ import annotations

import datetime
import math
from typing import Any, Dict, List, Sequence

import numpy as np

from ..multi import MultiStore
from ._info_text import _row


def group_facts(stores: Sequence[Any], docs: Sequence[Dict[str, Any]]) -> Dict[str, Any]:
    """The group section of the report: ``docs`` are the cameras' own reports (for their drops)."""
    multi = MultiStore(stores)
    zone = stores[0].created[1]
    ranges = [table.time_range() for table in (s.view.table for s in stores)]
    start, end = max(lo for lo, _ in ranges), min(hi for _, hi in ranges)
    positions = multi.match_all()
    reference = np.asarray(stores[multi.master].view.table.frame_time, dtype=np.float64)
    cameras: List[Dict[str, Any]] = []
    any_missing = np.zeros(len(multi), bool)
    for store, name, doc, (first, last) in zip(stores, multi.names, docs, ranges):
        pos = positions[name]
        matched = pos >= 0
        any_missing |= ~matched
        offsets = np.asarray(store.view.table.frame_time, dtype=np.float64)[pos[matched]] - reference[matched]
        offsets = offsets[np.isfinite(offsets)]  # frames without a time have no offset
        cameras.append({
            "camera": name,
            "path": doc["path"],
            "start": _iso(first, zone),
            "end": _iso(last, zone),
            "dropped_frames": doc["dropped"]["frames"],
            "steps_missing": int(np.count_nonzero(~matched)),
            "clock_offset_median_ms": float(np.median(offsets) * 1000) if len(offsets) else None,
            "clock_offset_max_abs_ms": float(np.max(np.abs(offsets)) * 1000) if len(offsets) else None,
        })  # fmt: skip
    return {
        "reference": multi.names[multi.master],
        "tolerance_s": multi.tolerance if math.isfinite(multi.tolerance) else None,
        "steps": len(multi),
        "steps_with_a_camera_missing": int(np.count_nonzero(any_missing)),
        "overlap_start": _iso(start, zone),
        "overlap_end": _iso(end, zone),
        "overlap_s": max(0.0, end - start),
        "cameras": cameras,
    }


def format_group(group: Dict[str, Any]) -> str:
    """The group section as text, after each camera's own report."""
    tolerance = group["tolerance_s"]
    within = "any distance" if tolerance is None else f"tolerance {tolerance * 1000:.1f} ms"
    lines = [
        _row("group", f"{len(group['cameras'])} cameras on {group['reference']}'s clock ({within})"),
        _row("overlap", f"{group['overlap_start']} to {group['overlap_end']} ({group['overlap_s']:.3f} s)"),
        _row("steps", f"{group['steps']}, {group['steps_with_a_camera_missing']} with a camera missing"),
    ]  # fmt: skip
    for cam in group["cameras"]:
        offset = cam["clock_offset_median_ms"]
        if offset is None:
            clock = "no frame matched"
        else:
            clock = f"clock offset {offset:+.1f} ms (at most {cam['clock_offset_max_abs_ms']:.1f} ms)"
        what = (
            f"{cam['camera']}: {clock}; {cam['dropped_frames']} dropped frames; missing at {cam['steps_missing']} steps"
        )
        lines.append(_row("", what))
    return "\n".join(lines)


def _iso(t: float, zone: Any) -> str:
    return datetime.datetime.fromtimestamp(t, zone).isoformat(timespec="milliseconds")
