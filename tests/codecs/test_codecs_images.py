"""Image-folder chunks (``imgstore/codecs/images.py``): frames encoded on a thread pool land in the
right files in order, errors name their file, and npy frames read directly equal np.load's."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import List

import cv2
import numpy as np
import pytest

import imgstore
from imgstore.codecs import images
from imgstore.codecs.images import ImageFolderWriter, load_npy
from imgstore.errors import FrameReadError, StoreWriteError

T0 = 1_600_000_000.0


def slow_npy_save(path: str, img: np.ndarray) -> None:
    time.sleep(random.uniform(0, 0.01))  # threads finish out of order
    np.save(path, img)


def npy_save_after_50_ms(path: str, img: np.ndarray) -> None:
    time.sleep(0.05)  # frames stay in flight long enough for close() and flush() to have to wait
    np.save(path, img)


def test_threaded_writer_keeps_order_and_copies_frames(tmp_path: Path) -> None:
    writer = ImageFolderWriter(str(tmp_path), "npy", slow_npy_save, threads=3)
    buffer = np.zeros((4, 4), np.uint8)  # one buffer, reused for every frame as a camera loop does
    for i in range(40):
        buffer[:] = i
        writer.write(buffer)
    writer.close()
    for i in range(40):
        assert np.load(tmp_path / f"{i:06d}.npy")[0, 0] == i


def test_close_waits_for_every_frame(tmp_path: Path) -> None:
    writer = ImageFolderWriter(str(tmp_path), "npy", npy_save_after_50_ms, threads=2)
    for i in range(6):
        writer.write(np.full((2, 2), i, np.uint8))
    writer.close()
    assert sorted(os.listdir(tmp_path)) == [f"{i:06d}.npy" for i in range(6)]


def test_flush_waits_for_the_frames_in_flight(tmp_path: Path) -> None:
    writer = ImageFolderWriter(str(tmp_path), "npy", npy_save_after_50_ms, threads=2)
    for i in range(5):
        writer.write(np.full((2, 2), i, np.uint8))
    writer.flush()
    assert sorted(os.listdir(tmp_path)) == [f"{i:06d}.npy" for i in range(5)]
    writer.write(np.full((2, 2), 5, np.uint8))  # still writing after a flush
    writer.close()
    assert len(os.listdir(tmp_path)) == 6


def test_frames_in_flight_are_bounded(tmp_path: Path) -> None:
    gate = threading.Event()
    started: List[str] = []

    def blocked(path: str, img: np.ndarray) -> None:
        started.append(path)
        gate.wait(5)
        np.save(path, img)

    writer = ImageFolderWriter(str(tmp_path), "npy", blocked, threads=2)
    finished = threading.Event()

    def feed() -> None:
        for i in range(20):
            writer.write(np.full((2, 2), i, np.uint8))
        finished.set()

    feeder = threading.Thread(target=feed)
    feeder.start()
    time.sleep(0.3)
    assert not finished.is_set()  # the writer waits instead of queueing every frame
    assert len(started) == 2  # both threads are stuck on a frame; two more wait their turn
    gate.set()
    feeder.join(10)
    writer.close()
    assert len(os.listdir(tmp_path)) == 20


def test_one_stalled_frame_holds_the_writer_back(tmp_path: Path) -> None:
    """Frames in flight count from the oldest unfinished one: while frame 0 stalls on one thread,
    the other thread saves frames 1-3 and then the writer waits, so a crash at that moment loses
    at most four frames after the last whole one (recovery stops at the first missing file)."""
    gate = threading.Event()

    def first_frame_stalls(path: str, img: np.ndarray) -> None:
        if path.endswith("000000.npy"):
            gate.wait(5)
        np.save(path, img)

    writer = ImageFolderWriter(str(tmp_path), "npy", first_frame_stalls, threads=2)
    accepted: List[int] = []

    def feed() -> None:
        for i in range(20):
            writer.write(np.full((2, 2), i, np.uint8))
            accepted.append(i)

    feeder = threading.Thread(target=feed)
    feeder.start()
    time.sleep(0.3)
    assert accepted == [0, 1, 2, 3]
    assert sorted(os.listdir(tmp_path)) == [f"{i:06d}.npy" for i in (1, 2, 3)]
    gate.set()
    feeder.join(10)
    writer.close()
    assert sorted(os.listdir(tmp_path)) == [f"{i:06d}.npy" for i in range(20)]


def test_error_surfaces_at_a_later_write_naming_the_file(tmp_path: Path) -> None:
    def failing(path: str, img: np.ndarray) -> None:
        if path.endswith("000003.npy"):
            raise OSError(28, "No space left on device")
        np.save(path, img)

    writer = ImageFolderWriter(str(tmp_path), "npy", failing, threads=2)
    with pytest.raises(StoreWriteError, match=r"000003\.npy.*No space left on device"):
        for i in range(50):
            writer.write(np.full((2, 2), i, np.uint8))
            time.sleep(0.002)
    failed_at = i  # the frame whose write raised was not taken
    writer.write(np.full((2, 2), 99, np.uint8))  # the writer goes on after reporting
    writer.close()
    written = sorted(os.listdir(tmp_path))
    assert "000003.npy" not in written
    assert written == [f"{n:06d}.npy" for n in range(failed_at + 1) if n != 3]
    assert np.load(tmp_path / f"{failed_at:06d}.npy")[0, 0] == 99


def test_unclosed_writer_still_writes_its_frames(tmp_path: Path) -> None:
    script = f"""
import time, numpy as np
from imgstore.codecs.images import ImageFolderWriter
def slow(path, img):
    time.sleep(0.1)
    np.save(path, img)
writer = ImageFolderWriter({str(tmp_path)!r}, "npy", slow, threads=2)
for i in range(4):
    writer.write(np.full((2, 2), i, np.uint8))
"""  # the program ends without close(): the frames handed over are written all the same
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
    assert sorted(os.listdir(tmp_path)) == [f"{i:06d}.npy" for i in range(4)]


def test_error_surfaces_at_close(tmp_path: Path) -> None:
    def failing(path: str, img: np.ndarray) -> None:
        time.sleep(0.05)
        raise OSError("disk gone")

    writer = ImageFolderWriter(str(tmp_path), "npy", failing, threads=2)
    writer.write(np.zeros((2, 2), np.uint8))
    with pytest.raises(StoreWriteError, match=r"000000\.npy.*disk gone"):
        writer.close()


@pytest.mark.parametrize("fmt", ["png", "jpg"])
def test_store_writes_in_order_with_threads(tmp_path: Path, fmt: str) -> None:
    assert images.encode_threads() in (0, 2, 3, 4)
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (32, 48), dtype=np.uint8) for _ in range(30)]
    path = str(tmp_path / "s")
    with imgstore.new_for_format(fmt, path=path, imgshape=(32, 48), imgdtype=np.uint8, chunksize=7) as store:
        for i, img in enumerate(frames):
            store.add_image(img, 1000 + i, T0 + i)
    store = imgstore.new_for_filename(path)
    for i, img in enumerate(frames):
        got, (number, _) = store.get_next_image()
        assert number == 1000 + i
        if fmt == "png":
            np.testing.assert_array_equal(got, img)
        else:  # lossy: the frame back is this frame, not a neighbour
            errors = [np.abs(got.astype(int) - f).mean() for f in frames]
            assert int(np.argmin(errors)) == i


def test_store_reports_the_failed_frame_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = cv2.imencode

    def imencode(ext: str, img: np.ndarray, params: list) -> tuple:  # frame 2 (all pixels 2) fails
        return (False, None) if img[0, 0] == 2 else real(ext, img, params)

    monkeypatch.setattr(images.cv2, "imencode", imencode)
    store = imgstore.new_for_format("jpg", path=str(tmp_path / "s"), imgshape=(8, 8), imgdtype=np.uint8, chunksize=50)
    with pytest.raises(StoreWriteError, match=r"000002\.jpg") as caught:
        for i in range(40):
            store.add_image(np.full((8, 8), i, np.uint8), i, T0 + i)
            time.sleep(0.002)
        store.close()
    assert 2 in caught.value.lost_frames or caught.value.frame_number == 2


def test_store_reports_a_png_frame_file_that_cannot_be_created(tmp_path: Path) -> None:
    store = imgstore.new_for_format("png", path=str(tmp_path / "s"), imgshape=(8, 8), imgdtype=np.uint8, chunksize=50)
    store.add_image(np.zeros((8, 8), np.uint8), 0, T0)
    store.flush()
    (tmp_path / "s" / "000000" / "000002.png").mkdir()  # frame 2's file cannot be created, or renamed to
    with pytest.raises(StoreWriteError, match=r"000002\.png"):
        for i in range(1, 40):
            store.add_image(np.zeros((8, 8), np.uint8), i, T0 + i)
            time.sleep(0.002)
        store.close()


@pytest.mark.parametrize(
    "array",
    [
        np.arange(12, dtype=np.uint8).reshape(3, 4),
        np.arange(24, dtype=np.uint16).reshape(2, 4, 3),
        np.arange(6, dtype=">u2").reshape(2, 3),
        np.asfortranarray(np.arange(12, dtype=np.float32).reshape(3, 4)),
        np.array([True, False]),
        np.array(7, dtype=np.int64),
        np.zeros((0, 5), np.uint8),
    ],
    ids=["u8", "u16-colour", "big-endian", "fortran", "bool", "scalar", "empty"],
)
def test_load_npy_equals_np_load(tmp_path: Path, array: np.ndarray) -> None:
    path = str(tmp_path / "f.npy")
    np.save(path, array)
    got, want = load_npy(path), np.load(path)
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_array_equal(got, want)
    assert got.flags.writeable


def test_load_npy_refuses_pickles_and_damage(tmp_path: Path) -> None:
    pickled = str(tmp_path / "p.npy")
    np.save(pickled, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(FrameReadError, match=r"p\.npy.*pickled"):
        load_npy(pickled)
    truncated = tmp_path / "t.npy"
    np.save(truncated, np.zeros((10, 10), np.uint8))
    truncated.write_bytes(truncated.read_bytes()[:150])
    with pytest.raises(FrameReadError, match=r"t\.npy"):
        load_npy(str(truncated))
    complex_ = str(tmp_path / "c.npy")
    np.save(complex_, np.zeros(3, np.complex64))
    with pytest.raises(FrameReadError, match="numeric image"):
        load_npy(complex_)
    with pytest.raises(FrameReadError, match=r"missing\.npy"):
        load_npy(str(tmp_path / "missing.npy"))


def _frames_on_disk(folder: Path, n: int) -> None:
    for i in range(n):
        np.save(folder / f"{i:06d}.npy", np.full((3, 3), i, np.uint8))


def test_decode_ahead_returns_each_frame_asked_for(tmp_path: Path) -> None:
    _frames_on_disk(tmp_path, 30)
    loaded: List[str] = []

    def load(path: str) -> np.ndarray:
        loaded.append(os.path.basename(path))
        time.sleep(random.uniform(0, 0.003))
        return load_npy(path)

    reader = images.ImageFolderReader(str(tmp_path), "npy", load, threads=2, frame_count=30)
    order = [*range(12), 25, 3, 4, 5, 29, 0]  # sequential, then jumps
    assert [int(reader.read(i)[0, 0]) for i in order] == order
    reader.close()
    assert all(int(name[:6]) < 30 for name in loaded)  # never past the chunk's frames


def test_decode_ahead_error_raised_only_for_its_frame(tmp_path: Path) -> None:
    _frames_on_disk(tmp_path, 10)
    (tmp_path / "000004.npy").write_bytes(b"not an npy file at all, long enough to be read")
    os.unlink(tmp_path / "000009.npy")
    reader = images.ImageFolderReader(str(tmp_path), "npy", load_npy, threads=2, frame_count=10)
    assert [int(reader.read(i)[0, 0]) for i in range(4)] == [0, 1, 2, 3]  # frame 4 was decoded ahead
    with pytest.raises(FrameReadError, match=r"000004\.npy"):
        reader.read(4)
    assert [int(reader.read(i)[0, 0]) for i in range(5, 9)] == [5, 6, 7, 8]
    with pytest.raises(FrameReadError, match=r"000009\.npy is missing"):
        reader.read(9)
    reader.close()


def test_store_reads_png_in_order_with_decode_ahead(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    frames = [rng.integers(0, 256, (16, 24), dtype=np.uint8) for _ in range(25)]
    with imgstore.new_for_format("png", path=str(tmp_path / "s"), imgshape=(16, 24), chunksize=10) as store:
        for i, img in enumerate(frames):
            store.add_image(img, i, T0 + i)
    store = imgstore.new_for_filename(str(tmp_path / "s"))
    for i in [*range(25), 7, 8, 20, 2]:
        img, (number, _) = store.get_image(None, frame_index=i) if i in (7, 20, 2) else store.get_image(i)
        assert number == i
        np.testing.assert_array_equal(img, frames[i])
    store.close()
