"""Video chunks written and read with PyAV (FFmpeg), the default video backend.

Reading is frame-exact: each chunk gets a packet index (presentation timestamps and keyframes,
from demuxing without decoding), so frame ``i`` of a chunk is the ``i``-th presentation
timestamp, reached by seeking to the keyframe before it and decoding forward. Reading the next
frame after any read just decodes on, never re-seeks.
"""

from __future__ import annotations

import bisect
import functools
import io
import logging
import os
from fractions import Fraction
from typing import Any, BinaryIO, Dict, Iterator, List, Mapping, NamedTuple, Optional, Union

import numpy as np

from ..errors import FrameReadError
from .base import ChunkCodec, ChunkReader, ChunkWriter, Shape
from .video import NOMINAL_FPS, VideoFormat, frame_kind, resolve_settings

log = logging.getLogger(__name__)

#: numpy layout each kind of frame is handed to / taken from FFmpeg in
_NDARRAY_FORMATS = {"grey": "gray", "grey16": "gray16le", "color": "bgr24", "color16": "bgr48le"}
#: FFmpeg's AVCOL_RANGE_JPEG: full-range pixel values
_FULL_RANGE = 2
#: most frames an encoder delays decoding behind presentation (B-frame pyramids stay far below)
_MAX_REORDER = 64


def _av() -> Any:
    import av

    return av


class PyAVVideoCodec(ChunkCodec):
    """A video chunk format encoded and decoded by FFmpeg through PyAV."""

    store_class = "VideoImgStore"
    default_chunksize = 10000
    channels = (3,)
    backend = "av"

    def __init__(self, fmt: VideoFormat, writable: bool = True) -> None:
        self.format = fmt
        self.name = fmt.name
        self.extension = fmt.extension
        self.lossless = fmt.lossless
        self.dtypes = fmt.dtypes
        self._writable = writable

    def available(self) -> bool:
        return self._writable and _can_encode(self.format)

    def written_shape(self, imgshape: Shape) -> Shape:
        # most encoders need even sizes; truncate as upstream did (frames are cropped)
        return (int(imgshape[0]) & -2, int(imgshape[1]) & -2, *imgshape[2:])

    def check_image_type(self, imgshape: Shape, imgdtype: str) -> None:
        super().check_image_type(imgshape, imgdtype)
        resolve_settings(self.format, imgshape, imgdtype, None)

    def check_options(self, imgshape: Shape, imgdtype: str, options: Mapping[str, Any]) -> None:
        resolve_settings(self.format, imgshape, imgdtype, options)

    def open_writer(
        self, chunk_path: str, imgshape: Shape, imgdtype: str, options: Optional[Mapping[str, Any]] = None
    ) -> ChunkWriter:
        return PyAVChunkWriter(chunk_path, self.format, imgshape, imgdtype, options)

    def open_reader(self, chunk_path: str, imgshape: Shape, imgdtype: str) -> ChunkReader:
        return PyAVChunkReader(chunk_path, imgshape, imgdtype)


_PROBED: Dict[str, bool] = {}


def _can_encode(fmt: VideoFormat) -> bool:
    """Probe once whether this FFmpeg build really encodes the format: write two frames in memory."""
    if fmt.name not in _PROBED:
        try:
            if fmt.encoder not in _av().codecs_available:
                raise LookupError(f"no {fmt.encoder} encoder in this FFmpeg build")
            buffer = io.BytesIO()
            writer = PyAVChunkWriter(buffer, fmt, (64, 64, 3), "uint8", None)
            for _ in range(2):
                writer.write(np.zeros((64, 64, 3), np.uint8))
            writer.close()
            _PROBED[fmt.name] = buffer.tell() > 0
        except Exception as exc:  # any FFmpeg failure means: not writable here
            log.debug("format %s unavailable: %s", fmt.name, exc)
            _PROBED[fmt.name] = False
    return _PROBED[fmt.name]


def _encoder_options(fmt: VideoFormat, settings: Mapping[str, Any]) -> dict:
    """FFmpeg private options (strings) for the user-facing settings."""
    options = {}
    if "crf" in settings:
        options["crf"] = str(settings["crf"])
    if "preset" in settings:
        options["preset"] = str(settings["preset"])
    if "bframes" in settings:
        options["bf"] = str(settings["bframes"])
    if fmt.encoder == "libx265":
        options["x265-params"] = "log-level=error"
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
        av = _av()
        settings = resolve_settings(fmt, imgshape, imgdtype, options)
        if fmt.encoder == "libsvtav1":
            os.environ.setdefault("SVT_LOG", "1")  # SVT-AV1 prints its banner unless told not to
        self._path = path
        self._kind = frame_kind(imgshape, imgdtype)
        self._container = av.open(path, "w", format=fmt.container)
        try:
            stream = self._container.add_stream(fmt.encoder, rate=NOMINAL_FPS, options=_encoder_options(fmt, settings))
            stream.width, stream.height = int(imgshape[1]), int(imgshape[0])
            stream.pix_fmt = settings["pix_fmt"]
            # grey stored as 4:0:0 keeps the full 0-255 range, and says so: without the flag,
            # decoders (PyAV's and OpenCV's alike) stretch it as if it were limited-range luma
            self._full_range = settings["pix_fmt"].startswith("gray")
            if self._full_range:
                stream.codec_context.color_range = _FULL_RANGE
            if "gop" in settings:
                stream.codec_context.gop_size = int(settings["gop"])
            if "quality" in settings:  # MJPEG: fixed quantiser scale
                stream.codec_context.qmin = stream.codec_context.qmax = int(settings["quality"])
            stream.codec_context.thread_count = int(settings.get("threads", 0))
            stream.codec_context.time_base = Fraction(1, NOMINAL_FPS)
        except BaseException:
            self._container.close()
            raise
        self._stream = stream
        self._count = 0
        self._last_dts: Optional[int] = None

    def write(self, img: np.ndarray) -> None:
        av = _av()
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format=_NDARRAY_FORMATS[self._kind])
        frame.pts = self._count
        if self._full_range:
            frame.color_range = _FULL_RANGE
        self._count += 1
        for packet in self._stream.encode(frame):
            self._mux(packet)

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

    def close(self) -> None:
        try:
            for packet in self._stream.encode(None):
                self._mux(packet)
        finally:
            self._container.close()


class PacketIndex(NamedTuple):
    """Presentation timestamps of a chunk's frames (frame ``i`` = ``pts[i]``) and its keyframes."""

    pts: List[int]
    keyframes: List[int]


@functools.lru_cache(maxsize=256)
def _packet_index(path: str, mtime_ns: int, size: int) -> PacketIndex:
    """Demux a chunk once (no decoding) to learn its frames' timestamps; cached per file version."""
    av = _av()
    pts: List[int] = []
    keyframes: List[int] = []
    with av.open(path) as container:
        stream = container.streams.video[0]
        for packet in container.demux(stream):
            if packet.pts is None or packet.size == 0:
                continue
            pts.append(packet.pts)
            if packet.is_keyframe:
                keyframes.append(packet.pts)
    pts.sort()
    keyframes.sort()
    return PacketIndex(pts, keyframes)


def packet_index(path: str) -> PacketIndex:
    st = os.stat(path)
    return _packet_index(path, st.st_mtime_ns, st.st_size)


class PyAVChunkReader(ChunkReader):
    """Frame-exact random and sequential access to one video chunk."""

    def __init__(self, path: str, imgshape: Shape, imgdtype: str) -> None:
        av = _av()
        if not os.path.isfile(path):
            raise FrameReadError(f"video chunk {path} is missing")
        self._path = path
        self._kind = frame_kind(imgshape, imgdtype)
        self._ndarray_format = _NDARRAY_FORMATS[self._kind]
        try:
            self._container = av.open(path)
            self._stream = self._container.streams.video[0]
        except (av.FFmpegError, IndexError) as exc:
            raise FrameReadError(f"video chunk {path} cannot be opened ({exc})") from None
        self._stream.thread_type = "AUTO"
        self._index: Optional[PacketIndex] = None
        self._frames: Optional[Iterator[Any]] = None
        self._next = 0  # position of the frame the decoder yields next

    @property
    def index(self) -> PacketIndex:
        if self._index is None:
            self._index = packet_index(self._path)
        return self._index

    def read(self, frame_idx: int) -> np.ndarray:
        if self._frames is None or frame_idx != self._next:
            self._seek(frame_idx)
        frame = self._decode_next()
        self._next = frame_idx + 1
        return frame.to_ndarray(format=self._ndarray_format)

    def _decode_next(self) -> Any:
        try:
            return next(self._frames)
        except StopIteration:
            self._frames = None
            raise FrameReadError(f"video chunk {self._path} ends before frame {self._next}") from None
        except _av().FFmpegError as exc:
            self._frames = None
            raise FrameReadError(f"video chunk {self._path}: cannot decode frame {self._next} ({exc})") from None

    def _seek(self, frame_idx: int) -> None:
        """Position the decoder so that the next decoded frame is ``frame_idx``."""
        index = self.index
        if not 0 <= frame_idx < len(index.pts):
            raise FrameReadError(f"video chunk {self._path} has {len(index.pts)} frames, not frame {frame_idx}")
        target = index.pts[frame_idx]
        if self._frames is not None and self._next < frame_idx and self._near(frame_idx):
            self._skip_to(frame_idx)  # forward and close: decoding on beats a seek
            return
        keyframe_pos = bisect.bisect_right(index.keyframes, target) - 1
        while True:
            start = index.keyframes[keyframe_pos] if keyframe_pos >= 0 else None
            self._restart(start)
            first = self._peek()
            if first is None or first.pts is None or first.pts <= target or keyframe_pos < 0:
                break
            keyframe_pos -= 1  # the demuxer landed after the frame: step back one keyframe
        self._discard_until(target, frame_idx)

    def _near(self, frame_idx: int) -> bool:
        """True when no keyframe lies between the decoder's position and ``frame_idx``."""
        index = self.index
        current = index.pts[self._next] if self._next < len(index.pts) else None
        if current is None:
            return False
        target = index.pts[frame_idx]
        return bisect.bisect_right(index.keyframes, target) == bisect.bisect_right(index.keyframes, current)

    def _restart(self, start_pts: Optional[int]) -> None:
        self._container.seek(start_pts if start_pts is not None else 0, stream=self._stream, backward=True)
        self._frames = self._container.decode(self._stream)
        self._pending: Optional[Any] = None

    def _peek(self) -> Optional[Any]:
        try:
            self._pending = next(self._frames)
        except StopIteration:
            self._pending = None
        return self._pending

    def _skip_to(self, frame_idx: int) -> None:
        for _ in range(frame_idx - self._next):
            self._decode_next()
        self._next = frame_idx

    def _discard_until(self, target: int, frame_idx: int) -> None:
        """Decode (without converting) until the frame with pts ``target`` is next."""
        frame = self._pending
        while frame is not None and frame.pts is not None and frame.pts < target:
            frame = next(self._frames, None)
        if frame is None or frame.pts != target:
            self._frames = None
            raise FrameReadError(f"video chunk {self._path}: frame {frame_idx} (pts {target}) cannot be decoded")
        self._frames = _prepend(frame, self._frames)
        self._next = frame_idx

    def close(self) -> None:
        self._frames = None
        self._container.close()


def _prepend(first: Any, rest: Iterator[Any]) -> Iterator[Any]:
    yield first
    yield from rest
