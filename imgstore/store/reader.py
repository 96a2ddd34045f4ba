"""The reader: what a store open for reading does to return frames by store position.

It holds the store's current ``StoreView`` and the reader of the chunk read last, so that frames
read in order decode on from where the last one ended and a frame of another chunk opens that
chunk. A live ``refresh`` swaps in a new view (through the ``IndexLoader``); frames already seen
keep their position.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from ..codecs.base import ChunkReader
from .layout import ChunkLayout
from .loader import IndexLoader
from .view import StoreView

#: one frame as a store returns it: ``(image, (frame_number, frame_time))``
Frame = Tuple[np.ndarray, Tuple[Any, float]]


class StoreReader:
    """Reads the frames of one store opened for reading, one chunk reader open at a time."""

    def __init__(self, view: StoreView, loader: IndexLoader) -> None:
        self.view = view
        self.loader = loader
        #: store position of the frame read last (-1 before the first)
        self.position = -1
        #: the chunk of the frame read last (0 before the first)
        self.chunk_n = 0
        self._reader: Optional[ChunkReader] = None
        self._reader_chunk = -1
        self._reader_path = ""

    # -- what the store reports ------------------------------------------------------------------
    @property
    def layout(self) -> ChunkLayout:
        return self.view.layout

    @property
    def frame_count(self) -> int:
        return self.view.frame_count

    @property
    def frame_min(self) -> float:
        return self.view.index.frame_min

    @property
    def frame_max(self) -> float:
        return self.view.index.frame_max

    @property
    def frame_time_min(self) -> float:
        return self.view.index.frame_time_min

    @property
    def frame_time_max(self) -> float:
        return self.view.index.frame_time_max

    @property
    def chunks(self) -> List[int]:
        """The non-empty chunks."""
        return list(self.view.index.chunks)

    def frame_metadata(self) -> Dict[str, list]:
        return self.view.index.get_all_metadata()

    # -- reading ---------------------------------------------------------------------------------
    def read(self, position: int) -> Frame:
        """The frame at store ``position`` (0 <= position < frame_count), which becomes the current one."""
        view = self.view
        table = view.table
        chunk_n, frame_idx = table.locate(position)
        if chunk_n != self._reader_chunk:
            self.close()
            self._reader = view.open_chunk(chunk_n)
            self._reader_chunk, self._reader_path = chunk_n, view.chunk_path(chunk_n)
        self.chunk_n = chunk_n
        img = view.source.read(self._reader, self._reader_path, frame_idx, chunk_n)
        self.position = position
        return img, (table.frame_number[position].item(), table.frame_time[position].item())

    def use(self, view: StoreView) -> None:
        """Read from ``view`` from now on (the same store, refreshed or decoded differently).

        The open chunk reader is kept unless its chunk changed: a reader knows only the frames
        its chunk had when it was opened.
        """
        chunk = self._reader_chunk
        if chunk >= 0 and view.table.chunk_slice(chunk) != self.view.table.chunk_slice(chunk):
            self.close()
        self.view = view

    def refresh(self) -> int:
        """Take in the frames a writer added since the store was opened; how many are new."""
        before = self.view.frame_count
        index = self.loader.refresh(self.view.index)
        if index is not self.view.index:
            self.use(self.view.with_index(index))
        return self.view.frame_count - before

    def restart(self, view: StoreView) -> None:
        """Read ``view`` from its start (after the store's frame numbers changed)."""
        self.close()
        self.view = view
        self.position = -1

    def close(self) -> None:
        """Close the open chunk reader (the store stays readable: the next read opens one again)."""
        if self._reader is not None:
            reader, self._reader = self._reader, None
            reader.close()
        self._reader_chunk = -1
