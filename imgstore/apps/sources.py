"""Frame sources for ``imgstore-save``: where frames, their numbers and their times come from.

Every source is opened eagerly (so that a bad path fails before anything is written) and hands
out ``(image, frame_number, frame_time)`` from a generator. Numbers and times come from the
source when it has them (a store, a video's timestamps), else from a counter and the clock.

- ``testsrc``: a synthetic camera, :func:`render_testsrc` (a pure function of the frame number).
- a store (its directory or metadata.yaml): frames with their numbers, times and user metadata,
  and its extra data (:class:`ExtraRows`), each row after the frame it followed in the source.
- a folder of images, or a glob pattern: sorted by name (numbers in names compare as numbers),
  numbered from 0, timed by each file's modification time.
- a video file: numbered from 0 by position; time = the container's ``creation_time`` tag (else
  a time in the file's name, else its modification time; ``store.videostart``) + the frame's
  timestamp relative to the first frame.
- a camera index (``0``, ``1``...) or a device path: numbered from 0, timed by the clock.
- a URL (``rtsp://``, ``http://``...): read with PyAV; time = when it was opened + timestamps.
"""

from __future__ import annotations

import contextlib
import dataclasses
import glob
import logging
import os
import re
import stat
import time
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import numpy as np

from ..codecs.video_av_base import display_turns, turned
from ..constants import STORE_MD_FILENAME
from ..store.videostart import video_start_time
from ._cli import ToolError, error_reason
from ._source_extra import ExtraRows, read_extra_rows
from ._source_testsrc import render_testsrc

__all__ = [
    "IMAGE_EXTENSIONS",
    "TESTSRC",
    "ExtraRows",
    "Frame",
    "Source",
    "open_camera",
    "open_images",
    "open_source",
    "open_store",
    "open_testsrc",
    "open_video",
    "read_extra_rows",
    "read_image",
    "render_testsrc",
]

log = logging.getLogger(__name__)

#: one frame: (image, frame_number, frame_time in seconds since the epoch)
Frame = Tuple[np.ndarray, int, float]

TESTSRC = "testsrc"
#: file extensions read as images (anything else that is a file is tried as a video)
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".ppm", ".pgm", ".pbm", ".pnm", ".webp")


@dataclasses.dataclass
class Source:
    """An opened source: its frames, how many (when known) and the user metadata to copy."""

    description: str
    frames: Iterator[Frame]
    total: Optional[int] = None
    metadata: Dict[str, Any] = dataclasses.field(default_factory=dict)
    #: a camera or stream: runs until stopped
    live: bool = False
    #: extra-data rows to copy with the frames (a store's)
    extra: Optional[ExtraRows] = None
    _closers: List[Callable[[], None]] = dataclasses.field(default_factory=list)

    def close(self) -> None:
        """Release the source (call once no other thread runs its generator). Safe to call twice."""
        close = getattr(self.frames, "close", None)
        if close is not None:
            close()
        closers, self._closers = self._closers, []
        for closer in closers:
            try:
                closer()
            except Exception as exc:  # releasing must not hide what happened before
                log.debug("closing %s: %s", self.description, exc)


def open_source(
    spec: str,
    size: Tuple[int, int] = (640, 480),
    fps: Optional[float] = None,
    color: bool = False,
    realtime: bool = False,
    start_time: Optional[float] = None,
) -> Source:
    """Open what ``--source`` names (see the module docstring for how each kind is read).

    ``fps`` and ``start_time`` (epoch seconds) time the frames of image files and videos instead
    of their files' modification times and the video's own timestamps: frame ``n`` is at
    ``start + n / fps``, the start being ``start_time`` or what the source says.
    """
    if spec == TESTSRC:
        return open_testsrc(size, fps or 25.0, color, realtime)
    timing = _Timing(fps, start_time)
    if re.fullmatch(r"\d+", spec):
        _refuse_timing_of_a_camera(spec, timing)
        return open_camera(int(spec))
    if "://" in spec:
        return open_video(spec, url=True, timing=timing)
    if timing.fps is not None or timing.start_time is not None:
        _refuse_timing(spec)
    if os.path.isdir(spec):
        if os.path.isfile(os.path.join(spec, STORE_MD_FILENAME)):
            return open_store(spec)
        return open_images(spec, _images_in_folder(spec), timing)
    if os.path.isfile(spec):
        if os.path.basename(spec) == STORE_MD_FILENAME:
            return open_store(spec)
        if spec.lower().endswith(IMAGE_EXTENSIONS):
            return open_images(spec, [spec], timing)
        return open_video(spec, timing=timing)
    if os.path.exists(spec) and stat.S_ISCHR(os.stat(spec).st_mode):  # /dev/video0...
        return open_camera(spec)
    if glob.has_magic(spec):
        paths = sorted((p for p in glob.glob(spec) if os.path.isfile(p)), key=_natural_key)
        if not paths:
            raise ToolError(f"{spec}: no files match this pattern")
        return open_images(spec, paths, timing)
    raise ToolError(
        f"{spec}: no such file or directory (a source is a video, a store, a folder of images, "
        f"a glob pattern, a camera index, a URL or '{TESTSRC}')"
    )


def _refuse_timing(spec: str) -> None:
    """``--fps``/``--start-time`` time images and videos; a store keeps its own frames' times."""
    is_store = os.path.isfile(os.path.join(spec, STORE_MD_FILENAME)) or os.path.basename(spec) == STORE_MD_FILENAME
    if is_store:
        raise ToolError(f"{spec}: --fps and --start-time time images and videos; a store's frames keep their times")


def _refuse_timing_of_a_camera(spec: str, timing: Any) -> None:
    if timing.fps is not None or timing.start_time is not None:
        raise ToolError(
            f"camera {spec}: --fps and --start-time time images and videos; a camera's frames are timed live"
        )


# ----------------------------------------------------------------------------------------------
# testsrc: the synthetic camera
# ----------------------------------------------------------------------------------------------
def open_testsrc(size: Tuple[int, int], fps: float, color: bool, realtime: bool) -> Source:
    """Frames 0, 1, 2... of :func:`render_testsrc`, timed from now at ``fps`` (paced when ``realtime``)."""

    def frames() -> Iterator[Frame]:
        t0 = time.time()
        start = time.monotonic()
        number = 0
        while True:
            if realtime:
                wait = start + number / fps - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
            yield render_testsrc(number, size, color), number, t0 + number / fps
            number += 1

    return Source(f"{TESTSRC} {size[0]}x{size[1]} at {fps:g} fps", frames(), live=realtime)


# ----------------------------------------------------------------------------------------------
# stores
# ----------------------------------------------------------------------------------------------
def open_store(path: str) -> Source:
    """Every frame of a store, in store order, with its number, time, the store's user metadata and
    its extra data."""
    from ..store.factory import new_for_filename

    store = new_for_filename(path)
    try:
        extra = read_extra_rows(store)
    except BaseException:
        store.close()
        raise

    def frames() -> Iterator[Frame]:
        for _ in range(store.frame_count):
            img, (number, frame_time) = store.get_next_image()
            yield img, number, frame_time

    return Source(
        f"store {store.filename}",
        frames(),
        total=store.frame_count,
        metadata=dict(store.user_metadata),
        extra=extra,
        _closers=[store.close],
    )


# ----------------------------------------------------------------------------------------------
# images
# ----------------------------------------------------------------------------------------------
def _natural_key(path: str) -> List[Any]:
    """Sort key in which runs of digits compare as numbers: img2.png before img10.png."""
    return [(0, int(part), part) if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", path)]


def _images_in_folder(folder: str) -> List[str]:
    with os.scandir(folder) as entries:
        paths = [e.path for e in entries if e.is_file() and e.name.lower().endswith(IMAGE_EXTENSIONS)]
    if not paths:
        raise ToolError(f"{folder}: no images ({', '.join(IMAGE_EXTENSIONS)}) and no store in this folder")
    return sorted(paths, key=_natural_key)


def read_image(path: str) -> np.ndarray:
    """One image as OpenCV reads it, keeping grey as grey and 16-bit as 16-bit."""
    return read_pages(path)[0]


def read_pages(path: str) -> List[np.ndarray]:
    """Every page of an image file (a multi-page TIFF has several; other images one), grey kept
    grey and 16-bit kept 16-bit."""
    import cv2

    flags = cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR
    if path.lower().endswith((".tif", ".tiff")):
        ok, pages = cv2.imreadmulti(path, flags=flags)
        if ok and pages:
            return list(pages)
    img = cv2.imread(path, flags)
    if img is None:
        raise ToolError(f"{path}: not an image OpenCV can read")
    return [img]


def _page_count(path: str) -> int:
    """Pages in an image file without decoding them (1 unless a multi-page TIFF)."""
    if not path.lower().endswith((".tif", ".tiff")):
        return 1
    import cv2

    try:
        return max(1, int(cv2.imcount(path, cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR)))
    except cv2.error:
        return 1


@dataclasses.dataclass(frozen=True)
class _Timing:
    """``--fps`` and ``--start-time``: how the frames of images and videos are timed, when given."""

    fps: Optional[float] = None
    start_time: Optional[float] = None

    def time_of(self, number: int, start: float, own: float) -> float:
        """Frame ``number``'s time: ``start + number / fps`` with a rate, else its own time moved to the start."""
        first = self.start_time if self.start_time is not None else start
        if self.fps:
            return first + number / self.fps
        return own if self.start_time is None else first + (own - start)


def open_images(spec: str, paths: List[str], timing: _Timing = _Timing()) -> Source:
    """Image files in the given order (each page of a multi-page TIFF a frame), numbered from 0,
    timed by their modification times (or by ``timing``)."""

    def frames() -> Iterator[Frame]:
        first_shape = None
        number = 0
        start = os.stat(paths[0]).st_mtime
        for path in paths:
            mtime = os.stat(path).st_mtime
            for img in read_pages(path):
                if first_shape is None:
                    first_shape = (img.shape, img.dtype)
                elif (img.shape, img.dtype) != first_shape:
                    raise ToolError(
                        f"{path}: image of shape {img.shape} ({img.dtype}) differs from the first image's "
                        f"{first_shape[0]} ({first_shape[1]}); a store holds images of one shape"
                    )
                yield img, number, timing.time_of(number, start, mtime)
                number += 1

    total = sum(_page_count(p) for p in paths)
    return Source(f"{len(paths)} image(s) {spec}", frames(), total=total)


# ----------------------------------------------------------------------------------------------
# video files and streams (PyAV)
# ----------------------------------------------------------------------------------------------
def _count_packets(path: str) -> Optional[int]:
    """Frames in a local video without decoding (its packets), for containers that do not say."""
    import av

    try:
        with av.open(path) as container:
            stream = container.streams.video[0]
            return sum(1 for packet in container.demux(stream) if packet.size)
    except (av.error.FFmpegError, IndexError, OSError):
        return None


def _ndarray_format(video_format: Any) -> str:
    """Keep grey video grey, and video deeper than 8 bits (10-bit ProRes, 12-bit H.265...) 16-bit;
    everything else becomes 8-bit BGR."""
    name = video_format.name
    deep = max((c.bits for c in video_format.components), default=8) > 8
    if name.startswith(("gray", "y400")):
        return "gray16le" if deep else "gray"
    return "bgr48le" if deep else "bgr24"


def open_video(path: str, url: bool = False, timing: _Timing = _Timing()) -> Source:
    """A video file or stream, decoded with PyAV: numbered from 0, timed by its timestamps."""
    import av

    try:
        container = av.open(path, timeout=(10.0, 10.0) if url else None)
    except (av.error.FFmpegError, OSError) as exc:
        raise ToolError(f"{path}: cannot open as a video: {error_reason(exc)}") from None
    try:
        if not container.streams.video:
            raise ToolError(f"{path}: holds no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        total = None
        t0 = time.time()
        if not url:
            total = stream.frames or _count_packets(path)
            t0 = video_start_time(container, path)
        rate = float(stream.average_rate or stream.guessed_rate or 25)
    except BaseException:
        container.close()
        raise

    def frames() -> Iterator[Frame]:
        first_time = None
        fmt = None
        turns = 0
        try:
            for number, frame in enumerate(container.decode(stream)):
                if fmt is None:  # the first frame decides for the file (a turn, a pixel format)
                    fmt, turns = _ndarray_format(frame.format), display_turns(frame)
                img = turned(frame.to_ndarray(format=fmt), turns)  # upright, as players show it
                pts_time = frame.time
                if pts_time is None:
                    own = t0 + number / rate
                else:
                    if first_time is None:
                        first_time = pts_time
                    own = t0 + (pts_time - first_time)
                yield img, number, timing.time_of(number, t0, own)
        except av.error.FFmpegError as exc:
            raise ToolError(f"{path}: cannot decode: {error_reason(exc)}") from None

    kind = "stream" if url else "video"
    return Source(f"{kind} {path}", frames(), total=total, live=url, _closers=[container.close])


# ----------------------------------------------------------------------------------------------
# cameras
# ----------------------------------------------------------------------------------------------
@contextlib.contextmanager
def _opencv_quiet() -> Iterator[None]:
    """Silence OpenCV's own log (each backend it tries prints why it failed) unless debugging."""
    try:
        from cv2.utils import logging as cv_logging
    except ImportError:  # older OpenCV: nothing to silence with
        cv_logging = None
    if cv_logging is None or log.isEnabledFor(logging.DEBUG):
        yield
        return
    previous = cv_logging.getLogLevel()
    cv_logging.setLogLevel(cv_logging.LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        cv_logging.setLogLevel(previous)


def open_camera(index: Any) -> Source:
    """A camera through ``cv2.VideoCapture``: numbered from 0, timed by the clock when read."""
    import cv2

    with _opencv_quiet():
        cap = cv2.VideoCapture(index)
    if not cap.isOpened():
        cap.release()
        raise ToolError(f"camera {index}: cannot open it (no such camera, or it is busy)")

    def frames() -> Iterator[Frame]:
        number = 0
        while True:
            ok, img = cap.read()
            frame_time = time.time()
            if not ok or img is None:
                if number == 0:
                    raise ToolError(f"camera {index}: opened but gave no frame")
                log.warning("camera %s stopped giving frames after %d; finishing the store", index, number)
                return
            yield img, number, frame_time
            number += 1

    return Source(f"camera {index}", frames(), live=True, _closers=[cap.release])
