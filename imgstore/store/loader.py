"""Loading a read store's frame index from its chunk files, and taking in what a writer adds later.

Finished chunks are read from their index files (through the location: the index cache on a
local disk, one batch of requests at a URL); unfinished ones (a journal, no index yet: being
written, or left by a writer that died) are recovered from their journals and files. A live
``refresh`` goes the same way for the chunks finished since, and re-reads the chunk in progress.
"""

from __future__ import annotations

import functools
import logging
from typing import Dict, List, Optional, Sequence, Tuple

from .. import codecs
from ..constants import STORE_LOCK_FILENAME
from ..durability.recovery import (
    ChunkArrays,
    RecoveredChunk,
    merged_index,
    recover_layout_chunk,
    recovered_arrays,
)
from ..index.sealedfile import SealedChunk
from ..index.storeindex import ImgStoreIndex
from ..io.metadata import StoreMetadata
from .layout import ChunkLayout
from .seal import open_from_seal, sealed_index

log = logging.getLogger(__name__)


class IndexLoader:
    """Builds and refreshes the frame index of one store opened for reading.

    Remembers which chunks it loaded from index files and which it recovered, so that a refresh
    loads only what is new and re-reads only what may have grown.
    """

    def __init__(self, layout: ChunkLayout, codec: codecs.ChunkCodec, metadata: StoreMetadata) -> None:
        self.layout = layout
        self._codec = codec
        self._metadata = metadata
        #: chunks whose frames came from their index files, and chunks recovered from journals
        self.finished: Tuple[int, ...] = ()
        self.recovered: Tuple[int, ...] = ()
        #: when the store opened from its seal alone: what the seal says of each chunk's files
        #: (checked as they are read, see ``StoreView.sealed``)
        self.sealed: Dict[int, SealedChunk] = {}

    def chunk_paths(self) -> List[Tuple[int, str]]:
        """``(chunk number, index path without extension)`` of every chunk loaded."""
        return [(n, self.layout.index_base(n)) for n in sorted({*self.finished, *self.recovered})]

    def load(self, report: bool = False) -> ImgStoreIndex:
        """Every finished chunk's frames, plus those of unfinished chunks that can be recovered.

        With ``report``, says (once, when a store is opened) what was recovered and whether a
        writer is still at work or died without closing the store. Where listing the store whole
        costs a request per 1,000 files (S3), a sealed store opens from its seal alone
        (``store.seal.open_from_seal``): finished chunks only, the seal's files checked as read.
        """
        seal_tried = self.layout.location.opens_from_seal_alone
        opened = open_from_seal(self.layout) if seal_tried else None
        if opened is not None:
            self.finished, self.recovered, self.sealed = tuple(opened.index.chunks), (), opened.chunks
            return opened.index
        unfinished, finished = self.layout.scan()
        # a store with unfinished chunks is being written, or its writer died: its seal (if any) is
        # stale; one that did not open from its seal alone had it judged (or has none)
        sealed = None if unfinished or seal_tried else functools.partial(sealed_index, self.layout, finished)
        index = self.layout.location.load_index(finished, sealed=sealed)
        # only chunks whose frames were loaded count as known: a chunk listed between a writer
        # making it and journaling it, or whose index failed to load, is looked at again
        self.finished = tuple(index.chunks)
        recovered = self.recover(unfinished)
        self.recovered = tuple(c.chunk_n for c in recovered)
        if report:
            report_recovery(self.layout, recovered)
        return merged_index(index, [recovered_arrays(self.layout, c) for c in recovered])

    def refresh(self, index: ImgStoreIndex) -> ImgStoreIndex:
        """``index`` with the chunks finished since it was loaded, and the chunk in progress re-read.

        Frames already in ``index`` keep their position. Returns ``index`` itself when nothing changed.
        """
        unfinished, finished = self.layout.scan()
        known = set(self.finished)
        new_chunks = [(n, base) for n, base in finished if n not in known]
        recovered = self.recover(unfinished)
        loaded: Sequence[int] = ()
        if new_chunks:
            new = self.layout.location.load_index(new_chunks, every_chunk=False)
            loaded = new.chunks
            added = [ChunkArrays(n, *_chunk_columns(new, n), new.get_chunk_path(n)) for n in new.chunks]
            index = merged_index(index, added)
        index = merged_index(
            index,
            [recovered_arrays(self.layout, c) for c in recovered],
            drop=set(self.recovered) - {n for n, _ in new_chunks},
        )
        self.finished = tuple(sorted({*self.finished, *loaded}))
        self.recovered = tuple(c.chunk_n for c in recovered)
        return index

    def recover(self, unfinished: Optional[Sequence[int]] = None) -> List[RecoveredChunk]:
        """What can be recovered of the ``unfinished`` chunks (default: those on disk now)."""
        recovered = []
        for chunk_n in self.layout.scan()[0] if unfinished is None else unfinished:
            shape, dtype = self._metadata.imgshape, self._metadata.imgdtype
            chunk = recover_layout_chunk(self.layout, self._codec, shape, dtype, chunk_n)
            if chunk is not None:
                recovered.append(chunk)
        return recovered


def _chunk_columns(index: ImgStoreIndex, chunk_n: int) -> Tuple[object, object]:
    sel = index.table.chunk_slice(chunk_n)
    return index.table.frame_number[sel], index.table.frame_time[sel]


def report_recovery(layout: ChunkLayout, recovered: List[RecoveredChunk]) -> None:
    """Log what opening a store found: a writer at work, one that died, chunks recovered from journals."""
    basedir = layout.basedir
    state, owner = layout.location.writer_state()
    frames = sum(len(c.frame_number) for c in recovered)
    if state == "uploaded-open":  # no way to ask whether a writer elsewhere is alive
        log.warning(
            "store %s was not closed when it was uploaded: it is being written, or its writer "
            "died; %d frames of unfinished chunks are readable",
            basedir,
            frames,
        )
        return
    if state == "alive":
        log.info(
            "%s is being written (%s); %d frames of the chunk in progress are readable so far "
            "(refresh() picks up more)",
            basedir,
            owner,
            frames,
        )
        return
    if not recovered and state == "none":
        return
    what = f"its writer ({owner}) stopped without closing it" if state == "stale" else "it has unfinished chunks"
    if recovered:
        lost = sum(c.lost for c in recovered)
        chunks = ", ".join(str(c.chunk_n) for c in recovered)
        log.warning(
            "store %s: %s; recovered %d frames of unfinished chunk(s) %s from their journals%s. "
            "imgstore.repair_store(%r) (or imgstore-info --repair) writes their indexes so that "
            "every program reads them",
            basedir,
            what,
            frames,
            chunks,
            f" ({lost} more were not on disk whole)" if lost else "",
            basedir,
        )
    else:
        log.warning(
            "store %s: %s (stale lock file %s); no frames were lost. imgstore.repair_store(%r) removes the lock",
            basedir,
            what,
            STORE_LOCK_FILENAME,
            basedir,
        )
