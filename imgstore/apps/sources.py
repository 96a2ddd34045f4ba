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
  the file's modification time) + the frame's timestamp relative to the first frame.
- a camera index (``0``, ``1``...) or a device path: numbered from 0, timed by the clock.
- a URL (``rtsp://``, ``http://``...): read with PyAV; time = when it was opened + timestamps.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import functools
import glob
import logging
import math
import os
import re
import stat
import time
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import numpy as np

from ..constants import STORE_MD_FILENAME
from ._cli import ToolError, error_reason

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
    fps: float = 25.0,
    color: bool = False,
    realtime: bool = False,
) -> Source:
    """Open what ``--source`` names (see the module docstring for how each kind is read)."""
    if spec == TESTSRC:
        return open_testsrc(size, fps, color, realtime)
    if re.fullmatch(r"\d+", spec):
        return open_camera(int(spec))
    if "://" in spec:
        return open_video(spec, url=True)
    if os.path.isdir(spec):
        if os.path.isfile(os.path.join(spec, STORE_MD_FILENAME)):
            return open_store(spec)
        return open_images(spec, _images_in_folder(spec))
    if os.path.isfile(spec):
        if os.path.basename(spec) == STORE_MD_FILENAME:
            return open_store(spec)
        if spec.lower().endswith(IMAGE_EXTENSIONS):
            return open_images(spec, [spec])
        return open_video(spec)
    if os.path.exists(spec) and stat.S_ISCHR(os.stat(spec).st_mode):  # /dev/video0...
        return open_camera(spec)
    if glob.has_magic(spec):
        paths = sorted((p for p in glob.glob(spec) if os.path.isfile(p)), key=_natural_key)
        if not paths:
            raise ToolError(f"{spec}: no files match this pattern")
        return open_images(spec, paths)
    raise ToolError(
        f"{spec}: no such file or directory (a source is a video, a store, a folder of images, "
        f"a glob pattern, a camera index, a URL or '{TESTSRC}')"
    )


# ----------------------------------------------------------------------------------------------
# testsrc: the synthetic camera
# ----------------------------------------------------------------------------------------------
#: colour bars, BGR: white, yellow, cyan, green, magenta, red, blue, black
_BARS = np.array(
    [
        (235, 235, 235),
        (16, 235, 235),
        (235, 235, 16),
        (16, 235, 16),
        (235, 16, 235),
        (16, 16, 235),
        (235, 16, 16),
        (16, 16, 16),
    ],
    dtype=np.uint8,
)


@functools.lru_cache(maxsize=8)
def _testsrc_background(width: int, height: int, color: bool) -> np.ndarray:
    """Colour bars over the top two thirds, a grey ramp below (two periods wide, to scroll through);
    grey: its ITU-R BT.601 luma, as OpenCV's BGR to grey conversion gives."""
    bars_h = max(1, height * 2 // 3)
    img = np.empty((height, 2 * width, 3), np.uint8)
    bar = (np.arange(2 * width) * 8 // width) % 8
    img[:bars_h] = _BARS[bar][np.newaxis]
    ramp = np.abs((np.arange(2 * width) * 510 // width) % 510 - 255)  # a triangle wave, one period per width
    img[bars_h:] = ramp.astype(np.uint8)[np.newaxis, :, np.newaxis]
    if not color:
        img = np.rint(img @ np.array([0.114, 0.587, 0.299])).astype(np.uint8)
    img.flags.writeable = False
    return img


#: 3x5 pixel glyphs of the characters testsrc draws, one string of 15 bits per character, row by row
_GLYPHS = {
    "#": "101111101111101",
    "0": "111101101101111",
    "1": "010110010010111",
    "2": "111001111100111",
    "3": "111001111001111",
    "4": "101101111001001",
    "5": "111100111001111",
    "6": "111100111101111",
    "7": "111001010010010",
    "8": "111101111101111",
    "9": "111101111001111",
}


def _text_mask(text: str, pixel: int) -> np.ndarray:
    """``text`` in the 3x5 glyphs, each glyph pixel ``pixel`` wide, a glyph pixel apart: a bool mask."""
    glyphs = [np.array([c == "1" for c in _GLYPHS[ch]], bool).reshape(5, 3) for ch in text]
    gap = np.zeros((5, 1), bool)
    row = np.hstack([part for glyph in glyphs for part in (glyph, gap)][:-1])
    return np.kron(row, np.ones((pixel, pixel), bool))


def render_testsrc(number: int, size: Tuple[int, int] = (640, 480), color: bool = False) -> np.ndarray:
    """Frame ``number`` of the synthetic camera: a moving pattern with the number drawn in.

    ``size`` is ``(width, height)``. Colour frames are BGR ``(h, w, 3)``, grey frames ``(h, w)``,
    both uint8. The same arguments always give the same pixels. Drawn with numpy alone, so
    that recording from it needs no OpenCV.
    """
    width, height = int(size[0]), int(size[1])
    background = _testsrc_background(width, height, bool(color))
    bars_h = max(1, height * 2 // 3)
    shift = (4 * number) % width
    img = np.empty((height, width, *background.shape[2:]), np.uint8)
    img[:bars_h] = background[:bars_h, shift : shift + width]  # bars scroll left
    back = (-2 * number) % width
    img[bars_h:] = background[bars_h:, back : back + width]  # the ramp scrolls right

    # a disc on a Lissajous path, one period every 200 frames: black, with a white middle (drawn
    # in black and white, which are the same in grey and colour)
    phase = 2 * math.pi * (number % 200) / 200
    radius = max(2, min(width, height) // 12)
    cx = round(width / 2 + (width / 2 - radius) * math.sin(phase))
    cy = round(height / 2 + (height / 2 - radius) * math.sin(2 * phase))
    top, left = max(0, cy - radius), max(0, cx - radius)
    ys, xs = np.ogrid[top : min(height, cy + radius + 1), left : min(width, cx + radius + 1)]
    distance2 = (xs - cx) ** 2 + (ys - cy) ** 2
    disc = img[top : top + distance2.shape[0], left : left + distance2.shape[1]]
    disc[distance2 <= radius**2] = 0
    disc[distance2 <= max(1, radius * 2 // 3) ** 2] = 255

    # the frame number, white on a black box, top left
    mask = _text_mask(f"#{number}", max(1, height // 60))
    margin = max(2, mask.shape[0] // 3)
    box = img[: mask.shape[0] + 2 * margin, : mask.shape[1] + 2 * margin]
    box[:] = 0
    text = box[margin : margin + mask.shape[0], margin : margin + mask.shape[1]]
    text[mask[: text.shape[0], : text.shape[1]]] = 255
    return img


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
#: the columns a store writes into every extra-data row itself (from the last frame added)
_FRAME_COLUMNS = ("frame_time", "frame_number", "frame_index")


class ExtraRows:
    """A source store's extra-data rows, each attached to the position of the frame it followed.

    A store tags each row with the last frame added before it (``frame_index``, and its
    ``frame_number`` and ``frame_time``; -1 and no frame before the first). Writing the rows of
    position ``i`` right after the ``i``-th frame written puts the same tags on them in the new
    store. The tag columns are left out of :meth:`at` (the new store writes them itself).
    """

    def __init__(self, rows: List[Tuple[int, Dict[str, Any]]]) -> None:
        self._by_position: Dict[int, List[Dict[str, Any]]] = {}
        for position, row in rows:
            self._by_position.setdefault(position, []).append(row)
        self.total = len(rows)

    def at(self, position: int) -> List[Dict[str, Any]]:
        """The rows that followed the frame at ``position`` (-1: rows written before any frame)."""
        return self._by_position.get(position, [])

    def up_to(self, position: int) -> int:
        """How many rows follow the frames at positions -1 .. ``position``."""
        return sum(len(rows) for p, rows in self._by_position.items() if p <= position)


def _extra_records(store: Any, path: str) -> List[Dict[str, Any]]:
    """The rows of one extra-data file as dicts: ours exactly as written, Motif's through pandas."""
    from ..io.extra import read_records
    from ..store.extradata import read_extra_file

    layout = store.view.layout
    if not layout.is_motif_extra_data(path):
        return read_records(path)
    df = read_extra_file(layout, path)
    return [] if df is None else df.to_dict("records")


def _row_position(row: Dict[str, Any], numbers: np.ndarray, times: np.ndarray) -> Optional[int]:
    """The store position of the frame a row followed (None: it names none).

    Its ``frame_index`` when that agrees with its ``frame_number``; else the frame with its
    number (among repeated numbers, the one nearest its ``frame_time``).
    """
    index, number = row.get("frame_index"), row.get("frame_number")
    if _is_number(index) and float(index).is_integer() and -1 <= index < len(numbers):
        if index < 0 or number is None or _same(numbers[int(index)], number):
            return int(index)
    if not _is_number(number):
        return None
    hits = np.flatnonzero(numbers == number)
    if len(hits) == 0:
        return None
    when = row.get("frame_time")
    if len(hits) > 1 and _is_number(when):
        with np.errstate(invalid="ignore"):
            distance = np.abs(times[hits] - float(when))
        if np.isfinite(distance).any():
            return int(hits[np.nanargmin(distance)])
    return int(hits[0])


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def _same(a: Any, b: Any) -> bool:
    """Equal frame numbers (NaN equals NaN: a store without numbers)."""
    try:
        return bool(a == b) or (math.isnan(float(a)) and math.isnan(float(b)))
    except (TypeError, ValueError):
        return False


def read_extra_rows(store: Any) -> Optional[ExtraRows]:
    """Every extra-data row of ``store`` with the position of the frame it followed (None: no extra data).

    A row that names no frame of the store (no usable ``frame_index`` or ``frame_number``) goes
    before the first frame, with a warning.
    """
    paths = store.find_extra_data_files()
    if not paths:
        return None
    md = store.get_frame_metadata()
    numbers = np.asarray(md["frame_number"])
    times = np.asarray(md["frame_time"], dtype=np.float64)
    rows: List[Tuple[int, Dict[str, Any]]] = []
    unplaced = 0
    for path in paths:
        for record in _extra_records(store, path):
            position = _row_position(record, numbers, times)
            if position is None:
                unplaced += 1
                position = -1
            rows.append((position, {k: v for k, v in record.items() if k not in _FRAME_COLUMNS}))
    if unplaced:
        log.warning(
            "store %s: %d extra-data row(s) name no frame of the store; copied before the first frame",
            store.filename,
            unplaced,
        )
    rows.sort(key=lambda item: item[0])  # stable: rows of one frame keep their order
    return ExtraRows(rows)


def open_store(path: str) -> Source:
    """Every frame of a store, in store order, with its number, time, the store's user metadata and
    its extra data."""
    from .. import new_for_filename

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
    import cv2

    img = cv2.imread(path, cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR)
    if img is None:
        raise ToolError(f"{path}: not an image OpenCV can read")
    return img


def open_images(spec: str, paths: List[str]) -> Source:
    """Image files in the given order, numbered from 0, timed by their modification times."""

    def frames() -> Iterator[Frame]:
        first_shape = None
        for number, path in enumerate(paths):
            img = read_image(path)
            if first_shape is None:
                first_shape = (img.shape, img.dtype)
            elif (img.shape, img.dtype) != first_shape:
                raise ToolError(
                    f"{path}: image of shape {img.shape} ({img.dtype}) differs from the first image's "
                    f"{first_shape[0]} ({first_shape[1]}); a store holds images of one shape"
                )
            yield img, number, os.stat(path).st_mtime

    return Source(f"{len(paths)} image(s) {spec}", frames(), total=len(paths))


# ----------------------------------------------------------------------------------------------
# video files and streams (PyAV)
# ----------------------------------------------------------------------------------------------
def _container_start_time(container: Any, path: str) -> float:
    """The container's ``creation_time`` tag (seconds since the epoch), else the file's mtime."""
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


def _count_packets(path: str) -> Optional[int]:
    """Frames in a local video without decoding (its packets), for containers that do not say."""
    import av

    try:
        with av.open(path) as container:
            stream = container.streams.video[0]
            return sum(1 for packet in container.demux(stream) if packet.size)
    except (av.error.FFmpegError, IndexError, OSError):
        return None


def _ndarray_format(pix_fmt: str) -> str:
    """Keep grey video grey (and 16-bit grey 16-bit); everything else becomes BGR."""
    if pix_fmt.startswith(("gray", "y400")):
        return "gray" if pix_fmt in ("gray", "gray8", "y400a") else "gray16le"
    return "bgr24"


def open_video(path: str, url: bool = False) -> Source:
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
            t0 = _container_start_time(container, path)
        rate = float(stream.average_rate or stream.guessed_rate or 25)
    except BaseException:
        container.close()
        raise

    def frames() -> Iterator[Frame]:
        first_time = None
        fmt = None
        try:
            for number, frame in enumerate(container.decode(stream)):
                if fmt is None:
                    fmt = _ndarray_format(frame.format.name)
                img = frame.to_ndarray(format=fmt)
                pts_time = frame.time
                if pts_time is None:
                    frame_time = t0 + number / rate
                else:
                    if first_time is None:
                        first_time = pts_time
                    frame_time = t0 + (pts_time - first_time)
                yield img, number, frame_time
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
