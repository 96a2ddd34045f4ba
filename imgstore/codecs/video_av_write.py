"""Writing one video chunk with PyAV (FFmpeg): any encoder FFmpeg has, muxed crash-safe.

Frames smaller than the encoder handles are padded, grey stored as 4:0:0 says it is full-range,
and every packet reaches the file as it is muxed (see ``crash_safe_muxer_options``); a finished
chunk is demuxed once more to check that it holds every frame.
"""

from __future__ import annotations

import os
from fractions import Fraction
from typing import Any, BinaryIO, Dict, Mapping, Optional, Tuple, Union

import numpy as np

from ..errors import StoreWriteError
from .base import ChunkWriter, Shape, sync_file, write_error
from .video import NOMINAL_FPS, VideoFormat, frame_kind, resolve_settings
from .video_av_base import (
    FULL_RANGE,
    NDARRAY_FORMATS,
    close_quietly,
    crash_safe_muxer_options,
    frame_from_array,
    open_video_output,
    pyav,
)
from .video_av_index import packet_index

#: most frames an encoder delays decoding behind presentation (B-frame pyramids stay far below)
_MAX_REORDER = 64


def _encoder_options(fmt: VideoFormat, settings: Mapping[str, Any]) -> dict:
    """FFmpeg private options (strings) for the user-facing settings."""
    options = {}
    if "crf" in settings:
        options["crf"] = str(settings["crf"])
    if "preset" in settings:
        options["preset"] = str(settings["preset"])
    if "bframes" in settings:
        options["bf"] = str(settings["bframes"])
    # 'gop' is the keyframe interval, not a maximum: no extra keyframes at scene cuts, so that
    # random access costs the same everywhere
    if fmt.encoder == "libx264":
        options["sc_threshold"] = "0"
    if fmt.encoder == "libx265":
        options["x265-params"] = "log-level=error:scenecut=0"
    return options


class PyAVChunkWriter(ChunkWriter):
    """Encodes frames into one video file with PyAV."""

    def __init__(
        self,
        path: Union[str, BinaryIO],
        fmt: VideoFormat,
        imgshape: Shape,
        imgdtype: str,
        options: Optional[Mapping[str, Any]],
    ) -> None:
        settings = resolve_settings(fmt, imgshape, imgdtype, options)
        if fmt.encoder == "libsvtav1":
            os.environ.setdefault("SVT_LOG", "1")  # SVT-AV1 prints its banner unless told not to
        self._path = path
        self._kind = frame_kind(imgshape, imgdtype)
        height, width = fmt.coded_size(imgshape)
        # frames smaller than the encoder handles get their last row and column repeated
        self._padding = (height - int(imgshape[0]), width - int(imgshape[1]))
        # grey stored as 4:0:0 keeps the full 0-255 range, and says so: without the flag,
        # decoders (PyAV's and OpenCV's alike) stretch it as if it were limited-range luma
        self._full_range = settings["pix_fmt"].startswith("gray")
        context: Dict[str, Any] = {"color_range": FULL_RANGE} if self._full_range else {}
        if "gop" in settings:
            context["gop_size"] = int(settings["gop"])
        context["thread_count"] = int(settings.get("threads", 0))
        context["time_base"] = Fraction(1, NOMINAL_FPS)
        self._container, stream = open_video_output(
            path,
            fmt.container,
            fmt.encoder,
            NOMINAL_FPS,
            (height, width),
            settings["pix_fmt"],
            muxer_options=crash_safe_muxer_options(fmt.container),
            encoder_options=_encoder_options(fmt, settings),
            context=context,
        )
        self._stream = stream
        self._count = 0
        self._last_dts: Optional[int] = None
        self._muxer_holds = MuxerFlush(self._container, stream) if fmt.container == "matroska" else None

    def write(self, img: np.ndarray) -> None:
        self._refuse_after_failure()
        if any(self._padding):
            img = np.pad(img, ((0, self._padding[0]), (0, self._padding[1])) + ((0, 0),) * (img.ndim - 2), mode="edge")
        frame = frame_from_array(img, NDARRAY_FORMATS[self._kind])
        frame.pts = self._count
        if self._full_range:
            frame.color_range = FULL_RANGE
        self._count += 1
        try:
            for packet in self._stream.encode(frame):
                self._mux(packet)
        except pyav().FFmpegError as exc:
            raise self._fail(f"video chunk {self._path}", exc) from exc

    def flush(self) -> None:
        """Put every packet the encoder gave out in the file (the muxer may hold the last one)."""
        self._refuse_after_failure()
        if self._muxer_holds is not None:
            try:
                self._muxer_holds.push()
            except pyav().FFmpegError as exc:
                raise self._fail(f"video chunk {self._path}", exc) from exc

    def sync(self) -> None:
        sync_file(self._path)

    def _mux(self, packet: Any) -> None:
        """Mux one packet, first repairing a decode timestamp no real stream has.

        libx265 leaves the DTS of very short streams (two frames) uninitialised; a DTS must lie
        at most ``_MAX_REORDER`` frames before the PTS and after the previous packet's DTS.
        """
        pts, dts = packet.pts, packet.dts
        if pts is not None:
            lowest = pts - int(_MAX_REORDER / (NOMINAL_FPS * packet.time_base)) if packet.time_base else pts
            if dts is None or not lowest <= dts <= pts or (self._last_dts is not None and dts <= self._last_dts):
                packet.dts = dts = pts if self._last_dts is None else min(pts, self._last_dts + 1)
        self._last_dts = dts
        self._container.mux(packet)
        if self._muxer_holds is not None:
            self._muxer_holds.muxed(packet)

    def close(self) -> None:
        if self._failure is not None:  # the packets the encoder still holds stay out of the file
            close_quietly(self._container, self._path)
            self._refuse_after_failure()
        try:
            if self._count == 0:  # a chunk without frames is still a file, with the stream's header
                self._container.start_encoding()
            for packet in self._stream.encode(None):
                self._mux(packet)
        except pyav().FFmpegError as exc:
            raise self._fail(f"video chunk {self._path}", exc) from exc
        finally:
            try:
                self._container.close()
            except pyav().FFmpegError as exc:  # the trailer: an unfinished file still reads (crash-safe muxing)
                raise write_error(f"video chunk {self._path}", exc) from exc
        check_frames_written(self._path, self._count)


def check_frames_written(path: Any, frames: int) -> None:
    """Raise ``StoreWriteError`` unless the finished chunk file at ``path`` holds ``frames`` whole frames.

    FFmpeg's I/O layer can fail a write and drop the data after it without the muxer ever
    reporting it (a transient I/O error, say); the file, demuxed once more, tells the truth.
    """
    if not isinstance(path, str) or not frames:
        return
    try:
        index = packet_index(path)
    except pyav().FFmpegError as exc:
        raise write_error(f"video chunk {path}", exc) from exc
    if len(index.pts) < frames or index.cut:
        raise StoreWriteError(
            f"video chunk {path} holds {len(index.pts)} of the {frames} frames written to it"
            f"{' (its last frame is cut)' if index.cut else ''}"
        )


class MuxerFlush:
    """Makes FFmpeg's Matroska muxer write out the packet it holds.

    The muxer keeps the last packet in memory until the next one ends its cluster, so the frame
    muxed last would miss ``flush()``. PyAV offers no muxer flush; a packet with no data, one
    tick of the stream's time base (1 ms) after the last one, ends the cluster all the same and
    adds nothing to the file (real packets are a frame, 40 ms, apart).
    """

    def __init__(self, container: Any, stream: Any) -> None:
        self._container = container
        self._stream = stream
        self._held: Optional[Tuple[int, Any]] = None  # (dts, time base) of a packet the muxer may hold

    def muxed(self, packet: Any) -> None:
        """Note the packet muxed last: the one the muxer may hold."""
        self._held = (packet.dts, packet.time_base)

    def push(self) -> None:
        """Make the muxer write the packet it holds (by muxing an empty one after it)."""
        if self._held is None or self._held[0] is None:
            return
        empty = pyav().Packet(b"")
        empty.stream = self._stream
        empty.time_base = self._held[1]
        empty.pts = empty.dts = self._held[0] + 1
        self._container.mux(empty)
        self._held = None
