"""The chunk journal: each frame's number and time, appended as it is written.

Upstream writes a chunk's index only when the chunk is finished, so a writer that dies mid-chunk
leaves every frame of that chunk without a number or time. While a chunk is open we append one
fixed-size, checksummed record per frame to ``<index base>.journal``; the record reaches the
kernel before ``add_image`` returns, so it survives the writer being killed (and, after
``flush()``, a power cut). When the chunk is finished its ``index.npz`` is written as usual and
the journal is deleted, so a cleanly closed store looks exactly like upstream's.
"""

from __future__ import annotations

import logging
import os
import struct
import zlib
from typing import NamedTuple

import numpy as np

from ..errors import ChunkIndexError
from ..io.fs import WRITE_FLAGS, read_regular, write_all

log = logging.getLogger(__name__)

JOURNAL_EXTENSION = ".journal"
#: file signature and format version
MAGIC = b"IMGSTJ\x00\x01"
#: frame number (int64) and frame time (float64), then the CRC-32 of those 16 bytes
_PAYLOAD = struct.Struct("<qd")
_RECORD = struct.Struct("<qdI")
#: a journal larger than this is not one of ours (chunks hold far fewer frames)
_MAX_RECORDS = 50_000_000


class JournalContents(NamedTuple):
    """The frames a journal lists, and whether its last record was cut or damaged."""

    frame_number: np.ndarray
    frame_time: np.ndarray
    damaged_tail: bool


class ChunkJournal:
    """Appends frame records to one chunk's journal file.

    The file is created with the chunk, before any frame: a chunk whose writer died before its
    first frame is then known to be empty, not mistaken for one whose index was lost.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd = os.open(path, WRITE_FLAGS | os.O_APPEND, 0o644)
        try:
            write_all(self._fd, MAGIC)
        except BaseException:
            os.close(self._fd)
            raise

    def append(self, frame_number: int, frame_time: float) -> None:
        payload = _PAYLOAD.pack(frame_number, frame_time)
        write_all(self._fd, payload + struct.pack("<I", zlib.crc32(payload)))

    def sync(self) -> None:
        """Make the records written so far durable against a power cut, not only a crash."""
        if self._fd >= 0:
            os.fsync(self._fd)

    def close(self) -> None:
        if self._fd >= 0:
            fd, self._fd = self._fd, -1  # closed even when close() reports an error (as the kernel does)
            os.close(fd)

    def remove(self) -> None:
        """Close and delete: the chunk's index now holds everything the journal did."""
        self.close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass


def journal_path(index_base: str) -> str:
    """The journal of the chunk whose index is ``index_base`` + ``.npz``."""
    return index_base + JOURNAL_EXTENSION


def read_journal(path: str) -> JournalContents:
    """The records of a journal, up to the first cut or damaged one.

    A writer killed mid-record leaves a short last record; a power cut can leave zeros or
    garbage at the end. Both end the journal there (``damaged_tail``), since every record before
    them was written whole. A file that is not a journal at all raises ``ChunkIndexError``.
    """
    try:  # a regular file only, read up to its size: never a FIFO waited on, never /dev/zero read on
        data = read_regular(path, len(MAGIC) + _RECORD.size * _MAX_RECORDS + _RECORD.size - 1)
    except OSError as exc:
        raise ChunkIndexError(f"{path}: cannot read journal ({exc.strerror or exc})") from None
    if not data.startswith(MAGIC):
        if len(data) < len(MAGIC) and MAGIC.startswith(data):  # killed while writing the header
            return JournalContents(np.zeros(0, np.int64), np.zeros(0, np.float64), bool(data))
        raise ChunkIndexError(f"{path}: not a chunk journal (bad signature)")
    body = memoryview(data)[len(MAGIC) :]
    whole = len(body) // _RECORD.size
    records = np.frombuffer(body[: whole * _RECORD.size], dtype=np.dtype([("n", "<i8"), ("t", "<f8"), ("crc", "<u4")]))
    good = whole
    for i in range(whole):
        start = i * _RECORD.size
        if zlib.crc32(body[start : start + _PAYLOAD.size]) != int(records["crc"][i]):
            good = i
            break
    damaged = good < whole or len(body) % _RECORD.size != 0
    if damaged:
        log.debug("%s: journal ends in a cut or damaged record after %d frames", path, good)
    return JournalContents(records["n"][:good].astype(np.int64), records["t"][:good].astype(np.float64), damaged)
