"""``FrameTable`` internals (``imgstore/index/frametable.py``): assembling columns chunk by chunk, and
lookups on columns already in order (no sort) answering as on sorted copies."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from imgstore.index.frametable import FrameTable, FrameTableBuilder, is_sorted


def test_is_sorted() -> None:
    assert is_sorted(np.array([1, 1, 2, 5]))
    assert not is_sorted(np.array([1, 3, 2]))
    assert is_sorted(np.zeros(0))
    assert is_sorted(np.array([3.0]))
    assert not is_sorted(np.array([math.nan]))
    assert not is_sorted(np.array([1.0, math.nan, 2.0]))
    assert not is_sorted(np.array([1.0, 2.0, math.nan]))


@pytest.mark.parametrize("lengths", [[5, 5, 5, 2], [1, 50, 3, 200, 0, 7], [0, 0, 4], [10], []])
def test_builder_columns_equal_concatenation(lengths: list) -> None:
    rng = np.random.default_rng(len(lengths))
    numbers = [rng.integers(-100, 100, n) for n in lengths]
    times = [rng.uniform(0, 1, n) for n in lengths]
    builder = FrameTableBuilder(expected_chunks=len(lengths))
    for chunk_n, (n, t) in enumerate(zip(numbers, times)):
        builder.add(chunk_n * 2, n, t)
    ids, starts, frame_number, frame_time = builder.columns()
    assert ids.tolist() == [2 * i for i in range(len(lengths))]
    assert starts.tolist() == np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)]).tolist()
    np.testing.assert_array_equal(frame_number, np.concatenate(numbers) if numbers else np.zeros(0))
    np.testing.assert_array_equal(frame_time, np.concatenate(times) if times else np.zeros(0))
    assert frame_number.dtype == np.int64 and frame_time.dtype == np.float64
    assert frame_number.base is None or len(frame_number.base) - len(frame_number) <= len(frame_number) // 8


def test_builder_switches_to_float_numbers() -> None:
    builder = FrameTableBuilder(3)
    builder.add(0, np.array([1, 2]), np.array([0.0, 1.0]))
    builder.add(1, np.array([2.5]), np.array([2.0]))
    builder.add(2, np.array([4]), np.array([3.0]))
    table = builder.build()
    assert table.frame_number.dtype == np.float64
    assert table.frame_number.tolist() == [1.0, 2.0, 2.5, 4.0]
    assert table.chunk_slice(1) == slice(2, 3)


def test_table_keeps_empty_chunks_given_to_it() -> None:
    table = FrameTable([0, 1, 2], [np.array([1]), np.zeros(0, np.int64), np.array([2])], [[1.0], [], [2.0]])
    assert table.chunk_ids.tolist() == [0, 1, 2]
    assert table.chunk_slice(1) == slice(1, 1)
    assert table.locate(1) == (2, 0)


def _sorted_copy_answers(numbers: np.ndarray, times: np.ndarray, queries: list) -> list:
    """Answers of a table forced to sort (flags False) for the same queries."""
    table = FrameTable.from_columns(np.array([0]), np.array([0, len(numbers)]), numbers, times, False, False)
    return [(table.find_number(q), table.nearest_number(q), table.nearest_time(q + 0.3)) for q in queries]


@settings(max_examples=200, deadline=None)
@given(values=st.lists(st.integers(-20, 20), max_size=30), queries=st.lists(st.integers(-25, 25), max_size=10))
def test_presorted_columns_answer_as_sorted_copies(values: list, queries: list) -> None:
    numbers = np.sort(np.asarray(values, dtype=np.int64))
    times = numbers.astype(np.float64) / 2
    table = FrameTable.from_columns(np.array([0]), np.array([0, len(numbers)]), numbers, times)
    assert table.numbers_sorted and (table.times_sorted or not len(times))
    got = [(table.find_number(q), table.nearest_number(q), table.nearest_time(q + 0.3)) for q in queries]
    assert got == _sorted_copy_answers(numbers, times, queries)
    assert table._numbers().order is None  # no sort, no copy
    assert table._numbers().sorted is numbers


def test_ranges_of_sorted_columns_read_only_the_ends() -> None:
    numbers = np.arange(10, 20)
    times = np.linspace(5.0, 6.0, 10)
    table = FrameTable.from_columns(np.array([0]), np.array([0, 10]), numbers, times, True, True)
    assert table.number_range() == (10.0, 19.0)
    assert table.time_range() == (5.0, 6.0)
    unsorted = FrameTable.from_columns(
        np.array([0]), np.array([0, 3]), np.array([5, 1, 9]), np.array([math.nan, 2.0, 1.0])
    )
    assert unsorted.number_range() == (1.0, 9.0)
    assert unsorted.time_range() == (1.0, 2.0)
    assert unsorted.nearest_time(1.9) == 1  # NaN is nearest to nothing


@settings(max_examples=200, deadline=None)
@given(
    times=st.lists(st.one_of(st.integers(0, 12).map(lambda k: k / 4), st.just(math.nan)), min_size=0, max_size=15),
    numbers=st.lists(st.integers(-3, 6), min_size=0, max_size=15),
    queries=st.lists(st.integers(-4, 52).map(lambda k: k / 16), min_size=1, max_size=10),
)
def test_lookups_of_many_values_answer_as_one_at_a_time(times, numbers, queries):
    """The array lookups (used to match cameras over a whole recording) against the scalar ones and,
    for 'latest at or before', against a scan of every frame."""
    n = min(len(times), len(numbers))
    frame_time, frame_number = np.array(times[:n], np.float64), np.array(numbers[:n], np.int64)
    table = FrameTable.from_columns(np.array([0]), np.array([0, n]), frame_number, frame_time)
    q = np.array(queries)
    assert table.nearest_times(q).tolist() == [table.nearest_time(v) for v in queries]
    wanted = np.array([int(v * 4) - 3 for v in queries], np.int64)
    assert table.find_numbers(wanted).tolist() == [table.find_number(int(v)) for v in wanted]
    latest = []
    for v in queries:
        best = -1
        for i, t in enumerate(frame_time):
            if t <= v and (best < 0 or t >= frame_time[best]):
                best = i
        latest.append(best)
    assert table.latest_at_or_before(q).tolist() == latest
    # no time is at or before NaN (it sorts after every time, so a binary search would say the last)
    assert table.latest_at_or_before(np.array([math.nan, *queries])).tolist() == [-1, *latest]
