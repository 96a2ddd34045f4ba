"""A plain video file (``run.mp4``, a camera's ``.mov``) read as a store, so that every tool works on it.

``new_for_filename('run.mp4')`` opens it read-only as one chunk: frames numbered 0..n-1 in
presentation order, read frame-exactly like a store's own chunks (each frame is the n-th
presentation timestamp). Frame ``n``'s time is the recording's start plus its timestamp from the
first frame; the start is found as ``store.videostart`` says (the caller's ``start_time``, the
creation tag, a time in the file's name, the modification time). Grey video reads as grey frames
and video deeper than 8 bits as 16-bit frames. The file is never written to: no index, cache or
lock is made beside it.

A file at a URL (``https://.../run.mp4``, ``s3://...``) opens the same way, fetching only what
it reads: the container's header and, per frame, about its GOP. An MP4 or MOV lists every frame
in its header, so nothing more is read to open it; a file whose container does not (Matroska,
MPEG-TS) is read through once to find its frames.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import os
from fractions import Fraction
from typing import Any, Dict, List, Optional, Pattern, Tuple, Union
from urllib.parse import urlsplit

import numpy as np

from .. import codecs
from ..codecs.base import ChunkCodec, ChunkReader, Shape
from ..codecs.video_av_base import turned
from ..constants import STORE_VERSION
from ..errors import FrameReadError, ImgStoreError, StoreNotFoundError
from ..index.storeindex import ImgStoreIndex
from ..io.fs import LocalFileSystem
from ..io.metadata import StoreMetadata
from ..io.timezone import get_local_timezone
from .layout import ChunkLayout, ChunkScan
from .location import LocalLocation, RemoteLocation, location_for
from .opening import StoreKind
from .video import VideoImgStore
from .videostart import NAME_TIME_PATTERN, video_start_time

__all__ = ["VIDEO_FILE_EXTENSIONS", "VideoFileStore", "is_video_file"]

log = logging.getLogger(__name__)

#: file extensions opened as plain videos by ``new_for_filename``
VIDEO_FILE_EXTENSIONS = (
    ".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".ts", ".mts", ".m2ts", ".mxf",
    ".flv", ".wmv", ".ogv", ".3gp", ".y4m",
)  # fmt: skip


def is_video_file(path: Any, storage_options: Optional[Dict[str, Any]] = None) -> bool:
    """Whether ``path`` names a video file (opened as a plain video): an existing file with a video
    extension on this disk; at a URL, a name with a video extension (asking would cost a request)."""
    try:
        text = os.fspath(path)
    except TypeError:
        return False
    if not isinstance(text, str):
        return False
    in_url = urlsplit(text).path.lower().endswith(VIDEO_FILE_EXTENSIONS)  # a URL's query is not its name
    on_disk = text.lower().endswith(VIDEO_FILE_EXTENSIONS)  # (a file name may hold '#' or '?')
    if not (in_url or on_disk):
        return False
    if isinstance(location_for(text, storage_options), RemoteLocation):
        return in_url
    return on_disk and os.path.isfile(text)


@dataclasses.dataclass(frozen=True)
class _Probe:
    """What the file says about itself: frame shape and dtype, codec, timestamps and start time."""

    shape: Tuple[int, ...]
    dtype: str
    codec: str
    times: np.ndarray
    start: float
    turns: int = 0  # quarter turns anticlockwise the file asks its frames be shown turned by
    index: Any = None  # the frames read (``codecs.video_av_index.PacketIndex``), for its readers


@dataclasses.dataclass(frozen=True)
class StartTime:
    """How a plain video's start is found (``store.videostart``): given, or the name pattern to try."""

    given: Optional[Any] = None
    name_pattern: Union[str, Pattern[str], None] = NAME_TIME_PATTERN


def _probe(path: str, fs: LocalFileSystem, start_time: StartTime) -> _Probe:
    """Read the file's header (and demux it, when the header does not list every frame; no
    decoding): its stream's geometry, pixel depth, frame times and start time."""
    from ..codecs.video_av_base import pyav
    from ..codecs.video_av_index import lists_bytes_past_end, packet_index

    av = pyav()
    container_name = ""
    try:
        with av.open(fs.source(path)) as container:
            stream = container.streams.video[0] if container.streams.video else None
            context = stream.codec_context if stream is not None else None
            if context is None:  # (an MP4 cut inside its header can show no stream, or no codec)
                reason = _mp4_cut_short(path, fs) or "holds no video stream FFmpeg can decode"
                raise FrameReadError(f"{path}: {reason}")
            pix_fmt = context.pix_fmt or "yuv420p"
            video_format = av.VideoFormat(pix_fmt)
            time_base = Fraction(stream.time_base or Fraction(1, 1000))
            start = video_start_time(
                container,
                path,
                start_time.given,
                start_time.name_pattern,
                lambda: fs.modified(path),
                fs.file_name(path),
            )
            container_name = (container.format.name or "").split(",")[0]
            codec = f"{context.name}/{container_name}"
            width, height = context.width, context.height
            turns = _first_frame_turns(container, stream)
            if turns % 2:  # shown upright: the store's frames are too
                width, height = height, width
            listed = stream.frames or None  # what the header says (MP4's sample table), if anything
            past_end = lists_bytes_past_end(stream, fs.size_if_known(path))
        index = packet_index(path, fs, expected=listed)
        if past_end:  # its header places frames past the end of the file: cut short after the header
            index = index._replace(cut=True)
        index = _whole_packets(path, fs, index, container_name)
    except (av.error.FFmpegError, IndexError, UnicodeDecodeError) as exc:  # IndexError: no video stream
        missing = container_name == "" and _mp4_cut_short(path, fs)
        reason = missing or f"not a video FFmpeg can read ({exc or 'no video stream'})"
        raise FrameReadError(f"{path}: {reason}") from None
    except OSError as exc:
        raise FrameReadError(f"{path}: cannot be read ({exc})") from None
    deep = max((c.bits for c in video_format.components), default=8) > 8
    grey = pix_fmt.startswith(("gray", "y400"))
    shape = (height, width) if grey else (height, width, 3)
    if not index.pts:  # (an MP4 cut in its header may open with no frames at all)
        cut_short = _mp4_cut_short(path, fs)
        if cut_short or index.cut:
            raise FrameReadError(f"{path}: {cut_short or 'cut short before its first whole frame'}")
    problem = _not_frame_exact(index, pix_fmt, codec)
    if problem:
        raise FrameReadError(
            f"{path}: {problem}, so its frames cannot be found by position in place; make a store of it "
            f"(imgstore-save NEW --source {path}), which decodes it in order"
        )
    kept = _salvaged(path, index)
    pts = np.asarray(index.pts[:kept], dtype=np.float64)
    times = start + (pts - pts[0]) * float(time_base)
    # its readers place exactly these frames: the file's own, whatever a cut did around them
    read = index._replace(pts=index.pts[:kept], keyframes=[k for k in index.keyframes if k <= pts[-1]], cut=False)
    return _Probe(shape, "uint16" if deep else "uint8", codec, times, start, turns, read)


def _first_frame_turns(container: Any, stream: Any) -> int:
    """Quarter turns the file's display matrix asks for (``video_av_base.display_turns``), seen on
    its first frame: decoders attach the matrix to every frame (0 when none decodes here)."""
    from ..codecs.video_av_base import display_turns, pyav

    try:  # the first packet alone, drained at once: no more bytes than it fetched (at a URL)
        packet = next((p for p in container.demux(stream) if p.size), None)
        if packet is None:
            return 0
        decoded = stream.codec_context.decode(packet) + stream.codec_context.decode(None)
    except (pyav().FFmpegError, OSError):  # demuxing it afterwards says what is wrong
        return 0
    return display_turns(decoded[0]) if decoded else 0


def _whole_packets(path: str, fs: LocalFileSystem, index: Any, container_name: str) -> Any:
    """``index`` without the frames of a last packet cut short, in containers whose packets do not
    say so themselves (MPEG-TS, MPEG-PS): their frames of the last GOP are decoded to find out."""
    from ..codecs.video_av_index import UNFRAMED_CONTAINERS, damaged_tail

    if container_name not in UNFRAMED_CONTAINERS or index.cut:
        return index
    damaged = damaged_tail(path, fs, index)
    if not damaged:
        return index
    first = min(damaged)  # the frames shown from it on: the reader's positions stay the same before it
    return index._replace(
        pts=[p for p in index.pts if p < first], keyframes=[k for k in index.keyframes if k < first], cut=True
    )


def _salvaged(path: str, index: Any) -> int:
    """How many frames of the file are read: every frame before a cut, with a warning when the
    file is cut short (``_probe`` refused one cut before its first frame). Each frame's time is
    its own timestamp's, so a frame a cut left out among B-frames shifts the positions after
    it, never pairs a picture with another's time."""
    kept = len(index.pts)
    if not index.cut:
        return kept
    log.warning("%s: the file is cut short; its %d whole frames are read", path, kept)
    return kept


def _mp4_cut_short(path: str, fs: LocalFileSystem) -> Optional[str]:
    """Why an MP4/MOV file FFmpeg cannot open was cut short: before its header ('moov', which a
    recorder writes last when it closes the file) or inside it; None when it does not look so."""
    boxes: List[bytes] = []
    try:
        with fs.open(path) as f:
            size_of_file = f.seek(0, os.SEEK_END)
            position = 0
            while position + 8 <= size_of_file and len(boxes) < 64:
                f.seek(position)
                head = f.read(16)
                size, kind = int.from_bytes(head[:4], "big"), head[4:8]
                if size == 1 and len(head) == 16:
                    size = int.from_bytes(head[8:16], "big")
                boxes.append(kind)
                if size < 8:  # 0: to the end of the file
                    break
                if position + size > size_of_file:
                    if kind == b"moov":
                        return "an MP4/MOV file cut short inside its header ('moov'): its frames cannot be found"
                    break
                position += size
    except OSError:
        return None
    if boxes[:1] == [b"ftyp"] and b"mdat" in boxes and b"moov" not in boxes and b"moof" not in boxes:
        return (
            "an MP4/MOV file cut short before its header ('moov', written when a recording is closed): "
            "its frames cannot be found without it"
        )
    return None


def _not_frame_exact(index: Any, pix_fmt: str, codec: str) -> Optional[str]:
    """Why the file's frames cannot be placed by their timestamps (None: they can)."""
    pts = index.pts
    name, container = codec.split("/", 1)
    if not pts:  # (a file cut short before its first frame was refused before this)
        return "it holds no frames with timestamps (a raw stream?)"
    if index.damaged_within:
        return f"a damaged packet follows frame {len(pts) - 1}, and more frames follow it (files joined end to end?)"
    if len(set(pts)) != len(pts):
        return "frames share timestamps (recordings joined end to end?)"
    if pts[0] < 0:
        return "it starts with frames an edit list hides (a cut made by copying streams)"
    if container == "avi" and name != "mpeg4" and _reorders(name):
        # AVI stores no presentation times: FFmpeg guesses them, wrongly once frames are reordered
        return f"AVI holds no presentation times for {name}, whose frames may be reordered (B-frames)"
    if pix_fmt == "pal8" and name == "rawvideo":
        return "its paletted frames keep their palette in the first packet only"
    return None


def _reorders(codec_name: str) -> bool:
    """Whether FFmpeg's decoder of ``codec_name`` may output frames in another order than it takes them."""
    from ..codecs.video_av_base import pyav

    try:
        return bool(pyav().Codec(codec_name, "r").reorder)
    except Exception:  # an unknown decoder: assume the worst
        return True


class _PlainVideo:
    """What a plain video's location answers alike on this disk and at a URL: its metadata is made
    up from the file, it has no index files, and nobody writes it."""

    writable = False
    sees_writers = False
    path: str
    probe: _Probe

    @property
    def metadata_path(self) -> str:
        return self.path  # what "the store's file" means for messages and existence checks

    def read_metadata(self) -> Tuple[StoreMetadata, Dict[str, Any]]:
        """The metadata a store of this video would have (made up from the file, never read from disk)."""
        probe = self.probe
        created = datetime.datetime.fromtimestamp(probe.start, datetime.timezone.utc).replace(tzinfo=None)
        smd = StoreMetadata(
            class_name="VideoImgStore",
            imgshape=probe.shape,
            imgdtype=probe.dtype,
            chunksize=len(probe.times),
            format=probe.codec,
            encoding=None,
            version=STORE_VERSION,
            created_utc=created.isoformat(),
            timezone_local=get_local_timezone(),
            uuid=None,
            extension=os.path.splitext(urlsplit(self.path).path)[1],
            other={},
        )
        return smd, {}

    def has_index_file(self, index_base: str) -> bool:
        return True  # the file is whole: its frames are known from the file itself

    def open_reader(
        self,
        codec: ChunkCodec,
        path: str,
        shape: Shape,
        dtype: str,
        count: int,
        index_base: Optional[str] = None,
        sealed: Optional[Any] = None,
    ) -> ChunkReader:
        """The file's reader, its frames turned as the file asks (decided once, from its first frame);
        (``sealed``: unused, a plain video has no seal)."""
        turns = self.probe.turns
        if not turns:
            return super().open_reader(codec, path, shape, dtype, count, index_base)  # type: ignore[misc]
        decoded = (shape[1], shape[0], *shape[2:]) if turns % 2 else tuple(shape)
        return _TurnedReader(super().open_reader(codec, path, decoded, dtype, count, index_base), turns)  # type: ignore[misc]

    def index_notes(self, index_base: str) -> Dict[str, Any]:
        """No index file beside it: its frames as probed, for its readers (no demux pass of their own)."""
        from ..codecs.video_av import KNOWN_INDEX_KEY

        return {KNOWN_INDEX_KEY: self.probe.index}

    def writer_state(self) -> Tuple[str, str]:
        return "none", ""


class _TurnedReader(ChunkReader):
    """Frames of another reader, each turned by the same quarter turns (``video_av_base.turned``)."""

    def __init__(self, reader: ChunkReader, turns: int) -> None:
        self._reader = reader
        self._turns = turns

    def read(self, frame_idx: int) -> np.ndarray:
        return turned(self._reader.read(frame_idx), self._turns)

    def close(self) -> None:
        self._reader.close()


class VideoFileLocation(_PlainVideo, LocalLocation):
    """A video file on this machine: its directory is the store's; nothing is ever written there."""

    def __init__(self, path: str, start_time: StartTime = StartTime()) -> None:
        self.path = os.path.abspath(os.fspath(path))
        super().__init__(os.path.dirname(self.path))
        self.start_time = start_time
        self.probe = _probe(self.path, self.fs, start_time)

    def __reduce__(self) -> Tuple[Any, ...]:
        return type(self), (self.path, self.start_time)

    def portable(self) -> VideoFileLocation:
        return self

    def contains(self, path: str) -> bool:
        return os.path.abspath(path) == self.path


class RemoteVideoFileLocation(_PlainVideo, RemoteLocation):
    """A video file behind a URL: read through byte ranges, its folder never listed."""

    def __init__(
        self, url: str, storage_options: Optional[Dict[str, Any]] = None, start_time: StartTime = StartTime()
    ) -> None:
        self.path = url
        super().__init__(url.rsplit("/", 1)[0], storage_options)
        self.start_time = start_time
        try:  # its size and version, from the server (one request), not a listing of its folder
            self.fs.remember_file(url)
        except FileNotFoundError:
            raise StoreNotFoundError(f"{url}: no such file at this URL") from None
        except OSError as exc:
            raise FrameReadError(f"{url}: cannot be fetched ({exc})") from None
        self.probe = _probe(url, self.fs, start_time)

    def __reduce__(self) -> Tuple[Any, ...]:
        return type(self), (self.path, self.storage_options, self.start_time)

    def portable(self) -> RemoteVideoFileLocation:
        return self


def _video_location(path: Any, storage_options: Optional[Dict[str, Any]], start_time: StartTime) -> _PlainVideo:
    text = os.fspath(path)
    if isinstance(location_for(text, storage_options), RemoteLocation):
        return RemoteVideoFileLocation(text, storage_options, start_time)
    return VideoFileLocation(text, start_time)


class VideoFileLayout(ChunkLayout):
    """One chunk, 0: the video file itself, with no index, journal or extra data beside it."""

    extension = None

    def chunk_path(self, chunk_n: int) -> str:
        return self.location.path  # type: ignore[union-attr]

    def index_base(self, chunk_n: int) -> str:
        return self.location.path + "#no-index"  # type: ignore[union-attr]

    def chunk_numbers(self) -> List[int]:
        return [0]

    def scan(self) -> ChunkScan:
        return [], [(0, self.index_base(0))]

    def unfinished_chunks(self) -> List[int]:
        return []

    def chunk_is_empty(self, chunk_n: int) -> bool:
        return False

    def extra_data_paths(self, chunk_n: int, extensions: Tuple[str, ...] = ()) -> List[str]:
        return []

    def prepare(self, chunk_n: int) -> None:
        raise ImgStoreError(f"{self.location.path}: a plain video is read-only")  # type: ignore[union-attr]

    unprepare = remove_chunk_data = prepare


class VideoFileStore(VideoImgStore):
    """A plain video file read as a one-chunk, read-only store (see the module's description).

    ``start_time`` (seconds since the epoch, or a ``datetime``) says when its first frame was
    taken; without it the start is read from the file (``store.videostart``), where
    ``start_time_pattern`` (a regular expression, see ``NAME_TIME_PATTERN``; None: never) finds a
    time in the file's name. ``storage_options`` are fsspec's, for a file at a URL.
    """

    def __init__(
        self,
        path: Any,
        start_time: Optional[Any] = None,
        start_time_pattern: Union[str, Pattern[str], None] = NAME_TIME_PATTERN,
        **kwargs: Any,
    ) -> None:
        if kwargs.get("mode", "r") != "r":
            raise ImgStoreError(f"{os.fspath(path)}: a plain video is opened for reading only")
        kwargs.pop("mode", None)
        self._reopen = {"start_time": start_time, "start_time_pattern": start_time_pattern}
        if kwargs.get("storage_options"):
            self._reopen["storage_options"] = kwargs["storage_options"]
        location = _video_location(path, kwargs.get("storage_options"), StartTime(start_time, start_time_pattern))
        probe = location.probe
        numbers = np.arange(len(probe.times), dtype=np.int64)
        index = ImgStoreIndex.from_arrays([0], [numbers], [probe.times])
        super().__init__(basedir=location, mode="r", index=index, **kwargs)
        self._chunk_n_and_chunk_paths = [(0, location.path)]

    def __reduce__(self) -> Tuple[Any, ...]:
        """Pickled as its path and how it was opened (for Dask and other processes): opened again
        where it is unpickled."""
        return _reopened, (type(self), self.filename, self._reopen)

    def _kind(self) -> StoreKind:
        kind = super()._kind()  # read as a video store's chunk, by whatever FFmpeg decodes
        return dataclasses.replace(kind, name="VideoImgStore", layout=lambda location, smd: VideoFileLayout(location))

    def _reader_codec(self, fmt: object) -> codecs.ChunkCodec:
        return codecs.get_reader_codec(fmt, "VideoImgStore", backend=self._backend)

    @property
    def filename(self) -> str:
        return self._side.view.location.path  # type: ignore[union-attr]

    def refresh(self) -> int:
        """A plain video gains no frames: nothing to take in."""
        return 0


def _reopened(cls: type, path: str, options: Dict[str, Any]) -> VideoFileStore:
    return cls(path, **options)
