"""What every PyAV (FFmpeg) reader and writer of video shares.

PyAV itself, imported on first use; the table of numpy layouts frames are handed to and taken
from FFmpeg in; making a frame from an array (one copy, into a buffer the frame owns); and
opening an output container with its one video stream set up, which the store's chunk writers
(``video_av_write``, ``mjpeg``) and the export's video files (``video_file``) all do the same way.
"""

from __future__ import annotations

import logging
from typing import Any, Mapping, Optional, Tuple, Union

import numpy as np

from .video import frame_kind

log = logging.getLogger(__name__)

#: numpy layout each kind of frame (``video.frame_kind``) is handed to / taken from FFmpeg in
NDARRAY_FORMATS = {"grey": "gray", "grey16": "gray16le", "color": "bgr24", "color16": "bgr48le"}
#: FFmpeg's AVCOL_RANGE_JPEG: full-range pixel values
FULL_RANGE = 2
#: row alignment of the buffers frames are handed to FFmpeg in (what its own allocator gives)
_ALIGN = 64


def pyav() -> Any:
    """PyAV, imported on first use so that importing imgstore stays light."""
    import av

    return av


def owned_frame_buffer(img: np.ndarray) -> np.ndarray:
    """A copy of ``img`` whose rows start at ``_ALIGN``-byte boundaries, for ``VideoFrame.from_numpy_buffer``.

    PyAV's ``from_ndarray`` copies a frame twice (``tobytes`` into a new buffer, then row by
    row into the frame's): 0.5 ms for a 1280x1024 grey frame, a twentieth of what x264 takes to
    encode it. One numpy copy into a buffer the frame then owns costs a tenth of that, and
    leaves the caller's array free to change as soon as ``write`` returns, however long the
    encoder keeps the frame. Rows are padded as FFmpeg pads its own frames, for encoders that
    read whole aligned words.
    """
    inner = np.empty((1, *img.shape[1:]), dtype=img.dtype).strides[1:]  # C order within a row
    stride = -(-img[0].nbytes // _ALIGN) * _ALIGN
    raw = np.empty(img.shape[0] * stride + _ALIGN, dtype=np.uint8)
    offset = -raw.ctypes.data % _ALIGN
    out = np.ndarray(img.shape, dtype=img.dtype, buffer=raw, offset=offset, strides=(stride, *inner))
    out[...] = img
    return out


def frame_from_array(img: np.ndarray, layout: str) -> Any:
    """A PyAV ``VideoFrame`` holding a copy of ``img`` (in FFmpeg's ``layout``, e.g. ``'gray'``)."""
    av = pyav()
    try:
        return av.VideoFrame.from_numpy_buffer(owned_frame_buffer(img), format=layout)
    except ValueError:  # a PyAV that takes no such layout from a numpy buffer
        return av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format=layout)


def display_turns(frame: Any) -> int:
    """How many quarter turns anticlockwise (``np.rot90``'s ``k``) a decoded frame is shown turned
    by, as its file's display matrix says (a phone held upright): 0 for none, or for an angle that
    is not a multiple of 90 degrees, which no player turns by either."""
    rotation = getattr(frame, "rotation", 0) or 0  # (PyAV before 13 does not say)
    quarters = round(rotation / 90)
    return quarters % 4 if abs(rotation - quarters * 90) < 1 else 0


def turned(img: np.ndarray, turns: int) -> np.ndarray:
    """``img`` turned by ``turns`` quarter turns anticlockwise, as one contiguous array."""
    return np.ascontiguousarray(np.rot90(img, turns)) if turns else img


def ndarray_format(img: np.ndarray) -> Optional[str]:
    """The FFmpeg layout of a frame as numpy holds it, or None when FFmpeg takes no such frame.

    uint8 or uint16, grey (2-D) or 3-channel colour: ``'gray'``, ``'gray16le'``, ``'bgr24'``,
    ``'bgr48le'``.
    """
    if img.dtype.name not in ("uint8", "uint16") or (img.ndim == 3 and img.shape[2] != 3):
        return None
    return NDARRAY_FORMATS[frame_kind(img.shape, img.dtype.name)]


def open_video_output(
    path: Union[str, Any],
    container_format: str,
    encoder: str,
    rate: Any,
    size: Tuple[int, int],
    pix_fmt: str,
    muxer_options: Optional[Mapping[str, str]] = None,
    encoder_options: Optional[Mapping[str, str]] = None,
    context: Optional[Mapping[str, Any]] = None,
) -> Tuple[Any, Any]:
    """A new output container at ``path`` (a file name or a file object) and its one video stream.

    The stream is encoded by ``encoder`` at frame rate ``rate``, ``size`` = ``(height, width)``,
    in ``pix_fmt``; ``context`` sets codec-context attributes, in order (``thread_count``,
    ``time_base``...). When setting up the stream fails, the container is closed again, so that
    nothing is left open; errors opening the file come as PyAV raises them.
    """
    container = pyav().open(path, "w", format=container_format, options=muxer_options)
    try:
        stream = container.add_stream(encoder, rate=rate, options=encoder_options)
        stream.width, stream.height = size[1], size[0]
        stream.pix_fmt = pix_fmt
        for name, value in (context or {}).items():
            setattr(stream.codec_context, name, value)
    except BaseException:
        container.close()
        raise
    return container, stream


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


def close_quietly(container: Any, path: Any) -> None:
    """Close an output container after a failed write; what reached the file is what recovery finds."""
    try:
        container.close()
    except pyav().FFmpegError as exc:
        log.debug("closing the damaged video chunk %s: %s", path, exc)
