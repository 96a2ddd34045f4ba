"""The PyAV writer's speed paths: MJPEG encoded on frame threads, grey frames handed to the encoder
as full-range YUV without swscale. Both must leave the video exactly as before."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

import imgstore
from imgstore.codecs import video_av
from imgstore.codecs.video import MJPEG_AVI

from framecodes import decode_grid, make_grid_frame

T0 = 1_600_000_000.0


def write(path: Path, frames: list, fmt: str = "mjpeg/avi", **settings: object) -> None:
    shape = frames[0].shape
    with imgstore.new_for_format(fmt, path=str(path), imgshape=shape, imgdtype=np.uint8, chunksize=1000,
                                 **settings) as store:
        for i, img in enumerate(frames):
            store.add_image(img, i, T0 + i / 25)


def packets_in(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for packet in container.demux(video=0) if packet.size)


def decoded(path: Path) -> list:
    with av.open(str(path / "000000.avi")) as container:
        return [f.to_ndarray(format="gray") for f in container.decode(video=0)]


@pytest.mark.parametrize("pix_fmt", ["yuvj420p", "yuvj444p"])
def test_grey_frames_built_directly_encode_as_through_swscale(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pix_fmt: str
) -> None:
    rng = np.random.default_rng(1)
    frames = [rng.integers(0, 256, (48, 64), dtype=np.uint8) for _ in range(12)]
    write(tmp_path / "direct", frames, pix_fmt=pix_fmt)
    monkeypatch.setattr(video_av, "_FULL_RANGE_YUV", frozenset())  # the generic path: from_ndarray + swscale
    write(tmp_path / "generic", frames, pix_fmt=pix_fmt)
    direct, generic = decoded(tmp_path / "direct"), decoded(tmp_path / "generic")
    assert len(direct) == len(generic) == 12
    for a, b in zip(direct, generic):
        np.testing.assert_array_equal(a, b)


def test_direct_grey_frame_planes() -> None:
    img = np.arange(48 * 64, dtype=np.uint32).reshape(48, 64).astype(np.uint8)
    frame = video_av._yuvj_frame_from_grey(img, "yuvj420p")
    luma = frame.planes[0]
    np.testing.assert_array_equal(np.frombuffer(luma, np.uint8).reshape(-1, luma.line_size)[:48, :64], img)
    for plane in frame.planes[1:]:
        assert set(np.frombuffer(plane, np.uint8).tolist()) == {128}


def test_mjpeg_on_frame_threads_keeps_every_frame_in_order(tmp_path: Path) -> None:
    frames = [make_grid_frame(i, (96, 128), noise=False) for i in range(80)]
    write(tmp_path / "s", frames)
    store = imgstore.new_for_filename(str(tmp_path / "s"))
    assert [decode_grid(store.get_next_image()[0]) for _ in range(80)] == list(range(80))
    for i in (79, 3, 41):  # random access lands on the same frames
        assert decode_grid(store.get_image(None, frame_index=i)[0]) == i
    store.close()


def test_mjpeg_encoder_uses_frame_threads(tmp_path: Path) -> None:
    writer = video_av.PyAVChunkWriter(str(tmp_path / "c.avi"), MJPEG_AVI, (32, 32), "uint8", None)
    context = writer._frame_threads._context
    assert context.thread_type.name == "FRAME" and context.thread_count == video_av._cores()
    writer.write(np.zeros((32, 32), np.uint8))
    writer.close()
    explicit = video_av.PyAVChunkWriter(str(tmp_path / "d.avi"), MJPEG_AVI, (32, 32), "uint8", {"threads": 1})
    assert explicit._frame_threads._context.thread_count == 1
    explicit.close()


def test_flush_puts_every_frame_in_the_file(tmp_path: Path) -> None:
    """After flush() every frame written is in the file, although frame threads hold some back."""
    path = tmp_path / "s"
    store = imgstore.new_for_format("mjpeg/avi", path=str(path), imgshape=(96, 128), chunksize=1000)
    for i in range(23):
        store.add_image(make_grid_frame(i, (96, 128), noise=False), i, T0 + i)
        if i in (4, 5, 16):
            store.flush()
            assert packets_in(path / "000000.avi") == i + 1
    store.close()
    reader = imgstore.new_for_filename(str(path))
    assert [decode_grid(reader.get_next_image()[0]) for _ in range(23)] == list(range(23))
    reader.close()
