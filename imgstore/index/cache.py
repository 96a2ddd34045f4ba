"""The frame index of a whole store cached in one file, so that a long recording opens at once.

Opening a store reads every chunk's index file: 1,500 of them for a week recorded at 25 fps.
The cache holds all their frame numbers and times in one file that is mapped into memory, not
read: opening then costs a ``stat`` per chunk. It lives in the user's cache folder
(``index.cachefile.cache_dir``), never in the store: reading a store writes nothing into it.

Never a stale answer: each chunk's entry is keyed on the ``os.stat`` of the index file it was
loaded from (which file, inode, size, mtime_ns, ctime_ns) and is used only while that file is
still exactly the same; anything else (an index rewritten, replaced, touched, added or removed)
is read from the chunk's own file and the cache is rewritten. A file changed so recently that a
second change could leave its timestamps as they are is not cached until it has settled. A chunk
with a journal (a writer may be adding frames to it) is always read afresh and never cached.

The cache only saves time. It is written (to a temporary file, then renamed over the old one)
when missing or stale, for stores of at least ``MIN_CHUNKS`` chunks, when no writer holds the
store and the cache folder is writable; otherwise, and whenever the file is damaged or foreign,
the chunk indexes are read as usual. Upstream imgstore never looks at it (it lists only chunk
folders, or files with the video extension).

This module is the policy (when the cache answers, when it is rewritten, where each chunk's
frames come from); the file itself is read and written by ``index.cachefile``.
"""

from __future__ import annotations

import itertools
import logging
import os
import stat
import time
from typing import Callable, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np

from ..constants import STORE_LOCK_FILENAME
from ..durability.journal import JOURNAL_EXTENSION
from ..errors import ChunkIndexError
from ..io.fs import READ_FLAGS
from .cachefile import (
    CACHE_FILENAME,
    CacheCapacityError,
    CacheEntry,
    CacheFile,
    CacheWriter,
    ChunkKey,
    cache_path,
    read_cache,
)
from .chunkfile import INDEX_EXTENSIONS, ChunkArrays, ReadBuffer, load_chunk_index, read_npz_frame_arrays
from .frametable import FrameTable, FrameTableBuilder
from .storeindex import ImgStoreIndex

log = logging.getLogger(__name__)

#: stores with fewer chunks open fast enough from their chunk indexes: no cache file for them
MIN_CHUNKS = 8
#: an index file changed less than this long ago is not cached yet: a second change within the
#: timestamp granularity of its file system (2 s on FAT) could leave its stat unchanged
SETTLE_NS = 2_000_000_000

#: how many index files ahead of the one being parsed the kernel is asked to read: on a cold page
#: cache, a week's 1,500 files are then read from the disk concurrently, not one by one (256 files
#: of a 10,000-frame chunk are 40 MB; 32 ahead opened such a store in 0.75 s, 256 ahead in 0.65 s)
READ_AHEAD = 256

#: ``_chunk_key`` of a chunk with a journal: read afresh every time, never cached
VOLATILE = "volatile"


#: where a whole store's index may come from when the cache cannot answer (its sealed index)
Fallback = Optional[Callable[[], Optional[ImgStoreIndex]]]


def load_index(store_dir: str, chunks: Sequence[Tuple[int, str]], fallback: Fallback = None) -> ImgStoreIndex:
    """The index of a store's chunks (``(chunk_n, index path without extension)``), through its cache.

    Answers exactly as ``ImgStoreIndex.new_from_chunks(chunks)`` does (chunks whose index is
    missing or unreadable are skipped with a warning), only faster. ``chunks`` must list every
    chunk of the store: the cache is rewritten to hold just these. When the cache cannot answer,
    ``fallback`` (the store's sealed index) is asked before the chunk files are read; its answer
    is not cached.
    """
    chunks = sorted((int(n), base) for n, base in chunks)
    path = cache_path(store_dir)
    if len(chunks) < MIN_CHUNKS and not os.path.exists(path):
        return _from_fallback(fallback) or ImgStoreIndex.new_from_chunks(chunks)
    cache = read_cache(path)
    now = time.time_ns()
    keys = _chunk_keys(store_dir, chunks)
    if cache is not None and _all_cached(cache, chunks, keys):
        log.debug("%s: frame index of %d chunks from %s", store_dir, len(cache.entries), CACHE_FILENAME)
        return _index_from_cache(cache, chunks)
    index = _from_fallback(fallback)
    if index is not None:
        return index

    sources = [_Source(n, base, key, cache, now) for (n, base), key in zip(chunks, keys)]
    keep = [s for s in sources if s.cacheable]
    stale = cache is None or len(keep) != len(cache.entries) or any(s.entry is None for s in keep)
    writable = stale and len(chunks) >= MIN_CHUNKS and _may_write(store_dir)
    if writable and len(keep) == len(sources):
        # every chunk goes into the cache: stream the chunk files into it, then map it
        written = _stream_into_cache(store_dir, sources)
        if written is not None and _all_cached(written, chunks, keys):  # not replaced meanwhile by another
            return _index_from_cache(written, chunks)
    index, entries = _index_in_memory(sources)
    if writable and entries:
        _write_from_table(store_dir, entries, index.table)
    return index


def _from_fallback(fallback: Fallback) -> Optional[ImgStoreIndex]:
    return fallback() if fallback is not None else None


# -- where each chunk's frames come from ---------------------------------------------------------
class _Source:
    """One chunk: its frames come from the cache (``entry``) or from its index file."""

    def __init__(
        self, chunk_n: int, base: str, key: Union[ChunkKey, str, None], cache: Optional[CacheFile], now_ns: int
    ) -> None:
        self.chunk_n, self.base, self.key, self.cache = chunk_n, base, key, cache
        self.entry = cache.entries[chunk_n] if _hit(cache, chunk_n, key) else None
        #: may go into a new cache: cached already, or loaded from a file that has settled
        self.cacheable = isinstance(key, ChunkKey) and (self.entry is not None or _settled(key, now_ns))

    def read(self, buffer: Optional[ReadBuffer] = None) -> ChunkArrays:
        """``(frame_number, frame_time)`` as loading the index file gives them (``ChunkIndexError`` if it cannot).

        The arrays may be views of ``buffer`` (valid until its next read) or of the cache.
        """
        entry = self.entry
        if entry is not None:
            if entry.error:
                raise ChunkIndexError(entry.error)
            sel = slice(entry.start, entry.start + entry.length)
            numbers = self.cache.frame_number[sel]
            if entry.integral and numbers.dtype.kind == "f":
                numbers = numbers.astype(np.int64)
            return numbers, self.cache.frame_time[sel]
        if isinstance(self.key, ChunkKey) and self.key.extension == ".npz":
            arrays = read_npz_frame_arrays(self.base + self.key.extension, buffer)
            if arrays is not None:
                return arrays
        return load_chunk_index(self.base)


def _index_in_memory(sources: List[_Source]) -> Tuple[ImgStoreIndex, List[CacheEntry]]:
    """The index assembled in memory, and the entries a cache of it may hold (positions in its table)."""
    builder = FrameTableBuilder(len(sources))
    paths, entries = {}, []
    for source, arrays in _read_in_order(sources):
        if isinstance(arrays, ChunkIndexError):
            log.warning("skipping chunk %s: %s", source.chunk_n, arrays)
            if source.cacheable:
                entries.append(CacheEntry(source.chunk_n, source.key, builder.frame_count, 0, True, str(arrays)))
            continue
        numbers, times = arrays
        if source.cacheable:
            integral = numbers.dtype.kind in "iu"
            entries.append(CacheEntry(source.chunk_n, source.key, builder.frame_count, len(numbers), integral, ""))
        if len(numbers):
            builder.add(source.chunk_n, numbers, times)
            paths[source.chunk_n] = source.base
    return ImgStoreIndex(table=builder.build(), chunk_paths=paths), entries


def _read_in_order(sources: List[_Source]) -> Iterator[Tuple[_Source, Union[ChunkArrays, ChunkIndexError]]]:
    """Each source with its ``(frame_number, frame_time)``, or the ``ChunkIndexError`` saying why
    they cannot be loaded, in order.

    The arrays may be views of a read buffer that is reused once the caller asks for the next.
    """
    buffer = ReadBuffer()
    for source in sources[:READ_AHEAD]:
        _will_need(source)
    for following, source in itertools.zip_longest(sources[READ_AHEAD:], sources):
        if following is not None:
            _will_need(following)
        yield source, _read_source(source, buffer)


def _will_need(source: _Source) -> None:
    """Ask the kernel to start reading a chunk's index file (a hint: nothing fails if it cannot)."""
    if source.entry is not None or not isinstance(source.key, ChunkKey) or not hasattr(os, "posix_fadvise"):
        return
    try:
        fd = os.open(source.base + source.key.extension, READ_FLAGS)  # never waits (a FIFO in its place)
    except OSError:
        return
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_WILLNEED)
    except OSError:
        pass
    finally:
        os.close(fd)


def _read_source(source: _Source, buffer: ReadBuffer) -> Union[ChunkArrays, ChunkIndexError]:
    try:
        return source.read(buffer)
    except ChunkIndexError as exc:
        return exc


# -- keys ---------------------------------------------------------------------------------------
def _chunk_keys(store_dir: str, chunks: Sequence[Tuple[int, str]]) -> List[Union[ChunkKey, str, None]]:
    """``_chunk_key`` of every chunk; when all index files share a folder (video stores), that
    folder is listed once instead of looking for each chunk's journal and yaml separately."""
    folders = {os.path.dirname(base) for _, base in chunks}
    names: Optional[set] = None
    if len(folders) == 1:
        try:
            names = set(os.listdir(folders.pop()))
        except OSError:
            names = None
    return [_chunk_key(store_dir, base, names) for _, base in chunks]


def _chunk_key(store_dir: str, base: str, names: Optional[set] = None) -> Union[ChunkKey, str, None]:
    """The stat key of the index file a chunk loads from.

    ``VOLATILE`` for a chunk with a journal (being written, or its writer died): it is always
    read afresh. None for a chunk without an index file (loading it says what is wrong).
    ``names``, when given, lists the folder of ``base``.
    """
    name = os.path.basename(base)
    if names is not None:
        if name + JOURNAL_EXTENSION in names:
            return VOLATILE
    elif os.path.lexists(base + JOURNAL_EXTENSION):
        return VOLATILE
    for extension in INDEX_EXTENSIONS:  # the file load_chunk_index picks: npz before yaml
        if names is not None and name + extension not in names:
            continue
        try:
            st = os.stat(base + extension)
        except OSError:
            continue
        if not stat.S_ISREG(st.st_mode):  # loading it says what it is instead
            return None
        return ChunkKey(_relative(store_dir, base), extension, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    return None


def _relative(store_dir: str, path: str) -> str:
    prefix = os.path.join(store_dir, "")
    return path[len(prefix) :] if path.startswith(prefix) else os.path.relpath(path, store_dir)


def _settled(key: ChunkKey, now_ns: int) -> bool:
    return max(key.mtime_ns, key.ctime_ns) < now_ns - SETTLE_NS


def _hit(cache: Optional[CacheFile], chunk_n: int, key: object) -> bool:
    """Whether the cache holds the chunk as loaded from exactly this index file."""
    if cache is None or not isinstance(key, ChunkKey):
        return False
    entry = cache.entries.get(chunk_n)
    return entry is not None and entry.key == key


# -- answering from the cache -------------------------------------------------------------------
def _all_cached(cache: CacheFile, chunks: Sequence[Tuple[int, str]], keys: Sequence[object]) -> bool:
    """Whether the cache holds exactly the chunks that have an index file, each as it is now.

    A chunk without an index file is skipped with the warning loading it gives, as without cache.
    """
    hits = [_hit(cache, n, key) for (n, _), key in zip(chunks, keys)]
    if sum(hits) != len(cache.entries) or not all(hit or key is None for hit, key in zip(hits, keys)):
        return False
    for (chunk_n, base), hit in zip(chunks, hits):
        if not hit:
            try:
                load_chunk_index(base)
            except ChunkIndexError as exc:
                log.warning("skipping chunk %s: %s", chunk_n, exc)
                continue
            return False  # its index appeared meanwhile
    return True


def _index_from_cache(cache: CacheFile, chunks: Sequence[Tuple[int, str]]) -> ImgStoreIndex:
    """The index straight from the mapped columns (the cache holds every chunk that can be read)."""
    ids, starts, paths = [], [0], {}
    for chunk_n, base in chunks:
        entry = cache.entries.get(chunk_n)
        if entry is not None and entry.error:
            log.warning("skipping chunk %s: %s", chunk_n, entry.error)  # as when its file is read
        elif entry is not None and entry.length:
            ids.append(chunk_n)
            starts.append(entry.start + entry.length)
            paths[chunk_n] = base
    table = FrameTable.from_columns(
        np.asarray(ids, dtype=np.int64),
        np.asarray(starts, dtype=np.int64),
        cache.frame_number,
        cache.frame_time,
        cache.numbers_sorted,
        cache.times_sorted,
    )
    return ImgStoreIndex(table=table, chunk_paths=paths)


# -- writing ------------------------------------------------------------------------------------
def _may_write(store_dir: str) -> bool:
    if os.path.exists(os.path.join(store_dir, STORE_LOCK_FILENAME)):
        log.debug("%s: a writer holds the store; its index cache is left alone", store_dir)
        return False
    return True


class _NotWholeNumbers(Exception):
    """A chunk's frame numbers are not whole: the cache is written from the assembled table instead."""


def _stream_into_cache(store_dir: str, sources: List[_Source]) -> Optional[CacheFile]:
    """Write the cache chunk by chunk straight from the index files, and map it; None if that fails.

    The index is never assembled in memory: frame numbers and times go to their places in the
    file as each chunk is read. The times start after room for as many frames as the chunks'
    files could hold (an npz spends at least 16 bytes on a frame); the room left over is a
    hole the file system does not store.
    """
    capacity = sum(_most_frames(source) for source in sources)
    try:
        with CacheWriter(store_dir, capacity) as writer:
            for source, arrays in _read_in_order(sources):
                if isinstance(arrays, ChunkIndexError):  # the warning comes when the index is taken from the cache
                    writer.add(source.chunk_n, source.key, None, None, error=str(arrays))
                    continue
                numbers, times = arrays
                if numbers.dtype.kind not in "iu":
                    raise _NotWholeNumbers(f"chunk {source.chunk_n}: frame numbers not whole")
                writer.add(source.chunk_n, source.key, numbers, times)
            return writer.commit()
    except (OSError, CacheCapacityError, _NotWholeNumbers) as exc:
        log.debug("%s: index cache not streamed (%s)", store_dir, exc)
        return None


def _most_frames(source: _Source) -> int:
    """At most how many frames a chunk's index holds (its frames are not read yet)."""
    if source.entry is not None:
        return source.entry.length
    size = source.key.size
    return size // 16 if source.key.extension == ".npz" else size // 2  # YAML: "- 1" lines at the least


def _write_from_table(store_dir: str, entries: List[CacheEntry], table: FrameTable) -> None:
    """Write the cache holding ``entries``, whose frames are in ``table``."""
    integral = all(e.integral for e in entries)
    frames = sum(e.length for e in entries)
    try:
        with CacheWriter(store_dir, frames, np.int64 if integral else np.float64) as writer:
            for e in entries:
                sel = slice(e.start, e.start + e.length)
                numbers = None if e.error else table.frame_number[sel]
                times = None if e.error else table.frame_time[sel]
                writer.add(e.chunk_n, e.key, numbers, times, error=e.error, integral=e.integral)
            writer.commit()
    except (OSError, CacheCapacityError) as exc:
        log.debug("%s: index cache not written (%s)", store_dir, exc)
