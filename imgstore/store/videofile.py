"""A plain video file (``run.mp4``, a camera's ``.mov``) read as a store, so that every tool works on it.

``new_for_filename('run.mp4')`` opens it read-only as one chunk: frames numbered 0..n-1 in
presentation order, read frame-exactly like a store's own chunks (each frame is the n-th
presentation timestamp). Frame ``n``'s time is the recording's start plus its timestamp from the
first frame; the start is the container's ``creation_time`` tag, else the file's modification
time. Grey video reads as grey frames and video deeper than 8 bits as 16-bit frames. The file is
never written to: no index, cache or lock is made beside it.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import os
from fractions import Fraction
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from .. import codecs
from ..constants import STORE_VERSION
from ..errors import FrameReadError, ImgStoreError
from ..index.storeindex import ImgStoreIndex
from ..io.metadata import StoreMetadata
from ..io.timezone import get_local_timezone
from .layout import ChunkLayout, ChunkScan
from .location import LocalLocation
from .opening import StoreKind
from .video import VideoImgStore

__all__ = ["VIDEO_FILE_EXTENSIONS", "VideoFileStore", "container_start_time", "is_video_file"]

log = logging.getLogger(__name__)

#: file extensions opened as plain videos by ``new_for_filename``
VIDEO_FILE_EXTENSIONS = (
    ".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".ts", ".mts", ".m2ts", ".mxf",
    ".flv", ".wmv", ".ogv", ".3gp", ".y4m",
)  # fmt: skip


def is_video_file(path: Any) -> bool:
    """Whether ``path`` names an existing file with a video extension (opened as a plain video)."""
    try:
        text = os.fspath(path)
    except TypeError:
        return False
    return isinstance(text, str) and text.lower().endswith(VIDEO_FILE_EXTENSIONS) and os.path.isfile(text)


@dataclasses.dataclass(frozen=True)
class _Probe:
    """What the file says about itself: frame shape and dtype, codec, timestamps and start time."""

    shape: Tuple[int, ...]
    dtype: str
    codec: str
    times: np.ndarray
    start: float


def _probe(path: str) -> _Probe:
    """Demux the file once (no decoding): its stream's geometry, pixel depth and frame times."""
    from ..codecs.video_av_base import pyav
    from ..codecs.video_av_index import packet_index

    av = pyav()
    try:
        with av.open(path) as container:
            if not container.streams.video:
                raise FrameReadError(f"{path}: holds no video stream")
            stream = container.streams.video[0]
            context = stream.codec_context
            pix_fmt = context.pix_fmt or "yuv420p"
            video_format = av.VideoFormat(pix_fmt)
            time_base = Fraction(stream.time_base or Fraction(1, 1000))
            start = container_start_time(container, path)
            codec = f"{context.name}/{(container.format.name or '').split(',')[0]}"
            width, height = context.width, context.height
        index = packet_index(path)
    except (av.error.FFmpegError, IndexError, UnicodeDecodeError) as exc:  # IndexError: no video stream
        raise FrameReadError(f"{path}: not a video FFmpeg can read ({exc or 'no video stream'})") from None
    deep = max((c.bits for c in video_format.components), default=8) > 8
    grey = pix_fmt.startswith(("gray", "y400"))
    shape = (height, width) if grey else (height, width, 3)
    problem = _not_frame_exact(index, pix_fmt, codec)
    if problem:
        raise FrameReadError(
            f"{path}: {problem}, so its frames cannot be found by position in place; make a store of it "
            f"(imgstore-save NEW --source {path}), which decodes it in order"
        )
    pts = np.asarray(index.pts, dtype=np.float64)
    times = start + (pts - pts[0]) * float(time_base)
    return _Probe(shape, "uint16" if deep else "uint8", codec, times, start)


def _not_frame_exact(index: Any, pix_fmt: str, codec: str) -> Optional[str]:
    """Why the file's frames cannot be placed by their timestamps (None: they can)."""
    pts = index.pts
    name, container = codec.split("/", 1)
    if not pts:
        return "it holds no frames with timestamps (a raw stream?)"
    if index.cut:
        return f"a damaged packet follows frame {len(pts) - 1} (a file cut short, or files joined end to end?)"
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


def container_start_time(container: Any, path: str) -> float:
    """The container's ``creation_time`` tag (seconds since the epoch), else the file's modification time."""
    tag = (container.metadata or {}).get("creation_time")
    if tag:
        try:
            created = datetime.datetime.fromisoformat(tag.replace("Z", "+00:00"))
            if created.tzinfo is None:
                created = created.replace(tzinfo=datetime.timezone.utc)
            if created.year > 1970:  # muxers write 1970-01-01 / 1904-01-01 for "unknown"
                return created.timestamp()
        except ValueError:
            log.debug("%s: unreadable creation_time %r", path, tag)
    return os.stat(path).st_mtime


class VideoFileLocation(LocalLocation):
    """A video file on this machine: its directory is the store's; nothing is ever written there."""

    writable = False
    sees_writers = False

    def __init__(self, path: str) -> None:
        self.path = os.path.abspath(os.fspath(path))
        super().__init__(os.path.dirname(self.path))
        self.probe = _probe(self.path)

    def __reduce__(self) -> Tuple[Any, ...]:
        return type(self), (self.path,)

    def portable(self) -> VideoFileLocation:
        return self

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
            extension=os.path.splitext(self.path)[1],
            other={},
        )
        return smd, {}

    def has_index_file(self, index_base: str) -> bool:
        return True  # the file is whole: its frames are known from the file itself

    def contains(self, path: str) -> bool:
        return os.path.abspath(path) == self.path

    def writer_state(self) -> Tuple[str, str]:
        return "none", ""


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
    """A plain video file read as a one-chunk, read-only store (see the module's description)."""

    def __init__(self, path: Any, **kwargs: Any) -> None:
        if kwargs.get("mode", "r") != "r":
            raise ImgStoreError(f"{os.fspath(path)}: a plain video is opened for reading only")
        kwargs.pop("mode", None)
        location = VideoFileLocation(path)
        probe = location.probe
        numbers = np.arange(len(probe.times), dtype=np.int64)
        index = ImgStoreIndex.from_arrays([0], [numbers], [probe.times])
        super().__init__(basedir=location, mode="r", index=index, **kwargs)
        self._chunk_n_and_chunk_paths = [(0, location.path)]

    def __reduce__(self) -> Tuple[Any, ...]:
        """Pickled as its path (for Dask and other processes): opened again where it is unpickled."""
        return type(self), (self.filename,)

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
