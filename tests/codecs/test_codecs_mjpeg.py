"""MJPEG chunks encoded by libjpeg-turbo on threads and muxed by PyAV: frames in order, the JPEGs
each pixel format asks for, quality at least FFmpeg's at the same setting, and files every
reader (PyAV, OpenCV) plays."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

import imgstore
from imgstore.codecs import mjpeg
from imgstore.codecs.video import MJPEG_AVI
from imgstore.errors import StoreWriteError

from framecodes import decode_grid, make_grid_frame

T0 = 1_600_000_000.0


def write(path: Path, frames: list, **settings: object) -> None:
    with imgstore.new_for_format(
        "mjpeg/avi", path=str(path), imgshape=frames[0].shape, imgdtype=np.uint8, chunksize=1000, **settings
    ) as store:
        for i, img in enumerate(frames):
            store.add_image(img, i, T0 + i / 25)


def packets(path: Path) -> list:
    with av.open(str(path)) as container:
        return [bytes(packet) for packet in container.demux(video=0) if packet.size]


def frame_components(jpeg: bytes) -> list:
    """(horizontal, vertical) sampling factors of each component, from the JPEG's SOF0 header."""
    start = jpeg.index(b"\xff\xc0") + 4
    count = jpeg[start + 5]
    return [(jpeg[start + 7 + 3 * c] >> 4, jpeg[start + 7 + 3 * c] & 15) for c in range(count)]


def camera_like(seed: int, shape: tuple = (240, 320)) -> np.ndarray:
    """Smooth illumination and texture with +-2 sensor noise, as a lab camera sees an arena."""
    rng = np.random.default_rng(seed)
    scene = cv2.GaussianBlur(rng.random(shape, dtype=np.float32), (0, 0), 6)
    scene = (scene - scene.min()) / (scene.max() - scene.min()) * 120 + 60
    scene += cv2.GaussianBlur(rng.random(shape, dtype=np.float32), (0, 0), 1.5) * 40
    return np.clip(scene + rng.integers(-2, 3, shape), 0, 255).astype(np.uint8)


def ffmpeg_mjpeg(img: np.ndarray, quantiser: int) -> np.ndarray:
    """``img`` through FFmpeg's own MJPEG encoder at a fixed quantiser scale (grey as full-range YUV)."""
    h, w = img.shape
    context = av.CodecContext.create("mjpeg", "w")
    context.width, context.height, context.pix_fmt = w, h, "yuvj420p"
    context.time_base = Fraction(1, 25)
    context.qmin = context.qmax = quantiser
    context.open()
    frame = av.VideoFrame.from_ndarray(cv2.cvtColor(img, cv2.COLOR_GRAY2BGR), format="bgr24").reformat(
        format="yuvj420p"
    )
    jpeg = bytes((context.encode(frame) + context.encode(None))[0])
    return cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_GRAYSCALE)


@pytest.mark.parametrize("quality", [2, 3, 5, 10, 20, 31])
def test_quality_setting_is_at_least_ffmpegs(tmp_path: Path, quality: int) -> None:
    """The setting kept its meaning: frames are no further from the original than FFmpeg's MJPEG made them."""
    img = camera_like(quality)
    write(tmp_path / "s", [img], quality=quality)
    ours = imgstore.new_for_filename(str(tmp_path / "s")).get_image(None, frame_index=0)[0]
    assert cv2.PSNR(img, ours) >= cv2.PSNR(img, ffmpeg_mjpeg(img, quality)) - 0.3


def test_quality_table_covers_every_setting() -> None:
    qualities = [mjpeg.jpeg_quality(q) for q in range(2, 32)]
    assert qualities == sorted(qualities, reverse=True)  # a higher setting never means better frames
    assert 1 <= min(qualities) and max(qualities) <= 100


@pytest.mark.parametrize(
    ("shape", "pix_fmt", "components"),
    [
        ((48, 64), None, [(1, 1)]),  # grey: one-component greyscale JPEG
        ((48, 64), "yuvj420p", [(2, 2), (1, 1), (1, 1)]),
        ((48, 64, 3), None, [(2, 2), (1, 1), (1, 1)]),
        ((48, 64, 3), "yuvj444p", [(1, 1), (1, 1), (1, 1)]),
    ],
)
def test_jpegs_hold_the_asked_pixel_format(tmp_path: Path, shape: tuple, pix_fmt: str, components: list) -> None:
    frames = [make_grid_frame(i, shape, noise=False) for i in range(3)]
    write(tmp_path / "s", frames, pix_fmt=pix_fmt)
    jpegs = packets(tmp_path / "s" / "000000.avi")
    assert len(jpegs) == 3 and all(frame_components(jpeg) == components for jpeg in jpegs)
    store = imgstore.new_for_filename(str(tmp_path / "s"))
    for i in range(3):
        img = store.get_image(None, frame_index=i)[0]
        assert img.shape == shape and decode_grid(img) == i
    store.close()


@pytest.mark.parametrize("threads", [0, 1, 3])
def test_frames_come_back_in_order_for_any_thread_count(tmp_path: Path, threads: int) -> None:
    frames = [make_grid_frame(i, (96, 128), noise=True) for i in range(80)]
    write(tmp_path / "s", frames, threads=threads)
    store = imgstore.new_for_filename(str(tmp_path / "s"))
    assert [decode_grid(store.get_next_image()[0]) for _ in range(80)] == list(range(80))
    for i in (79, 3, 41):  # random access lands on the same frames
        assert decode_grid(store.get_image(None, frame_index=i)[0]) == i
    store.close()


def test_the_callers_buffer_may_change_once_add_image_returns(tmp_path: Path) -> None:
    buffer = np.empty((96, 128), np.uint8)
    path = tmp_path / "s"
    with imgstore.new_for_format("mjpeg/avi", path=str(path), imgshape=buffer.shape, chunksize=1000) as store:
        for i in range(30):
            buffer[:] = make_grid_frame(i, buffer.shape, noise=False)
            store.add_image(buffer, i, T0 + i)
    reader = imgstore.new_for_filename(str(path))
    assert [decode_grid(reader.get_next_image()[0]) for _ in range(30)] == list(range(30))
    reader.close()


def test_flush_puts_every_frame_in_the_file(tmp_path: Path) -> None:
    """After flush() every frame written is in the file, although encoder threads held some."""
    path = tmp_path / "s"
    store = imgstore.new_for_format("mjpeg/avi", path=str(path), imgshape=(96, 128), chunksize=1000)
    for i in range(23):
        store.add_image(make_grid_frame(i, (96, 128), noise=False), i, T0 + i)
        if i in (4, 5, 16):
            store.flush()
            assert len(packets(path / "000000.avi")) == i + 1
    store.close()
    reader = imgstore.new_for_filename(str(path))
    assert [decode_grid(reader.get_next_image()[0]) for _ in range(23)] == list(range(23))
    reader.close()


def test_opencv_plays_the_chunks(tmp_path: Path) -> None:
    """What upstream reads with: cv2.VideoCapture sees every frame, every one a keyframe in the index."""
    frames = [make_grid_frame(i, (96, 128), noise=False) for i in range(40)]
    write(tmp_path / "s", frames)
    capture = cv2.VideoCapture(str(tmp_path / "s" / "000000.avi"))
    assert capture.get(cv2.CAP_PROP_FRAME_COUNT) == 40
    capture.set(cv2.CAP_PROP_POS_FRAMES, 33)
    ok, img = capture.read()
    assert ok and img.shape == (96, 128, 3) and decode_grid(img) == 33
    capture.release()
    with av.open(str(tmp_path / "s" / "000000.avi")) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "mjpeg"
        assert all(packet.is_keyframe for packet in container.demux(stream) if packet.size)


def test_a_frame_the_encoder_refuses_names_the_chunk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = str(tmp_path / "c.avi")
    writer = mjpeg.MjpegChunkWriter(path, MJPEG_AVI, (32, 32), "uint8", {"threads": 1})
    writer.write(np.zeros((32, 32), np.uint8))
    monkeypatch.setattr(mjpeg.cv2, "imencode", lambda *args: (False, None))
    with pytest.raises(StoreWriteError, match=r"c\.avi"):
        writer.write(np.zeros((32, 32), np.uint8))
    writer.close()
    assert len(packets(Path(path))) == 1  # the frame written before stays readable
