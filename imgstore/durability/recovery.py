"""Recovering the chunks a writer did not finish, from their journals.

A chunk whose writer died has its frames (or part of them) on disk and a journal of their numbers
and times, but no ``index.npz``. Its readable frames are the first ``n`` the journal lists, where
``n`` is how many frames the chunk's data really holds whole: a video encoder keeps a few frames
in flight, and the last frame file or video packet may have been cut off mid-write.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Iterable, List, NamedTuple, Optional, Tuple

import numpy as np

from .. import codecs
from ..errors import ChunkIndexError, FrameReadError
from ..index.frametable import FrameTable
from ..index.storeindex import ImgStoreIndex
from ..io.fs import is_regular_file
from .journal import read_journal

log = logging.getLogger(__name__)

#: frames at the end of an unfinished chunk that are read back before they are trusted: more than
#: a writer ever has in flight (frames being encoded, or frame files being written)
TAIL_CHECK_FRAMES = 16


class RecoveredChunk(NamedTuple):
    """The frames of one unfinished chunk that can be read, with what the journal listed."""

    chunk_n: int
    frame_number: np.ndarray
    frame_time: np.ndarray
    journaled: int
    damaged_journal: bool

    @property
    def lost(self) -> int:
        """Frames the journal lists whose data never reached the disk whole."""
        return self.journaled - len(self.frame_number)


def readable_prefix(
    codec: codecs.ChunkCodec, chunk_path: str, imgshape: Tuple[int, ...], imgdtype: str, listed: int
) -> int:
    """How many of the first ``listed`` frames of an unfinished chunk read back whole.

    Frames before the last ``TAIL_CHECK_FRAMES`` were finished long before the writer stopped;
    the tail is decoded to find the first frame that was not.
    """
    if not os.path.exists(chunk_path):  # an encoder may not have produced a byte yet
        return 0
    if codec.extension is not None and not is_regular_file(chunk_path):  # a FIFO would hang the demuxer
        log.warning("%s is not a regular file: its chunk cannot be recovered", chunk_path)
        return 0
    try:
        counted = codec.count_frames(chunk_path)
    except FrameReadError as exc:
        log.debug("%s: cannot count frames (%s)", chunk_path, exc)
        return 0
    n = listed if counted is None else min(listed, counted)
    if n == 0:
        return 0
    try:
        # told how many frames the journal lists, a reader of a chunk holding fewer knows it was
        # cut and serves only the frames it can place for sure
        reader = codec.open_reader(chunk_path, imgshape, imgdtype, listed)
    except FrameReadError as exc:
        log.debug("%s: cannot open (%s)", chunk_path, exc)
        return 0
    try:
        for frame_idx in range(max(0, n - TAIL_CHECK_FRAMES), n):
            try:
                reader.read(frame_idx)
            except FrameReadError as exc:
                log.debug("%s: frame %d does not read back (%s)", chunk_path, frame_idx, exc)
                return frame_idx
    finally:
        reader.close()
    return n


def recover_chunk(
    chunk_n: int, journal: str, codec: codecs.ChunkCodec, chunk_path: str, imgshape: Tuple[int, ...], imgdtype: str
) -> Optional[RecoveredChunk]:
    """The readable frames of an unfinished chunk, or None when its journal is not one.

    A chunk without a journal at all was made by a writer that died before it wrote anything
    there: it holds no frames.
    """
    if not os.path.exists(journal):
        return RecoveredChunk(chunk_n, np.zeros(0, np.int64), np.zeros(0, np.float64), 0, False)
    try:
        contents = read_journal(journal)
    except ChunkIndexError as exc:
        log.warning("chunk %d cannot be recovered: %s", chunk_n, exc)
        return None
    journaled = len(contents.frame_number)
    n = readable_prefix(codec, chunk_path, imgshape, imgdtype, journaled) if journaled else 0
    return RecoveredChunk(chunk_n, contents.frame_number[:n], contents.frame_time[:n], journaled, contents.damaged_tail)


class ChunkArrays(NamedTuple):
    """One chunk's frames as they go into a store index."""

    chunk_n: int
    frame_number: np.ndarray
    frame_time: np.ndarray
    index_base: str


def merged_index(index: ImgStoreIndex, add: Iterable[ChunkArrays], drop: Iterable[int] = ()) -> ImgStoreIndex:
    """``index`` without the chunks in ``drop``, plus (or with replaced) the chunks in ``add``.

    Used to add recovered chunks to the index of the finished ones, and by a live reader to take
    in the frames a writer added since the last look.
    """
    add = [chunk for chunk in add if len(chunk.frame_number)]
    drop = set(drop) | {chunk.chunk_n for chunk in add}
    if not add and not drop & set(index.chunks):
        return index
    table = index.table
    chunks: List[ChunkArrays] = []
    for chunk_n in index.chunks:
        if chunk_n not in drop:
            sel = table.chunk_slice(chunk_n)
            chunks.append(
                ChunkArrays(chunk_n, table.frame_number[sel], table.frame_time[sel], index.get_chunk_path(chunk_n))
            )
    chunks.extend(add)
    chunks.sort(key=lambda chunk: chunk.chunk_n)
    merged = FrameTable([c.chunk_n for c in chunks], [c.frame_number for c in chunks], [c.frame_time for c in chunks])
    return ImgStoreIndex(table=merged, chunk_paths={c.chunk_n: c.index_base for c in chunks})


def recover_layout_chunk(
    layout: Any, codec: codecs.ChunkCodec, imgshape: Tuple[int, ...], imgdtype: str, chunk_n: int
) -> Optional[RecoveredChunk]:
    """``recover_chunk`` for chunk ``chunk_n`` of a store, its files found through the store's ``layout``."""
    return recover_chunk(chunk_n, layout.journal_path(chunk_n), codec, layout.chunk_path(chunk_n), imgshape, imgdtype)


def recovered_arrays(layout: Any, chunk: RecoveredChunk) -> ChunkArrays:
    """A recovered chunk's frames as they go into a store index."""
    return ChunkArrays(chunk.chunk_n, chunk.frame_number, chunk.frame_time, layout.index_base(chunk.chunk_n))
