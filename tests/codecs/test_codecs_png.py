"""The PNG writer that deflates with ISA-L: files any PNG reader takes, pixels exactly kept."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

import imgstore
from imgstore.codecs import png
from imgstore.codecs.png import PNGCodec, encode_png

pytestmark = pytest.mark.skipif(not png.fast_png_available(), reason="isal is not installed here")

RNG = np.random.default_rng(5)
FRAMES = {
    "grey8": RNG.integers(0, 256, (37, 53), dtype=np.uint8),
    "colour8": RNG.integers(0, 256, (21, 17, 3), dtype=np.uint8),
    "grey16": RNG.integers(0, 65536, (19, 23), dtype=np.uint16),
    "colour16": RNG.integers(0, 65536, (9, 11, 3), dtype=np.uint16),
    "one pixel": np.array([[200]], dtype=np.uint8),
    "one column": RNG.integers(0, 256, (15, 1, 3), dtype=np.uint8),
    "flat": np.full((480, 640), 77, dtype=np.uint8),
}


def _decode_by_the_spec(data: bytes) -> np.ndarray:
    """A PNG decoded by hand from the specification (signature, chunk CRCs, filters 0-4), as OpenCV would give it."""
    assert data[:8] == png.PNG_SIGNATURE
    pos, chunks = 8, []
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert crc == zlib.crc32(kind + body), f"bad CRC in {kind!r}"
        chunks.append((kind, body))
        pos += 12 + length
    assert [kind for kind, _ in chunks] == [b"IHDR", b"IDAT", b"IEND"] and pos == len(data)
    width, height, depth, colour_type, compression, filtering, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    assert (compression, filtering, interlace) == (0, 0, 0)
    channels = {0: 1, 2: 3}[colour_type]
    step = channels * depth // 8
    raw = np.frombuffer(zlib.decompress(chunks[1][1]), dtype=np.uint8).reshape(height, 1 + width * step)
    rows = np.zeros((height, width * step), dtype=np.uint8)
    for y in range(height):
        kind, line = raw[y, 0], raw[y, 1:].astype(np.int32)
        assert kind == 1, "every row uses the Sub filter"
        out = np.zeros_like(line)
        for x in range(len(line)):
            out[x] = (line[x] + (out[x - step] if x >= step else 0)) % 256
        rows[y] = out
    samples = rows.view(">u2") if depth == 16 else rows
    img = samples.reshape(height, width, channels).astype(np.uint16 if depth == 16 else np.uint8)
    return img[:, :, 0] if channels == 1 else img[:, :, ::-1]  # RGB -> BGR


@pytest.mark.parametrize("name", sorted(FRAMES))
def test_png_files_read_back_exactly(tmp_path: Path, name: str) -> None:
    img = FRAMES[name]
    path = tmp_path / "frame.png"
    PNGCodec().saver(img.shape, img.dtype.name)(str(path), img)
    data = path.read_bytes()
    assert data == b"".join(encode_png(img))
    back = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(back.reshape(img.shape), img)
    if img.size <= 2000:  # the hand decoder is slow
        np.testing.assert_array_equal(_decode_by_the_spec(data), img)


def test_png_of_camera_like_frame_is_about_as_small_as_opencvs() -> None:
    y, x = np.mgrid[0:480, 0:640]
    img = (100 + 40 * np.sin(x / 50) * np.cos(y / 70) + RNG.integers(-2, 3, (480, 640))).astype(np.uint8)
    ours = sum(len(piece) for piece in encode_png(img))
    opencv = len(cv2.imencode(".png", img)[1])
    assert ours < 1.25 * opencv


def test_frames_png_does_not_cover_go_to_opencv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert encode_png(np.zeros((4, 4, 4), dtype=np.uint8)) is None  # BGRA
    assert encode_png(np.zeros((4, 4), dtype=np.float32)) is None
    monkeypatch.setattr(png, "_deflate", None)  # as without isal
    img = FRAMES["grey8"]
    assert encode_png(img) is None
    path = tmp_path / "frame.png"
    PNGCodec().saver(img.shape, "uint8")(str(path), img)
    np.testing.assert_array_equal(cv2.imread(str(path), cv2.IMREAD_UNCHANGED), img)


@pytest.mark.parametrize("shape,dtype", [((48, 64), np.uint8), ((48, 64, 3), np.uint8), ((30, 20), np.uint16)])
def test_png_store_round_trip(tmp_path: Path, shape: tuple, dtype: type) -> None:
    frames = [RNG.integers(0, np.iinfo(dtype).max, shape, dtype=dtype) for _ in range(7)]
    store = imgstore.new_for_format("png", path=str(tmp_path / "s"), imgshape=shape, imgdtype=dtype, chunksize=3)
    for i, img in enumerate(frames):
        store.add_image(img, i, 1e9 + i)
    store.close()
    reader = imgstore.new_for_filename(str(tmp_path / "s"))
    for i, img in enumerate(frames):
        got, (number, _) = reader.get_image(i)
        assert number == i
        np.testing.assert_array_equal(got, img)
