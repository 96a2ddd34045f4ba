"""Grey frames of limited-range video written by others: exactly swscale's grey, frame-exact.

The reader maps a limited-range luma plane through a lookup table asked of swscale
(``video_av_read.luma_lut``) instead of converting each frame with swscale; every frame must
still be the one swscale gives, bit for bit, at the right position.
"""

from __future__ import annotations

import av
import numpy as np
import pytest

import imgstore
from imgstore.codecs import video_av_read

from framecodes import decode_grid, make_grid_frame

SHAPE = (96, 128)
CHUNK = 24
CODE = 64


def _foreign_chunk(path, pix_fmt: str, start: int) -> None:
    """libx264 as other programs run it (frame threads, B-frames), limited range, every grey level."""
    rng = np.random.default_rng(start)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.height, stream.width = SHAPE
        stream.pix_fmt = pix_fmt
        stream.codec_context.thread_type = "FRAME"
        for i in range(CHUNK):
            img = rng.integers(0, 256, SHAPE, dtype=np.uint8)
            img[:CODE, :CODE] = make_grid_frame(start + i, (CODE, CODE), noise=False)
            frame = av.VideoFrame.from_ndarray(img, format="gray")
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


@pytest.fixture(params=["yuv420p", "yuv422p", "yuv444p"])
def foreign_store(request, tmp_path):
    """An avc1/mp4 store of two chunks that libx264 wrote in ``pix_fmt``, and the chunk files."""
    store = imgstore.new_for_format("avc1/mp4", path=str(tmp_path / "store"), imgshape=SHAPE, chunksize=CHUNK)
    for n in range(2):
        clip = tmp_path / f"clip{n}.mp4"
        _foreign_chunk(clip, request.param, n * CHUNK)
        numbers = np.arange(n * CHUNK, (n + 1) * CHUNK)
        store.insert_chunk(str(clip), numbers, 1000.0 + numbers / 25, move=False)
    store.close()
    return str(tmp_path / "store"), [tmp_path / f"clip{n}.mp4" for n in range(2)]


def _swscale_grey(files) -> list:
    """Every frame of the files, turned grey by swscale as the reader did before the lookup table."""
    reformatter = av.video.reformatter.VideoReformatter()
    out = []
    for file in files:
        with av.open(str(file)) as container:
            for frame in container.decode(video=0):
                assert frame.color_range != video_av_read.FULL_RANGE
                out.append(reformatter.reformat(frame, format="gray", threads=1).to_ndarray())
    return out


@pytest.mark.parametrize("mapping", ["table", "table in bands of 7 rows", "no OpenCV: swscale", "no table: swscale"])
def test_limited_range_grey_is_swscale_grey_frame_exact(foreign_store, monkeypatch, mapping):
    """Sequential and random reads give swscale's grey of the right frame, whichever way it is mapped."""
    path, files = foreign_store
    if mapping.startswith("table in bands"):  # as a large frame is mapped: bands, the last one short
        monkeypatch.setattr(video_av_read, "LUT_PARALLEL_PIXELS", 7 * SHAPE[1] + 1)
    elif mapping == "no OpenCV: swscale":
        monkeypatch.setattr(video_av_read, "_lut_function", lambda: None)
    elif mapping == "no table: swscale":  # frames whose grey is no table of their luma
        monkeypatch.setattr(video_av_read, "luma_lut", lambda *args: None)
    expected = _swscale_grey(files)
    store = imgstore.new_for_filename(path)
    for i, want in enumerate(expected):
        img, (number, _) = store.get_next_image()
        assert number == i and decode_grid(img[:CODE, :CODE]) == i
        np.testing.assert_array_equal(img, want, err_msg=f"frame {i}")
    for i in (37, 3, 30, 47, 0):
        img, _ = store.get_image(None, frame_index=i)
        np.testing.assert_array_equal(img, expected[i], err_msg=f"frame {i} read at random")
    store.close()


@pytest.mark.parametrize("fmt", ["yuv420p", "yuv444p"])
def test_luma_lut_is_swscale_on_every_level(fmt):
    """The table maps each luma level as swscale does (limited 16-235 to full 0-255)."""
    lut = video_av_read.luma_lut(fmt, 2, 0, 320, 240)
    assert lut is not None and lut[16] == 0 and lut[235] == 255 and np.all(np.diff(lut.astype(int)) >= 0)
    frame = av.VideoFrame(320, 240, fmt)
    levels = np.arange(320 * 240, dtype=np.int64).reshape(240, 320) % 256
    plane = frame.planes[0]
    buffer = np.full((plane.height, plane.line_size), 16, np.uint8)
    buffer[:, :320] = levels
    plane.update(buffer.tobytes())
    for chroma in frame.planes[1:]:
        chroma.update(bytes([128]) * chroma.buffer_size)
    grey = av.video.reformatter.VideoReformatter().reformat(frame, format="gray", threads=1).to_ndarray()
    np.testing.assert_array_equal(lut[levels], grey)


def test_luma_lut_needs_every_level_in_the_probe():
    """A frame too small to hold all 256 levels gets no table (swscale converts it)."""
    assert video_av_read.luma_lut("yuv420p", 2, 0, 8, 8) is None


def test_a_cut_chunk_is_trusted_only_as_far_as_its_frames_follow_each_other() -> None:
    """Whole packets before a damaged one: as many as the index lists is not enough when a B-frame
    the cut lost leaves a gap (a later frame whole in its place): only the frames before the gap."""
    from imgstore.codecs.video_av_index import PacketIndex, whole_frames

    gap = PacketIndex([1024, 1536, 2048, 3072], [1024], reorder=2, cut=True, sliced=False, step=512)
    assert whole_frames(gap, expected=4) == 2  # 3072 stands where the lost 2560 is listed
    steady = PacketIndex([1024, 1536, 2048, 2560], [1024], reorder=2, cut=True, sliced=False, step=512)
    assert whole_frames(steady, expected=4) == 4  # every listed frame, one after another
    assert whole_frames(steady, expected=5) == 2  # short of the list: only those certain
    assert whole_frames(steady._replace(cut=False)) == 4
