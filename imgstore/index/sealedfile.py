"""The sealed index file's format: a finished store's whole frame index in one file, checked on reading.

A store at a URL otherwise opens with one request per chunk index (1,500 for a week). The
writer, ``repair_store`` and ``imgstore-info --seal`` write ``SEALED_INDEX_FILENAME`` into the
store directory once every chunk is finished: every chunk's frame numbers and times, and what
the chunk's files looked like then (names and sizes), so that a reader can tell a stale file
from a current one (``store.seal`` decides that; this module only reads and writes the bytes).

Layout: a fixed prefix (signature, version, header length, SHA-256 of everything after the
prefix), a JSON header (store identity, chunk list, column encodings), then the two columns,
each as zlib-compressed deltas (or deltas of deltas) of its 64-bit patterns in the narrowest
integer type that holds them, the first value(s) kept in the header, so that every value (NaN
times included) comes back bit for bit. Since version 2 the deltas' bytes are shuffled before
compression (all first bytes, then all second bytes...): a camera's jittered times leave their
high bytes nearly constant and their low bytes random, and apart, zlib packs the former to
almost nothing and stores the latter as they are, which it inflates at the speed of a copy (a
week's times: 26 MB rather than 36 MB, inflated 3-4x faster); and deltas that mostly repeat
(frame numbers counting up) are kept as runs, expanded without inflating a byte per frame.
Version 1 files (unshuffled, no runs) still read. Upstream imgstore never
looks at the file: it lists only chunk folders, or files with the video extension.
"""

from __future__ import annotations

import hashlib
import json
import struct
import zlib
from typing import Any, Dict, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np

from ..errors import ChunkIndexError

try:  # ISA-L's inflate (the same bytes) is 2-3x faster than zlib's: a week's times are 60 MB inflated
    from isal.isal_zlib import decompressobj as _decompressobj
    from isal.isal_zlib import error as _InflateError
except ImportError:  # not installed on this platform
    from zlib import decompressobj as _decompressobj
    from zlib import error as _InflateError
#: what inflating broken bytes raises
_BROKEN_DEFLATE = (zlib.error, _InflateError)

SEALED_INDEX_FILENAME = "imgstore-sealed-index"

_MAGIC = b"IMGSTORE-SEALED-INDEX\n\x00\x00"
#: the version this library writes
VERSION = 2
#: versions read: 1 (deltas not shuffled) and 2
_READ_VERSIONS = (1, 2)
#: signature, version, header length, SHA-256 of header and columns
_PREFIX = struct.Struct("<24sIQ32s")
#: the largest sealed index read: room for years of frames
MAX_SEALED_BYTES = 1 << 31
_MAX_HEADER_BYTES = 1 << 26
_DELTA_DTYPES = ("<i1", "<i2", "<i4", "<i8")
#: deltas are kept as runs when there are at least this many per run (16 bytes a run, 1-8 a delta)
_RUNS_FACTOR = 64


class SealedIndexError(ChunkIndexError):
    """A sealed index that cannot be read: cut, damaged, or not one at all."""


class SealedChunk(NamedTuple):
    """One finished chunk as it was sealed: its files (names relative to the store) and frames."""

    chunk_n: int
    index_name: str  # its index file, e.g. ``000000.npz`` or ``000000/index.npz``
    index_size: int
    data_name: str  # its video file, or its folder of frame files
    data_size: int  # bytes of the video file; -1 for a folder
    frames: int


class SealedIndex(NamedTuple):
    """A sealed index, read and checked: whose store it is, its chunks, and their frames in store order."""

    store_digest: str
    chunks: Tuple[SealedChunk, ...]
    frame_number: np.ndarray  # int64, or float64 when some are not whole
    frame_time: np.ndarray

    def chunk_columns(self) -> Tuple[np.ndarray, np.ndarray]:
        """``(chunk ids, chunk starts)`` of the chunks that hold frames, as ``FrameTable.from_columns`` takes them."""
        ids = [c.chunk_n for c in self.chunks if c.frames]
        starts = np.cumsum([0] + [c.frames for c in self.chunks if c.frames], dtype=np.int64)
        return np.asarray(ids, dtype=np.int64), starts


def store_digest(store_metadata: Dict[str, Any]) -> str:
    """What ties a sealed index to its store: a hash of the store's own metadata (uuid, shape,
    format, creation time...), not of the user metadata, which may be edited after sealing."""
    text = json.dumps(store_metadata, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def encode_sealed_index(
    digest: str, chunks: Sequence[SealedChunk], frame_number: np.ndarray, frame_time: np.ndarray
) -> bytes:
    """The bytes of a sealed index; ``frame_number``/``frame_time`` hold every chunk's frames in store order."""
    if sum(c.frames for c in chunks) != len(frame_number) or len(frame_number) != len(frame_time):
        raise ValueError("the chunks' frame counts do not add up to the columns")
    numbers = np.asarray(frame_number)
    numbers = numbers.astype("<i8") if numbers.dtype.kind in "iub" else numbers.astype("<f8")
    columns, blobs = {}, []
    for name, values in (("frame_number", numbers), ("frame_time", np.asarray(frame_time, dtype="<f8"))):
        description, blob = _pack(values)
        columns[name] = description
        blobs.append(blob)
    header = {
        "store_digest": digest,
        "chunks": [list(c) for c in chunks],
        "columns": columns,
    }
    body = json.dumps(header, separators=(",", ":")).encode("utf-8") + b"".join(blobs)
    header_len = len(body) - sum(len(b) for b in blobs)
    return _PREFIX.pack(_MAGIC, VERSION, header_len, hashlib.sha256(body).digest()) + body


def decode_sealed_index(data: bytes, path: str) -> SealedIndex:
    """A sealed index from its bytes, fully checked (``SealedIndexError`` naming ``path`` if anything is off)."""
    try:
        return _decode(memoryview(data))
    except SealedIndexError as exc:
        raise SealedIndexError(f"{path}: {exc}") from None
    except (ValueError, TypeError, KeyError, IndexError, OverflowError, RecursionError, *_BROKEN_DEFLATE) as exc:
        raise SealedIndexError(f"{path}: not a sealed index ({type(exc).__name__}: {exc})") from None


def _decode(data: memoryview) -> SealedIndex:
    if len(data) < _PREFIX.size:
        raise SealedIndexError("cut short (no header)")
    magic, version, header_len, digest = _PREFIX.unpack_from(data)
    if magic != _MAGIC:
        raise SealedIndexError("not a sealed index (wrong signature)")
    if version not in _READ_VERSIONS:
        raise SealedIndexError(f"version {version}, this library reads versions {_READ_VERSIONS}")
    body = data[_PREFIX.size :]
    if header_len > min(len(body), _MAX_HEADER_BYTES):
        raise SealedIndexError("cut short (header)")
    if hashlib.sha256(body).digest() != digest:
        raise SealedIndexError("damaged or cut (its checksum does not match)")
    header = json.loads(bytes(body[:header_len]))
    chunks = tuple(_chunk(entry) for entry in header["chunks"])
    numbers_in = [c.chunk_n for c in chunks]
    if numbers_in != sorted(set(numbers_in)):
        raise SealedIndexError("chunks listed twice or out of order")
    frames = sum(c.frames for c in chunks)
    at = header_len
    columns: List[np.ndarray] = []
    for name, kinds in (("frame_number", ("<i8", "<f8")), ("frame_time", ("<f8",))):
        description = header["columns"][name]
        column, at = _unpack(body, at, description, frames, kinds, shuffled=version >= 2)
        columns.append(column)
    if at != len(body):
        raise SealedIndexError("bytes left over after the columns")
    return SealedIndex(str(header["store_digest"]), chunks, columns[0], columns[1])


def _chunk(entry: Any) -> SealedChunk:
    chunk_n, index_name, index_size, data_name, data_size, frames = entry
    values = (chunk_n, index_size, data_size, frames)
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        raise SealedIndexError(f"chunk entry {entry!r} is not whole numbers")
    if chunk_n < 0 or index_size < 0 or data_size < -1 or frames < 0:
        raise SealedIndexError(f"chunk entry {entry!r} holds a negative size")
    if not isinstance(index_name, str) or not isinstance(data_name, str):
        raise SealedIndexError(f"chunk entry {entry!r} has no file names")
    return SealedChunk(chunk_n, index_name, index_size, data_name, data_size, frames)


# -- columns ------------------------------------------------------------------------------------
def _pack(values: np.ndarray) -> Tuple[Dict[str, Any], bytes]:
    """A column as zlib-compressed deltas of its 64-bit patterns (exact, whatever the values).

    The first value(s) go in the description (``head``), so that a column of large values
    with small steps takes one or two bytes per frame. Deltas of deltas (``order`` 2) when those
    fit a narrower integer: numbers counting up, times at a steady rate without jitter. Deltas
    that mostly repeat (numbers counting up with a few gaps) are kept as runs (``runs``: how
    many), which a reader expands without inflating a byte per frame.
    """
    bits = values.view("<i8")
    first = np.diff(bits, prepend=np.int64(0))  # wraps around in int64: the sums below undo it exactly
    second = np.diff(first, prepend=np.int64(0))
    order, deltas = 1, first
    if _DELTA_DTYPES.index(_narrowest(second[2:])) < _DELTA_DTYPES.index(_narrowest(first[1:])):
        order, deltas = 2, second
    rest = deltas[order:]
    dtype = _narrowest(rest)
    head = [int(v) for v in deltas[:order]]
    description = {"kind": values.dtype.str, "deltas": dtype, "order": order, "head": head}
    starts = np.flatnonzero(np.diff(rest, prepend=rest[:1] + 1)) if len(rest) else np.zeros(0, np.int64)
    if len(starts) * _RUNS_FACTOR <= len(rest):  # runs: their values, then their lengths, in int64
        lengths = np.diff(starts, append=len(rest))
        blob = zlib.compress(rest[starts].astype("<i8").tobytes() + lengths.astype("<i8").tobytes(), 6)
        description["runs"] = len(starts)
    else:
        narrow = rest.astype(dtype)
        planes = narrow.view(np.uint8).reshape(len(narrow), narrow.itemsize).T  # its bytes, shuffled
        blob = zlib.compress(np.ascontiguousarray(planes).tobytes(), 6)
    description["bytes"] = len(blob)
    return description, blob


def _narrowest(deltas: np.ndarray) -> str:
    """The narrowest of ``_DELTA_DTYPES`` that holds every value of ``deltas``."""
    for dtype in _DELTA_DTYPES:
        info = np.iinfo(dtype)
        if not len(deltas) or (deltas.min() >= info.min and deltas.max() <= info.max):
            return dtype
    return _DELTA_DTYPES[-1]


def _unpack(
    body: memoryview, at: int, description: Dict[str, Any], frames: int, kinds: Tuple[str, ...], shuffled: bool
) -> Tuple[np.ndarray, int]:
    kind, delta_dtype, size = description["kind"], description["deltas"], description["bytes"]
    order, head = description.get("order", 1), description.get("head", [])
    runs = description.get("runs") if shuffled else None  # runs came with version 2
    if kind not in kinds or delta_dtype not in _DELTA_DTYPES or not isinstance(size, int) or size < 0:
        raise SealedIndexError(f"unknown column encoding {description!r}")
    if order not in (1, 2) or isinstance(order, bool) or not _is_head(head, min(order, frames)):
        raise SealedIndexError(f"unknown column encoding {description!r}")
    if runs is not None and (not isinstance(runs, int) or isinstance(runs, bool) or not 0 <= runs <= frames):
        raise SealedIndexError(f"unknown column encoding {description!r}")
    if at + size > len(body):
        raise SealedIndexError("cut short (columns)")
    count, width = frames - len(head), np.dtype(delta_dtype).itemsize
    raw = _inflate(body[at : at + size], count * width if runs is None else 16 * runs)
    column = np.empty(frames, np.int64)
    column[: len(head)] = head
    if runs is not None:
        lengths = np.frombuffer(raw, "<i8", offset=8 * runs)
        if (lengths < 1).any() or int(lengths.sum()) != count:  # (each at most ``frames``: no overflow)
            raise SealedIndexError("a column does not hold one value per frame")
        column[len(head) :] = np.repeat(np.frombuffer(raw, "<i8", count=runs), lengths)
    elif shuffled and width > 1:  # bytes plane by plane: put each value's bytes together again
        narrow = np.empty(count, dtype=delta_dtype)
        into, planes = narrow.view(np.uint8).reshape(count, width), np.frombuffer(raw, np.uint8).reshape(width, count)
        for byte in range(width):
            into[:, byte] = planes[byte]
        column[len(head) :] = narrow
    else:
        column[len(head) :] = np.frombuffer(raw, dtype=delta_dtype)
    for _ in range(order):
        np.cumsum(column, dtype=np.int64, out=column)  # wraps around as the deltas did: exact
    return column.view(kind).astype(kind[1:], copy=False), at + size


def _inflate(blob: memoryview, expected: int) -> bytes:
    """Exactly ``expected`` bytes inflated from ``blob`` (never inflating more), or ``SealedIndexError``."""
    inflater = _decompressobj()
    raw = inflater.decompress(blob, expected + 1)
    if len(raw) != expected or not inflater.eof or inflater.unused_data:
        raise SealedIndexError("a column does not hold one value per frame")
    return raw


def columns_digest(frame_number: np.ndarray, frame_time: np.ndarray) -> Optional[str]:
    """A short digest of the columns (for tests and reports comparing indexes)."""
    h = hashlib.sha256(np.ascontiguousarray(frame_number).tobytes())
    h.update(np.ascontiguousarray(frame_time, dtype=np.float64).tobytes())
    return h.hexdigest()[:16]


def _is_head(head: Any, count: int) -> bool:
    """Whether ``head`` is a column's first ``count`` deltas, int64 values (older seals: none)."""
    if not isinstance(head, list) or len(head) not in (0, count):
        return False
    return all(isinstance(v, int) and not isinstance(v, bool) and -(2**63) <= v < 2**63 for v in head)
