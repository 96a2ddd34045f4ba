"""Video chunks written and read with PyAV (FFmpeg), the default video backend: the codec.

Reading is frame-exact: each chunk gets a packet index (presentation timestamps and keyframes,
from demuxing without decoding), so frame ``i`` of a chunk is the ``i``-th presentation
timestamp, reached by seeking to the keyframe before it and decoding forward. Reading the next
frame after any read just decodes on, never re-seeks.

The work lives beside this module: ``video_av_base`` (PyAV, the pixel-format table, opening an
output), ``video_av_write`` (the chunk writer), ``video_av_index`` (the packet index) and
``video_av_read`` (the chunk reader). Their public names are importable from here too.
"""

from __future__ import annotations

import io
import logging
from typing import Any, Dict, List, Mapping, Optional, Sequence

import numpy as np

from ..errors import FrameReadError
from ..io.fs import LOCAL, LocalFileSystem
from .base import ChunkReader, ChunkWriter, Shape
from .video import VideoCodec, VideoFormat, resolve_settings
from .video_av_base import FULL_RANGE, NDARRAY_FORMATS, close_quietly, crash_safe_muxer_options, pyav
from .video_av_copy import can_copy_run, copy_run
from .video_av_index import PacketIndex, keyframe_positions, packet_index
from .video_av_packets import (
    PACKETS_KEY,
    PacketTable,
    PacketTableReader,
    build_packet_table,
    decode_packet_table,
    encode_packet_table,
)
from .video_av_read import PyAVChunkReader
from .video_av_write import MuxerFlush, PyAVChunkWriter, check_frames_written

__all__ = [
    "FULL_RANGE",
    "NDARRAY_FORMATS",
    "MuxerFlush",
    "PacketIndex",
    "PyAVChunkReader",
    "PyAVChunkWriter",
    "PyAVVideoCodec",
    "can_encode",
    "check_frames_written",
    "close_quietly",
    "crash_safe_muxer_options",
    "packet_index",
    "pyav",
]

log = logging.getLogger(__name__)


class PyAVVideoCodec(VideoCodec):
    """A video chunk format encoded and decoded by FFmpeg through PyAV."""

    backend = "av"

    def _probe(self) -> bool:
        return can_encode(self.format)

    def check_options(self, imgshape: Shape, imgdtype: str, options: Mapping[str, Any]) -> None:
        resolve_settings(self.format, imgshape, imgdtype, options)

    def open_writer(
        self, chunk_path: str, imgshape: Shape, imgdtype: str, options: Optional[Mapping[str, Any]] = None
    ) -> ChunkWriter:
        return PyAVChunkWriter(chunk_path, self.format, imgshape, imgdtype, options)

    reads_index_notes = True

    def index_notes(self, chunk_path: str) -> Dict[str, np.ndarray]:
        """The chunk's packet table (``video_av_packets``); nothing when it cannot be made, which
        only costs its readers a demux pass."""
        try:
            table = build_packet_table(chunk_path)
        except Exception as exc:  # any failure to index only loses the shortcut
            log.warning("%s: no packet table (%s); readers demux the chunk instead", chunk_path, exc)
            return {}
        return {} if table is None or not len(table.pts) else {PACKETS_KEY: encode_packet_table(table)}

    def open_reader(
        self,
        chunk_path: str,
        imgshape: Shape,
        imgdtype: str,
        frame_count: Optional[int] = None,
        notes: Optional[Mapping[str, Any]] = None,
    ) -> ChunkReader:
        table = _packet_table(notes, chunk_path, LOCAL)
        known = table.packet_index() if table is not None else _known_index(notes)  # no demux pass
        return PyAVChunkReader(chunk_path, imgshape, imgdtype, frame_count, known_index=known)

    def open_remote_reader(
        self,
        chunk_url: str,
        imgshape: Shape,
        imgdtype: str,
        frame_count: Optional[int],
        fs: LocalFileSystem,
        notes: Optional[Mapping[str, Any]] = None,
    ) -> ChunkReader:
        table = _packet_table(notes, chunk_url, fs)
        if table is not None:  # only the bytes of the GOPs decoded, and no container to demux
            return PacketTableReader(chunk_url, imgshape, imgdtype, frame_count, fs, table)
        # PyAV reads through the file object: FFmpeg asks only for the byte ranges it demuxes
        return PyAVChunkReader(chunk_url, imgshape, imgdtype, frame_count, fs=fs, known_index=_known_index(notes))

    def keyframe_positions(self, chunk_path: str) -> Optional[List[int]]:
        return keyframe_positions(chunk_path)

    def can_copy_frames(self, source: str, frame_idxs: Sequence[int], frame_count: int) -> bool:
        """A run of frames that decodes on its own (see ``video_av_copy``), the whole chunk included."""
        return can_copy_run(source, frame_idxs, frame_count)

    def copy_frames(self, source: str, frame_idxs: Sequence[int], target: str) -> None:
        """The whole chunk as a file copy; a run of it remuxed into a new file of the same container."""
        if list(frame_idxs) == list(range(len(packet_index(source).pts))):
            super().copy_frames(source, frame_idxs, target)
            return
        try:
            copy_run(source, frame_idxs, target, self.format.container)
        except BaseException:
            self.remove_copied_frames(target, len(frame_idxs))
            raise

    def count_frames(self, chunk_path: str) -> Optional[int]:
        try:
            return len(packet_index(chunk_path).pts)
        except (pyav().FFmpegError, IndexError, UnicodeDecodeError) as exc:  # IndexError: no video stream at all
            raise FrameReadError(f"{chunk_path} is not a readable video ({exc or 'no video stream'})") from None


#: the notes key of a packet index the chunk's opener already knows (a plain video's, as probed
#: and salvaged: its frames are the file's own, so a cut file's whole frames are all placed)
KNOWN_INDEX_KEY = "packet_index"


def _known_index(notes: Optional[Mapping[str, Any]]) -> Optional[PacketIndex]:
    known = (notes or {}).get(KNOWN_INDEX_KEY)
    return known if isinstance(known, PacketIndex) else None


def _packet_table(notes: Optional[Mapping[str, Any]], path: str, fs: LocalFileSystem) -> Optional[PacketTable]:
    """The chunk's packet table from its index notes, if it has one and it fits the file as it is.

    A table of another version of the file (its size differs) is ignored: the chunk is demuxed
    as without one. A table that cannot be read is an error (``FrameReadError``), not ignored.
    """
    blob = (notes or {}).get(PACKETS_KEY)
    if blob is None:
        return None
    table = decode_packet_table(blob, path)
    size = fs.size_if_known(path)
    if size is not None and size != table.file_size:
        log.warning("%s: packet table of a %d-byte file, the file has %d bytes: ignored", path, table.file_size, size)
        return None
    return table


def can_encode(fmt: VideoFormat, writer_class: Optional[type] = None) -> bool:
    """Whether this install really writes the format: write two frames in memory with ``writer_class``."""
    try:
        if fmt.encoder not in pyav().codecs_available:
            raise LookupError(f"no {fmt.encoder} encoder in this FFmpeg build")
        buffer = io.BytesIO()
        writer = (writer_class or PyAVChunkWriter)(buffer, fmt, (64, 64, 3), "uint8", None)
        for _ in range(2):
            writer.write(np.zeros((64, 64, 3), np.uint8))
        writer.close()
        return buffer.tell() > 0
    except Exception as exc:  # any FFmpeg failure means: not writable here
        log.debug("format %s unavailable: %s", fmt.name, exc)
        return False
