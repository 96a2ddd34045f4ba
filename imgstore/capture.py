"""A store read through ``cv2.VideoCapture``'s interface, for pipelines written for OpenCV.

``imgstore.VideoCapture(path)`` answers ``read``, ``grab``, ``retrieve``, ``get``/``set``,
``isOpened`` and ``release`` as OpenCV's FFmpeg backend does for a video file, so that code such
as ``while True: ok, frame = cap.read()`` runs unchanged on a store. Frames are 8-bit BGR, as
OpenCV gives them (grey frames in three channels, deeper ones by their top 8 bits); after
``set(CAP_PROP_CONVERT_RGB, 0)`` they come as the store holds them. Positions are store
positions, frame-exact; times (``CAP_PROP_POS_MSEC``) are the store's frame times, in
milliseconds from its first frame. The store's own frame number and time of the frame last read
are ``last_frame_number`` and ``last_frame_time``.
"""

from __future__ import annotations

import math
from typing import Any, Optional, Tuple

import numpy as np

from .index.frametable import median_frame_interval
from .mosaic import as_8bit
from .store.factory import open_for_reading

__all__ = [
    "CAP_PROP_CONVERT_RGB",
    "CAP_PROP_FPS",
    "CAP_PROP_FRAME_COUNT",
    "CAP_PROP_FRAME_HEIGHT",
    "CAP_PROP_FRAME_WIDTH",
    "CAP_PROP_POS_AVI_RATIO",
    "CAP_PROP_POS_FRAMES",
    "CAP_PROP_POS_MSEC",
    "VideoCapture",
]

# OpenCV's property numbers (cv2.CAP_PROP_*; part of its stable interface), so that this module
# needs no OpenCV of its own
CAP_PROP_POS_MSEC = 0
CAP_PROP_POS_FRAMES = 1
CAP_PROP_POS_AVI_RATIO = 2
CAP_PROP_FRAME_WIDTH = 3
CAP_PROP_FRAME_HEIGHT = 4
CAP_PROP_FPS = 5
CAP_PROP_FRAME_COUNT = 7
CAP_PROP_CONVERT_RGB = 16
#: the frame rate reported when the store's frame times give none
DEFAULT_FPS = 25.0
#: how much closer an earlier frame must be to win a seek by time: a tie goes to the later frame
_TIE_SECONDS = 1e-6  # (epoch seconds as doubles resolve about 0.2 microseconds)


class VideoCapture:
    """A store (a path, or a store open for reading) read the way ``cv2.VideoCapture`` reads a video.

    Unlike OpenCV, a path that is not a store raises ``ImgStoreError`` naming it, instead of
    giving a capture whose ``isOpened()`` is False.
    """

    def __init__(self, source: Any = None) -> None:
        self._store: Any = None
        self._owned = False
        if source is not None:
            self.open(source)

    # -- opening and closing ---------------------------------------------------------------------
    def open(self, source: Any) -> bool:
        """Read ``source`` (a store path or an open read store) from its first frame."""
        self.release()
        self._store, self._owned = open_for_reading(source, "VideoCapture")
        table = self._store.view.table
        self._times = np.asarray(table.frame_time, dtype=np.float64)
        self._count = int(table.frame_count)
        self._fps = _frame_rate(self._times)
        self._position = 0  # the store position the next read returns
        self._grabbed: Optional[int] = None  # the position grab() took, until retrieve()
        self._convert = True
        self.last_frame_number: Any = None
        self.last_frame_time = math.nan
        return True

    def isOpened(self) -> bool:
        """Whether a store is open (OpenCV's name)."""
        return self._store is not None

    def release(self) -> None:
        """Stop reading; a store opened from a path is closed."""
        if self._store is not None and self._owned:
            self._store.close()
        self._store = None

    def __enter__(self) -> VideoCapture:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.release()

    # -- reading ---------------------------------------------------------------------------------
    def grab(self) -> bool:
        """Move to the next frame (decoded by ``retrieve``); False at the end."""
        if self._store is None or self._position >= self._count:
            self._grabbed = None
            return False
        self._grabbed = self._position
        self._position += 1
        return True

    def retrieve(self, image: Any = None, flag: int = 0) -> Tuple[bool, Optional[np.ndarray]]:
        """The frame ``grab`` moved to: ``(True, frame)``, or ``(False, None)`` when there is none."""
        if self._store is None or self._grabbed is None:
            return False, None
        img, (number, when) = self._store.get_image(None, frame_index=self._grabbed)
        self.last_frame_number, self.last_frame_time = number, when
        return True, self._as_returned(img)

    def read(self, image: Any = None) -> Tuple[bool, Optional[np.ndarray]]:
        """The next frame: ``(True, frame)``, or ``(False, None)`` at the end."""
        if not self.grab():
            return False, None
        return self.retrieve()

    def _as_returned(self, img: np.ndarray) -> np.ndarray:
        if not self._convert:
            return img
        img = as_8bit(img)
        if img.ndim == 3 and img.shape[2] == 3:
            return img
        if img.ndim == 3 and img.shape[2] == 4:
            return np.ascontiguousarray(img[:, :, :3])
        grey = img if img.ndim == 2 else img[:, :, 0]  # grey, or a first channel standing for it
        return np.repeat(grey[:, :, None], 3, axis=2)

    # -- properties ------------------------------------------------------------------------------
    def get(self, prop_id: int) -> float:
        """A property, as OpenCV reports it for a video file (0 when this capture has no such property)."""
        if self._store is None:
            return 0.0
        if prop_id == CAP_PROP_POS_FRAMES:
            return float(self._position)
        if prop_id == CAP_PROP_POS_MSEC:
            return self._msec(self._position - 1) if self._position > 0 else 0.0
        if prop_id == CAP_PROP_POS_AVI_RATIO:
            return self._position / self._count if self._count else 0.0
        if prop_id == CAP_PROP_FRAME_COUNT:
            return float(self._count)
        if prop_id == CAP_PROP_FPS:
            return self._fps
        if prop_id in (CAP_PROP_FRAME_WIDTH, CAP_PROP_FRAME_HEIGHT):
            shape = self._store.image_shape
            return float(shape[1] if prop_id == CAP_PROP_FRAME_WIDTH else shape[0])
        if prop_id == CAP_PROP_CONVERT_RGB:
            return 1.0 if self._convert else 0.0
        return 0.0

    def set(self, prop_id: int, value: float) -> bool:
        """Seek (``CAP_PROP_POS_FRAMES``, ``CAP_PROP_POS_MSEC``, ``CAP_PROP_POS_AVI_RATIO``) or choose
        the frames' form (``CAP_PROP_CONVERT_RGB``); False for any other property."""
        if self._store is None:
            return False
        if prop_id == CAP_PROP_POS_FRAMES:
            self._seek(_whole(value))
        elif prop_id == CAP_PROP_POS_AVI_RATIO:
            self._seek(_whole(float(value) * self._count))
        elif prop_id == CAP_PROP_POS_MSEC:
            self._seek(self._position_at_msec(float(value)))
        elif prop_id == CAP_PROP_CONVERT_RGB:
            self._convert = bool(value)
        else:
            return False
        return True

    def _seek(self, position: int) -> None:
        """The next read returns the frame at ``position`` (clamped to the store, as OpenCV does)."""
        self._position = min(max(position, 0), self._count)
        self._grabbed = None

    def _msec(self, position: int) -> float:
        """A frame's time in milliseconds from the first frame (from the frame rate when times are missing)."""
        t0, t = self._times[0], self._times[position]
        if math.isfinite(t0) and math.isfinite(t):
            return (float(t) - float(t0)) * 1000.0
        return position * 1000.0 / self._fps

    def _position_at_msec(self, msec: float) -> int:
        """The frame nearest ``msec`` after the first frame's time (ties: the later one, as OpenCV
        rounds); past the last frame by more than half an interval, the end."""
        if not self._count or math.isnan(msec):
            return 0
        times = self._times
        if not (self._store.view.table.times_sorted and np.isfinite(times).all()):
            return _whole(math.floor(msec * self._fps / 1000.0 + 0.5))  # no usable times: OpenCV's nominal rate
        target = float(times[0]) + msec / 1000.0
        later = int(np.searchsorted(times, target, side="left"))
        if later >= self._count:  # the end counts as one more frame, an interval after the last
            end = float(times[-1]) + 1.0 / self._fps
            return self._count if end - target <= target - float(times[-1]) + _TIE_SECONDS else self._count - 1
        if later == 0:
            return 0
        earlier = later - 1
        return later if float(times[later]) - target <= target - float(times[earlier]) + _TIE_SECONDS else earlier


def _frame_rate(times: np.ndarray) -> float:
    """Frames per second from the median interval between frames (``DEFAULT_FPS`` without one)."""
    interval = median_frame_interval(times)
    return DEFAULT_FPS if math.isnan(interval) else 1.0 / interval


def _whole(value: float) -> int:
    """A position from OpenCV's ``double``: NaN is the start, infinities the ends."""
    value = float(value)
    if math.isnan(value):
        return 0
    if math.isinf(value):
        return -1 if value < 0 else 2**62
    return int(value)
