"""The frame index as data: numpy arrays answering lookups by frame index, number and time in O(log n)."""

from __future__ import annotations

import math
import numbers
import operator
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from .errors import FrameArgumentError, FrameNotFoundError

NOT_FOUND = -1
_INT64_MAX = np.iinfo(np.int64).max
_INT64_MIN = np.iinfo(np.int64).min


def as_frame_number(value: object) -> float | int:
    """A Python int (or float) from any integer-like value: int, numpy/pandas scalars, integral floats."""
    try:
        return operator.index(value)
    except TypeError:
        pass
    if isinstance(value, numbers.Real):
        number = float(value)
        if number.is_integer():
            return int(number)
        return number
    raise FrameArgumentError(f"frame number must be an integer, got {value!r} ({type(value).__name__})")


def as_frame_index(value: object) -> int:
    """A non-negative Python int position from any integer-like value."""
    number = as_frame_number(value)
    if not isinstance(number, int):
        raise FrameNotFoundError(f"frame_index must be a whole number, got {value!r}")
    if number < 0:
        raise FrameNotFoundError(f"seeking to negative index not supported (frame_index {number})")
    return number


def as_frame_time(value: object) -> float:
    """A float time from any real value (NaN allowed: a frame may have no time)."""
    if not isinstance(value, numbers.Real):
        raise FrameArgumentError(f"frame time must be a number, got {value!r} ({type(value).__name__})")
    return float(value)


def as_query_time(value: object) -> float:
    """A time to look up; NaN is refused (it is nearest to nothing)."""
    time = as_frame_time(value)
    if math.isnan(time):
        raise FrameNotFoundError("frame_time NaN matches no frame")
    return time


class _SortedColumn:
    """One column sorted once (stable, so duplicates keep store order) for binary search."""

    def __init__(self, values: np.ndarray) -> None:
        self.order = np.argsort(values, kind="stable")
        self.sorted = values[self.order]
        self._integral = values.dtype.kind in "iu"
        # NaN (a frame without a time) sorts last and is nearest to nothing
        self._valid = len(values) if self._integral else len(values) - int(np.count_nonzero(np.isnan(values)))

    def _first_at_least(self, value: float) -> int:
        """Position of the first sorted value >= ``value``.

        A float query on an integer column is rounded up first: comparing it as a float would
        make numpy convert the whole column on every lookup.
        """
        if self._integral and not isinstance(value, int):
            if math.isnan(value):  # nothing is >= NaN
                return len(self.sorted)
            value = _INT64_MAX if value > _INT64_MAX else _INT64_MIN if value < _INT64_MIN else math.ceil(value)
        return int(np.searchsorted(self.sorted, value, side="left"))

    def exact(self, value: float) -> int:
        """Frame index of the first frame (in store order) equal to ``value``, or -1."""
        pos = self._first_at_least(value)
        if pos < len(self.sorted) and self.sorted[pos] == value:
            return int(self.order[pos])
        return NOT_FOUND

    def nearest(self, value: float) -> int:
        """Frame index nearest to ``value``; ties go to the frame first in store order."""
        n = self._valid
        if n == 0:
            return NOT_FOUND
        pos = min(self._first_at_least(value), n)
        candidates = []
        if pos < n:  # first frame of the run of the smallest value >= query
            candidates.append(pos)
        if pos > 0:  # first frame of the run of the largest value < query
            below = self.sorted[pos - 1]
            candidates.append(int(np.searchsorted(self.sorted, below, side="left")))
        best = min(candidates, key=lambda p: (abs(float(self.sorted[p]) - value), int(self.order[p])))
        return int(self.order[best])


class FrameTable:
    """All frames of a store in store order, with the chunk each belongs to."""

    def __init__(
        self,
        chunk_ids: Sequence[int],
        chunk_numbers: Sequence[np.ndarray],
        chunk_times: Sequence[np.ndarray],
    ) -> None:
        lengths = [len(a) for a in chunk_numbers]
        self.chunk_ids = np.asarray(chunk_ids, dtype=np.int64)
        self.chunk_starts = np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)]).astype(np.int64)
        self.frame_number = _concat(chunk_numbers, np.int64)
        self.frame_time = _concat(chunk_times, np.float64)
        self._chunk_pos: Dict[int, int] = {int(c): i for i, c in enumerate(self.chunk_ids)}
        self._by_number: Optional[_SortedColumn] = None
        self._by_time: Optional[_SortedColumn] = None

    @property
    def frame_count(self) -> int:
        return len(self.frame_number)

    def has_chunk(self, chunk_n: int) -> bool:
        return chunk_n in self._chunk_pos

    def chunk_slice(self, chunk_n: int) -> slice:
        """Frame-index range of a chunk (empty for a chunk not in the table)."""
        pos = self._chunk_pos.get(chunk_n)
        if pos is None:
            return slice(0, 0)
        return slice(int(self.chunk_starts[pos]), int(self.chunk_starts[pos + 1]))

    def locate(self, frame_index: int) -> Tuple[int, int]:
        """``(chunk_n, position within chunk)`` of a frame index, or ``(-1, -1)``."""
        if not 0 <= frame_index < self.frame_count:
            return NOT_FOUND, NOT_FOUND
        pos = int(np.searchsorted(self.chunk_starts, frame_index, side="right")) - 1
        return int(self.chunk_ids[pos]), frame_index - int(self.chunk_starts[pos])

    def global_index(self, chunk_n: int, frame_idx: int) -> int:
        return int(self.chunk_starts[self._chunk_pos[chunk_n]]) + frame_idx

    def find_number(self, value: float) -> int:
        return self._numbers().exact(value)

    def nearest_number(self, value: float) -> int:
        return self._numbers().nearest(value)

    def find_time(self, value: float) -> int:
        return self._times().exact(value)

    def nearest_time(self, value: float) -> int:
        return self._times().nearest(value)

    def _numbers(self) -> _SortedColumn:
        if self._by_number is None:
            self._by_number = _SortedColumn(self.frame_number)
        return self._by_number

    def _times(self) -> _SortedColumn:
        if self._by_time is None:
            self._by_time = _SortedColumn(self.frame_time)
        return self._by_time

    def number_range(self) -> Tuple[float, float]:
        if not self.frame_count:
            return math.nan, math.nan
        return float(self.frame_number.min()), float(self.frame_number.max())

    def time_range(self) -> Tuple[float, float]:
        if not self.frame_count or np.isnan(self.frame_time).all():
            return math.nan, math.nan
        return float(np.nanmin(self.frame_time)), float(np.nanmax(self.frame_time))

    def as_lists(self, sel: slice = slice(None)) -> Dict[str, List]:
        """``{'frame_number': [...], 'frame_time': [...]}`` with plain Python values, as upstream returns."""
        return {"frame_number": self.frame_number[sel].tolist(), "frame_time": self.frame_time[sel].tolist()}


def _concat(arrays: Sequence[np.ndarray], default: type) -> np.ndarray:
    if not arrays:
        return np.zeros(0, dtype=default)
    out = np.concatenate(arrays)
    if out.dtype.kind in "iub":
        return out.astype(np.int64, copy=False)
    return out.astype(np.float64, copy=False)
