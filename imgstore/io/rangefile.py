"""A file at a URL read through range requests, whose fetched blocks every opening of it shares.

A plain video at a URL is opened several times (its header is read to learn its frames, then
again by each reader): with one block store per file rather than per opening, its header (an
MP4's ``moov``) is fetched once, and a reader fetches only the GOPs it decodes.
"""

from __future__ import annotations

import errno
import io
import threading
from collections import OrderedDict
from typing import Callable

__all__ = ["RangeFile", "SharedBlocks"]


class SharedBlocks:
    """The blocks of one file fetched so far (at most ``max_blocks``, least recently used dropped).

    ``fetch(start, end)`` returns bytes ``start:end`` of the file (one range request). Thread-safe:
    readers in several threads share it.
    """

    def __init__(self, fetch: Callable[[int, int], bytes], size: int, block_size: int, max_blocks: int) -> None:
        self.size = size
        self._fetch = fetch
        self._block_size = block_size
        self._max_blocks = max(2, max_blocks)
        self._blocks: OrderedDict[int, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def read(self, start: int, length: int) -> bytes:
        """Bytes ``start:start + length`` (fewer at the end of the file), fetching what is missing."""
        end = min(start + max(length, 0), self.size)
        if start >= end:
            return b""
        first, last = start // self._block_size, (end - 1) // self._block_size
        with self._lock:
            self._fill(first, last)
            data = b"".join(self._blocks[n] for n in range(first, last + 1))
            for n in range(first, last + 1):
                self._blocks.move_to_end(n)
            while len(self._blocks) > self._max_blocks:
                self._blocks.popitem(last=False)
        offset = start - first * self._block_size
        return data[offset : offset + end - start]

    def _fill(self, first: int, last: int) -> None:
        """Fetch the missing blocks of ``first..last``, each run of them in one request."""
        n = first
        while n <= last:
            if n in self._blocks:
                n += 1
                continue
            run_end = n
            while run_end + 1 <= last and run_end + 1 not in self._blocks:
                run_end += 1
            start, end = n * self._block_size, min((run_end + 1) * self._block_size, self.size)
            data = self._fetch(start, end)
            if len(data) != end - start:  # the file changed, or the server cut its answer
                raise OSError(errno.EIO, f"asked for bytes {start}-{end - 1}, the server sent {len(data)} bytes")
            for k in range(n, run_end + 1):
                offset = (k - n) * self._block_size
                self._blocks[k] = data[offset : offset + self._block_size]
            n = run_end + 1


class RangeFile(io.RawIOBase):
    """A read-only, seekable view of a file through its ``SharedBlocks`` (each opening has its own position)."""

    def __init__(self, blocks: SharedBlocks, name: str) -> None:
        super().__init__()
        self._blocks = blocks
        self._position = 0
        self.name = name

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._blocks.size}[whence]
        if base + offset < 0:
            raise ValueError(f"{self.name}: seek to {base + offset}, before the start")
        self._position = base + offset
        return self._position

    def readinto(self, buffer: bytearray) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        data = self._blocks.read(self._position, len(view))
        view[: len(data)] = data
        self._position += len(data)
        return len(data)

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            size = max(self._blocks.size - self._position, 0)
        data = self._blocks.read(self._position, size)
        self._position += len(data)
        return data
