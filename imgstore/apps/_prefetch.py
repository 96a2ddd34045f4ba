"""Reading ahead: a tool's frames are read in a thread while the main thread writes the ones before.

Decoders and encoders (FFmpeg through PyAV, OpenCV) release the GIL while they work, so reading
and writing overlap on two cores instead of taking turns.
"""

from __future__ import annotations

import queue
import threading
from typing import Iterable, Iterator, Tuple, TypeVar, cast

Item = TypeVar("Item")

#: items read ahead at most (each a frame or a mosaic: a few MB)
DEFAULT_DEPTH = 8
#: how often a producer blocked on a full queue looks whether it should stop (s)
_POLL_SECONDS = 0.1
_END = object()


def read_ahead(items: Iterable[Item], depth: int = DEFAULT_DEPTH) -> Iterator[Item]:
    """``items`` in order, produced by a thread up to ``depth`` ahead of the caller.

    An exception in the producer is raised here, at the item where it happened. When the caller
    stops early (an exception, Ctrl-C, or closing this generator) the producer is stopped and
    waited for, so that what it reads from can be closed safely afterwards.
    """
    slots: queue.Queue[Tuple[bool, object]] = queue.Queue(maxsize=max(1, int(depth)))
    stop = threading.Event()

    def put(entry: Tuple[bool, object]) -> bool:
        while not stop.is_set():
            try:
                slots.put(entry, timeout=_POLL_SECONDS)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put((True, item)):
                    return
            put((True, _END))
        except BaseException as exc:  # handed over to the caller's thread, which raises it
            put((False, exc))

    thread = threading.Thread(target=produce, name="imgstore-read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            ok, item = slots.get()
            if not ok:
                raise cast(BaseException, item)
            if item is _END:
                return
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        thread.join()
