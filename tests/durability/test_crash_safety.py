"""Recordings survive their writer being killed, and a full or read-only disk.

Writers are killed with SIGKILL at random moments (``crashkill``); after each kill the store must
open, hold every frame that reached the disk with the right pixels, number and time (lost: none
for image folders, at most one GOP for video), say what it recovered, and become a store every
program reads after ``repair_store``. ``IMGSTORE_CRASH_KILLS`` sets the kills per format (default 6).
"""

from __future__ import annotations

import errno
import logging
import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import imgstore
from imgstore.durability.journal import ChunkJournal, read_journal
from imgstore.errors import ChunkIndexError, StoreLockedError, StoreWriteError

from crashkill import GOP, frame, frame_number, frame_time, write_and_kill
from framecodes import decode_grid

KILLS = int(os.environ.get("IMGSTORE_CRASH_KILLS", "6"))
#: frames a writer has in flight (being encoded on other cores) at most
IN_FLIGHT = 8
#: frames a killed writer may lose of those add_image had accepted, per format: those in flight,
#: and for encoders with a lookahead, at most one GOP
ALLOWED_LOSS = {
    "npy": 0,
    "png": IN_FLIGHT,
    "jpg": IN_FLIGHT,
    "mjpeg/avi": IN_FLIGHT,
    "ffv1/mkv": IN_FLIGHT,
    "avc1/mp4": GOP,
    "h264/mkv": GOP,
}
#: formats that keep no frame back once flushed
NO_LOOKAHEAD = {"npy", "png", "jpg", "mjpeg/avi", "ffv1/mkv"}
FORMATS = list(ALLOWED_LOSS)
#: frames big enough to fill a small disk quickly
FULL_DISK_SHAPE = (240, 320)


def check_recovered(path: str, acked: int, allowed_loss: int) -> int:
    """Every frame the store serves is the right one; returns how many it serves."""
    with imgstore.new_for_filename(path) as store:
        count = store.frame_count
        assert acked - allowed_loss <= count <= acked + 1, (acked, count)
        for i in range(count):
            img, (number, ftime) = store.get_image(None, frame_index=i)
            assert decode_grid(img) == i, f"frame index {i} shows frame {decode_grid(img)}"
            assert (number, ftime) == (frame_number(i), frame_time(i))
        if count:
            last = count - 1
            assert decode_grid(store.get_image(frame_number(last))[0]) == last
            assert store.get_nearest_image(frame_time(last // 2) + 0.01)[1][0] == frame_number(last // 2)
            md = store.get_frame_metadata()
            assert md["frame_number"] == [frame_number(i) for i in range(count)]
    return count


@pytest.mark.parametrize("fmt", FORMATS)
def test_writer_killed_at_random_points(fmt, tmp_path, caplog):
    rng = random.Random(f"{fmt}-kills")
    for k in range(KILLS):
        path = str(tmp_path / f"kill{k}")
        kill = write_and_kill(path, fmt, rng.randrange(1, 150), extra_delay=rng.uniform(0, 0.004))
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="imgstore"):
            count = check_recovered(path, kill.acked, ALLOWED_LOSS[fmt])
        if fmt in NO_LOOKAHEAD:
            assert count >= kill.flushed  # nothing flushed is ever lost
        if kill.acked < 150:  # (a writer killed after its last frame may have closed the store)
            assert "stopped without closing" in caplog.text, caplog.text

        report = imgstore.repair_store(path)
        assert report.frames_recovered + report.frames_lost <= kill.acked + 1
        assert not any(name.endswith(".journal") for _, _, files in os.walk(path) for name in files)
        assert not os.path.exists(os.path.join(path, imgstore.stores.STORE_LOCK_FILENAME))
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="imgstore"):
            assert check_recovered(path, kill.acked, ALLOWED_LOSS[fmt]) == count
        assert caplog.text == ""
        assert not imgstore.repair_store(path).changed
        extra = imgstore.new_for_filename(path).get_extra_data()
        if extra is not None:  # one row every 10 frames, up to the last frame written
            assert set(extra["sensor"]) <= {float(i) for i in range(0, kill.acked + 1, 10)}


UPSTREAM_READ = """
import imgstore

def main(path):
    store = imgstore.new_for_filename(path)
    ids, numbers = [], []
    for i in range(store.frame_count):
        img, (number, _) = store.get_image(None, frame_index=i)
        ids.append(decode(img))
        numbers.append(int(number))
    return {"count": store.frame_count, "ids": ids, "numbers": numbers}

def decode(img):
    import framecodes
    return framecodes.decode_grid(img)
"""


@pytest.mark.parametrize("fmt", ["npy", "mjpeg/avi", "avc1/mp4", "h264/mkv"])
def test_repaired_store_reads_in_upstream(fmt, tmp_path):
    from upstream_oracle import run_upstream

    path = str(tmp_path / "killed")
    kill = write_and_kill(path, fmt, 97, extra_delay=0.001)
    assert not kill.finished
    imgstore.repair_store(path)
    count = imgstore.new_for_filename(path).frame_count
    result = run_upstream(UPSTREAM_READ, path)
    assert result["count"] == count
    assert result["ids"] == list(range(count))
    assert result["numbers"] == [frame_number(i) for i in range(count)]


def test_repair_refuses_a_live_writer(tmp_path):
    path = str(tmp_path / "live")
    store = imgstore.new_for_format("npy", mode="w", basedir=path, imgshape=(8, 8), imgdtype="uint8", chunksize=5)
    store.add_image(np.zeros((8, 8), np.uint8), 0, 0.0)
    with pytest.raises(StoreLockedError, match="still being written"):
        imgstore.repair_store(path)
    store.close()
    assert not imgstore.repair_store(path).changed


# ----------------------------------------------------------------------------------------------
# the journal
# ----------------------------------------------------------------------------------------------
def _journal(path: Path, n: int) -> Path:
    journal = ChunkJournal(str(path))
    for i in range(n):
        journal.append(frame_number(i), frame_time(i))
    journal.close()
    return path


def test_journal_round_trip(tmp_path):
    contents = read_journal(str(_journal(tmp_path / "a.journal", 5)))
    assert contents.frame_number.tolist() == [frame_number(i) for i in range(5)]
    assert contents.frame_time.tolist() == [frame_time(i) for i in range(5)]
    assert not contents.damaged_tail


@pytest.mark.parametrize("tail", [b"\x01\x02\x03", b"\x00" * 40, bytes(range(20))])
def test_journal_ends_at_a_torn_or_damaged_record(tmp_path, tail):
    path = _journal(tmp_path / "a.journal", 4)
    with open(path, "ab") as f:
        f.write(tail)
    contents = read_journal(str(path))
    assert contents.frame_number.tolist() == [frame_number(i) for i in range(4)]
    assert contents.damaged_tail


def test_journal_with_a_flipped_bit_ends_before_it(tmp_path):
    path = _journal(tmp_path / "a.journal", 6)
    data = bytearray(path.read_bytes())
    data[8 + 3 * 20 + 2] ^= 0x10  # inside the 4th record
    path.write_bytes(bytes(data))
    assert read_journal(str(path)).frame_number.tolist() == [frame_number(i) for i in range(3)]


def test_not_a_journal(tmp_path):
    path = tmp_path / "a.journal"
    path.write_bytes(b"PK\x03\x04 something else entirely")
    with pytest.raises(ChunkIndexError, match="not a chunk journal"):
        read_journal(str(path))
    path.write_bytes(b"IMG")  # killed while writing the signature
    assert len(read_journal(str(path)).frame_number) == 0


def test_damaged_journal_does_not_stop_the_store_opening(tmp_path, caplog):
    path = str(tmp_path / "s")
    kill = write_and_kill(path, "npy", 55)
    journal = next(Path(path).rglob("*.journal"))
    journal.write_bytes(b"garbage that is no journal")
    with caplog.at_level(logging.WARNING, logger="imgstore"):
        store = imgstore.new_for_filename(path)
    # the finished chunks (a full chunk is finished by the call after its last frame)
    assert store.frame_count == (kill.acked - 1) // 40 * 40
    assert "not a chunk journal" in caplog.text


# ----------------------------------------------------------------------------------------------
# full and read-only disks
# ----------------------------------------------------------------------------------------------
def _fill_until_error(store, start: int = 0):
    i = start
    shape = store.image_shape
    while True:
        try:
            store.add_image(frame(i, shape), frame_number(i), frame_time(i))
        except StoreWriteError as exc:
            return i, exc
        i += 1
        assert i < 100_000, "the disk never filled up"


@pytest.fixture
def small_disk(tmp_path):
    """A 3 MiB tmpfs (root only, as on CI); skipped where mounting is not allowed."""
    mount = tmp_path / "small"
    mount.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)], capture_output=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {proc.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


#: position of each frame number ``crashkill`` gives frames
_POSITION = {frame_number(i): i for i in range(100_000)}
#: every format this install writes (the '+color' variants write as their base format)
WRITE_FORMATS = [f for f in imgstore.get_supported_formats() if "+color" not in f]


def _record_until_full(store, give_up_after: int = 5):
    """Add frames as a recorder that catches errors would, until the disk refused ``give_up_after``
    in a row; returns (accepted, reported lost, refused) frame positions."""
    accepted, lost, refused = [], set(), []
    i = 0
    while len(refused) < give_up_after or refused[-give_up_after] != i - give_up_after:
        try:
            store.add_image(frame(i, store.image_shape), frame_number(i), frame_time(i))
            accepted.append(i)
        except StoreWriteError as exc:
            assert exc.frame_number == frame_number(i), str(exc)
            assert "No space left on device" in str(exc) and store.filename in str(exc)
            refused.append(i)
            lost |= {_POSITION[n] for n in exc.lost_frames}
        i += 1
        assert i < 100_000, "the disk never filled up"
    return accepted, lost, refused


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="tmpfs mounts are Linux only")
@pytest.mark.parametrize("fmt", WRITE_FORMATS)
def test_a_full_disk_loses_no_accepted_frame_without_saying_so(fmt, small_disk):
    """On a real full disk: every frame add_image accepted is read back, or an error named it lost;
    frames it refused are never read back; once there is room, repair finishes the store."""
    path = str(small_disk / "store")
    store = imgstore.new_for_format(
        fmt, mode="w", basedir=path, imgshape=FULL_DISK_SHAPE, imgdtype="uint8", chunksize=50
    )
    accepted, lost, refused = _record_until_full(store)
    assert accepted and refused and lost <= set(accepted)
    try:
        store.close()
    except StoreWriteError as exc:  # e.g. the last chunk's index did not fit either
        lost |= {_POSITION[n] for n in exc.lost_frames}
    kept = [i for i in accepted if i not in lost]

    def check() -> None:
        with imgstore.new_for_filename(path) as reader:
            assert reader.get_frame_metadata()["frame_number"] == [frame_number(i) for i in kept]
            for position, i in enumerate(kept):
                img, (number, ftime) = reader.get_image(None, frame_index=position)
                assert decode_grid(img) == i and (number, ftime) == (frame_number(i), frame_time(i))

    check()
    subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], check=True)
    imgstore.repair_store(path)
    check()
    assert not list(Path(path).rglob("*.journal")) and not os.path.exists(os.path.join(path, ".lock"))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="tmpfs mounts are Linux only")
def test_store_on_a_read_only_disk_reads(small_disk):
    path = str(small_disk / "store")
    with imgstore.new_for_format(
        "npy", mode="w", basedir=path, imgshape=(32, 32), imgdtype="uint8", chunksize=10
    ) as store:
        for i in range(25):
            store.add_image(frame(i, (32, 32)), frame_number(i), frame_time(i))
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    with imgstore.new_for_filename(path) as reader:  # reading never needs to write
        assert reader.frame_count == 25
        assert decode_grid(reader.get_image(frame_number(24))[0]) == 24


class _FailingWriter:
    """A chunk writer whose disk fails (full, or turned read-only) after ``room`` frames."""

    def __init__(self, writer, room: int, error: int) -> None:
        self._writer, self._room, self._error = writer, room, error

    def write(self, img):
        if self._room <= 0:
            raise OSError(self._error, os.strerror(self._error))
        self._room -= 1
        self._writer.write(img)

    def close(self):
        self._writer.close()


@pytest.mark.parametrize("error", [errno.ENOSPC, errno.EROFS], ids=["disk-full", "read-only"])
@pytest.mark.parametrize("fmt", ["npy", "avc1/mp4"])
def test_recording_goes_on_after_a_failed_write(fmt, error, tmp_path, monkeypatch, caplog):
    path = str(tmp_path / "store")
    store = imgstore.new_for_format(fmt, mode="w", basedir=path, imgshape=(96, 128), imgdtype="uint8", chunksize=20)
    codec = imgstore.codecs.get_codec(fmt)  # the registry's codec: the one the store writes with
    real_open = codec.open_writer
    opened = []

    def open_writer(*args, **kwargs):  # the disk fails for a moment while chunk 2 is written
        writer = _FailingWriter(real_open(*args, **kwargs), room=13 if len(opened) == 2 else 10**6, error=error)
        opened.append(writer)
        return writer

    monkeypatch.setattr(codec, "open_writer", open_writer)
    written, exc = _fill_until_error(store)
    assert written == 53
    assert os.strerror(error) in str(exc) and f"frame #{frame_number(53)}" in str(exc) and path in str(exc)
    assert isinstance(exc, OSError) and isinstance(exc, ValueError)
    for i in range(53, 70):  # the recorder retries the frame, and goes on: into a new chunk
        store.add_image(frame(i), frame_number(i), frame_time(i))
    with caplog.at_level(logging.WARNING, logger="imgstore"):
        store.close()  # the disk works again: the damaged chunk is indexed with the frames it holds
    assert "chunk 2, damaged by a failed write, holds 13 frames" in caplog.text
    assert not imgstore.repair_store(path).changed
    assert check_recovered(path, 70, 0) == 70


def _fill(disk: Path, leave: int) -> Path:
    """Fill ``disk`` with one file until at most ``leave`` bytes are free; the file's path."""
    filler = disk / "filler"
    with open(filler, "wb") as f:
        chunk = b"\0" * 65536
        while True:
            st = os.statvfs(disk)
            free = st.f_bavail * st.f_frsize
            if free <= leave:
                break
            try:
                f.write(chunk[: max(1, min(len(chunk), free - leave))])
                f.flush()
            except OSError:
                break
    return filler


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="tmpfs mounts are Linux only")
@pytest.mark.parametrize("free", [0, 8192], ids=["no-room", "8KB"])
def test_creating_a_store_on_a_full_disk_fails_cleanly(small_disk, free):
    """Our error naming the store; nothing left behind (no stale lock, no half metadata), so that
    creating it again succeeds once there is room."""
    filler = _fill(small_disk, free)
    path = small_disk / "store"
    try:
        imgstore.new_for_format("npy", path=str(path), imgshape=(240, 320), chunksize=10).close()
    except StoreWriteError as exc:
        assert str(exc).startswith(f"cannot create store {path} (No space left on device")
        assert not path.exists() or not any(path.iterdir()), sorted(p.name for p in path.iterdir())
    else:  # it fitted (a file system keeping room for small files): then it is a whole store
        assert imgstore.new_for_filename(str(path)).frame_count == 0
    filler.unlink()
    if not (path / "metadata.yaml").exists():
        imgstore.new_for_format("npy", path=str(path), imgshape=(24, 32)).close()  # the retry works
    assert imgstore.new_for_filename(str(path)).frame_count == 0


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="tmpfs mounts are Linux only")
def test_save_index_on_a_full_disk_is_our_error(small_disk):
    path = small_disk / "store"
    store = imgstore.new_for_format("npy", path=str(path), imgshape=(24, 32), chunksize=10)
    for i in range(25):
        store.add_image(frame(i, (24, 32)), frame_number(i), frame_time(i))
    _fill(small_disk, 0)
    with pytest.raises(StoreWriteError):
        store.close(save_index=True)
    (small_disk / "filler").unlink()
    assert imgstore.new_for_filename(str(path)).frame_count == 25


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="tmpfs mounts are Linux only")
def test_creating_a_store_on_a_read_only_disk_is_our_error(small_disk):
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    with pytest.raises(StoreWriteError, match="Read-only file system"):
        imgstore.new_for_format("npy", path=str(small_disk / "store"), imgshape=(24, 32))


#: frames a video encoder may still hold when flush() returns, with the format's default settings
#: (its lookahead, B-frames and frame threads; measured on 2 cores: x264 16, x265 25, SVT-AV1 54;
#: more encoder threads on more cores hold more)
ENCODER_HOLDBACK = {"avc1/mp4": 40, "h264/mkv": 40, "hevc/mp4": 64, "av1/mkv": 96}


@pytest.mark.parametrize("fmt", WRITE_FORMATS)
def test_flushed_frames_survive_a_kill(fmt, tmp_path):
    """Killed right after flush() returned: every frame added is readable (video encoders with a
    lookahead: all but those they hold back, see docs/crash-safety.md)."""
    from crashkill import flush_and_kill

    frames = 37
    path = str(tmp_path / "store")
    flush_and_kill(path, fmt, frames)
    with imgstore.new_for_filename(path) as store:
        count = store.frame_count
        for i in range(count):
            img, (number, _) = store.get_image(None, frame_index=i)
            assert number == frame_number(i) and decode_grid(img) == i
    assert count >= frames - ENCODER_HOLDBACK.get(fmt, 0), (fmt, count)
    if fmt not in ENCODER_HOLDBACK:
        assert count == frames


def test_flush_syncs_the_stores_own_files_not_the_machine(tmp_path, monkeypatch):
    """flush() fsyncs files in the store (frames, journal, folders) and never calls os.sync()."""
    synced = []
    real_fsync = os.fsync

    def fsync(fd):
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "sync", lambda: pytest.fail("os.sync() flushes every disk of the machine"))
    monkeypatch.setattr(os, "fsync", fsync)
    path = tmp_path / "store"
    store = imgstore.new_for_format("png", path=str(path), imgshape=(24, 32), chunksize=10)
    for i in range(3):
        store.add_image(frame(i, (24, 32)), frame_number(i), frame_time(i))
    synced.clear()
    store.flush()
    assert synced and all(p.startswith(str(path)) for p in synced), synced
    assert {str(path / "000000" / f"{i:06d}.png") for i in range(3)} <= set(synced)
    assert str(path / "000000" / "index.journal") in synced and str(path / "000000") in synced
    store.close()
