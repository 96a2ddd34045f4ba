"""Ordinary video files for players and editors, written with PyAV at a constant frame rate.

Unlike a store's chunks (crash-safe, at a nominal 25 fps, the real times kept in the index), a
video file plays at the rate it is given: H.264 in yuv420p for .mp4, .mkv and .mov, MJPEG for
.avi. Frames are handed over as the store returns them (grey or BGR, uint8 or uint16; FFmpeg
converts them); odd sizes lose their last row or column, as video chunks do. The file is written
to ``path + '.part'`` and moved into place when complete, so a failed export leaves no video.
``imgstore-export`` writes its videos with ``VideoFileWriter``.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from fractions import Fraction
from typing import Any, Dict, Optional, Tuple

import numpy as np

from ..errors import ImageShapeError, StoreWriteError, UnsupportedFormatError
from .video import MJPEG_AVI, even_shape
from .video_av_base import frame_from_array, ndarray_format, open_video_output, pyav

log = logging.getLogger(__name__)

#: H.264 quality (constant rate factor) when none is given
DEFAULT_CRF = 18
#: MJPEG quantiser scale (2 best .. 31 smallest), as the store's own mjpeg/avi format uses
MJPEG_QUALITY = MJPEG_AVI.defaults["quality"]


@dataclasses.dataclass(frozen=True)
class VideoFileFormat:
    """How a video file of one extension is written: FFmpeg muxer, encoder and stored pixel format."""

    container: str
    encoder: str
    pix_fmt: str

    @property
    def takes_crf(self) -> bool:
        """Whether the encoder's quality is a constant rate factor (H.264), so that ``crf`` applies."""
        return self.encoder == "libx264"


#: video file extension -> how such a file is written
VIDEO_FILE_FORMATS: Dict[str, VideoFileFormat] = {
    ".mp4": VideoFileFormat("mp4", "libx264", "yuv420p"),
    ".mkv": VideoFileFormat("matroska", "libx264", "yuv420p"),
    ".mov": VideoFileFormat("mov", "libx264", "yuv420p"),
    ".avi": VideoFileFormat("avi", "mjpeg", "yuvj420p"),
}


def video_file_format(path: str) -> Optional[VideoFileFormat]:
    """How a video file named ``path`` is written (by its extension), or None for no video extension."""
    return VIDEO_FILE_FORMATS.get(os.path.splitext(path)[1].lower())


class VideoFileError(StoreWriteError):
    """FFmpeg or the file system failed on a video file.

    ``failure`` says what failed ('cannot create the video', 'writing the video failed');
    ``reason`` is the error FFmpeg or the operating system raised, for callers to word it.
    """

    def __init__(self, path: str, failure: str, reason: BaseException) -> None:
        super().__init__(f"{path}: {failure}: {reason}")
        self.path = path
        self.failure = failure
        self.reason = reason


class VideoFileWriter:
    """One ordinary video file at ``fps`` frames per second, written to ``path + '.part'`` and
    moved into place by ``close``; ``abort`` removes what was written.

    The file is created at the first frame, whose shape every later frame must have. Frames
    FFmpeg takes no layout for raise ``UnsupportedFormatError``; frames too small or of another
    shape ``ImageShapeError``; FFmpeg's and the file system's failures ``VideoFileError``.
    """

    def __init__(self, path: str, fps: Fraction, crf: Optional[int] = None) -> None:
        file_format = video_file_format(path)
        if file_format is None:
            raise UnsupportedFormatError(f"{path}: not a video file name (end it in {', '.join(VIDEO_FILE_FORMATS)})")
        self.path = path
        self.tmp = path + ".part"
        self.format = file_format
        self.fps = fps
        self.crf = DEFAULT_CRF if crf is None else crf
        self._container: Any = None
        self._stream: Any = None
        self._shape: Optional[Tuple[int, ...]] = None
        self._count = 0

    def _open(self, shape: Tuple[int, ...]) -> None:
        """Create the file for frames of ``shape``, at even height and width."""
        height, width = even_shape(shape)[:2]
        if height < 2 or width < 2:
            raise ImageShapeError(f"{self.path}: frames of shape {shape} are too small for a video")
        if (height, width) != tuple(shape[:2]):
            log.warning(
                "%s: %dx%d frames cropped to %dx%d (videos need even sizes)",
                self.path,
                shape[1],
                shape[0],
                width,
                height,
            )
        if self.format.takes_crf:
            encoder_options, context = {"crf": str(self.crf), "preset": "veryfast"}, {}
        else:
            encoder_options, context = {}, {"qmin": MJPEG_QUALITY, "qmax": MJPEG_QUALITY}
        parent = os.path.dirname(self.path)
        if parent:
            os.makedirs(parent, exist_ok=True)
        try:
            self._container, self._stream = open_video_output(
                self.tmp,
                self.format.container,
                self.format.encoder,
                self.fps,
                (height, width),
                self.format.pix_fmt,
                encoder_options=encoder_options,
                context=context,
            )
        except (pyav().FFmpegError, OSError) as exc:
            raise VideoFileError(self.path, "cannot create the video", exc) from exc
        self._shape = tuple(shape)

    def write(self, img: np.ndarray) -> None:
        """Encode one frame (grey or BGR colour, uint8 or uint16; a trailing channel of 1 is grey)."""
        if img.ndim == 3 and img.shape[2] == 1:
            img = img[:, :, 0]
        layout = ndarray_format(img)
        if layout is None:
            raise UnsupportedFormatError(
                f"{self.path}: cannot encode {img.dtype} frames of shape {img.shape} as video "
                "(uint8/uint16, grey or 3-channel colour)"
            )
        if self._stream is None:
            self._open(img.shape)
        elif img.shape != self._shape:
            raise ImageShapeError(f"{self.path}: frame shape changed from {self._shape} to {img.shape}")
        img = img[: self._stream.height, : self._stream.width]
        frame = frame_from_array(img, layout)
        frame.pts = self._count
        self._count += 1
        self._encode(frame)

    def _encode(self, frame: Any) -> None:
        """Encode ``frame`` (None: flush the encoder) and mux the packets it gives."""
        try:
            for packet in self._stream.encode(frame):
                self._container.mux(packet)
        except pyav().FFmpegError as exc:
            raise VideoFileError(self.path, "writing the video failed", exc) from exc

    def close(self) -> None:
        """Flush the encoder, finish the file and move it into place."""
        if self._stream is None:
            raise StoreWriteError(f"{self.path}: no frames were written")
        self._encode(None)
        self._container.close()
        self._container = None
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        """Drop the partial file (after an error or Ctrl-C)."""
        if self._container is not None:
            try:
                self._container.close()
            except Exception as exc:  # the export already failed; the partial file is removed anyway
                log.debug("closing partial video %s: %s", self.tmp, exc)
            self._container = None
        if os.path.exists(self.tmp):
            os.unlink(self.tmp)
