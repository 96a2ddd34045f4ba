"""The running statistics of a store being written: what it reports without reading its chunks back."""

from __future__ import annotations

import math
from typing import Any, Sequence


class RunningStats:
    """What a store being written reports without reading its chunks back.

    The number of frames, their number range, the first and last time, and the last frame's
    number and time (upstream's ``frame_number``/``frame_time`` while writing).
    """

    def __init__(self) -> None:
        self.count = 0
        self.number_min = self.number_max = math.nan
        self.time_first = self.time_last = math.nan
        self.last_number: Any = math.nan
        self.last_time: float = math.nan

    def add(self, numbers: Sequence[Any], times: Sequence[float]) -> None:
        """Take frames just written (their numbers and times, in order)."""
        low, high = min(numbers), max(numbers)
        if not low >= self.number_min:  # (NaN before the first frame: comparisons are False)
            self.number_min = float(low)
        if not high <= self.number_max:
            self.number_max = float(high)
        if self.count == 0:
            self.time_first = float(times[0])
        self.time_last = float(times[-1])
        self.last_number = numbers[-1]
        self.last_time = float(times[-1])
        self.count += len(numbers)
