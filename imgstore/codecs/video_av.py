"""Video chunks written and read with PyAV (FFmpeg), the default video backend.

Reading is frame-exact: each chunk gets a packet index (presentation timestamps and keyframes,
from demuxing without decoding), so frame ``i`` of a chunk is the ``i``-th presentation
timestamp, reached by seeking to the keyframe before it and decoding forward. Reading the next
frame after any read just decodes on, never re-seeks.
"""

from __future__ import annotations

import bisect
import collections
import functools
import io
import logging
import os
from fractions import Fraction
from typing import Any, BinaryIO, Deque, Iterator, List, Mapping, NamedTuple, Optional, Tuple, Union

import numpy as np

from ..errors import FrameReadError, StoreWriteError
from ..io.fs import LOCAL, LocalFileSystem
from .base import ChunkReader, ChunkWriter, Shape, sync_file, write_error
from .video import NOMINAL_FPS, VideoCodec, VideoFormat, frame_kind, resolve_settings

log = logging.getLogger(__name__)

#: numpy layout each kind of frame is handed to / taken from FFmpeg in
_NDARRAY_FORMATS = {"grey": "gray", "grey16": "gray16le", "color": "bgr24", "color16": "bgr48le"}
#: FFmpeg's AVCOL_RANGE_JPEG: full-range pixel values
FULL_RANGE = 2
#: most frames an encoder delays decoding behind presentation (B-frame pyramids stay far below)
_MAX_REORDER = 64


def pyav() -> Any:
    """PyAV, imported on first use so that importing imgstore stays light."""
    import av

    return av


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

    def open_reader(
        self, chunk_path: str, imgshape: Shape, imgdtype: str, frame_count: Optional[int] = None
    ) -> ChunkReader:
        return PyAVChunkReader(chunk_path, imgshape, imgdtype, frame_count)

    def open_remote_reader(
        self, chunk_url: str, imgshape: Shape, imgdtype: str, frame_count: Optional[int], fs: LocalFileSystem
    ) -> ChunkReader:
        # PyAV reads through the file object: FFmpeg asks only for the byte ranges it demuxes
        return PyAVChunkReader(chunk_url, imgshape, imgdtype, frame_count, fs=fs)

    def count_frames(self, chunk_path: str) -> Optional[int]:
        try:
            return len(packet_index(chunk_path).pts)
        except (pyav().FFmpegError, IndexError, UnicodeDecodeError) as exc:  # IndexError: no video stream at all
            raise FrameReadError(f"{chunk_path} is not a readable video ({exc or 'no video stream'})") from None


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


def crash_safe_muxer_options(container: str) -> dict:
    """Muxer options that keep a chunk decodable up to its last frames when the writer dies.

    Every packet goes to the file as soon as it is muxed (``flush_packets``); MP4 is written
    fragmented, one fragment per frame, with its header up front (a plain MP4 is unreadable
    until its index is written at the end); Matroska closes a cluster after every frame. AVI
    needs nothing more: its index is optional. FFmpeg and OpenCV read all of these as usual.
    """
    options = {"flush_packets": "1"}
    if container == "mp4":
        options["movflags"] = "frag_every_frame+empty_moov+default_base_moof"
    elif container == "matroska":
        options["cluster_time_limit"] = "0"
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
        av = pyav()
        settings = resolve_settings(fmt, imgshape, imgdtype, options)
        if fmt.encoder == "libsvtav1":
            os.environ.setdefault("SVT_LOG", "1")  # SVT-AV1 prints its banner unless told not to
        self._path = path
        self._kind = frame_kind(imgshape, imgdtype)
        height, width = fmt.coded_size(imgshape)
        # frames smaller than the encoder handles get their last row and column repeated
        self._padding = (height - int(imgshape[0]), width - int(imgshape[1]))
        self._container = av.open(path, "w", format=fmt.container, options=crash_safe_muxer_options(fmt.container))
        try:
            stream = self._container.add_stream(fmt.encoder, rate=NOMINAL_FPS, options=_encoder_options(fmt, settings))
            stream.width, stream.height = width, height
            stream.pix_fmt = settings["pix_fmt"]
            # grey stored as 4:0:0 keeps the full 0-255 range, and says so: without the flag,
            # decoders (PyAV's and OpenCV's alike) stretch it as if it were limited-range luma
            self._full_range = settings["pix_fmt"].startswith("gray")
            if self._full_range:
                stream.codec_context.color_range = FULL_RANGE
            if "gop" in settings:
                stream.codec_context.gop_size = int(settings["gop"])
            stream.codec_context.thread_count = int(settings.get("threads", 0))
            stream.codec_context.time_base = Fraction(1, NOMINAL_FPS)
        except BaseException:
            self._container.close()
            raise
        self._stream = stream
        self._count = 0
        self._last_dts: Optional[int] = None
        self._muxer_holds = MuxerFlush(self._container, stream) if fmt.container == "matroska" else None

    def write(self, img: np.ndarray) -> None:
        self._refuse_after_failure()
        if any(self._padding):
            img = np.pad(img, ((0, self._padding[0]), (0, self._padding[1])) + ((0, 0),) * (img.ndim - 2), mode="edge")
        frame = pyav().VideoFrame.from_ndarray(np.ascontiguousarray(img), format=_NDARRAY_FORMATS[self._kind])
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
            except pyav().FFmpegError as exc:  # the trailer: an unfinished file still reads (see above)
                raise write_error(f"video chunk {self._path}", exc) from exc
        check_frames_written(self._path, self._count)


def close_quietly(container: Any, path: Any) -> None:
    """Close an output container after a failed write; what reached the file is what recovery finds."""
    try:
        container.close()
    except pyav().FFmpegError as exc:
        log.debug("closing the damaged video chunk %s: %s", path, exc)


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
        self._held = (packet.dts, packet.time_base)

    def push(self) -> None:
        if self._held is None or self._held[0] is None:
            return
        empty = pyav().Packet(b"")
        empty.stream = self._stream
        empty.time_base = self._held[1]
        empty.pts = empty.dts = self._held[0] + 1
        self._container.mux(empty)
        self._held = None


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


@functools.lru_cache(maxsize=256)
def _packet_index(
    path: str, version: Tuple[Any, ...], fs: LocalFileSystem = LOCAL, expected: Optional[int] = None
) -> PacketIndex:
    """Demux a chunk once (no decoding) to learn its frames' timestamps; cached per file version.

    A chunk at a URL whose container indexes every frame up front (MP4 with its sample table,
    AVI with its index) is not demuxed: its index is read from the container's own, so that one
    frame costs a few requests rather than the whole chunk.
    """
    av = pyav()
    if fs.remote and expected:
        with av.open(fs.open(path)) as container:
            index = _index_from_entries(container, container.streams.video[0], expected)
        if index is not None:
            return index
    decode_order: List[int] = []
    keyframes: List[int] = []
    durations = set()
    cut = sliced = False
    with av.open(fs.open(path) if fs.remote else path) as container:
        stream = container.streams.video[0]
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
    pts = sorted(decode_order)
    rank = {value: position for position, value in enumerate(pts)}
    reorder = max((position - rank[value] for position, value in enumerate(decode_order)), default=0)
    return PacketIndex(pts, sorted(keyframes), reorder, cut, sliced, min(durations, default=None))


def packet_index(path: str, fs: LocalFileSystem = LOCAL, expected: Optional[int] = None) -> PacketIndex:
    """The packet index of a chunk, cached for as long as the file stays the same.

    ``expected`` (the frames the chunk's index lists) lets a URL chunk be indexed from its
    container's own index when that lists exactly as many frames.
    """
    return _packet_index(path, fs.version(path), fs, expected)


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


def _regular_run(index: PacketIndex) -> int:
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


class PyAVChunkReader(ChunkReader):
    """Frame-exact random and sequential access to one video chunk.

    Packets are demuxed and decoded here (not with ``container.decode``) so that, while decoding
    forward from a keyframe to a requested frame, frames nothing else refers to and that come
    before the target are not decoded at all (``skip_frame='NONREF'``).
    """

    def __init__(
        self, path: str, imgshape: Shape, imgdtype: str, frame_count: Optional[int] = None, fs: LocalFileSystem = LOCAL
    ) -> None:
        av = pyav()
        self._fs = fs
        if not fs.isfile(path):
            raise FrameReadError(f"video chunk {path} is missing")
        self._path = path
        self._ndarray_format = _NDARRAY_FORMATS[frame_kind(imgshape, imgdtype)]
        #: frames come back at most this size: a picture padded for its encoder is cropped back
        self._height, self._width = int(imgshape[0]), int(imgshape[1])
        try:
            self._container = av.open(fs.open(path) if fs.remote else path)
            self._stream = self._container.streams.video[0]
        except (av.FFmpegError, IndexError, UnicodeDecodeError) as exc:  # UnicodeDecodeError: its metadata
            raise FrameReadError(f"video chunk {path} cannot be opened ({exc})") from None
        self._codec = self._stream.codec_context
        if self._codec is None:  # FFmpeg has no decoder for the stream's codec (a tag such as 'zzzz')
            self._container.close()
            raise FrameReadError(f"video chunk {path} cannot be opened (no decoder for its video stream)")
        self._reformatter = av.video.reformatter.VideoReformatter()  # one swscale context, reused
        # FFmpeg's own H.264/HEVC decoders read skip_frame for every packet; others (libdav1d)
        # only when opened, so skipping there would drop frames for good
        self._can_skip = self._codec.name in ("h264", "hevc")
        self._expected = frame_count
        self._usable: Optional[int] = None
        self._index: Optional[PacketIndex] = None
        self._packets: Optional[Iterator[Any]] = None  # demuxer position; None: must seek first
        self._decoded: Deque[Any] = collections.deque()  # frames decoded but not yet returned
        self._next = 0  # position of the frame returned next when no seek is needed

    @property
    def index(self) -> PacketIndex:
        if self._index is None:
            self._index = packet_index(self._path, self._fs, self._expected)
            # before the decoder opens: slices of one frame in parallel (much faster for random
            # access than frame threads, which must fill up after every seek), else frame threads
            self._stream.thread_type = "SLICE" if self._index.sliced else "AUTO"
        return self._index

    @property
    def usable(self) -> int:
        """How many leading frames can be placed for sure.

        A file cut short (fewer frames than its index lists, or a damaged last packet) lost
        frames at the end of decode order; with B-frames some of them are shown before frames
        that survived, so only the frames shown before the first possible gap are certain.
        """
        if self._usable is None:
            index = self.index
            short = self._expected is not None and len(index.pts) < self._expected
            if short or index.cut:
                self._usable = max(0, min(len(index.pts) - index.reorder, _regular_run(index)))
            else:
                self._usable = len(index.pts)
        return self._usable

    def read(self, frame_idx: int) -> np.ndarray:
        try:
            return self._read(frame_idx)
        except (pyav().FFmpegError, UnicodeDecodeError) as exc:  # demuxing or seeking a damaged file
            self._packets = None
            raise FrameReadError(f"video chunk {self._path}: frame {frame_idx} cannot be read ({exc})") from None

    def _read(self, frame_idx: int) -> np.ndarray:
        if frame_idx >= self.usable:
            raise FrameReadError(
                f"video chunk {self._path} is cut short: frame {frame_idx} is missing "
                f"(the first {self.usable} frames are readable)"
            )
        if self._packets is None or frame_idx != self._next:
            self._seek(frame_idx)
        frame = self._next_frame()
        if frame is None or frame.pts != self.index.pts[frame_idx]:
            self._packets = None
            raise FrameReadError(f"video chunk {self._path}: frame {frame_idx} cannot be decoded")
        self._next = frame_idx + 1
        return self._to_array(frame)

    def _to_array(self, frame: Any) -> np.ndarray:
        """The frame as numpy, in the store's layout and size (cropped if padded), with one copy."""
        if self._ndarray_format == "gray" and _full_range_luma(frame):
            plane = frame.planes[0]  # grey is the luma plane itself: copy it out, no conversion
            rows = np.frombuffer(plane, np.uint8).reshape(frame.height, plane.line_size)
            return rows[: self._height, : min(frame.width, self._width)].copy()
        img = self._reformatter.reformat(frame, format=self._ndarray_format, threads=1).to_ndarray()
        if img.shape[0] > self._height or img.shape[1] > self._width:
            img = np.ascontiguousarray(img[: self._height, : self._width])
        return img

    # -- decoding ---------------------------------------------------------------------------
    def _next_frame(self, skip_before: Optional[int] = None) -> Optional[Any]:
        """The next frame in presentation order (None at the end).

        With ``skip_before``, packets of non-reference frames presented before that timestamp
        are decoded with ``skip_frame='NONREF'``: the decoder drops them, as nothing needs them.
        """
        while not self._decoded:
            packet = next(self._packets, None)
            if packet is None or packet.size == 0:  # end of file: drain the decoder
                self._decoded.extend(self._decode(None))
                if not self._decoded:
                    return None
                break
            if self._can_skip:
                skip = skip_before is not None and packet.pts is not None and packet.pts < skip_before
                self._codec.skip_frame = "NONREF" if skip else "DEFAULT"
            self._decoded.extend(self._decode(packet))
        return self._decoded.popleft()

    def _decode(self, packet: Any) -> List[Any]:
        try:
            return self._codec.decode(packet)
        except pyav().FFmpegError as exc:
            self._packets = None
            raise FrameReadError(f"video chunk {self._path}: cannot decode near frame {self._next} ({exc})") from None

    # -- seeking ----------------------------------------------------------------------------
    def _seek(self, frame_idx: int) -> None:
        """Position the decoder so that the next frame returned is ``frame_idx``."""
        target = self.index.pts[frame_idx]
        if not (self._packets is not None and self._next < frame_idx and self._same_gop(frame_idx)):
            self._seek_keyframe_before(target)
        while True:  # decode forward, without converting, to the target
            frame = self._next_frame(skip_before=target)
            if frame is None or frame.pts is None or frame.pts > target:
                self._packets = None
                raise FrameReadError(f"video chunk {self._path}: frame {frame_idx} (pts {target}) cannot be decoded")
            if frame.pts == target:
                self._decoded.appendleft(frame)
                self._next = frame_idx
                return

    def _seek_keyframe_before(self, target: int) -> None:
        """Seek to the last keyframe at or before ``target`` (earlier if the demuxer overshoots)."""
        keyframes = self.index.keyframes
        position = bisect.bisect_right(keyframes, target) - 1
        while True:
            start = keyframes[position] if position >= 0 else None
            self._container.seek(start if start is not None else 0, stream=self._stream, backward=True)
            self._codec.flush_buffers()
            self._decoded.clear()
            self._packets = self._container.demux(self._stream)
            first = self._next_frame(skip_before=target)
            if first is None or first.pts is None or first.pts <= target or position < 0:
                if first is not None:
                    self._decoded.appendleft(first)
                return
            position -= 1  # the demuxer landed after the target: one keyframe further back

    def _same_gop(self, frame_idx: int) -> bool:
        """True when no keyframe lies between the decoder's position and ``frame_idx``."""
        index = self.index
        if self._next >= len(index.pts):
            return False
        here, there = index.pts[self._next], index.pts[frame_idx]
        return bisect.bisect_right(index.keyframes, there) == bisect.bisect_right(index.keyframes, here)

    def close(self) -> None:
        self._packets = None
        self._decoded.clear()
        self._container.close()


#: 8-bit formats whose first plane is full-range luma, i.e. exactly the grey image
_FULL_RANGE_LUMA = frozenset({"gray", "yuvj420p", "yuvj422p", "yuvj444p"})
_LUMA_IF_FULL_RANGE = frozenset({"yuv420p", "yuv422p", "yuv444p"})


def _full_range_luma(frame: Any) -> bool:
    name = frame.format.name
    return name in _FULL_RANGE_LUMA or (name in _LUMA_IF_FULL_RANGE and frame.color_range == FULL_RANGE)
