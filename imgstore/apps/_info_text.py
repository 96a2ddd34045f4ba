"""The text report of ``imgstore-info``: the facts of a store as aligned, human-readable rows.

Pure formatting of :class:`StoreFacts` and its ``as_dict()`` document; nothing here reads the store.
"""

from __future__ import annotations

import datetime
from typing import Any, Dict, List, Optional, Tuple

from ._info_facts import StoreFacts


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
