"""The packet index of a video chunk: where each frame is, learnt by demuxing without decoding.

Frame ``i`` of a chunk is its ``i``-th presentation timestamp; the keyframes say where decoding
can start. The index is cached per file version, so that every reader of a chunk (and the
check after writing it) demuxes it once.
"""

from __future__ import annotations

import collections
import logging
import threading
from typing import Any, List, NamedTuple, Optional, Tuple

from ..io.fs import LOCAL, LocalFileSystem
from .video_av_base import pyav

log = logging.getLogger(__name__)


class PacketIndex(NamedTuple):
    """Presentation timestamps of a chunk's frames (frame ``i`` = ``pts[i]``) and its keyframes.

    ``reorder`` is the most positions a frame is decoded after frames shown later (B-frames);
    ``cut`` says the file ends in a damaged packet (a writer stopped mid-frame); ``sliced``
    says frames are split into slices (x264's sliced threads), which decode fastest in parallel.
    ``step`` is the shortest frame duration the packets declare (None when they declare none).
    """

    pts: List[int]
    keyframes: List[int]
    reorder: int
    cut: bool
    sliced: bool
    step: Optional[int] = None


#: packet indexes of the files indexed last, by (path, version, file system, frames expected)
_CACHE: collections.OrderedDict[Tuple[Any, ...], PacketIndex] = collections.OrderedDict()
_CACHE_SIZE = 256
_CACHE_LOCK = threading.Lock()


def packet_index(
    path: str, fs: LocalFileSystem = LOCAL, expected: Optional[int] = None, container: Any = None
) -> PacketIndex:
    """The packet index of a chunk, cached for as long as the file stays the same.

    ``expected`` (the frames the chunk's index lists) lets a URL chunk be indexed from its
    container's own index when that lists exactly as many frames. ``container``: the file
    already open (a reader's own), demuxed instead of opening it again when the index is not
    cached; it is left at its end, for the caller to seek.
    """
    key = (path, fs.version(path), fs, expected)
    with _CACHE_LOCK:
        index = _CACHE.get(key)
        if index is not None:
            _CACHE.move_to_end(key)
            return index
    index = _demux_index(path, fs, expected, container)
    with _CACHE_LOCK:
        _CACHE[key] = index
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return index


def _demux_index(path: str, fs: LocalFileSystem, expected: Optional[int], container: Any) -> PacketIndex:
    """Demux a chunk once (no decoding) to learn its frames' timestamps.

    A chunk at a URL whose container indexes every frame up front (MP4 with its sample table,
    AVI with its index) is not demuxed: its index is read from the container's own, so that one
    frame costs a few requests rather than the whole chunk.
    """
    av = pyav()
    if fs.costly_reads and expected:
        with av.open(fs.source(path)) as opened:
            index = _index_from_entries(opened, opened.streams.video[0], expected)
        if index is not None:
            return index
    if container is None:
        with av.open(fs.source(path)) as opened:
            return _demux_all(opened)
    return _demux_all(container)


def _demux_all(container: Any) -> PacketIndex:
    """The packet index from every packet of an open container, demuxed from where it stands."""
    stream = container.streams.video[0]
    decode_order: List[int] = []
    keyframes: List[int] = []
    durations = set()
    cut = sliced = False
    for packet in container.demux(stream):
        if packet.pts is None or packet.size == 0:
            continue
        if not decode_order:  # x264 writes its settings into the first frame
            sliced = b"sliced_threads=1" in bytes(packet)
        if packet.is_corrupt:  # a frame the writer did not finish: nothing after it is whole
            cut = True
            break
        decode_order.append(packet.pts)
        if packet.duration:
            durations.add(int(packet.duration))
        if packet.is_keyframe:
            keyframes.append(packet.pts)
    return index_from_decode_order(decode_order, keyframes, cut, sliced, min(durations, default=None))


def index_from_decode_order(
    decode_order: List[int], keyframes: List[int], cut: bool, sliced: bool, step: Optional[int]
) -> PacketIndex:
    """The packet index of packets whose timestamps come in ``decode_order`` (``keyframes``: theirs)."""
    pts = sorted(decode_order)
    rank = {value: position for position, value in enumerate(pts)}
    reorder = max((position - rank[value] for position, value in enumerate(decode_order)), default=0)
    return PacketIndex(pts, sorted(keyframes), reorder, cut, sliced, step)


def _index_from_entries(container: Any, stream: Any, expected: int) -> Optional[PacketIndex]:
    """The packet index from the demuxer's index entries, when they list every frame at a constant rate.

    Entries carry decode timestamps; at a constant frame rate the presentation timestamps are
    the same values shifted by the decoder delay, which the first packet shows. The reader
    checks every frame's timestamp as it decodes, so a file this does not fit gives an error,
    never a wrong frame.
    """
    entries = stream.index_entries
    if len(entries) != expected:
        return None
    dts = [entry.timestamp for entry in entries]
    steps = {b - a for a, b in zip(dts, dts[1:])}
    if len(steps) > 1 or (steps and min(steps) <= 0):
        return None
    first = next((p for p in container.demux(stream) if p.pts is not None and p.size), None)
    if first is None or first.dts is None or first.dts != dts[0]:
        return None
    offset = first.pts - first.dts
    step = steps.pop() if steps else None
    keyframes = [entry.timestamp + offset for entry in entries if entry.is_keyframe]
    reorder = round(offset / step) if step else 0
    sliced = b"sliced_threads=1" in bytes(first)
    return PacketIndex([d + offset for d in dts], keyframes, reorder, False, sliced, step)


def regular_run(index: PacketIndex) -> int:
    """How many leading frames follow each other at the declared frame duration, without a gap.

    A file cut while B-frames were pending can hold a frame shown after one that never reached
    it, with nothing out of order among the packets that did: only the timestamps show the gap.
    Without declared durations, the smallest step between frames stands in.
    """
    pts = index.pts
    if len(pts) < 2:
        return len(pts)
    step = index.step or min(b - a for a, b in zip(pts, pts[1:]))
    for i in range(1, len(pts)):
        if pts[i] - pts[i - 1] > step * 1.5:
            return i
    return len(pts)


def keyframe_positions(path: str) -> Optional[List[int]]:
    """Positions (presentation order) of a video chunk's keyframes, from ``packet_index``.

    None when the file cannot be demuxed here (a reader would then say what is wrong).
    """
    try:
        index = packet_index(path)
    except Exception as exc:  # any demux failure only costs what the caller aligns; reading reports it
        log.info("keyframes of %s unknown (%s)", path, exc)
        return None
    rank = {pts: position for position, pts in enumerate(index.pts)}
    return sorted(rank[pts] for pts in index.keyframes if pts in rank)
