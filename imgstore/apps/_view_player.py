"""The viewer's players: which frame of a store (or step of several cameras) is shown, with a cache
of recent ones for stepping back.

No GUI here: the players only read, so that tests can drive them without a window.
"""

from __future__ import annotations

import collections
import logging
import math
from typing import Any, Generic, Tuple, TypeVar

import numpy as np

from ..errors import ImgStoreError
from ..index.frametable import as_query_number
from ._cli import ToolError
from ._view_statusbar import _format_number

#: frames kept for stepping back (fewer when frames are big: at most CACHE_BYTES in all)
CACHE_FRAMES = 64
CACHE_BYTES = 512 * 1024 * 1024

_log = logging.getLogger(__name__)

Shown = TypeVar("Shown")


class RecentCache(Generic[Shown]):
    """The most recently shown items by position, at most ``size`` of them (least recent dropped)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: collections.OrderedDict[int, Shown] = collections.OrderedDict()

    def get(self, position: int) -> Any:
        item = self._items.get(position)
        if item is not None:
            self._items.move_to_end(position)
        return item

    def put(self, position: int, item: Shown) -> None:
        self._items[position] = item
        self._items.move_to_end(position)
        while len(self._items) > self.size:
            self._items.popitem(last=False)

    def __contains__(self, position: int) -> bool:
        return position in self._items


def cache_size(cache_items: int, item_bytes: int) -> int:
    """How many items to keep: ``cache_items``, fewer when that would pass ``CACHE_BYTES`` (at least 2)."""
    return max(2, min(int(cache_items), CACHE_BYTES // max(1, int(item_bytes))))


class _Moves:
    """What both players do with a position: show it, step from it (``frame`` reads what is there)."""

    count: int
    index: int

    def frame(self, index: int) -> Any:
        raise NotImplementedError

    def current(self) -> Any:
        return self.frame(self.index)

    def go_to_index(self, index: int) -> bool:
        """Show position ``index`` (clamped to the first and last); whether what is shown changed."""
        index = min(max(int(index), 0), self.count - 1)
        changed = index != self.index
        self.frame(index)
        self.index = index
        return changed

    def step(self, delta: int) -> bool:
        return self.go_to_index(self.index + delta)


class Player(_Moves):
    """Moves through a store by index, keeping recently decoded frames for stepping back."""

    def __init__(self, store: Any, cache_frames: int = CACHE_FRAMES) -> None:
        self.store = store
        md = store.get_frame_metadata()
        self.numbers = np.asarray(md["frame_number"])
        self.times = np.asarray(md["frame_time"], dtype=np.float64)
        self.count = len(self.numbers)
        if self.count == 0:
            raise ToolError(f"store {store.full_path} has no frames")
        self._cache: RecentCache[Tuple[np.ndarray, Tuple[Any, float]]] = RecentCache(
            cache_size(cache_frames, int(np.prod(store.image_shape)) * 2)
        )
        self._store_position = -1  # the index of the frame the store read last
        self.index = -1  # the index of the frame shown
        self.decodes = 0  # frames read from the store (for tests)

    @property
    def cache_frames(self) -> int:
        return self._cache.size

    def _index_of(self, md: Tuple[Any, float]) -> int:
        """The store position of the frame the store just returned with metadata ``md``."""
        number, when = md
        hits = np.flatnonzero(self.numbers == number)
        if len(hits) > 1:
            same_time = hits[self.times[hits] == when]
            hits = same_time if len(same_time) else hits
        if not len(hits):
            raise ToolError(f"frame #{number} of store {self.store.full_path} is not in its frame index")
        return int(hits[0])

    def frame(self, index: int) -> Tuple[np.ndarray, Tuple[Any, float]]:
        """The frame at store position ``index``, from the cache when it is there."""
        cached = self._cache.get(index)
        if cached is not None:
            return cached
        if index == self._store_position + 1:
            img, md = self.store.get_next_image()
        else:
            img, md = self.store.get_image(None, frame_index=index)
        self._decoded(index, md)
        self._cache.put(index, (img, md))
        return img, md

    def _decoded(self, index: int, md: Tuple[Any, float]) -> None:
        self.decodes += 1
        self._store_position = index
        _log.debug("decoded frame index %d (frame #%s)", index, _format_number(md[0]))

    def _adopt(self, img: np.ndarray, md: Tuple[Any, float]) -> bool:
        index = self._index_of(md)
        self._decoded(index, md)
        self._cache.put(index, (img, md))
        changed = index != self.index
        self.index = index
        return changed

    def go_to_number(self, frame_number: Any) -> bool:
        """Show the frame numbered ``frame_number``, or the one with the nearest number."""
        return self._adopt(*self.store.get_image(frame_number, exact_only=False))

    def jump_seconds(self, seconds: float) -> bool:
        """Show the frame whose time is nearest the shown frame's time plus ``seconds``.

        A frame still in the cache is shown from there; any other is read with ``get_nearest_image``.
        """
        now = float(self.times[self.index])
        if not math.isfinite(now):
            return False
        target = now + seconds
        with np.errstate(invalid="ignore"):
            distance = np.abs(self.times - target)
        if np.isfinite(distance).any():
            nearest = int(np.nanargmin(distance))  # ties: the first in store order, as the store
            if nearest in self._cache:
                return self.go_to_index(nearest)
        return self._adopt(*self.store.get_nearest_image(target))


class StepPlayer(_Moves):
    """Moves through the steps of a :class:`~imgstore.multi.MultiStore` (all cameras together),
    keeping recently read steps for stepping back. The same moves as :class:`Player`."""

    def __init__(self, multi: Any, cache_steps: int = CACHE_FRAMES) -> None:
        self.multi = multi
        self.count = len(multi)
        if self.count == 0:
            raise ToolError(f"cameras {', '.join(multi.names)} have no step in common")
        step_bytes = sum(int(np.prod(store.image_shape)) * 2 for store in multi.stores)
        self._cache: RecentCache[Any] = RecentCache(cache_size(cache_steps, step_bytes))
        self.index = -1  # the step shown
        self.decodes = 0  # steps read from the stores (for tests)

    def frame(self, index: int) -> Any:
        """The :class:`~imgstore.multi.Step` at ``index``, from the cache when it is there."""
        step = self._cache.get(index)
        if step is None:
            step = self.multi[index]
            self.decodes += 1
            _log.debug("decoded step %d", index)
            self._cache.put(index, step)
        return step

    def go_to_number(self, frame_number: Any) -> bool:
        """Show the step of the master camera's frame ``frame_number``, or of the nearest number."""
        table = self.multi.stores[self.multi.master].view.table
        try:
            position = table.nearest_number(as_query_number(frame_number))
        except ImgStoreError as exc:
            raise ToolError(str(exc)) from None
        return self.go_to_index(position)

    def jump_seconds(self, seconds: float) -> bool:
        """Show the step whose reference time is nearest the shown step's plus ``seconds``."""
        now = self.current().time
        if not math.isfinite(now):
            return False
        return self.go_to_index(self.multi.step_index_at_time(now + seconds))
