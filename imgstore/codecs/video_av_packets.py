"""A video chunk's packet table: where every frame's bytes are, so that a reader needs no demux pass.

Written into the chunk's index file (one extra array, ``PACKETS_KEY``, that upstream never
reads) when our writer finishes the chunk: for each packet in decode order its byte offset,
size, presentation timestamp, keyframe flag and CRC-32, plus what the decoder needs to start
(codec name, its extradata). A local reader then skips the demux pass that learns the frames'
timestamps; a reader at a URL fetches only the bytes of the GOP it decodes, in one range
request, and feeds the packets to the decoder itself (``PacketTableReader``), with no container.

Trusted only as far as it is checked: the table must fit the file (size, offsets inside it), and
every packet's bytes must match their CRC before they reach the decoder. A hostile or stale
table is a ``FrameReadError`` naming the chunk, never a wrong frame.
"""

from __future__ import annotations

import json
import logging
import mmap
import os
import struct
import zlib
from fractions import Fraction
from typing import Any, Iterator, List, NamedTuple, Optional

import numpy as np

from ..errors import FrameReadError
from ..io.fs import LocalFileSystem
from .base import Shape
from .video_av_base import pyav
from .video_av_index import PacketIndex, index_from_decode_order
from .video_av_read import GOP_END, PyAVChunkReader

log = logging.getLogger(__name__)

#: the name of the array in a chunk's index file
PACKETS_KEY = "imgstore_packets"
_MAGIC = b"IMGSTORE-PACKETS-1\n"
_LENGTH = struct.Struct("<I")
_COLUMNS = (("pos", "<i8"), ("size", "<i4"), ("pts", "<i8"), ("key", "<u1"), ("crc", "<u4"))
#: most packets a table may list (a chunk of a week at 1,000 fps)
_MAX_PACKETS = 1 << 30


class PacketTable(NamedTuple):
    """Every packet of a video chunk, in decode order, and what a decoder needs to start."""

    codec: str
    extradata: bytes
    time_base: Fraction
    file_size: int
    sliced: bool
    step: Optional[int]
    pos: np.ndarray
    size: np.ndarray
    pts: np.ndarray
    key: np.ndarray
    crc: np.ndarray

    def packet_index(self) -> PacketIndex:
        """The reader's packet index, as demuxing the file would give it."""
        keyframes = self.pts[self.key.astype(bool)].tolist()
        return index_from_decode_order(self.pts.tolist(), keyframes, False, self.sliced, self.step)


# -- building (our writer, when it finishes a chunk) ---------------------------------------------
def build_packet_table(path: str) -> Optional[PacketTable]:
    """The packet table of a finished local video chunk; None when its packets cannot all be
    placed in the file (a container that does not store a packet's bytes at its position whole)."""
    av = pyav()
    columns: List[List[int]] = [[] for _ in _COLUMNS]
    durations = set()
    with open(path, "rb") as f, av.open(path) as container:
        size = os.fstat(f.fileno()).st_size
        if not size:
            return None
        data = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        try:
            stream = container.streams.video[0]
            codec = stream.codec_context
            for packet in container.demux(stream):
                if packet.size == 0 or packet.pts is None:
                    continue
                payload = bytes(packet)
                pos = packet.pos
                if pos is None or pos < 0 or data[pos : pos + len(payload)] != payload or packet.is_corrupt:
                    log.debug(
                        "%s: packet at pts %s is not stored whole at its position: no packet table", path, packet.pts
                    )
                    return None
                for column, value in zip(
                    columns, (pos, len(payload), packet.pts, packet.is_keyframe, zlib.crc32(payload))
                ):
                    column.append(int(value))
                if packet.duration:
                    durations.add(int(packet.duration))
            first = bytes(data[columns[0][0] : columns[0][0] + columns[1][0]]) if columns[0] else b""
            table = PacketTable(
                codec.name,
                bytes(codec.extradata or b""),
                Fraction(stream.time_base),
                size,
                b"sliced_threads=1" in first,
                min(durations, default=None),
                *(np.asarray(column, dtype=dtype) for column, (_, dtype) in zip(columns, _COLUMNS)),
            )
        finally:
            data.close()
    return table


def encode_packet_table(table: PacketTable) -> np.ndarray:
    """The table as one uint8 array for the chunk's index file (JSON header, zlib-compressed columns)."""
    header = {
        "codec": table.codec,
        "time_base": [table.time_base.numerator, table.time_base.denominator],
        "file_size": table.file_size,
        "sliced": table.sliced,
        "step": table.step,
        "packets": len(table.pts),
        "extradata": len(table.extradata),
    }
    raw = b"".join(np.ascontiguousarray(getattr(table, name), dtype=dtype).tobytes() for name, dtype in _COLUMNS)
    head = json.dumps(header, separators=(",", ":")).encode("utf-8")
    blob = _MAGIC + _LENGTH.pack(len(head)) + head + table.extradata + zlib.compress(raw, 6)
    return np.frombuffer(blob, dtype=np.uint8)


def decode_packet_table(blob: Any, where: str) -> PacketTable:
    """A packet table from its array, every field checked (``FrameReadError`` naming ``where``)."""
    try:
        return _decode(np.asarray(blob, dtype=np.uint8).tobytes())
    except FrameReadError as exc:
        raise FrameReadError(f"{where}: packet table: {exc}") from None
    except (ValueError, TypeError, KeyError, OverflowError, ZeroDivisionError, RecursionError, zlib.error) as exc:
        raise FrameReadError(f"{where}: packet table cannot be read ({type(exc).__name__}: {exc})") from None


def _decode(data: bytes) -> PacketTable:
    if not data.startswith(_MAGIC) or len(data) < len(_MAGIC) + _LENGTH.size:
        raise FrameReadError("not a packet table")
    at = len(_MAGIC) + _LENGTH.size
    (head_len,) = _LENGTH.unpack_from(data, len(_MAGIC))
    header = json.loads(data[at : at + head_len])
    at += head_len
    count, extra_len, file_size = header["packets"], header["extradata"], header["file_size"]
    step = header["step"]
    for value in (count, extra_len, file_size):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise FrameReadError(f"a size of {value!r}")
    if count > _MAX_PACKETS or at + extra_len > len(data) or (step is not None and not isinstance(step, int)):
        raise FrameReadError("cut short or inconsistent")
    extradata = data[at : at + extra_len]
    expected = count * sum(np.dtype(dtype).itemsize for _, dtype in _COLUMNS)
    inflater = zlib.decompressobj()
    raw = inflater.decompress(data[at + extra_len :], expected + 1)
    if len(raw) != expected or not inflater.eof or inflater.unused_data:
        raise FrameReadError("its columns do not hold one entry per packet")
    columns, offset = [], 0
    for _, dtype in _COLUMNS:
        columns.append(np.frombuffer(raw, dtype=dtype, count=count, offset=offset).astype(dtype[1:]))
        offset += count * np.dtype(dtype).itemsize
    pos, size, pts = columns[0], columns[1], columns[2]
    if count and (pos.min() < 0 or size.min() <= 0 or (pos + size).max() > file_size):
        raise FrameReadError(f"a packet lies outside the file's {file_size} bytes")
    if len(np.unique(pts)) != count:
        raise FrameReadError("two packets share a timestamp")
    if count and not columns[3][0]:
        raise FrameReadError("the first packet is not a keyframe")
    numerator, denominator = header["time_base"]
    return PacketTable(
        str(header["codec"]), extradata, Fraction(numerator, denominator), file_size, bool(header["sliced"]), step,
        *columns,
    )  # fmt: skip


# -- reading through the table at a URL ----------------------------------------------------------
#: packets fetched first when decoding goes on past a fetched run (doubling up to a GOP)
_FIRST_EXTRA_PACKETS = 4


class PacketTableReader(PyAVChunkReader):
    """Frame-exact reading of a chunk at a URL through its packet table: one range request per
    GOP decoded, no container, every packet checked against its CRC before decoding."""

    def __init__(
        self, url: str, imgshape: Shape, imgdtype: str, frame_count: Optional[int], fs: LocalFileSystem,
        table: PacketTable,
    ) -> None:  # fmt: skip
        av = pyav()
        self._table = table
        self._init_state(url, imgshape, imgdtype, frame_count, fs)
        self._container = None
        try:
            self._codec = av.CodecContext.create(table.codec, "r")
        except (av.FFmpegError, ValueError) as exc:
            raise FrameReadError(f"video chunk {url}: no decoder for its codec {table.codec!r} ({exc})") from None
        if table.extradata:
            self._codec.extradata = table.extradata
        self._codec.thread_type = "SLICE" if table.sliced else "AUTO"
        self._can_skip = self._codec.name in ("h264", "hevc")
        self._index = table.packet_index()
        self._order = {int(p): i for i, p in enumerate(table.pts.tolist())}  # pts -> decode position
        self._keys = np.flatnonzero(table.key).tolist()  # decode positions of keyframes
        self._closed = _closed_gop_starts(table.pts, self._keys)

    def _seek_keyframe_before(self, target: int) -> None:
        """Start decoding at the last keyframe (in decode order) before the target's packet."""
        at = self._order[target]
        start = self._keys[max(0, np.searchsorted(self._keys, at, side="right") - 1)]
        self._codec.flush_buffers()
        self._decoded.clear()
        self._packets = self._fetch_from(start)

    def _fetch_from(self, start: int) -> Iterator[Any]:
        """Packets from decode position ``start`` on: to the next keyframe in one request, then
        in runs that double, so that a decoder that needs a few more packets fetches few."""
        av = pyav()
        table, count = self._table, len(self._table.pts)
        stop = self._next_key_after(start)
        extra = _FIRST_EXTRA_PACKETS
        while start < count:
            data = self._fs.read_range(self._path, int(table.pos[start]), self._run_end(start, stop))
            base = int(table.pos[start])
            for i in range(start, stop):
                offset = int(table.pos[i]) - base
                payload = data[offset : offset + int(table.size[i])]
                if len(payload) != int(table.size[i]) or zlib.crc32(payload) != int(table.crc[i]):
                    raise FrameReadError(
                        f"video chunk {self._path}: packet {i} does not match its packet table (stale or damaged)"
                    )
                packet = av.Packet(payload)
                packet.pts = int(table.pts[i])
                packet.time_base = table.time_base
                packet.is_keyframe = bool(table.key[i])
                yield packet
            if stop in self._closed:
                yield GOP_END
            start, stop = stop, min(count, stop + extra)
            extra = min(extra * 2, max(1, self._next_key_after(start) - start))

    def _next_key_after(self, start: int) -> int:
        later = np.searchsorted(self._keys, start, side="right")
        return self._keys[later] if later < len(self._keys) else len(self._table.pts)

    def _run_end(self, start: int, stop: int) -> int:
        table = self._table
        return int((table.pos[start:stop] + table.size[start:stop]).max())

    def close(self) -> None:
        self._packets = None
        self._decoded.clear()
        try:
            self._codec.flush_buffers()  # a decoder freed with frames in flight can wait on its threads for good
        except pyav().FFmpegError:
            pass


def _closed_gop_starts(pts: np.ndarray, keys: List[int]) -> frozenset:
    """Decode positions of the keyframes that start a closed GOP: shown after every packet before
    it and before every packet after it (an open GOP's leading frames, which need the GOP before,
    come after its keyframe but are shown before it)."""
    if len(pts) < 2:
        return frozenset()
    shown_last_before = np.maximum.accumulate(pts)  # [k]: the latest of packets 0..k
    shown_first_after = np.minimum.accumulate(pts[::-1])[::-1]  # [k]: the earliest of packets k..end
    return frozenset(k for k in keys if 0 < k and shown_last_before[k - 1] < pts[k] and shown_first_after[k] == pts[k])
