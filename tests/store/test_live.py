"""Reading a store while another process records it, and the one-writer lock.

The writer runs in its own process (``crashkill``'s forkserver, so it starts in milliseconds)
and records at a camera's pace; the reader here follows it with ``get_next_image(timeout=...)``
and ``refresh()``, and must see every frame, in order, with its number and time.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import time

import numpy as np
import pytest

import imgstore
from imgstore.errors import StoreExistsError, StoreLockedError

from crashkill import _context, frame, frame_number, frame_time
from framecodes import decode_grid

SHAPE = (64, 80)


def paced_writer(path: str, fmt: str, frames: int, fps: float, started: multiprocessing.Event) -> None:
    """Record ``frames`` frames at ``fps``, in chunks of 25, then close the store."""
    store = imgstore.new_for_format(fmt, mode="w", basedir=path, imgshape=SHAPE, imgdtype="uint8", chunksize=25)
    started.set()
    t0 = time.monotonic()
    for i in range(frames):
        store.add_image(frame(i, SHAPE), frame_number(i), frame_time(i))
        time.sleep(max(0.0, t0 + (i + 1) / fps - time.monotonic()))
    store.close()


def hold_store_open(path: str, ready: multiprocessing.Event) -> None:
    """Open a store for writing, write one frame and wait to be killed."""
    store = imgstore.new_for_format("npy", mode="w", basedir=path, imgshape=SHAPE, imgdtype="uint8", chunksize=25)
    store.add_image(frame(0, SHAPE), frame_number(0), frame_time(0))
    ready.set()
    time.sleep(120)


def _start(target, *args):
    ctx = _context()
    event = ctx.Event()
    proc = ctx.Process(target=target, args=(*args, event), daemon=True)
    proc.start()
    assert event.wait(60), "the writer did not start"
    return proc


@pytest.mark.parametrize("fmt", ["npy", "mjpeg/avi", "avc1/mp4"])
def test_reader_follows_a_writer_in_another_process(fmt, tmp_path):
    path = str(tmp_path / "live")
    frames = 120
    writer = _start(paced_writer, path, fmt, frames, 100.0)
    store = imgstore.new_for_filename(path)
    seen_while_writing = store.frame_count
    for i in range(frames):
        img, (number, ftime) = store.get_next_image(timeout=20)
        assert decode_grid(img) == i
        assert (number, ftime) == (frame_number(i), frame_time(i))
    writer.join(30)
    assert writer.exitcode == 0
    assert seen_while_writing < frames  # the reader really started before the recording ended
    with pytest.raises(EOFError):
        store.get_next_image(timeout=0.2)
    store.refresh()
    assert store.frame_count == frames
    # every lookup works on what a live reader took in, as on a store opened after the recording
    assert decode_grid(store.get_image(frame_number(77))[0]) == 77
    assert store.get_nearest_image(frame_time(33) + 0.001)[1][0] == frame_number(33)
    assert store.get_frame_metadata()["frame_number"] == [frame_number(i) for i in range(frames)]


def test_refresh_keeps_the_read_position(tmp_path):
    path = str(tmp_path / "live")
    writer = imgstore.new_for_format("npy", mode="w", basedir=path, imgshape=SHAPE, imgdtype="uint8", chunksize=10)
    for i in range(15):
        writer.add_image(frame(i, SHAPE), frame_number(i), frame_time(i))
    reader = imgstore.new_for_filename(path)
    assert reader.frame_count == 15
    assert reader.refresh() == 0
    for i in range(12):
        assert decode_grid(reader.get_next_image()[0]) == i
    for i in range(15, 40):
        writer.add_image(frame(i, SHAPE), frame_number(i), frame_time(i))
    assert reader.refresh() == 25
    assert reader.get_next_framenumber() == frame_number(12)
    assert [decode_grid(reader.get_next_image()[0]) for _ in range(28)] == list(range(12, 40))
    with pytest.raises(EOFError):
        reader.get_next_image()
    writer.close()
    assert reader.refresh() == 0 and reader.frame_count == 40


def test_get_next_image_waits_only_when_asked(tmp_path):
    path = str(tmp_path / "live")
    writer = imgstore.new_for_format("npy", mode="w", basedir=path, imgshape=SHAPE, imgdtype="uint8", chunksize=10)
    writer.add_image(frame(0, SHAPE), frame_number(0), frame_time(0))
    reader = imgstore.new_for_filename(path)
    reader.get_next_image()
    t0 = time.monotonic()
    with pytest.raises(EOFError):
        reader.get_next_image()
    with pytest.raises(EOFError):
        reader.get_next_image(timeout=0.3)
    assert time.monotonic() - t0 >= 0.3
    writer.close()


def test_second_writer_is_refused_while_the_first_lives(tmp_path, caplog):
    path = str(tmp_path / "store")
    holder = _start(hold_store_open, path)
    try:
        with pytest.raises(StoreLockedError, match=rf"being written by another process \(pid {holder.pid} "):
            imgstore.new_for_format("npy", mode="w", basedir=path, imgshape=SHAPE, imgdtype="uint8")
        with caplog.at_level(logging.INFO, logger="imgstore"):
            reader = imgstore.new_for_filename(path)  # reading is never blocked
        assert reader.frame_count == 1
        assert f"is being written (pid {holder.pid} " in caplog.text
        assert "stopped without closing" not in caplog.text
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.join(10)
    # the writer is dead: its lock is stale, reported, and blocks neither reading nor repair
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="imgstore"):
        reader = imgstore.new_for_filename(path)
    assert reader.frame_count == 1
    assert f"its writer (pid {holder.pid} " in caplog.text and "stopped without closing it" in caplog.text
    with pytest.raises(StoreExistsError):  # a store's frames are never overwritten
        imgstore.new_for_format("npy", mode="w", basedir=path, imgshape=SHAPE, imgdtype="uint8")
    assert imgstore.repair_store(path).lock_removed


def racing_writer(path: str, go: multiprocessing.Event, results: multiprocessing.Queue) -> None:
    """Wait for the start signal, then try to record 5 frames into a new store at ``path``."""
    go.wait(30)
    try:
        store = imgstore.new_for_format("npy", mode="w", basedir=path, imgshape=SHAPE, imgdtype="uint8")
    except StoreExistsError as exc:
        results.put(type(exc).__name__)
        return
    for i in range(5):
        store.add_image(frame(i, SHAPE) + (os.getpid() % 2), frame_number(i), frame_time(i))
        time.sleep(0.01)
    store.close()
    results.put(f"won {os.getpid()}")


def test_a_writer_refused_the_lock_leaves_the_holders_lock_file(tmp_path, monkeypatch):
    """The race the test below found: a writer that looked before the winner made its lock file, then
    was refused the lock, removed the winner's lock file (and with it the winner's new directory)."""
    from imgstore.durability.lock import WriterLock

    path = tmp_path / "store"
    path.mkdir()
    holder = WriterLock(str(path / ".lock"))  # the winner, between taking its lock and writing metadata
    try:
        monkeypatch.setattr(os.path, "lexists", lambda p: False)  # "no lock file yet", as seen a moment before
        with pytest.raises(StoreLockedError):
            imgstore.new_for_format("npy", mode="w", basedir=str(path), imgshape=SHAPE, imgdtype="uint8")
        monkeypatch.undo()
        assert (path / ".lock").exists() and path.is_dir()
    finally:
        holder.release()


def test_writers_racing_for_a_new_directory(tmp_path):
    """Of several processes creating the same store at the same moment, one gets it; none mixes in."""
    path = str(tmp_path / "store")
    ctx = _context()
    go, results = ctx.Event(), ctx.Queue()
    racers = [ctx.Process(target=racing_writer, args=(path, go, results), daemon=True) for _ in range(4)]
    for racer in racers:
        racer.start()
    time.sleep(0.5)
    go.set()
    outcomes = sorted(results.get(timeout=60) for _ in racers)
    for racer in racers:
        racer.join(10)
    winners = [o for o in outcomes if o.startswith("won")]
    assert len(winners) == 1, outcomes
    assert set(outcomes) - set(winners) <= {"StoreExistsError", "StoreLockedError"}
    winner_pid = int(winners[0].split()[1])
    with imgstore.new_for_filename(path) as store:
        assert store.frame_count == 5
        for i in range(5):
            assert np.array_equal(store.get_image(None, frame_index=i)[0], frame(i, SHAPE) + (winner_pid % 2))
    assert not os.path.exists(os.path.join(path, ".lock"))
