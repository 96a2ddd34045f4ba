"""Kill a store writer with SIGKILL at a chosen moment, and say what it had written by then.

The writer runs in a child forked from a forkserver that has already imported imgstore, so a
kill costs milliseconds, not an interpreter start. After each ``add_image`` returns, the child
publishes how many frames it has written (``acked``) in shared memory; the parent waits for a
target count, optionally a little longer, then kills it. Frames encode their own index
(``framecodes`` grid), numbers skip every 7th value, times step by 1/25 s.

Run directly for a table of frames lost per format over many kills (the figures in the issue
note): ``python tests/crashkill.py [--kills 40]``.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import framecodes

T0 = 1_700_000_000.0
SHAPE = (96, 128)
#: keyframe interval of the video formats in these tests
GOP = 25
#: the writer calls ``store.flush()`` after every this many frames
FLUSH_EVERY = 50


def frame_number(i: int) -> int:
    """Camera frame numbers with a dropped frame every 7."""
    return 1000 + i + i // 7


def frame_time(i: int) -> float:
    return T0 + i / 25.0


def frame(i: int, shape: tuple = SHAPE) -> np.ndarray:
    return framecodes.make_grid_frame(i % 4096, shape)


def writer(
    path: str,
    fmt: str,
    chunksize: int,
    frames: int,
    acked: multiprocessing.Value,
    flushed: multiprocessing.Value,
    shape: tuple,
) -> None:
    """The child: write ``frames`` frames (and some extra data), publishing the counts as it goes."""
    import imgstore

    options = {"gop": GOP} if fmt in ("avc1/mp4", "h264/mkv", "hevc/mp4") else {}
    store = imgstore.new_for_format(
        fmt, mode="w", basedir=path, imgshape=shape, imgdtype="uint8", chunksize=chunksize, **options
    )
    for i in range(frames):
        store.add_image(frame(i, shape), frame_number(i), frame_time(i))
        if i % 10 == 0:
            store.add_extra_data(sensor=float(i))
        acked.value = i + 1
        if (i + 1) % FLUSH_EVERY == 0:
            store.flush()
            flushed.value = i + 1
    store.close()
    acked.value = frames + 1_000_000  # closed cleanly


def flushing_writer(
    path: str, fmt: str, chunksize: int, frames: int, flushed: multiprocessing.Value, shape: tuple
) -> None:
    """The child: write ``frames`` frames with the format's default settings, ``flush()``, then wait
    to be killed."""
    import imgstore

    store = imgstore.new_for_format(fmt, mode="w", basedir=path, imgshape=shape, imgdtype="uint8", chunksize=chunksize)
    for i in range(frames):
        store.add_image(frame(i, shape), frame_number(i), frame_time(i))
    store.flush()
    flushed.value = frames
    time.sleep(600)


_CONTEXT = None


def _context() -> multiprocessing.context.BaseContext:
    global _CONTEXT
    if _CONTEXT is None:
        _CONTEXT = multiprocessing.get_context("forkserver")
        _CONTEXT.set_forkserver_preload(["imgstore", "av", "cv2", "crashkill"])
    return _CONTEXT


@dataclass
class Kill:
    """What a killed writer had done: frames acknowledged, and flushed, when it died."""

    path: str
    fmt: str
    acked: int
    flushed: int
    finished: bool


def _wait_for(child: Any, counter: Any, target: int, timeout: float, failure: str) -> None:
    """Wait until the child's shared ``counter`` reaches ``target`` or the child ends; after
    ``timeout`` s, kill it and raise TimeoutError (``failure``, with how far it got)."""
    deadline = time.monotonic() + timeout
    while counter.value < target and child.is_alive():
        if time.monotonic() > deadline:
            child.kill()
            raise TimeoutError(f"{failure} in {timeout} s (it reached {counter.value})")
        time.sleep(0.0002)


def write_and_kill(
    path: str,
    fmt: str,
    kill_at: int,
    *,
    chunksize: int = 40,
    frames: int = 150,
    extra_delay: float = 0.0,
    shape: tuple = SHAPE,
    timeout: float = 60.0,
) -> Kill:
    """Start a writer, kill it once it has acknowledged ``kill_at`` frames (plus ``extra_delay`` s)."""
    ctx = _context()
    acked = ctx.Value("q", 0, lock=False)
    flushed = ctx.Value("q", 0, lock=False)
    child = ctx.Process(target=writer, args=(path, fmt, chunksize, frames, acked, flushed, shape), daemon=True)
    child.start()
    _wait_for(child, acked, kill_at, timeout, f"writer of {path} did not write {kill_at} frames")
    if extra_delay:
        time.sleep(extra_delay)
    os.kill(child.pid, signal.SIGKILL) if child.is_alive() else None
    child.join(10)
    if child.exitcode not in (-signal.SIGKILL, 0):
        raise RuntimeError(f"writer of {path} failed (exit {child.exitcode})")
    finished = acked.value > 1_000_000
    return Kill(path, fmt, frames if finished else acked.value, flushed.value, finished)


def flush_and_kill(
    path: str, fmt: str, frames: int, *, chunksize: int = 1000, shape: tuple = SHAPE, timeout: float = 60.0
) -> None:
    """Start a writer that flushes after ``frames`` frames; SIGKILL it as soon as ``flush()`` returned."""
    ctx = _context()
    flushed = ctx.Value("q", 0, lock=False)
    child = ctx.Process(target=flushing_writer, args=(path, fmt, chunksize, frames, flushed, shape), daemon=True)
    child.start()
    _wait_for(child, flushed, frames, timeout, f"writer of {path} did not flush {frames} frames")
    if not child.is_alive():
        raise RuntimeError(f"writer of {path} failed (exit {child.exitcode})")
    os.kill(child.pid, signal.SIGKILL)
    child.join(10)


def main() -> None:
    import argparse
    import logging
    import tempfile

    import imgstore

    logging.basicConfig(level=logging.ERROR)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=40, help="kills per format")
    parser.add_argument("--formats", default="npy,png,jpg,mjpeg/avi,avc1/mp4,h264/mkv,ffv1/mkv")
    args = parser.parse_args()
    rng = random.Random(0)
    print(f"{'format':<10} {'kills':>5} {'lost max':>8} {'lost mean':>9} {'lost before flush':>17} {'wrong':>6}")
    with tempfile.TemporaryDirectory() as tmp:
        for fmt in args.formats.split(","):
            losses, wrong, lost_flushed = [], 0, 0
            for k in range(args.kills):
                path = os.path.join(tmp, f"{fmt.replace('/', '_')}_{k}")
                kill = write_and_kill(path, fmt, rng.randrange(1, 150), extra_delay=rng.uniform(0, 0.004))
                store = imgstore.new_for_filename(path)
                count = store.frame_count
                losses.append(max(0, kill.acked - count))
                lost_flushed += max(0, kill.flushed - count)
                for i in range(count):
                    img, (number, ftime) = store.get_image(None, frame_index=i)
                    wrong += framecodes.decode_grid(img) != i or number != frame_number(i) or ftime != frame_time(i)
                store.close()
            print(f"{fmt:<10} {args.kills:>5} {max(losses):>8} {np.mean(losses):>9.1f} {lost_flushed:>17} {wrong:>6}")


if __name__ == "__main__":
    main()
