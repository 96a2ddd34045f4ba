"""Sealing a finished store (its whole frame index in one file) and opening from that file when it fits.

A URL store opens from ``metadata.yaml``, one listing of its directory and the sealed index: three
requests, however many chunks it has. The file is trusted only while it fits the store: it must
belong to this store (a hash of the store's own metadata), list exactly the chunks the directory
holds, and each chunk's files must have the sizes they had when it was sealed (as far as the
location can tell without a request per chunk; on this disk also no newer than the seal). Anything
else, and any damage to the file, is a warning and the chunk indexes are read as without it.

Where a whole listing costs a request per 1,000 files (S3: a week of video chunks holds 3,026),
the store opens from its seal alone (``open_from_seal``): the seal must still be intact and this
store's, and only the names after the last chunk it knows are listed (one request), since a store
that grew shows its new chunks there. The chunk files' sizes are then checked as they are read
(``io.fs.RemoteFileSystem.expect_size``): a file missing or of another size is an error naming
it, never a frame of another file.

The writer seals a store when it closes it, ``repair_store`` when it finished something, and
``store.sealing.seal_store`` (``imgstore-info --seal``) any finished store: recorded by upstream imgstore,
Motif or older versions of this library. A writer that opens a store removes its seal first.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np

from ..durability.journal import JOURNAL_EXTENSION
from ..errors import ChunkIndexError, ImgStoreError
from ..index.chunkfile import find_chunk_index, load_chunk_index
from ..index.frametable import FrameTable
from ..index.sealedfile import (
    MAX_SEALED_BYTES,
    SEALED_INDEX_FILENAME,
    SealedChunk,
    SealedIndex,
    SealedIndexError,
    decode_sealed_index,
    encode_sealed_index,
    store_digest,
)
from ..index.storeindex import ImgStoreIndex
from ..io.metadata import write_file_atomic
from ..io.paths import after_chunk
from .layout import ChunkLayout

log = logging.getLogger(__name__)

__all__ = ["SEALED_INDEX_FILENAME", "SealReport", "SealedStore", "open_from_seal", "write_seal"]

#: names listed after the last chunk a seal knows: what may follow it there takes a few
AFTER_LIMIT = 100


@dataclass
class SealReport:
    """What ``seal_store`` wrote."""

    path: str
    chunks: int
    frames: int
    bytes: int

    def __str__(self) -> str:
        return f"{self.path}: sealed the index of {self.chunks} chunks, {self.frames} frames ({self.bytes:,} bytes)"


def write_seal(layout: ChunkLayout) -> SealReport:
    """Seal the finished store laid out by ``layout`` (for the writer on close, repair and ``seal_store``)."""
    unfinished, finished = layout.scan()
    if unfinished:
        raise ImgStoreError(
            f"{layout.basedir}: chunk(s) {', '.join(map(str, unfinished))} are unfinished; repair the store first"
        )
    chunks: List[SealedChunk] = []
    numbers, times = [], []
    for chunk_n, base in finished:
        index_path = find_chunk_index(base)
        if index_path is None:
            continue  # a chunk without an index is skipped by readers too
        try:
            chunk_numbers, chunk_times = load_chunk_index(base)
        except ChunkIndexError as exc:
            raise ImgStoreError(f"{layout.basedir}: cannot seal: {exc}") from None
        data_path = layout.chunk_path(chunk_n)
        chunks.append(
            SealedChunk(
                chunk_n,
                _relative(layout.basedir, index_path),
                os.path.getsize(index_path),
                _relative(layout.basedir, data_path),
                os.path.getsize(data_path) if os.path.isfile(data_path) else -1,
                len(chunk_numbers),
            )
        )
        numbers.append(chunk_numbers)
        times.append(chunk_times)
    if any(n.dtype.kind == "f" for n in numbers):
        numbers = [n.astype(np.float64) for n in numbers]
    number_column = np.concatenate(numbers) if numbers else np.zeros(0, np.int64)
    time_column = np.concatenate(times) if times else np.zeros(0, np.float64)
    digest = store_digest(layout.location.read_metadata()[0].to_dict())
    data = encode_sealed_index(digest, chunks, number_column, time_column)
    path = os.path.join(layout.basedir, SEALED_INDEX_FILENAME)
    write_file_atomic(path, data)
    report = SealReport(layout.basedir, len(chunks), len(number_column), len(data))
    log.info("%s", report)
    return report


def seal_quietly(layout: ChunkLayout) -> None:
    """Seal a store its writer closes; unsealed, it still opens from its chunk indexes: a failure is only logged."""
    try:
        write_seal(layout)
    except (OSError, ImgStoreError) as exc:
        log.warning("store %s: its index was not sealed (%s); it opens from its chunk indexes", layout.basedir, exc)


def remove_seal(basedir: str) -> bool:
    """Remove a store's sealed index before its chunks change (a writer opening it); True if it had one."""
    try:
        os.unlink(os.path.join(basedir, SEALED_INDEX_FILENAME))
    except FileNotFoundError:
        return False
    return True


def _relative(basedir: str, path: str) -> str:
    return os.path.relpath(path, basedir).replace(os.sep, "/")


# -- reading ------------------------------------------------------------------------------------
def sealed_index(layout: ChunkLayout, chunks: Sequence[Tuple[int, str]]) -> Optional[ImgStoreIndex]:
    """The index of a store's finished ``chunks`` (as its directory listing shows them) from its
    sealed index, if it has one that fits; None (with a warning saying why, unless there is none) otherwise."""
    location, fs = layout.location, layout.fs
    path = fs.join(layout.basedir, SEALED_INDEX_FILENAME)
    if not fs.exists(path):
        return None
    try:
        sealed = decode_sealed_index(fs.read_bytes(path, limit=MAX_SEALED_BYTES), path)
        problem = _foreign(layout, sealed) or _misfit(layout, sealed, chunks, location.sealed_at(path))
    except (SealedIndexError, OSError) as exc:
        log.warning("%s: sealed index ignored (%s); reading the chunk indexes instead", layout.basedir, exc)
        return None
    if problem:
        log.warning("%s: sealed index ignored: %s; reading the chunk indexes instead", layout.basedir, problem)
        return None
    return _index_of(layout, sealed)


class SealedStore(NamedTuple):
    """A store's index from its seal alone, and the seal's word on each chunk's files (checked as they are read)."""

    index: ImgStoreIndex
    chunks: Dict[int, SealedChunk]


def open_from_seal(layout: ChunkLayout) -> Optional[SealedStore]:
    """The index of the store laid out by ``layout`` from its sealed index, without listing its
    directory whole (which S3 does 1,000 names per request): two requests, the seal and a
    listing of the names after its last chunk.

    The seal must be intact and this store's (as ``sealed_index`` checks), and no chunk may sort
    after the last one it knows (chunks are numbered up as they are written: a store that grew
    since shows its new chunks there). What it says of each chunk's files is not checked here but
    when they are read (``SealedStore.chunks``: a file missing or of another size is then a
    ``StoreChangedError``). None (with a warning saying why, unless there is no seal) when the
    store is to be read as without a seal: listed whole, from its chunk indexes.
    """
    fs = layout.fs
    path = fs.join(layout.basedir, SEALED_INDEX_FILENAME)
    try:
        sealed = decode_sealed_index(fs.read_bytes(path, limit=MAX_SEALED_BYTES), path)
        problem = _foreign(layout, sealed) or _added(layout, sealed)
    except FileNotFoundError:
        return None
    except (SealedIndexError, OSError) as exc:
        log.warning("%s: sealed index ignored (%s); reading the chunk indexes instead", layout.basedir, exc)
        return None
    if problem:
        log.warning("%s: sealed index ignored: %s; reading the chunk indexes instead", layout.basedir, problem)
        return None
    return SealedStore(_index_of(layout, sealed), {c.chunk_n: c for c in sealed.chunks})


def _index_of(layout: ChunkLayout, sealed: SealedIndex) -> ImgStoreIndex:
    ids, starts = sealed.chunk_columns()
    # the sorted flags are left to the table to find: a damaged file must never make a lookup lie
    table = FrameTable.from_columns(ids, starts, sealed.frame_number, sealed.frame_time)
    log.debug("%s: frame index of %d chunks from %s", layout.basedir, len(sealed.chunks), SEALED_INDEX_FILENAME)
    return ImgStoreIndex(table=table, chunk_paths={int(n): layout.index_base(int(n)) for n in ids})


def _foreign(layout: ChunkLayout, sealed: SealedIndex) -> str:
    """Why ``sealed`` is not this store's seal ('' when it is)."""
    if sealed.store_digest != store_digest(layout.location.read_metadata()[0].to_dict()):
        return "it belongs to another store, or the store's metadata changed since it was sealed"
    return ""


def _added(layout: ChunkLayout, sealed: SealedIndex) -> str:
    """Which chunks the store holds after the last one ``sealed`` knows ('' when none), from a
    listing of the names after it (one request).

    What legitimately follows the chunks (``metadata.yaml``, the seal, extra data of a chunk
    that holds no frames, a user's notes or folders) shows no chunk; the writer's lock
    (``.lock``) sorts before them and is not seen, but a writer removes the seal before it
    changes a chunk, and the chunks it adds appear here. Chunk names sort before all of those:
    only a listing cut short while it still shows names that begin with a digit says nothing,
    and then the store is listed whole and checked as on other locations.
    """
    last = sealed.chunks[-1].chunk_n if sealed.chunks else -1
    listing = layout.fs.list_after(layout.basedir, after_chunk(last) if last >= 0 else "", AFTER_LIMIT)
    if listing is None:  # this location cannot list from a name on: it is listed whole
        return _misfit(layout, sealed, layout.scan()[1], None)
    added = [n for n in layout.chunks_shown(listing.entries) if n > last]
    if added:
        return f"chunks were added since it was sealed ({', '.join(map(str, added[:10]))})"
    if listing.truncated and listing.entries and listing.entries[-1].name[:1].isdigit():
        return _misfit(layout, sealed, layout.scan()[1], None)
    return ""


def _misfit(
    layout: ChunkLayout, sealed: SealedIndex, chunks: Sequence[Tuple[int, str]], sealed_at: Optional[int]
) -> str:
    """Why ``sealed`` does not describe the store as its directory listing shows it ('' when it does)."""
    listed = sorted(n for n, _ in chunks)
    held = [c.chunk_n for c in sealed.chunks]
    if listed != held:
        added, gone = sorted(set(listed) - set(held)), sorted(set(held) - set(listed))
        return f"chunks changed since it was sealed (new: {added or 'none'}, gone: {gone or 'none'})"
    location = layout.location
    for chunk in sealed.chunks:
        for name, size in ((chunk.index_name, chunk.index_size), (chunk.data_name, chunk.data_size)):
            found = location.file_facts(layout.fs.join(layout.basedir, name))
            if found is None:
                continue  # not known without a request of its own
            if found.missing:
                return f"{name} is missing"
            if size >= 0 and found.size is not None and found.size != size:
                return f"{name} has {found.size} bytes, {size} when sealed"
            if sealed_at is not None and found.changed_ns is not None and found.changed_ns > sealed_at:
                return f"{name} changed after it was sealed"
        if location.sees_writers and os.path.exists(layout.index_base(chunk.chunk_n) + JOURNAL_EXTENSION):
            return f"chunk {chunk.chunk_n} has a journal"
    return ""
