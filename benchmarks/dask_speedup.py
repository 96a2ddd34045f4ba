"""Time a reduction over a whole store with Dask on 1 and on 2 worker processes.

    python benchmarks/dask_speedup.py [--dir DIR] [--quick] [--rebuild] [--format FMT]
                                      [--frames N] [--chunksize N] [--frames-per-task N] [--repeats N]

Builds (once, cached in ``DIR``, default ``$TMPDIR/imgstore-bench``) a deterministic store: by
default ``avc1/mp4``, 1280x1024 grey, 2,000 frames in chunks of 500, of a synthetic camera (a lit,
textured arena with a few bright blobs moving on smooth paths and mild per-frame noise). Then
computes the per-frame mean, ``imgstore.dask.to_dask(store, frames_per_task=100).mean(axis=(1, 2))``,
on a ``distributed.LocalCluster`` of 1 and of 2 worker processes (one thread each), and, for
reference, frame by frame with ``get_next_image`` in this process. Both clusters are started, and
have run the computation once, before any clock starts; the three are then timed in
rounds (``--repeats``), so that bursts of load from other processes hit them alike, and the best
time of each and the speed-up of 2 workers over 1 are printed. Every result is checked against
the frame-by-frame one.

100 frames per task (two GOPs of the default ``gop=50``) keep a task's block at 130 MB; one task
per store chunk (``--frames-per-task 0``) makes 655 MB blocks, which cost a worker noticeably
more to allocate and fill than smaller ones.

Timings are wall clock on a machine others may be using: the load average is printed before and
after. FFmpeg's H.264 decoder runs several threads of its own, so one worker may already use more
than one core; the speed-up says what a second process adds on this machine. ``--quick`` shrinks
the store to a few small frames (a smoke test); its numbers mean nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shutil
import tempfile
import time
from typing import Any, Callable, Dict, List, Tuple

import numpy as np

#: part of the cached store's name: bump when the synthetic frames change
DATA_VERSION = 1

FULL = dict(shape=(1024, 1280), frames=2000, chunksize=500, frames_per_task=100)
#: no dashboard, and the scheduler's small HTTP server on a free port (two clusters run at once)
NO_FIXED_PORT = {"dashboard_address": ":0"}
QUICK = dict(shape=(96, 128), frames=60, chunksize=20, frames_per_task=10)


def synthetic_frames(shape: Tuple[int, int], count: int, seed: int = 0):
    """``count`` deterministic grey frames that look like a camera over an arena (for H.264)."""
    h, w = shape
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    cy, cx = h / 2, w / 2
    radius = np.hypot((yy - cy) / (h / 2), (xx - cx) / (w / 2))
    background = 60 + 50 * np.cos(radius * 1.3) + rng.normal(0, 6, shape)  # lit centre, texture
    background[(radius > 0.92) & (radius < 0.97)] = 220  # bright rim of the arena
    background = background.astype(np.float32)
    blobs = [
        (rng.uniform(0.2, 0.8), rng.uniform(0.2, 0.8), rng.uniform(0.002, 0.01), rng.uniform(0, 6.3)) for _ in range(4)
    ]
    size = max(3, min(h, w) // 40)
    for i in range(count):
        frame = background.copy()
        for fy, fx, speed, phase in blobs:
            y = int(h * (0.5 + (fy - 0.5) * np.sin(speed * i * 6.3 + phase)))
            x = int(w * (0.5 + (fx - 0.5) * np.cos(speed * i * 4.1 + phase)))
            frame[max(0, y - size) : y + size, max(0, x - size) : x + size] = 235
        frame += rng.integers(-3, 4, shape, dtype=np.int16)
        yield np.clip(frame, 0, 255).astype(np.uint8)


def build_store(path: str, fmt: str, shape: Tuple[int, int], frames: int, chunksize: int) -> float:
    """Write the store at ``path``; returns the seconds it took."""
    import imgstore

    start = time.perf_counter()
    partial = path + ".partial"
    shutil.rmtree(partial, ignore_errors=True)
    with imgstore.new_for_format(fmt, path=partial, imgshape=shape, chunksize=chunksize) as store:
        for i, frame in enumerate(synthetic_frames(shape, frames)):
            store.add_image(frame, i, 1_700_000_000.0 + i / 25)
    os.replace(partial, path)  # a store interrupted while written is never reused
    return time.perf_counter() - start


def means_frame_by_frame(path: str) -> np.ndarray:
    import imgstore

    out = []
    with imgstore.new_for_filename(path) as store:
        for _ in range(store.frame_count):
            img, _ = store.get_next_image()
            out.append(img.mean())
    return np.asarray(out)


def timed(fn: Callable[[], np.ndarray]) -> Tuple[float, np.ndarray]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def warm_up() -> None:
    """Run on each worker: import the modules the tasks use (and decode nothing)."""
    import av  # noqa: F401

    import imgstore.dask  # noqa: F401


def start_client(stack: contextlib.ExitStack, workers: int) -> Any:
    """A client of a new LocalCluster of ``workers`` processes (one thread each), closed with ``stack``."""
    from distributed import Client, LocalCluster

    cluster = stack.enter_context(
        LocalCluster(
            n_workers=workers,
            processes=True,
            threads_per_worker=1,
            dashboard_address=None,
            scheduler_kwargs=NO_FIXED_PORT,
            silence_logs=logging.CRITICAL,
        )
    )
    client = stack.enter_context(Client(cluster, set_as_default=False))
    client.run(warm_up)  # every worker imports what the tasks need before any clock starts
    return client


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} (1, 5, 15 min) on {os.cpu_count()} cores"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", default=os.path.join(tempfile.gettempdir(), "imgstore-bench"))
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test")
    parser.add_argument("--rebuild", action="store_true", help="write the store again even if cached")
    parser.add_argument("--format", default="avc1/mp4")
    parser.add_argument("--frames", type=int)
    parser.add_argument("--chunksize", type=int)
    parser.add_argument(
        "--frames-per-task",
        type=int,
        default=None,
        help="frames per Dask task (default 100, 2 GOPs; 0: one task per store chunk)",
    )
    parser.add_argument("--repeats", type=int, default=None, help="timed rounds (the best time of each is kept)")
    args = parser.parse_args(argv)

    sizes = dict(QUICK if args.quick else FULL)
    sizes["frames"] = args.frames or sizes["frames"]
    sizes["chunksize"] = args.chunksize or sizes["chunksize"]
    repeats = args.repeats or (1 if args.quick else 3)
    if args.frames_per_task is None:
        args.frames_per_task = sizes["frames_per_task"]
    h, w = sizes["shape"]
    name = f"dask-v{DATA_VERSION}-{args.format.replace('/', '_')}-{w}x{h}-{sizes['frames']}f-{sizes['chunksize']}c"
    path = os.path.join(args.dir, name)
    os.makedirs(args.dir, exist_ok=True)
    print(f"store: {path} ({args.format}, {w}x{h} grey, {sizes['frames']} frames, chunks of {sizes['chunksize']})")
    if args.rebuild or not os.path.isdir(path):
        shutil.rmtree(path, ignore_errors=True)
        print(f"  built in {build_store(path, args.format, (h, w), sizes['frames'], sizes['chunksize']):.1f} s")
    print(load())

    import imgstore.dask

    frames_per_task = args.frames_per_task or None
    array = imgstore.dask.to_dask(path, frames_per_task=frames_per_task)
    means = array.mean(axis=tuple(range(1, array.ndim)))
    tasks = array.numblocks[0]
    labels = {
        "serial": "frame by frame, get_next_image, this process",
        1: f"dask, LocalCluster 1 worker process, {tasks} tasks",
        2: f"dask, LocalCluster 2 worker processes, {tasks} tasks",
    }
    times: Dict[Any, List[float]] = {key: [] for key in labels}
    with contextlib.ExitStack() as stack:
        clients = {workers: start_client(stack, workers) for workers in (1, 2)}
        _, reference = timed(lambda: means_frame_by_frame(path))  # also brings the files into the page cache
        for client in clients.values():  # an untimed round: workers load what the first tasks need
            np.testing.assert_allclose(client.compute(means).result(), reference, rtol=1e-9)
        for _ in range(repeats):  # rounds of all three, so that a burst of load hits them alike
            seconds, result = timed(lambda: means_frame_by_frame(path))
            times["serial"].append(seconds)
            for workers, client in clients.items():
                seconds, result = timed(lambda client=client: client.compute(means).result())
                np.testing.assert_allclose(result, reference, rtol=1e-9)
                times[workers].append(seconds)

    tasks_note = f"{frames_per_task} frames per task" if frames_per_task else "one task per store chunk"
    print(
        f"\nper-frame mean of {sizes['frames']} frames, {tasks_note}; best of {repeats} rounds "
        "(results equal the frame-by-frame ones)"
    )
    for key, label in labels.items():
        best = min(times[key])
        print(f"  {label:<58} {best:8.2f} s  {sizes['frames'] / best:8.1f} frames/s")
    ratios = [one / two for one, two in zip(times[1], times[2])]
    rounds = ", ".join(f"{r:.2f}" for r in ratios)
    print(
        f"speed-up of 2 workers over 1: {min(times[1]) / min(times[2]):.2f}x of the best times; "
        f"median of rounds {float(np.median(ratios)):.2f}x (rounds: {rounds})"
    )
    print(load())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
