"""The packet index of a video chunk: where each frame is, learnt by demuxing without decoding.

Frame ``i`` of a chunk is its ``i``-th presentation timestamp; the keyframes say where decoding
can start. The index is cached per file version, so that every reader of a chunk (and the
check after writing it) demuxes it once.
"""

from __future__ import annotations

import collections
import functools
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
    ``damaged_within`` says a keyframe follows the damaged packet (files joined end to end, or bad
    data in the middle), so the file was not simply cut short.
    """

    pts: List[int]
    keyframes: List[int]
    reorder: int
    cut: bool
    sliced: bool
    step: Optional[int] = None
    damaged_within: bool = False


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
            index = _index_from_entries(opened, opened.streams.video[0], expected, fs.size_if_known(path))
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
    cut = sliced = damaged_within = False
    for packet in container.demux(stream):
        if packet.pts is None or packet.size == 0:
            continue
        if not decode_order:  # x264 writes its settings into the first frame
            sliced = b"sliced_threads=1" in bytes(packet)
        if packet.is_corrupt:  # a frame the writer did not finish: nothing after it is whole
            cut = True
            after = [p.is_keyframe for p in container.demux(stream) if p.size]
            damaged_within = len(after) > 1 and any(after)  # (an MPEG-PS cut flags the packet before the last)
            break
        decode_order.append(packet.pts)
        if packet.duration:
            durations.add(int(packet.duration))
        if packet.is_keyframe:
            keyframes.append(packet.pts)
    index = index_from_decode_order(decode_order, keyframes, cut, sliced, min(durations, default=None))
    return index._replace(damaged_within=damaged_within)


def index_from_decode_order(
    decode_order: List[int], keyframes: List[int], cut: bool, sliced: bool, step: Optional[int]
) -> PacketIndex:
    """The packet index of packets whose timestamps come in ``decode_order`` (``keyframes``: theirs)."""
    pts = sorted(decode_order)
    rank = {value: position for position, value in enumerate(pts)}
    reorder = max((position - rank[value] for position, value in enumerate(decode_order)), default=0)
    return PacketIndex(pts, sorted(keyframes), reorder, cut, sliced, step)


def _index_from_entries(container: Any, stream: Any, expected: int, size: Optional[int]) -> Optional[PacketIndex]:
    """The packet index from the demuxer's index entries, when they list every frame at a constant
    rate and (``size``: the file's, if known) every frame's bytes lie inside the file.

    Entries carry decode timestamps; at a constant frame rate the presentation timestamps are
    the same values shifted by the decoder delay, which the first packet shows. The reader
    checks every frame's timestamp as it decodes, so a file this does not fit gives an error,
    never a wrong frame.
    """
    entries = stream.index_entries
    if len(entries) != expected:
        return None
    if lists_bytes_past_end(stream, size):
        return None  # a file cut short after its header: only demuxing finds where it ends
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


def lists_bytes_past_end(stream: Any, size: Optional[int]) -> bool:
    """Whether the container's index of ``stream`` places a frame's bytes past the end of the
    file (``size``; None: not known, so not): a file cut short after its header was written."""
    return size is not None and any(entry.pos + entry.size > size for entry in stream.index_entries)


def whole_frames(index: PacketIndex, expected: Optional[int] = None) -> int:
    """How many leading frames (presentation order) can be placed for sure.

    A file cut short (fewer frames than ``expected``, or a damaged last packet) lost frames at
    the end of decode order; with B-frames some of them are shown before frames that survived,
    so only the frames shown before the first possible gap are certain. When the ``expected``
    frames are there, one after another with no gap, each is where it is listed: all of them.
    """
    short = expected is not None and len(index.pts) < expected
    # every frame listed is there: as many, with no gap among them (a B-frame the cut lost, with a
    # later frame whole, would be as many but not the first ones)
    whole_list = expected is not None and len(index.pts) == expected and regular_run(index) == len(index.pts)
    if short or (index.cut and not whole_list):
        return max(0, min(len(index.pts) - index.reorder, regular_run(index)))
    return len(index.pts)


#: containers whose packets carry no length of their own, so a packet cut short by the end of
#: the file is handed over as if it were whole (FFmpeg's names)
UNFRAMED_CONTAINERS = frozenset({"mpegts", "mpeg", "mpegvideo", "h264", "hevc"})


def damaged_tail(path: str, fs: LocalFileSystem, index: PacketIndex) -> List[int]:
    """Timestamps of the frames of the last GOPs that decode with errors (a last packet cut short).

    Decodes from the keyframe before the last one (so that frames of the last GOP shown before its
    keyframe are decoded whole); an empty list when they decode cleanly or cannot be reached (the
    reader still refuses any frame that decodes with errors).
    """
    if not index.keyframes:
        return []
    keys = tuple(index.keyframes[-3:])
    return list(_damaged_tail(path, fs.version(path), fs, keys, index.pts[0]))


@functools.lru_cache(maxsize=64)
def _damaged_tail(
    path: str, version: Tuple[Any, ...], fs: LocalFileSystem, keys: Tuple[int, ...], first: int
) -> Tuple[int, ...]:
    """``damaged_tail`` of one version of a file (cached: it decodes up to two GOPs), whose last
    keyframes are ``keys`` and first frame ``first``."""
    start_key = keys[-2] if len(keys) > 1 else keys[-1]
    av = pyav()
    try:
        with av.open(fs.source(path)) as container:
            stream = container.streams.video[0]
            # a demuxer may land just after the keyframe asked for (MPEG-TS does): ask for the one
            # before it, then the start of the file, and decode from the wanted keyframe's packet
            for seek_to in dict.fromkeys([*keys[: keys.index(start_key)], first, 0]):
                container.seek(seek_to, stream=stream, backward=True)
                damaged = _decode_from(container, stream, start_key)
                if damaged is not None:
                    return tuple(damaged)
    except (av.FFmpegError, OSError) as exc:  # the reader reports what is wrong when asked for it
        log.info("the end of %s could not be checked (%s)", path, exc)
    return ()


def _decode_from(container: Any, stream: Any, key_pts: int) -> Optional[List[int]]:
    """Decode the packets from the keyframe at ``key_pts`` on (None: it is not among those demuxed);
    the timestamps of the frames from it on that decode with errors, or whose packet the decoder
    refuses."""
    av = pyav()
    context = stream.codec_context
    context.flush_buffers()
    frames: List[Any] = []
    refused: List[int] = []
    started = False
    for packet in container.demux(stream):
        started = started or (packet.pts == key_pts and packet.is_keyframe)
        if not started:
            continue
        try:
            frames.extend(context.decode(packet if packet.size else None))
        except av.error.EOFError:
            break
        except av.FFmpegError:
            refused.append(packet.pts)
            break
    if not started:
        return None
    damaged = [f.pts for f in frames if f.is_corrupt and f.pts is not None and f.pts >= key_pts]
    return damaged + [pts for pts in refused if pts is not None]


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
