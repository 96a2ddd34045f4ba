"""Frames handed to FFmpeg (``codecs/video_av_base``): one copy, in a buffer the frame owns."""

from __future__ import annotations

import numpy as np
import pytest

import imgstore
from imgstore.codecs.video_av_base import NDARRAY_FORMATS, frame_from_array, owned_frame_buffer, pyav

VIDEO_FORMATS = imgstore.VideoImgStore.supported_formats()
SHAPES = {
    "gray": [(1024, 1280), (7, 9), (1, 1)],
    "gray16le": [(6, 5)],
    "bgr24": [(7, 9, 3), (480, 641, 3)],
    "bgr48le": [(5, 3, 3)],
}


def _arrays(layout):
    """Arrays of every shape for ``layout``, C-ordered, Fortran-ordered and flipped (non-contiguous)."""
    dtype = np.uint16 if "16" in layout or "48" in layout else np.uint8
    for shape in SHAPES[layout]:
        a = np.random.default_rng(len(shape)).integers(0, np.iinfo(dtype).max, shape, dtype=dtype)
        yield from (a, np.asfortranarray(a), a[:, ::-1], a[::2])


@pytest.mark.parametrize("layout", sorted(NDARRAY_FORMATS.values()))
def test_owned_frame_buffer_is_an_aligned_copy(layout):
    for a in _arrays(layout):
        b = owned_frame_buffer(a)
        assert b.shape == a.shape and b.dtype == a.dtype and np.array_equal(b, a)
        assert b.ctypes.data % 64 == 0 and b.strides[0] % 64 == 0 and b.strides[0] >= a[0].nbytes
        assert b.strides[1:] == ((a.itemsize,) if a.ndim == 2 else (3 * a.itemsize, a.itemsize))  # packed rows
        assert not np.shares_memory(a, b)


@pytest.mark.parametrize("layout", sorted(NDARRAY_FORMATS.values()))
def test_frame_from_array_holds_what_from_ndarray_would(layout):
    for a in _arrays(layout):
        frame = frame_from_array(a, layout)
        assert (frame.format.name, frame.width, frame.height) == (layout, a.shape[1], a.shape[0])
        expected = pyav().VideoFrame.from_ndarray(np.ascontiguousarray(a), format=layout).to_ndarray()
        assert np.array_equal(frame.to_ndarray(), expected)
        a[...] = 0  # the frame keeps its own copy
        assert np.array_equal(frame.to_ndarray(), expected)


@pytest.mark.parametrize(
    "fmt", [f for f in ("ffv1/mkv", "avc1/mp4") if f in imgstore.VideoImgStore.supported_formats()]
)
def test_caller_may_reuse_its_array_as_soon_as_add_image_returns(tmp_path, fmt):
    """A camera loop fills one buffer again and again: the encoder (which may hold frames for
    a while: x264's lookahead, B-frames) must encode what each frame was when it was added."""
    frames = [np.full((64, 96), 16 + 40 * i, dtype=np.uint8) for i in range(5)]
    buffer = np.empty((64, 96), dtype=np.uint8)
    with imgstore.new_for_format(fmt, path=str(tmp_path / "s"), imgshape=buffer.shape, imgdtype=np.uint8) as store:
        for i, frame in enumerate(frames):
            buffer[...] = frame
            store.add_image(buffer, i, float(i))
            buffer[...] = 255  # overwritten at once, before the encoder has given any packet
    reader = imgstore.new_for_filename(str(tmp_path / "s"))
    for i, frame in enumerate(frames):
        got = reader.get_image(i)[0]
        assert np.abs(got.astype(int) - frame).max() <= (0 if fmt == "ffv1/mkv" else 2), f"frame {i}"
