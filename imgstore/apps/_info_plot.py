"""The timeline plot of ``imgstore-info --plot``: frame intervals, gaps, stalls and extra data over time.

Apart from the text report because it needs matplotlib (an optional dependency, imported on use).
"""

from __future__ import annotations

import logging
import math
import os
from typing import Any, List

import numpy as np

from ._cli import ToolError
from ._info_facts import StoreFacts, median_interval, zone_name
from ._info_text import _when

#: frame numbers and times a Motif or imgstore recording bookkeeps in its extra data, not measurements
_BOOKKEEPING_COLUMNS = ("frame_number", "frame_time", "frame_index", "_frame_number_before_reindex")

log = logging.getLogger(__name__)


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
