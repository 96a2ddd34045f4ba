"""Copying a run of a video chunk's frames into a new chunk without decoding them (a remux).

A run can be copied when decoding it needs nothing outside it: it starts at a keyframe, and it
ends where the chunk ends or just before a keyframe that no frame of the run is decoded after. Its packets
are then written as they are into a new file of the same container, their timestamps moved so
that the run starts at zero. Edits use this so that a trim re-encodes at most the partial GOPs
at its two ends.
"""

from __future__ import annotations

import functools
import logging
import os
from typing import List, Sequence

from .video_av_base import pyav
from .video_av_index import packet_index

log = logging.getLogger(__name__)


def can_copy_run(path: str, frame_idxs: Sequence[int], frame_count: int) -> bool:
    """Whether frames ``frame_idxs`` of the chunk at ``path`` are a run that decodes on its own."""
    if not frame_idxs or not os.path.isfile(path):
        return False
    first, last = int(frame_idxs[0]), int(frame_idxs[-1])
    if list(frame_idxs) != list(range(first, last + 1)):
        return False
    try:
        index = packet_index(path)
    except Exception as exc:  # a chunk this cannot demux is decoded (and its problem reported) instead
        log.info("%s cannot be copied (%s)", path, exc)
        return False
    if len(index.pts) != frame_count or index.cut:
        return False
    keyframes = set(index.keyframes)
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
    wanted = set(index.pts[first : last + 1])
    av = pyav()
    with av.open(path) as source:
        in_stream = source.streams.video[0]
        with av.open(target, "w", format=container_format) as out:
            out_stream = out.add_stream_from_template(in_stream)
            offset = None
            for packet in source.demux(in_stream):
                if packet.pts is None or packet.size == 0 or packet.pts not in wanted:
                    continue
                if offset is None:  # the run's keyframe comes first in decoding order
                    offset = packet.dts if packet.dts is not None else packet.pts
                packet.pts -= offset
                if packet.dts is not None:
                    packet.dts -= offset
                packet.stream = out_stream
                out.mux(packet)
