"""``read_ahead``: items in order from a producer thread; its failures raised in the caller; an
early stop stops the producer before the caller goes on (so that its source can be closed)."""

from __future__ import annotations

import threading
import time
from typing import Iterator, List

import pytest

from imgstore.apps._prefetch import read_ahead


def test_items_come_in_order_and_all_of_them() -> None:
    assert list(read_ahead(iter(range(1000)), depth=3)) == list(range(1000))
    assert list(read_ahead([])) == []


def test_the_producer_runs_ahead_at_most_depth_items() -> None:
    produced: List[int] = []

    def source() -> Iterator[int]:
        for i in range(100):
            produced.append(i)
            yield i

    items = read_ahead(source(), depth=4)
    assert next(items) == 0
    time.sleep(0.3)
    # one handed over, four waiting in the queue, one more read and waiting for room
    assert len(produced) <= 1 + 4 + 1
    items.close()


def test_a_failure_in_the_producer_is_raised_at_its_place() -> None:
    def source() -> Iterator[int]:
        yield 1
        yield 2
        raise ValueError("frame 3 is damaged")

    seen = []
    with pytest.raises(ValueError, match="frame 3 is damaged"):
        for item in read_ahead(source()):
            seen.append(item)
    assert seen == [1, 2]


def test_stopping_early_stops_and_waits_for_the_producer() -> None:
    reading = threading.Event()
    finished = threading.Event()

    def source() -> Iterator[int]:
        try:
            for i in range(10_000):
                reading.set()
                time.sleep(0.001)
                yield i
        finally:
            finished.set()

    with pytest.raises(KeyboardInterrupt):
        for item in read_ahead(source(), depth=2):
            if item == 5:
                raise KeyboardInterrupt  # as Ctrl-C arrives in the main thread
    # the producer has stopped before the caller went on: nothing reads the source any more
    assert not any(t.name == "imgstore-read-ahead" and t.is_alive() for t in threading.enumerate())
    assert reading.is_set()
