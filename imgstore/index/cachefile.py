"""The index cache file's format: reading it (checked, its columns mapped) and writing it.

``index.cache`` decides when the cache is used and rewritten; this module knows only the file,
``.imgstore-index-cache`` in the store directory. Layout: a fixed prefix (signature, version,
frame count, where the times start, header length and CRC), the frame numbers (int64, or float64
when some are not whole) of all cached chunks in store order, the times (float64) likewise, then
a JSON header listing each chunk's key and length. The columns are mapped into memory, not read.

A new file is written under a temporary name and renamed over the old one, so that nothing
half-written ever takes the cache's name; a damaged or foreign file reads as no cache at all.
"""

from __future__ import annotations

import hashlib
import json
import logging
import mmap
import os
import struct
import uuid
import zlib
from typing import BinaryIO, Dict, List, NamedTuple, Optional

import numpy as np

from ..io.fs import open_regular

log = logging.getLogger(__name__)

CACHE_FILENAME = ".imgstore-index-cache"

_MAGIC = b"IMGSTORE-INDEX-CACHE\n\x00\x00\x00"
_VERSION = 1
#: signature, version, CRC-32 of the header, frames, offset of the times, header length
_PREFIX = struct.Struct("<24sIIQQQ")
_DATA_OFFSET = 64
#: the largest chunk list read (about 100 bytes a chunk): more than a year of 10,000-frame chunks
_MAX_HEADER_BYTES = 1 << 26
_NUMBER_DTYPES = {"<i8": np.dtype("<i8"), "<f8": np.dtype("<f8")}
_TIME_DTYPE = np.dtype("<f8")


class ChunkKey(NamedTuple):
    """Which index file a chunk was loaded from, and that file's identity and version."""

    base: str  # index path without extension, relative to the store directory
    extension: str
    inode: int
    size: int
    mtime_ns: int
    ctime_ns: int


class CacheEntry(NamedTuple):
    """One chunk in a cache file: where its frames lie in the columns, or why it has none."""

    chunk_n: int
    key: ChunkKey
    start: int  # position of its first frame in the columns
    length: int
    integral: bool  # its frame numbers are whole (loading its index gives int64)
    error: str  # why its index cannot be loaded ('' when it can)


class CacheFile(NamedTuple):
    """A cache file, checked, with its columns mapped."""

    entries: Dict[int, CacheEntry]
    frame_number: np.ndarray
    frame_time: np.ndarray
    numbers_sorted: Optional[bool]
    times_sorted: Optional[bool]


#: the environment variable naming the folder of index caches (default: the user's cache folder)
CACHE_DIR_VARIABLE = "IMGSTORE_CACHE_DIR"


def cache_dir() -> str:
    """The folder of this user's index caches: ``$IMGSTORE_CACHE_DIR``, else ``$XDG_CACHE_HOME/imgstore``
    (``~/.cache/imgstore``), so that reading a store never writes into it."""
    chosen = os.environ.get(CACHE_DIR_VARIABLE)
    if chosen:
        return chosen
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "imgstore", "index")


def cache_path(store_dir: str) -> str:
    """Where the index cache of the store at ``store_dir`` is kept: in ``cache_dir()``, named by the
    store directory's identity (device and inode), so that the cache follows a store that is moved
    or renamed. Each of its entries is checked against the chunk's own index file besides, so a
    directory that reuses an inode never meets a stale answer."""
    try:
        st = os.stat(store_dir)
        name = f"store-{st.st_dev:x}-{st.st_ino:x}"
    except OSError:
        real = os.path.realpath(store_dir)
        name = "path-" + hashlib.sha256(real.encode("utf-8", "surrogateescape")).hexdigest()[:32]
    return os.path.join(cache_dir(), name + CACHE_FILENAME)


def read_cache(path: str) -> Optional[CacheFile]:
    """The cache file, checked and mapped; None when there is none or it cannot be trusted."""
    try:
        with open_regular(path) as f:  # a FIFO or a device in its place is ignored, never waited on
            size = os.fstat(f.fileno()).st_size
            prefix = f.read(_PREFIX.size)
            if len(prefix) < _PREFIX.size:
                raise ValueError("too short")
            magic, version, crc, frames, times_at, header_len = _PREFIX.unpack(prefix)
            header_at = times_at + 8 * frames
            if magic != _MAGIC or version != _VERSION or size != header_at + header_len:
                raise ValueError(f"not a complete version {_VERSION} index cache")
            if header_len > _MAX_HEADER_BYTES:
                raise ValueError(f"a header of {header_len} bytes")
            if times_at < _DATA_OFFSET + 8 * frames or times_at % 8:
                raise ValueError("times overlap the numbers")
            f.seek(header_at)
            data = f.read(header_len)
            if zlib.crc32(data) != crc:
                raise ValueError("damaged header")
            header = json.loads(data)
            return _parse(header, f, frames, times_at)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError, KeyError, IndexError, OverflowError, RecursionError) as exc:
        log.debug("%s: ignored (%s)", path, exc)
        return None


def _parse(header: dict, f: BinaryIO, frames: int, times_at: int) -> CacheFile:
    number_dtype = _NUMBER_DTYPES[header["number_dtype"]]
    entries: Dict[int, CacheEntry] = {}
    start = 0
    for chunk_n, base, extension, inode, size, mtime_ns, ctime_ns, length, integral, error in header["chunks"]:
        key = ChunkKey(str(base), str(extension), int(inode), int(size), int(mtime_ns), int(ctime_ns))
        if int(length) < 0 or int(chunk_n) in entries or (error and length):
            raise ValueError("inconsistent chunk list")
        entries[int(chunk_n)] = CacheEntry(int(chunk_n), key, start, int(length), bool(integral), str(error))
        start += int(length)
    if start != frames:
        raise ValueError("chunk lengths do not add up")
    if frames:
        mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        numbers = np.frombuffer(mapped, dtype=number_dtype, count=frames, offset=_DATA_OFFSET)
        times = np.frombuffer(mapped, dtype=_TIME_DTYPE, count=frames, offset=times_at)
    else:
        numbers, times = np.zeros(0, number_dtype), np.zeros(0, _TIME_DTYPE)
    return CacheFile(entries, numbers, times, _flag(header.get("numbers_sorted")), _flag(header.get("times_sorted")))


def _flag(value: object) -> Optional[bool]:
    return value if isinstance(value, bool) else None


class CacheCapacityError(Exception):
    """More frames were added to a ``CacheWriter`` than it was given room for."""


class CacheWriter:
    """Writes a new cache file under a temporary name; ``commit`` renames it over the old one.

    ``capacity`` is the most frames the chunks added may hold (``CacheCapacityError`` beyond it).
    Leaving the ``with`` block removes a file not committed: nothing half-written ever takes the
    cache's name.
    """

    def __init__(self, store_dir: str, capacity: int, number_dtype: type = np.int64) -> None:
        self.store_dir = store_dir
        self._path = cache_path(store_dir)
        self._tmp = f"{self._path}.{uuid.uuid4().hex[:8]}.tmp"
        self._number_dtype = np.dtype(number_dtype).newbyteorder("<")
        self._capacity = capacity
        self._times_at = _DATA_OFFSET + 8 * capacity
        self._f: Optional[BinaryIO] = None
        self._chunks: List[list] = []
        self._frames = 0
        self._order = (_SortCheck(), _SortCheck())

    def __enter__(self) -> CacheWriter:
        os.makedirs(os.path.dirname(self._tmp), exist_ok=True)
        self._f = open(self._tmp, "xb", buffering=0)  # closed in commit() or __exit__
        return self

    def add(
        self,
        chunk_n: int,
        key: ChunkKey,
        numbers: Optional[np.ndarray],
        times: Optional[np.ndarray],
        error: str = "",
        integral: bool = True,
    ) -> None:
        """One chunk's frames (None for a chunk whose index cannot be loaded, with the ``error``)."""
        length = 0 if numbers is None else len(numbers)
        if self._frames + length > self._capacity:
            raise CacheCapacityError("more frames than the index files could hold")
        if length:
            self._f.seek(_DATA_OFFSET + 8 * self._frames)
            self._f.write(memoryview(np.ascontiguousarray(numbers, dtype=self._number_dtype)).cast("B"))
            self._f.seek(self._times_at + 8 * self._frames)
            self._f.write(memoryview(np.ascontiguousarray(times, dtype=_TIME_DTYPE)).cast("B"))
            self._order[0].add(numbers)
            self._order[1].add(times)
        self._chunks.append([chunk_n, *key, length, integral, error])
        self._frames += length

    def commit(self) -> Optional[CacheFile]:
        """Write the header, replace the cache; return it mapped."""
        header = {
            "number_dtype": self._number_dtype.str,
            "numbers_sorted": self._order[0].sorted,
            "times_sorted": self._order[1].sorted,
            "chunks": self._chunks,
        }
        data = json.dumps(header, separators=(",", ":")).encode("utf-8")
        self._f.seek(self._times_at + 8 * self._frames)
        self._f.write(data)
        self._f.truncate()
        self._f.seek(0)
        self._f.write(_PREFIX.pack(_MAGIC, _VERSION, zlib.crc32(data), self._frames, self._times_at, len(data)))
        self._f.close()
        path = self._path
        os.replace(self._tmp, path)
        log.debug("%s: index cache of %d chunks written", self.store_dir, len(self._chunks))
        return read_cache(path)

    def __exit__(self, *exc_info: object) -> None:
        if self._f is not None and not self._f.closed:
            self._f.close()
        try:
            os.unlink(self._tmp)
        except OSError:
            pass


class _SortCheck:
    """Whether a column written chunk by chunk never decreases (and holds no NaN)."""

    def __init__(self) -> None:
        self.sorted = True
        self._last: Optional[float] = None
        self._scratch = np.zeros(0, dtype=bool)

    def add(self, values: np.ndarray) -> None:
        n = len(values)
        if not self.sorted or not n:
            return
        if self._last is not None and not values[0] >= self._last:
            self.sorted = False
            return
        if len(self._scratch) < n:
            self._scratch = np.empty(n, dtype=bool)
        steps = self._scratch[: n - 1]
        np.greater_equal(values[1:], values[:-1], out=steps)
        ordered = bool(steps.all())  # False where a NaN is compared
        if ordered and values.dtype.kind == "f" and np.isnan(values[0]):  # a single NaN compares with nothing
            ordered = False
        self.sorted = ordered
        self._last = values[-1]
