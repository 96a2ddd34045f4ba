"""The frame index as data: numpy arrays answering lookups by frame index, number and time in O(log n)."""

from __future__ import annotations

import math
import numbers
import operator
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..errors import FrameArgumentError, FrameNotFoundError, ImgStoreError

#: the range of frame numbers a store keeps (64-bit signed integers, as in its index files)
INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1

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


def as_stored_frame_number(value: object) -> int:
    """A frame number as a store keeps it: a whole number that fits in 64 bits (not a boolean)."""
    if isinstance(value, (bool, np.bool_)):
        raise FrameArgumentError(f"frame number must be an integer, got the boolean {value!r}")
    number = as_frame_number(value)
    if not isinstance(number, int):
        raise ImgStoreError(f"frame_number must be a whole number, got {value!r}")
    if not INT64_MIN <= number <= INT64_MAX:
        raise ImgStoreError(f"frame_number {number} does not fit in 64 bits")
    return number


def as_query_number(value: object) -> float | int:
    """A frame number to find the nearest frame to; NaN is refused (it is nearest to nothing)."""
    number = as_frame_number(value)
    if isinstance(number, float) and math.isnan(number):
        raise FrameNotFoundError("frame_number NaN matches no frame")
    return number


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
    if not isinstance(value, numbers.Real) or isinstance(value, (bool, np.bool_)):
        raise FrameArgumentError(f"frame time must be a number, got {value!r} ({type(value).__name__})")
    return float(value)


def as_query_time(value: object) -> float:
    """A time to look up; NaN is refused (it is nearest to nothing)."""
    time = as_frame_time(value)
    if math.isnan(time):
        raise FrameNotFoundError("frame_time NaN matches no frame")
    return time


def median_frame_interval(times: np.ndarray) -> float:
    """The median of the positive steps between a store's frame times, in store order, frames
    without a time left out (NaN with no such step): a recording's typical frame interval."""
    times = np.asarray(times, dtype=np.float64)
    steps = np.diff(times[np.isfinite(times)])
    steps = steps[steps > 0]
    return float(np.median(steps)) if len(steps) else math.nan


def is_sorted(values: np.ndarray) -> bool:
    """True when ``values`` never decrease and hold no NaN (then store order is sorted order)."""
    if len(values) and values.dtype.kind == "f" and math.isnan(values[0]):
        return False
    return bool(np.all(values[1:] >= values[:-1]))


class _SortedColumn:
    """One column sorted once (stable, so duplicates keep store order) for binary search.

    A column already in order (frame numbers and times of almost every recording) is used as it
    is: no sort and no copy, which matters for a week-long recording of 15 million frames.
    """

    def __init__(self, values: np.ndarray, presorted: Optional[bool] = None) -> None:
        if presorted is None:
            presorted = is_sorted(values)
        #: frame index of each sorted position; None when store order is sorted order
        self.order: Optional[np.ndarray] = None if presorted else np.argsort(values, kind="stable")
        self.sorted = values if presorted else values[self.order]
        self._integral = values.dtype.kind in "iu"
        # NaN (a frame without a time) sorts last and is nearest to nothing
        if self._integral or presorted:
            self._valid = len(values)
        else:
            self._valid = len(values) - int(np.count_nonzero(np.isnan(values)))

    def _frame_index(self, pos: int) -> int:
        return pos if self.order is None else int(self.order[pos])

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
            return self._frame_index(pos)
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
        best = min(candidates, key=lambda p: (abs(float(self.sorted[p]) - value), self._frame_index(p)))
        return self._frame_index(best)

    def _frame_indexes(self, positions: np.ndarray) -> np.ndarray:
        return positions if self.order is None else self.order[positions]

    def exact_many(self, values: np.ndarray) -> np.ndarray:
        """``exact`` for each of ``values`` at once (-1 where none is equal)."""
        n = len(self.sorted)
        if n == 0:
            return np.full(len(values), NOT_FOUND, np.int64)
        pos = np.minimum(np.searchsorted(self.sorted, values, side="left"), n - 1)
        hit = self.sorted[pos] == values
        return np.where(hit, self._frame_indexes(pos), NOT_FOUND).astype(np.int64)

    def nearest_many(self, values: np.ndarray) -> np.ndarray:
        """``nearest`` for each of ``values`` at once (float columns; ties: first in store order)."""
        n = self._valid
        if n == 0:
            return np.full(len(values), NOT_FOUND, np.int64)
        valid = self.sorted[:n]
        above = np.minimum(np.searchsorted(valid, values, side="left"), n)  # first value >= query
        # the first of the run of the largest value < query
        below = np.searchsorted(valid, valid[np.maximum(above - 1, 0)], side="left")
        above_c = np.minimum(above, n - 1)
        d_above = np.where(above < n, np.abs(valid[above_c] - values), np.inf)
        d_below = np.where(above > 0, np.abs(values - valid[below]), np.inf)
        i_above, i_below = self._frame_indexes(above_c), self._frame_indexes(below)
        take_below = (d_below < d_above) | ((d_below == d_above) & (i_below < i_above))
        return np.where(take_below, i_below, i_above).astype(np.int64)

    def last_at_most_many(self, values: np.ndarray) -> np.ndarray:
        """Frame index of the last value <= each of ``values`` in sorted order (-1 where none is)."""
        pos = np.searchsorted(self.sorted, values, side="right") - 1
        pos[np.isnan(values)] = -1  # nothing is at or before no value (NaN sorts after everything)
        return np.where(pos >= 0, self._frame_indexes(np.maximum(pos, 0)), NOT_FOUND).astype(np.int64)


class FrameTable:
    """All frames of a store in store order, with the chunk each belongs to."""

    def __init__(
        self,
        chunk_ids: Sequence[int],
        chunk_numbers: Sequence[np.ndarray],
        chunk_times: Sequence[np.ndarray],
    ) -> None:
        builder = FrameTableBuilder(len(chunk_ids))
        for chunk_n, chunk_number, chunk_time in zip(chunk_ids, chunk_numbers, chunk_times):
            builder.add(int(chunk_n), chunk_number, chunk_time)
        self._setup(*builder.columns(), None, None)

    @classmethod
    def from_columns(
        cls,
        chunk_ids: np.ndarray,
        chunk_starts: np.ndarray,
        frame_number: np.ndarray,
        frame_time: np.ndarray,
        numbers_sorted: Optional[bool] = None,
        times_sorted: Optional[bool] = None,
    ) -> FrameTable:
        """A table over columns already concatenated in store order (used as given, not copied).

        ``chunk_starts`` has one entry more than ``chunk_ids``: chunk ``i`` holds frames
        ``chunk_starts[i]:chunk_starts[i + 1]``. The sorted flags, when known, spare a check.
        """
        table = cls.__new__(cls)
        table._setup(chunk_ids, chunk_starts, frame_number, frame_time, numbers_sorted, times_sorted)
        return table

    def _setup(
        self,
        chunk_ids: np.ndarray,
        chunk_starts: np.ndarray,
        frame_number: np.ndarray,
        frame_time: np.ndarray,
        numbers_sorted: Optional[bool],
        times_sorted: Optional[bool],
    ) -> None:
        self.chunk_ids = np.asarray(chunk_ids, dtype=np.int64)
        self.chunk_starts = np.asarray(chunk_starts, dtype=np.int64)
        self.frame_number = frame_number
        self.frame_time = frame_time
        self._chunk_pos: Dict[int, int] = {c: i for i, c in enumerate(self.chunk_ids.tolist())}
        self._numbers_sorted = numbers_sorted
        self._times_sorted = times_sorted
        self._by_number: Optional[_SortedColumn] = None
        self._by_time: Optional[_SortedColumn] = None

    @property
    def numbers_sorted(self) -> bool:
        """Frame numbers never decrease in store order (checked once, then remembered)."""
        if self._numbers_sorted is None:
            self._numbers_sorted = is_sorted(self.frame_number)
        return self._numbers_sorted

    @property
    def times_sorted(self) -> bool:
        """Frame times never decrease in store order and none is NaN."""
        if self._times_sorted is None:
            self._times_sorted = is_sorted(self.frame_time)
        return self._times_sorted

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

    def find_numbers(self, values: np.ndarray) -> np.ndarray:
        """``find_number`` of each of ``values`` (an array) at once: frame indexes, -1 where none."""
        return self._numbers().exact_many(np.asarray(values))

    def nearest_times(self, values: np.ndarray) -> np.ndarray:
        """``nearest_time`` of each of ``values`` (an array of seconds) at once."""
        return self._times().nearest_many(np.asarray(values, dtype=np.float64))

    def latest_at_or_before(self, values: np.ndarray) -> np.ndarray:
        """For each time in ``values``: the frame with the latest time at or before it (the last in
        store order among equal times), -1 where every frame is later or has no time."""
        return self._times().last_at_most_many(np.asarray(values, dtype=np.float64))

    def _numbers(self) -> _SortedColumn:
        if self._by_number is None:
            self._by_number = _SortedColumn(self.frame_number, self.numbers_sorted)
        return self._by_number

    def _times(self) -> _SortedColumn:
        if self._by_time is None:
            self._by_time = _SortedColumn(self.frame_time, self.times_sorted)
        return self._by_time

    def number_range(self) -> Tuple[float, float]:
        if not self.frame_count:
            return math.nan, math.nan
        if self._numbers_sorted:  # known in order: the ends, without reading the whole column
            return float(self.frame_number[0]), float(self.frame_number[-1])
        return float(self.frame_number.min()), float(self.frame_number.max())

    def time_range(self) -> Tuple[float, float]:
        if not self.frame_count:
            return math.nan, math.nan
        if self._times_sorted:
            return float(self.frame_time[0]), float(self.frame_time[-1])
        if np.isnan(self.frame_time).all():
            return math.nan, math.nan
        return float(np.nanmin(self.frame_time)), float(np.nanmax(self.frame_time))

    def positions_between(self, start: Optional[float], stop: Optional[float], by: str) -> np.ndarray:
        """Store positions, in store order, whose ``by`` (``'index'``, ``'number'`` or ``'time'``)
        is at least ``start`` and below ``stop`` (None: no bound). Indexes count from the end when
        negative, as Python's slices do."""
        if by == "index":
            return np.arange(self.frame_count)[slice(start, stop)]
        column = self.frame_number if by == "number" else self.frame_time
        keep = np.ones(self.frame_count, bool)
        if start is not None:
            keep &= column >= start
        if stop is not None:
            keep &= column < stop
        return np.flatnonzero(keep)

    def as_lists(self, sel: slice = slice(None)) -> Dict[str, List]:
        """``{'frame_number': [...], 'frame_time': [...]}`` with plain Python values, as upstream returns."""
        return {"frame_number": self.frame_number[sel].tolist(), "frame_time": self.frame_time[sel].tolist()}


class FrameTableBuilder:
    """Appends chunks' frame arrays into one pair of columns, in store order.

    The columns are allocated for the expected number of chunks and grown only if needed, so a
    store's index needs no second copy while it is assembled (a week of frames is 240 MB).
    Frame numbers are int64 unless some chunk holds non-whole numbers; then they become float64.
    """

    def __init__(self, expected_chunks: int = 0) -> None:
        self._expected = max(int(expected_chunks), 1)
        self._ids: List[int] = []
        self._starts: List[int] = [0]
        self._numbers = np.zeros(0, dtype=np.int64)
        self._times = np.zeros(0, dtype=np.float64)
        self._used = 0

    @property
    def frame_count(self) -> int:
        return self._used

    def add(self, chunk_n: int, numbers: np.ndarray, times: np.ndarray) -> None:
        """Append one chunk; ``numbers`` and ``times`` have equal lengths."""
        n = len(numbers)
        if self._numbers.dtype.kind != "f" and np.asarray(numbers).dtype.kind not in "iub":
            self._numbers = self._numbers.astype(np.float64)
        self._reserve(n)
        stop = self._used + n
        self._numbers[self._used : stop] = numbers
        self._times[self._used : stop] = times
        self._used = stop
        self._ids.append(int(chunk_n))
        self._starts.append(stop)

    def _reserve(self, n: int) -> None:
        needed = self._used + n
        if needed <= len(self._numbers):
            return
        # first frames: room for the chunks expected, each as long as this one; later, grow by half
        remaining = self._expected - len(self._ids)
        capacity = max(needed, self._used + n * remaining if not self._used else int(len(self._numbers) * 1.5))
        self._numbers = _grown(self._numbers, capacity, self._used)
        self._times = _grown(self._times, capacity, self._used)

    def columns(self) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(chunk_ids, chunk_starts, frame_number, frame_time)``; unused room is given back."""
        numbers, times = self._numbers, self._times
        if len(numbers) != self._used:
            # a view would keep the spare room allocated: copy when it is more than a little
            spare = len(numbers) - self._used > self._used // 8
            numbers = numbers[: self._used].copy() if spare else numbers[: self._used]
            times = times[: self._used].copy() if spare else times[: self._used]
        return np.asarray(self._ids, dtype=np.int64), np.asarray(self._starts, dtype=np.int64), numbers, times

    def build(self) -> FrameTable:
        return FrameTable.from_columns(*self.columns())


def _grown(column: np.ndarray, capacity: int, used: int) -> np.ndarray:
    out = np.empty(capacity, dtype=column.dtype)
    out[:used] = column[:used]
    return out
