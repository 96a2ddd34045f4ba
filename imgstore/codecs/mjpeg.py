"""MJPEG video chunks whose JPEGs come from libjpeg-turbo (through OpenCV), muxed into AVI by PyAV.

FFmpeg's own MJPEG encoder manages about 400 frames/s per core at 640x480 grey; libjpeg-turbo,
which OpenCV's ``imencode`` uses and which releases the GIL, about 2.5 times that, and its
threads run side by side. So frames are encoded on a small thread pool and their JPEGs muxed in order as
the packets of an ordinary MJPEG AVI, which FFmpeg, OpenCV and upstream imgstore read as before.
Reading is the PyAV backend's, unchanged.

Grey frames are stored as one-component (greyscale) JPEGs: no colour planes to encode or store.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any, BinaryIO, Mapping, Optional, Union

import numpy as np

from .._opencv import cv2
from ..errors import StoreWriteError
from .base import ChunkWriter, Shape, sync_file, write_error
from .images import OrderedPool, encode_threads
from .video import NOMINAL_FPS, VideoFormat, frame_kind, resolve_settings
from .video_av import PyAVVideoCodec, can_encode
from .video_av_base import FULL_RANGE, close_quietly, crash_safe_muxer_options, open_video_output, pyav
from .video_av_write import check_frames_written

#: libjpeg quality for each ``quality`` setting 2..31 (FFmpeg's MJPEG quantiser scale, which the
#: setting meant when FFmpeg encoded): the lowest whose frames are at least as close to the
#: original (PSNR) as FFmpeg's at that scale, on camera-like frames (grey and colour, 640x480 and
#: 1280x1024, sensor noise included); ``tests/codecs/test_codecs_mjpeg.py`` checks it against FFmpeg
_JPEG_QUALITY = (91, 86, 81, 76, 71, 66, 60, 56, 50, 45, 41, 37, 34, 31, 29, 27, 25, 23, 22, 21, 20, 19, 18, 18, 17,
                 17, 16, 16, 15, 15)  # fmt: skip
#: libjpeg sampling factors for each stored pixel format (one-component greyscale needs none)
_SAMPLING = {"yuvj420p": 0x221111, "yuvj422p": 0x211111, "yuvj444p": 0x111111}


def jpeg_quality(quality: int) -> int:
    """libjpeg's quality (1-100) for the store's MJPEG ``quality`` setting (2 best .. 31 smallest)."""
    return _JPEG_QUALITY[int(quality) - 2]


class MjpegVideoCodec(PyAVVideoCodec):
    """``mjpeg/avi`` written with libjpeg-turbo on a thread pool; read by the PyAV backend."""

    needs_opencv = True

    def _probe(self) -> bool:
        return can_encode(self.format, MjpegChunkWriter)

    def open_writer(
        self, chunk_path: str, imgshape: Shape, imgdtype: str, options: Optional[Mapping[str, Any]] = None
    ) -> ChunkWriter:
        return MjpegChunkWriter(chunk_path, self.format, imgshape, imgdtype, options)


class MjpegChunkWriter(ChunkWriter):
    """Encodes frames to JPEG on ``threads`` threads and muxes them, in order, into one AVI file.

    At most two frames per thread are in flight; ``flush`` waits for them and muxes them, and
    every muxed packet goes straight to the file (``flush_packets``), so a crash loses only the
    frames still being encoded.
    """

    def __init__(
        self,
        path: Union[str, BinaryIO],
        fmt: VideoFormat,
        imgshape: Shape,
        imgdtype: str,
        options: Optional[Mapping[str, Any]],
    ) -> None:
        settings = resolve_settings(fmt, imgshape, imgdtype, options)
        self._path = path
        pix_fmt = settings["pix_fmt"]
        self._params = [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality(settings["quality"])]
        if pix_fmt in _SAMPLING:
            self._params += [cv2.IMWRITE_JPEG_SAMPLING_FACTOR, _SAMPLING[pix_fmt]]
        # grey frames asked to be stored in a colour format go to libjpeg as BGR (its luma is the grey itself)
        self._grey_to_colour = frame_kind(imgshape, imgdtype) == "grey" and pix_fmt != "gray"
        self._time_base = Fraction(1, NOMINAL_FPS)
        self._container, stream = open_video_output(
            path,
            fmt.container,
            fmt.encoder,
            NOMINAL_FPS,
            (int(imgshape[0]), int(imgshape[1])),
            # what the header declares; each JPEG says what it holds. FFmpeg opens its (unused)
            # encoder with these, so they must be a format it encodes, on one thread
            pix_fmt if pix_fmt in _SAMPLING else "yuvj420p",
            muxer_options=crash_safe_muxer_options(fmt.container),
            context={"color_range": FULL_RANGE, "thread_count": 1, "time_base": self._time_base},
        )
        self._stream = stream
        threads = int(settings.get("threads", 0)) or encode_threads()
        self._pool = OrderedPool(threads, "imgstore-mjpeg") if threads > 1 else None
        self._count = 0

    def _encode(self, img: np.ndarray) -> np.ndarray:
        if self._grey_to_colour:
            img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
        ok, jpeg = cv2.imencode(".jpg", img, self._params)
        if not ok:
            raise StoreWriteError(f"{self._path}: OpenCV could not encode a {img.shape} frame as JPEG")
        return jpeg

    def write(self, img: np.ndarray) -> None:
        self._refuse_after_failure()
        if self._pool is None:
            self._mux(self._encode(img))
            return
        for jpeg in self._pool.finished():
            self._mux(jpeg)
        self._pool.submit(self._encode, np.array(img))  # a copy: the caller may refill its buffer at once

    def flush(self) -> None:
        """Mux every frame handed over so far (each packet reaches the file as it is muxed)."""
        if self._pool is not None:
            for jpeg in self._pool.drain():
                self._mux(jpeg)

    def sync(self) -> None:
        sync_file(self._path)

    def _mux(self, jpeg: np.ndarray) -> None:
        self._refuse_after_failure()
        packet = pyav().Packet(jpeg)
        packet.stream = self._stream
        packet.time_base = self._time_base
        packet.pts = packet.dts = self._count
        packet.duration = 1
        packet.is_keyframe = True
        try:
            self._container.mux(packet)
        except pyav().FFmpegError as exc:
            raise self._fail(f"video chunk {self._path}", exc) from exc
        self._count += 1

    def close(self) -> None:
        if self._failure is not None:  # the frames still being encoded stay out of the file
            if self._pool is not None:
                self._pool.discard()
            close_quietly(self._container, self._path)
            self._refuse_after_failure()
        try:
            if self._pool is not None:
                self._pool.close(self._mux)
            if self._count == 0:  # a chunk without frames is still a file, with the stream's header
                self._container.start_encoding()
        finally:
            try:
                self._container.close()
            except pyav().FFmpegError as exc:
                raise write_error(f"video chunk {self._path}", exc) from exc
        check_frames_written(self._path, self._count)
