"""Frame-exact reading of one video chunk with PyAV (FFmpeg).

Each chunk's packet index (``video_av_index``) places frame ``i`` at its ``i``-th presentation
timestamp, reached by seeking to the keyframe before it and decoding forward. Reading the next
frame after any read just decodes on, never re-seeks.

A grey store's frame is the luma plane: copied out when it is full range, else mapped through
the lookup table that reproduces swscale's grey for that kind of frame (``luma_lut``) with
``cv2.LUT``, in a third of the time swscale's conversion takes.
"""

from __future__ import annotations

import bisect
import collections
import functools
import logging
from typing import Any, Callable, Deque, Iterator, List, Optional

import numpy as np

from .._opencv import cv2, opencv_problem
from ..errors import FrameReadError
from ..io.fs import LOCAL, LocalFileSystem
from .base import ChunkReader, Shape
from .video import frame_kind
from .video_av_base import FULL_RANGE, NDARRAY_FORMATS, pyav
from .video_av_index import PacketIndex, packet_index, whole_frames

log = logging.getLogger(__name__)

#: what a packet source may yield between two GOPs that share no frames (a closed GOP follows):
#: the decoder then gives out every frame it holds before it takes the next GOP's packets, so a
#: frame of the first GOP never waits for packets of the next (which a URL reader would fetch)
GOP_END = object()


class PyAVChunkReader(ChunkReader):
    """Frame-exact random and sequential access to one video chunk.

    Packets are demuxed and decoded here (not with ``container.decode``) so that, while decoding
    forward from a keyframe to a requested frame, frames nothing else refers to and that come
    before the target are not decoded at all (``skip_frame='NONREF'``).
    """

    def __init__(
        self,
        path: str,
        imgshape: Shape,
        imgdtype: str,
        frame_count: Optional[int] = None,
        fs: LocalFileSystem = LOCAL,
        known_index: Optional[PacketIndex] = None,
    ) -> None:
        """``known_index``: the chunk's packet index as its packet table gives it (no demux pass)."""
        av = pyav()
        self._init_state(path, imgshape, imgdtype, frame_count, fs)
        if not fs.isfile(path):
            raise FrameReadError(f"video chunk {path} is missing")
        try:
            self._container = av.open(fs.source(path))
            self._stream = self._container.streams.video[0]
        except (av.FFmpegError, IndexError, UnicodeDecodeError) as exc:  # UnicodeDecodeError: its metadata
            raise FrameReadError(f"video chunk {path} cannot be opened ({exc})") from None
        self._codec = self._stream.codec_context
        if self._codec is None:  # FFmpeg has no decoder for the stream's codec (a tag such as 'zzzz')
            self._container.close()
            raise FrameReadError(f"video chunk {path} cannot be opened (no decoder for its video stream)")
        # FFmpeg's own H.264/HEVC decoders read skip_frame for every packet; others (libdav1d)
        # only when opened, so skipping there would drop frames for good
        self._can_skip = self._codec.name in ("h264", "hevc")
        if known_index is not None:
            self._use_index(known_index)

    def _init_state(
        self, path: str, imgshape: Shape, imgdtype: str, frame_count: Optional[int], fs: LocalFileSystem
    ) -> None:
        """What every reader of a chunk keeps, however its packets reach the decoder."""
        self._fs = fs
        self._path = path
        self._ndarray_format = NDARRAY_FORMATS[frame_kind(imgshape, imgdtype)]
        #: frames come back at most this size: a picture padded for its encoder is cropped back
        self._height, self._width = int(imgshape[0]), int(imgshape[1])
        self._reformatter = pyav().video.reformatter.VideoReformatter()  # one swscale context, reused
        self._expected = frame_count
        self._usable: Optional[int] = None
        self._index: Optional[PacketIndex] = None
        self._packets: Optional[Iterator[Any]] = None  # demuxer position; None: must seek first
        self._decoded: Deque[Any] = collections.deque()  # frames decoded but not yet returned
        self._next = 0  # position of the frame returned next when no seek is needed
        #: (format, colour space, range, width, height) of the last grey frame, and how its luma
        #: became grey (``grey_from_luma``)
        self._grey_kind: Optional[tuple] = None
        self._grey: Optional[Callable[[np.ndarray], np.ndarray]] = None

    @property
    def index(self) -> PacketIndex:
        """The chunk's packet index, learnt on first use (unless its packet table gave it)."""
        if self._index is None:
            # demuxed with this reader's own container (opened, not yet read): one open, not two
            self._use_index(packet_index(self._path, self._fs, self._expected, container=self._container))
        return self._index

    def _use_index(self, index: PacketIndex) -> None:
        self._index = index
        # before the decoder opens: slices of one frame in parallel (much faster for random
        # access than frame threads, which must fill up after every seek), else frame threads
        self._stream.thread_type = "SLICE" if index.sliced else "AUTO"

    @property
    def usable(self) -> int:
        """How many leading frames can be placed for sure (``video_av_index.whole_frames``)."""
        if self._usable is None:
            self._usable = whole_frames(self.index, self._expected)
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
        if frame.is_corrupt:  # the decoder filled in what it could not read: not the frame recorded
            raise FrameReadError(
                f"video chunk {self._path}: frame {frame_idx} is damaged in the file (it decodes with "
                "errors: a file cut short, or bad data)"
            )
        return self._to_array(frame)

    def _to_array(self, frame: Any) -> np.ndarray:
        """The frame as numpy, in the store's layout and size (cropped if padded), with one copy."""
        if self._ndarray_format == "gray":
            kind = (frame.format.name, frame.colorspace, frame.color_range, frame.width, frame.height)
            if kind != self._grey_kind:  # what makes grey of frames of this kind: worked out once
                self._grey_kind, self._grey = kind, grey_from_luma(*kind)
            if self._grey is not None:
                plane = frame.planes[0]  # grey is the luma plane itself, or a function of it alone
                rows = np.frombuffer(plane, np.uint8).reshape(kind[4], plane.line_size)
                return self._grey(rows[: self._height, : min(kind[3], self._width)])
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
            if packet is GOP_END:  # nothing after this needs the frames before it: let them all out
                self._decoded.extend(self._decode(None))
                self._codec.flush_buffers()  # (and take packets again)
                continue
            if packet is None or packet.size == 0 or packet.is_corrupt:  # end of file (or of its whole packets)
                self._packets = iter(())  # nothing after a damaged packet is fed to the decoder
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
            if packet is None and isinstance(exc, pyav().error.EOFError):  # drained already: no more to come
                return []
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
            if first is None and position >= 0:  # landed at the end (an MPEG-TS seek can): further back
                position -= 1
                continue
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


#: OpenCV splits a ``LUT`` of this many pixels or more among its threads (``cv::LUT``: ``total()
#: >> 18``); the reader maps bands smaller than that, each in one call on the calling thread
LUT_PARALLEL_PIXELS = 1 << 18


def grey_from_luma(
    fmt: str, colorspace: int, color_range: int, width: int, height: int
) -> Optional[Callable[[np.ndarray], np.ndarray]]:
    """How a grey frame is made from the luma plane of frames of this kind, or None (swscale).

    Full-range luma is the grey image: copied. Limited-range luma goes through the table
    ``luma_lut`` asks of swscale, with ``cv2.LUT`` in bands that OpenCV maps on the calling
    thread: its own threads, on a machine whose cores the decoder's frame threads keep busy,
    wait for a core more than they save (a 640x480 frame: 0.09 ms mapped here, 0.5-2 ms in
    OpenCV's threads while the decoder runs on another core).
    """
    if fmt in _FULL_RANGE_LUMA or (fmt in _LUMA_IF_FULL_RANGE and color_range == FULL_RANGE):
        return _copy
    apply = _lut_function() if fmt in _LUMA_IF_FULL_RANGE else None
    lut = luma_lut(fmt, colorspace, color_range, width, height) if apply is not None else None
    if lut is None:
        return None
    band = max(1, (LUT_PARALLEL_PIXELS - 1) // max(1, width))

    def mapped(rows: np.ndarray) -> np.ndarray:
        out = np.empty(rows.shape, np.uint8)
        for top in range(0, rows.shape[0], band):
            apply(rows[top : top + band], lut, dst=out[top : top + band])
        return out

    return mapped


def _copy(rows: np.ndarray) -> np.ndarray:
    return rows.copy()


#: 8-bit formats whose first plane is full-range luma, i.e. exactly the grey image
_FULL_RANGE_LUMA = frozenset({"gray", "yuvj420p", "yuvj422p", "yuvj444p"})
_LUMA_IF_FULL_RANGE = frozenset({"yuv420p", "yuv422p", "yuv444p"})


@functools.lru_cache(maxsize=64)
def luma_lut(fmt: str, colorspace: int, color_range: int, width: int, height: int) -> Optional[np.ndarray]:
    """The grey level swscale makes of each luma value in frames of this kind, or None.

    Asked of swscale itself, with the same call that converts a frame: a probe frame of the
    same format, size, colour space and range, whose luma plane holds every value 0-255 at
    every position phase (``(x + 3y) % 256``; chroma is ignored in grey). The table is kept only
    when swscale's output is that table applied pixel by pixel everywhere in the probe; else
    (a frame too small to hold every value, or any dithering or filtering) None, and frames of
    this kind go through swscale as before.
    """
    av = pyav()
    values = ((np.arange(width, dtype=np.uint32) + 3 * np.arange(height, dtype=np.uint32)[:, None]) % 256).astype(
        np.uint8
    )
    if np.count_nonzero(np.bincount(values.ravel(), minlength=256)) < 256:
        return None
    try:
        probe = av.VideoFrame(width, height, fmt)
        probe.colorspace, probe.color_range = colorspace, color_range
        for n, plane in enumerate(probe.planes):
            buffer = np.full((plane.height, plane.line_size), 128, np.uint8)
            if n == 0:
                buffer[:, :width] = values
            plane.update(buffer.tobytes())
        grey = av.video.reformatter.VideoReformatter().reformat(probe, format="gray", threads=1).to_ndarray()
    except (AttributeError, TypeError, ValueError, av.FFmpegError) as exc:  # a PyAV that cannot make the probe
        log.debug("no luma lookup table for %s frames: %s", fmt, exc)
        return None
    lut = np.zeros(256, np.uint8)
    lut[values.ravel()] = grey.ravel()
    return lut if np.array_equal(lut[values], grey) else None


@functools.lru_cache(maxsize=1)
def _lut_function() -> Optional[Callable[[np.ndarray, np.ndarray], np.ndarray]]:
    """``cv2.LUT``, which maps a 1280x1024 plane in a third of the time swscale takes to make it
    grey; None without OpenCV: numpy's ``take`` is slower than swscale, which then does it."""
    return cv2.LUT if opencv_problem() is None else None
