"""Copying some of a video chunk's frames into a new chunk without decoding them (a remux).

A run can be copied when decoding it needs nothing outside it: it starts at a keyframe, and it
ends where the chunk ends or just before a keyframe that no frame of the run is decoded after. Its packets
are then written as they are into a new file of the same container, their timestamps moved so
that the run starts at zero. Edits use this so that a trim re-encodes at most the partial GOPs
at its two ends.

Frames that are not a run (every N-th frame) can be copied when each of them decodes alone: all
keyframes, in a chunk whose frames are never reordered (MJPEG, all-intra video). Their packets
are then given consecutive timestamps, one frame step apart, so that the new chunk plays (and an
AVI, which has no timestamps, indexes) them one after another.
"""

from __future__ import annotations

import functools
import logging
import os
from typing import List, Sequence, Set

from .video_av_base import pyav
from .video_av_index import PacketIndex, packet_index

log = logging.getLogger(__name__)


def can_copy_run(path: str, frame_idxs: Sequence[int], frame_count: int) -> bool:
    """Whether frames ``frame_idxs`` of the chunk at ``path`` decode on their own: a run that
    does, or frames that each decode alone (see the module's description)."""
    if not len(frame_idxs) or not os.path.isfile(path):
        return False
    first, last = int(frame_idxs[0]), int(frame_idxs[-1])
    try:
        index = packet_index(path)
    except Exception as exc:  # a chunk this cannot demux is decoded (and its problem reported) instead
        log.info("%s cannot be copied (%s)", path, exc)
        return False
    if len(index.pts) != frame_count or index.cut:
        return False
    keyframes = set(index.keyframes)
    if list(frame_idxs) != list(range(first, last + 1)):
        return _each_decodes_alone(index, frame_idxs, keyframes)
    if index.pts[first] not in keyframes:
        return False
    if last == frame_count - 1:
        return True
    following = index.pts[last + 1]
    if following not in keyframes:
        return False
    # a cut before the next keyframe: safe when no frame shown before it is decoded after it (no
    # frame of the run needs it, as B-frames of an open GOP would)
    return index.reorder == 0 or not _shown_earlier_decoded_later(path, following)


def _each_decodes_alone(index: PacketIndex, frame_idxs: Sequence[int], keyframes: Set[int]) -> bool:
    """Whether frames ``frame_idxs`` (in increasing order) are all keyframes of a chunk that
    reorders no frames, so each decodes alone and their packets come in the order shown."""
    positions = [int(i) for i in frame_idxs]
    if index.reorder or any(b <= a for a, b in zip(positions, positions[1:])):
        return False
    if positions[0] < 0 or positions[-1] >= len(index.pts):
        return False
    return all(index.pts[i] in keyframes for i in positions)


def _shown_earlier_decoded_later(path: str, keyframe_pts: int) -> bool:
    """Whether any frame shown before the keyframe at ``keyframe_pts`` is decoded after it."""
    order = _decode_order(path, os.stat(path).st_mtime_ns, os.stat(path).st_size)
    after = order[order.index(keyframe_pts) + 1 :]
    return any(pts < keyframe_pts for pts in after)


@functools.lru_cache(maxsize=16)
def _decode_order(path: str, mtime_ns: int, size: int) -> List[int]:
    """Presentation timestamps of a chunk's packets in decoding order (cached per file version)."""
    with pyav().open(path) as source:
        stream = source.streams.video[0]
        return [p.pts for p in source.demux(stream) if p.pts is not None and p.size]


def copy_run(path: str, frame_idxs: Sequence[int], target: str, container_format: str) -> None:
    """Write frames ``frame_idxs`` (a run ``can_copy_run`` accepted) of ``path`` to a new file ``target``."""
    index = packet_index(path)
    first, last = int(frame_idxs[0]), int(frame_idxs[-1])
    wanted = {index.pts[int(i)] for i in frame_idxs}
    run = len(wanted) == last - first + 1
    step = index.step or _smallest_step(index.pts)
    av = pyav()
    with av.open(path) as source:
        in_stream = source.streams.video[0]
        with av.open(target, "w", format=container_format) as out:
            out_stream = out.add_stream_from_template(in_stream)
            offset = None
            kept = 0
            for packet in source.demux(in_stream):
                if packet.pts is None or packet.size == 0 or packet.pts not in wanted:
                    continue
                if not run:  # frames that each decode alone, in the order shown: one step apart
                    packet.pts = packet.dts = kept * step
                else:
                    if offset is None:  # the run's keyframe comes first in decoding order
                        offset = packet.dts if packet.dts is not None else packet.pts
                    packet.pts -= offset
                    if packet.dts is not None:
                        packet.dts -= offset
                kept += 1
                packet.stream = out_stream
                out.mux(packet)


def _smallest_step(pts: Sequence[int]) -> int:
    """The shortest time between two frames, for a chunk whose packets declare no duration."""
    return min((b - a for a, b in zip(pts, pts[1:])), default=1) or 1
