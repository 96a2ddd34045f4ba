"""Video chunks written and read with OpenCV, as upstream imgstore does (``backend='opencv'``).

For users who must produce files exactly as upstream does. pip's OpenCV cannot encode H.264, so
only formats whose probe succeeds are offered. Reading stays frame-exact without relying on
OpenCV's seeking: frames are decoded in order from the start of the chunk (slow for random
access; the PyAV backend seeks).
"""

from __future__ import annotations

import logging
import os
import tempfile
from typing import Any, List, Mapping, Optional

import numpy as np

from .._opencv import cv2
from ..errors import FrameReadError, UnsupportedFormatError
from .base import ChunkReader, ChunkWriter, Shape, sync_file
from .color import ensure_color, ensure_grayscale
from .video import NOMINAL_FPS, VideoCodec, VideoFormat
from .video_av_index import keyframe_positions

log = logging.getLogger(__name__)


class OpenCVVideoCodec(VideoCodec):
    """A video chunk format encoded by ``cv2.VideoWriter`` and decoded by ``cv2.VideoCapture``."""

    needs_opencv = True

    backend = "opencv"

    def __init__(self, fmt: VideoFormat, writable: bool = True) -> None:
        super().__init__(fmt, writable and fmt.fourcc is not None)
        self.dtypes = ("uint8",)  # OpenCV's video I/O is 8-bit

    def _probe(self) -> bool:
        return _can_encode(self.format)

    def open_writer(
        self, chunk_path: str, imgshape: Shape, imgdtype: str, options: Optional[Mapping[str, Any]] = None
    ) -> ChunkWriter:
        return OpenCVChunkWriter(chunk_path, self.format, imgshape)

    def open_reader(
        self, chunk_path: str, imgshape: Shape, imgdtype: str, frame_count: Optional[int] = None
    ) -> ChunkReader:
        if imgdtype != "uint8":
            raise UnsupportedFormatError(
                f"the opencv backend reads 8-bit video only; read this {imgdtype} store with backend='av'"
            )
        return OpenCVChunkReader(chunk_path, color=len(imgshape) == 3)

    def keyframe_positions(self, chunk_path: str) -> Optional[List[int]]:
        return keyframe_positions(chunk_path)  # PyAV demuxes whatever decodes the frames


def _can_encode(fmt: VideoFormat) -> bool:
    """Whether this OpenCV build writes the format (pip's cannot write H.264)."""
    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)  # a failed probe is an answer
    with tempfile.TemporaryDirectory(prefix="imgstore-probe-") as tmp:
        path = os.path.join(tmp, "probe" + fmt.extension)
        try:
            writer = OpenCVChunkWriter(path, fmt, (16, 16, 3))
            writer.write(np.zeros((16, 16, 3), np.uint8))
            writer.close()
            return os.path.getsize(path) > 0
        except (OSError, cv2.error) as exc:
            log.debug("OpenCV cannot write %s: %s", fmt.name, exc)
            return False
        finally:
            cv2.utils.logging.setLogLevel(level)


class OpenCVChunkWriter(ChunkWriter):
    """Writes frames with ``cv2.VideoWriter`` (always as colour, as upstream)."""

    def __init__(self, path: str, fmt: VideoFormat, imgshape: Shape) -> None:
        self._path = path
        self._writer = cv2.VideoWriter(
            path,
            cv2.CAP_FFMPEG,
            cv2.VideoWriter_fourcc(*fmt.fourcc),
            NOMINAL_FPS,
            (int(imgshape[1]), int(imgshape[0])),
            True,
        )
        if not self._writer.isOpened():
            raise OSError(f"OpenCV cannot write {fmt.name} video {path} (this OpenCV build lacks the encoder)")
        self._checked = False

    def write(self, img: np.ndarray) -> None:
        self._writer.write(ensure_color(img))
        if not self._checked:  # OpenCV fails silently: no file after the first frame means no encoder
            self._checked = True
            if not os.path.isfile(self._path):
                raise OSError(f"OpenCV did not write {self._path}: this OpenCV build cannot encode it")

    def sync(self) -> None:
        sync_file(self._path)  # OpenCV has no flush: only what its writer already wrote out

    def close(self) -> None:
        self._writer.release()


class OpenCVChunkReader(ChunkReader):
    """Frame-exact reading by decoding forward with ``cv2.VideoCapture`` (re-opened to go back)."""

    def __init__(self, path: str, color: bool) -> None:
        if not os.path.isfile(path):
            raise FrameReadError(f"video chunk {path} is missing")
        self._path = path
        self._convert = ensure_color if color else ensure_grayscale
        self._capture: Optional[cv2.VideoCapture] = None
        self._next = 0

    def _reopen(self) -> None:
        self.close()
        self._capture = cv2.VideoCapture(self._path)
        if not self._capture.isOpened():
            raise FrameReadError(f"OpenCV cannot open video chunk {self._path}")
        self._next = 0

    def read(self, frame_idx: int) -> np.ndarray:
        if self._capture is None or frame_idx < self._next:
            self._reopen()
        while self._next < frame_idx:
            if not self._capture.grab():
                what = "cannot decode" if self._next == 0 else f"ends before frame {frame_idx} of"
                raise FrameReadError(f"OpenCV {what} video chunk {self._path}")
            self._next += 1
        ok, img = self._capture.read()
        if not ok:
            if frame_idx == 0:
                raise FrameReadError(f"OpenCV cannot decode video chunk {self._path} (try backend='av')")
            raise FrameReadError(f"video chunk {self._path}: cannot decode frame {frame_idx}")
        self._next += 1
        return self._convert(img)

    def close(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None
