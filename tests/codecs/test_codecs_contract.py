"""The codec contract: every format in the registry passes the same write/read/seek tests.

A new chunk format registered in ``imgstore.codecs`` gets this whole suite for free.
"""

from __future__ import annotations

import os
import random

import cv2
import numpy as np
import pytest

import imgstore
from imgstore import codecs
from imgstore.errors import UnsupportedFormatError

from framecodes import decode_grid, make_grid_frame

T0 = 1_600_000_000.0
# odd, and wide enough for every encoder (libx265 needs 64 pixels)
ODD_GREY = (37, 67)
ODD_COLOR = (37, 67, 3)


def _plain_formats() -> list[str]:
    return [f for f in imgstore.get_supported_formats() if not codecs.split_format(f)[1]]


def _color_variants() -> list[str]:
    return [f for f in imgstore.get_supported_formats() if codecs.split_format(f)[1]]


def _shapes(codec: codecs.ChunkCodec) -> list[tuple]:
    shapes = [ODD_GREY]
    if codec.channels is None or 3 in codec.channels:
        shapes.append(ODD_COLOR)
    return shapes


def _dtypes(codec: codecs.ChunkCodec) -> tuple:
    return codec.dtypes if codec.dtypes is not None else ("uint8", "uint16", "float32")


def _cases() -> list:
    cases = []
    for fmt in _plain_formats():
        codec = codecs.get_codec(fmt)
        for shape in _shapes(codec):
            for dtype in _dtypes(codec):
                kind = "color" if len(shape) == 3 else "grey"
                cases.append(pytest.param(fmt, shape, dtype, id=f"{fmt}-{kind}-{dtype}"))
    return cases


def _write(path, fmt, shape, dtype, numbers, chunksize=5, **kwargs):
    """Write grid frames carrying their index; returns the frames as given to add_image."""
    frames = [make_grid_frame(i, shape, dtype) for i in range(len(numbers))]
    with imgstore.new_for_format(
        fmt, path=str(path), imgshape=shape, imgdtype=dtype, chunksize=chunksize, **kwargs
    ) as store:
        for i, (frame, number) in enumerate(zip(frames, numbers)):
            store.add_image(frame, number, T0 + 0.04 * i)
    return frames


def _assert_same_frame(codec, got: np.ndarray, written: np.ndarray, frame_id: int) -> None:
    h, w = got.shape[:2]
    expected = codec.as_stored(written)[:h, :w]
    assert got.shape == expected.shape and got.dtype == expected.dtype
    if codec.lossless:
        np.testing.assert_array_equal(got, expected)
    else:
        assert decode_grid(got) == frame_id
        assert abs(float(got.mean()) - float(expected.mean())) < 3


@pytest.mark.parametrize(("fmt", "shape", "dtype"), _cases())
def test_sequential_round_trip(tmp_path, fmt, shape, dtype):
    codec = codecs.get_codec(fmt)
    numbers = [100 + 3 * i for i in range(23)]  # gaps, uneven last chunk
    frames = _write(tmp_path / "s", fmt, shape, dtype, numbers)

    store = imgstore.new_for_filename(str(tmp_path / "s"))
    assert store.image_shape == codec.written_shape(shape)
    assert store.lossless is codec.lossless
    assert store.frame_count == len(numbers)
    assert store.chunks == [0, 1, 2, 3, 4]
    for i, number in enumerate(numbers):
        img, (got_number, got_time) = store.get_next_image()
        assert (got_number, got_time) == (number, T0 + 0.04 * i)
        assert store.frame_number == number
        _assert_same_frame(codec, img, frames[i], i)
    with pytest.raises(EOFError):
        store.get_next_image()
    store.close()


def _format_shapes() -> list:
    return [
        pytest.param(fmt, shape, id=f"{fmt}-{'color' if len(shape) == 3 else 'grey'}")
        for fmt in _plain_formats()
        for shape in _shapes(codecs.get_codec(fmt))
    ]


def _raw_mosaic_formats() -> list[str]:
    """Formats that can keep a raw sensor mosaic exactly (lossless, uint8 grey) and colour."""
    return [
        f
        for f in _plain_formats()
        if codecs.get_codec(f).lossless
        and ODD_COLOR in _shapes(codecs.get_codec(f))
        and "uint8" in _dtypes(codecs.get_codec(f))
    ]


@pytest.mark.parametrize(("fmt", "shape"), _format_shapes())
def test_random_access_matches_sequential(tmp_path, fmt, shape):
    numbers = [7, 8, 9, 20, 21, 3, 4, 5, 6, 50, 51, 52, 53, 54, 90, 91, 92]  # backwards jump, gaps
    _write(tmp_path / "s", fmt, shape, "uint8", numbers, chunksize=4)
    store = imgstore.new_for_filename(str(tmp_path / "s"))
    sequential = []
    while True:
        try:
            sequential.append(store.get_next_image())
        except EOFError:
            break
    assert [md[0] for _, md in sequential] == numbers

    rng = random.Random(1234)
    current = None
    for _ in range(120):
        how = rng.choice(["index", "number", "time", "next"])
        if how == "next" and current is not None and current + 1 < len(numbers):
            expected_pos = current + 1
            img, md = store.get_next_image()
        elif how == "number":
            expected_pos = rng.randrange(len(numbers))
            img, md = store.get_image(np.int64(numbers[expected_pos]))
        elif how == "time":
            expected_pos = rng.randrange(len(numbers))
            img, md = store.get_nearest_image(T0 + 0.04 * expected_pos + 0.01)
        else:
            expected_pos = rng.randrange(len(numbers))
            img, md = store.get_image(None, frame_index=expected_pos)
        np.testing.assert_array_equal(img, sequential[expected_pos][0])
        assert md == sequential[expected_pos][1]
        current = expected_pos
    store.close()


@pytest.mark.parametrize("fmt", _plain_formats())
def test_extract_only_frame_is_get_image(tmp_path, fmt):
    numbers = list(range(11))
    _write(tmp_path / "s", fmt, ODD_GREY, "uint8", numbers, chunksize=4)
    with imgstore.new_for_filename(str(tmp_path / "s")) as store:
        for i in (0, 3, 4, 10):
            expected = store.get_image(None, frame_index=i)[0]
            np.testing.assert_array_equal(imgstore.extract_only_frame(str(tmp_path / "s"), i), expected)
            np.testing.assert_array_equal(
                imgstore.extract_only_frame(str(tmp_path / "s" / "metadata.yaml"), i), expected
            )


@pytest.mark.parametrize("fmt", _color_variants())
def test_color_variant_demosaics_before_writing(tmp_path, fmt):
    raw = [np.random.default_rng(i).integers(0, 256, (32, 48), dtype=np.uint8) for i in range(6)]
    with imgstore.new_for_format(
        fmt, path=str(tmp_path / "s"), imgshape=(32, 48), chunksize=4, encoding="cv_bayerbg"
    ) as store:
        for i, frame in enumerate(raw):
            store.add_image(frame, i, T0 + i)
    store = imgstore.new_for_filename(str(tmp_path / "s"))
    assert store.image_shape == (32, 48, 3)
    assert store.view.metadata.encoding is None and store.view.metadata.format == codecs.split_format(fmt)[0]
    for i, frame in enumerate(raw):
        img, _ = store.get_image(i)
        expected = cv2.cvtColor(frame, cv2.COLOR_BayerBG2BGR)
        if store.lossless:
            np.testing.assert_array_equal(img, expected)
        else:
            assert abs(float(img.mean()) - float(expected.mean())) < 3


@pytest.mark.parametrize("fmt", _raw_mosaic_formats())
def test_sensor_encoding_is_decoded_on_read(tmp_path, fmt):
    raw = np.random.default_rng(0).integers(0, 256, (32, 48), dtype=np.uint8)
    with imgstore.new_for_format(fmt, path=str(tmp_path / "s"), imgshape=(32, 48), encoding="cv_bayergr") as store:
        store.add_image(raw, 0, T0)
    store = imgstore.new_for_filename(str(tmp_path / "s"))
    assert store.image_shape == (32, 48, 3)
    np.testing.assert_array_equal(store.get_image(0)[0], cv2.cvtColor(raw, cv2.COLOR_BayerGR2BGR))
    store.disable_decoding()
    np.testing.assert_array_equal(store.get_image(0)[0], raw)


@pytest.mark.parametrize("fmt", [f for f in _plain_formats() if codecs.get_codec(f).dtypes is not None])
def test_refuses_dtypes_the_format_cannot_hold(tmp_path, fmt):
    codec = codecs.get_codec(fmt)
    refused = [d for d in ("uint16", "int32", "float32") if d not in codec.dtypes]
    for dtype in refused:
        with pytest.raises(UnsupportedFormatError, match=fmt):
            imgstore.new_for_format(fmt, path=str(tmp_path / dtype), imgshape=ODD_GREY, imgdtype=dtype)
        assert not (tmp_path / dtype).exists(), "nothing may be created for a refused store"


@pytest.mark.usefixtures("opencv")
def test_registry_lists_upstream_directory_formats():
    expected = {"npy", "png", "jpg", "tif", "bmp", "ppm", "pgm", "png+color", "jpg+color", "tif+color", "bmp+color"}
    formats = set(imgstore.DirectoryImgStore.supported_formats())
    assert expected <= formats
    assert formats - expected <= {"bpk"}
    assert all(imgstore.DirectoryImgStore.supports_format(f) for f in formats)
    assert not imgstore.DirectoryImgStore.supports_format("avc1/mp4")
    assert imgstore.get_supported_formats()[: len(formats)] == imgstore.DirectoryImgStore.supported_formats()


def test_grey_only_and_color_only_formats(tmp_path, caplog):
    """pgm keeps colour frames as grey (a warning says so), ppm grey ones as colour; reads give the store's shape."""
    frames = _write(tmp_path / "pgm", "pgm", ODD_COLOR, "uint8", [0, 1])
    assert "stored grey" in caplog.text
    store = imgstore.new_for_filename(str(tmp_path / "pgm"))
    grey = cv2.cvtColor(frames[1], cv2.COLOR_BGR2GRAY)
    np.testing.assert_array_equal(store.get_image(1)[0], np.dstack([grey, grey, grey]))
    assert cv2.imread(str(tmp_path / "pgm" / "000000" / "000001.pgm"), cv2.IMREAD_UNCHANGED).ndim == 2
    frames = _write(tmp_path / "ppm", "ppm", ODD_GREY, "uint8", [0, 1])  # stored as colour, read as grey
    store = imgstore.new_for_filename(str(tmp_path / "ppm"))
    np.testing.assert_array_equal(store.get_image(1)[0], frames[1])


def _video_formats() -> list[str]:
    return [f for f in _plain_formats() if codecs.get_codec(f).extension is not None]


class _MuxFailingOnce:
    """An output container whose first ``mux`` fails as a transient I/O error does, dropping the
    packet; everything else goes to the real container."""

    def __init__(self, container) -> None:
        self._container, self.muxed_after_failure, self.failed = container, 0, False

    def mux(self, packet) -> None:
        import av

        if not self.failed:
            self.failed = True
            raise av.error.OSError(5, "Input/output error")
        self.muxed_after_failure += 1
        self._container.mux(packet)

    def __getattr__(self, name):
        return getattr(self._container, name)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("fmt", _video_formats())
def test_a_failed_write_closes_the_chunk_to_later_frames(tmp_path, fmt, threads):
    """After one failed mux, no later frame may reach the file: it would take the lost frame's
    place, since recovery counts a chunk's frames from its start."""
    import av

    from imgstore.errors import StoreWriteError

    codec = codecs.get_codec(fmt)
    path = str(tmp_path / f"chunk{codec.extension}")
    shape = (64, 64)
    writer = codec.open_writer(path, shape, "uint8", {"threads": threads})
    container = writer._container = _MuxFailingOnce(writer._container)
    for i in range(40):
        try:
            writer.write(make_grid_frame(i, shape))
        except StoreWriteError:
            pass  # the failed frame, then each later one
    if not container.failed:
        with pytest.raises(StoreWriteError):
            writer.flush()
            writer.close()
    assert container.failed  # (an encoder with a long lookahead muxes its first packet on close)
    with pytest.raises(StoreWriteError):
        writer.close()
    assert container.muxed_after_failure == 0
    if os.path.exists(path):  # (the failing mux was the first: nothing opened the file)
        with av.open(path) as reader:
            assert not [p for p in reader.demux(video=0) if p.size]
