"""The reader: what a store open for reading does to return frames by store position.

It holds the store's current ``StoreView`` and the readers of the chunks read last, so that
frames read in order decode on from where the last one ended, and random reads that go back and
forth between a few chunks find each chunk's reader (and its decoder's position) still open.
A live ``refresh`` swaps in a new view (through the ``IndexLoader``); frames already seen keep
their position.
"""

from __future__ import annotations

import collections
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from ..codecs.base import ChunkReader
from ..index.frametable import FrameTable
from .layout import ChunkLayout
from .loader import IndexLoader
from .view import StoreView

#: one frame as a store returns it: ``(image, (frame_number, frame_time))``
Frame = Tuple[np.ndarray, Tuple[Any, float]]

#: chunk readers kept open at most: a video chunk's reader holds a decoder and its frames (some
#: tens of MB at 1280x1024), and reopening one costs the container's open and a cold decoder
OPEN_CHUNKS = 3


class StoreReader:
    """Reads the frames of one store opened for reading, with the readers of its last few chunks open.

    Reading on from the end of one chunk into the next closes the chunk it leaves (reading in
    order never goes back); a read elsewhere keeps up to ``OPEN_CHUNKS`` readers open, least
    recently used closed first.
    """

    def __init__(self, view: StoreView, loader: IndexLoader) -> None:
        self.view = view
        self.loader = loader
        #: store position of the frame read last (-1 before the first)
        self.position = -1
        #: the chunk of the frame read last (0 before the first)
        self.chunk_n = 0
        self._reader: Optional[ChunkReader] = None  # the reader of the chunk read last
        self._reader_chunk = -1
        self._reader_path = ""
        #: frame positions of the current reader's chunk in the table they were found in
        self._span: Tuple[int, int, Optional[FrameTable]] = (0, 0, None)
        #: chunk -> (reader, path) of every open chunk reader, least recently used first
        self._open: collections.OrderedDict[int, Tuple[ChunkReader, str]] = collections.OrderedDict()

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
        start, stop, span_table = self._span
        if start <= position < stop and table is span_table:  # the current chunk's frame: no search
            chunk_n, frame_idx = self._reader_chunk, position - start
        else:
            chunk_n, frame_idx = table.locate(position)
            if chunk_n != self._reader_chunk:
                self._switch(chunk_n, leaving=position == self.position + 1)
            span = table.chunk_slice(chunk_n)
            self._span = (span.start, span.stop, table)
        self.chunk_n = chunk_n
        img = view.source.read(self._reader, self._reader_path, frame_idx, chunk_n)
        self.position = position
        return img, (table.frame_number[position].item(), table.frame_time[position].item())

    def _switch(self, chunk_n: int, leaving: bool) -> None:
        """Make ``chunk_n``'s reader the current one, opening it unless it is open;
        ``leaving``: the read goes on in order from the current chunk, which is closed."""
        if leaving and self._reader_chunk >= 0:
            self._close_chunk(self._reader_chunk)
        entry = self._open.get(chunk_n)
        if entry is None:
            while len(self._open) >= OPEN_CHUNKS:
                self._close_chunk(next(iter(self._open)))
            entry = self._open[chunk_n] = (self.view.open_chunk(chunk_n), self.view.chunk_path(chunk_n))
        else:
            self._open.move_to_end(chunk_n)
        self._reader, self._reader_path = entry
        self._reader_chunk = chunk_n

    def _close_chunk(self, chunk_n: int) -> None:
        reader, _ = self._open.pop(chunk_n)
        if chunk_n == self._reader_chunk:
            self._reader, self._reader_chunk, self._span = None, -1, (0, 0, None)
        reader.close()

    def use(self, view: StoreView) -> None:
        """Read from ``view`` from now on (the same store, refreshed or decoded differently).

        The open chunk readers are kept unless their chunk changed: a reader knows only the
        frames its chunk had when it was opened.
        """
        for chunk in list(self._open):
            if view.table.chunk_slice(chunk) != self.view.table.chunk_slice(chunk):
                self._close_chunk(chunk)
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
        """Close the open chunk readers (the store stays readable: the next read opens one again)."""
        while self._open:
            self._close_chunk(next(iter(self._open)))
        self._reader, self._reader_chunk, self._span = None, -1, (0, 0, None)
