"""Time video stores: H.264 writing, sequential reading and random access, ours vs upstream.

    python benchmarks/video_speed.py [--upstream PYTHON] [--quick] [--dir DIR] [--rebuild] [--ours PYTHON]

Workloads (each timed once, after a warm-up, with ``time.perf_counter``):

1. write: ``new_for_format('avc1/mp4', ...)`` with our default encoder settings, N grey frames
   (640x480, N=1000), frames/s including ``close()``; also ``mjpeg/avi`` for reference, the only
   video format upstream can write with pip's OpenCV (its H.264 attempt is made and reported).
2. sequential read: ``get_next_image()`` until ``EOFError`` on a 1280x1024 grey H.264 store of
   1000 frames in one chunk, written once by this library like a real recording (``gop=250``,
   default crf/preset), and on the same frames written with the default gop. Both libraries read
   the same store directory; each frame's sha1 is kept (outside the timed calls).
3. random read: ``get_image(None, frame_index=i)`` latency at seeded random positions (50 for
   ours, the first 20 of them for upstream), median and p95, on both stores; each image is
   compared with the same position of that library's own sequential decode.

Only the calls named are timed (for reads: not opening the store, not hashing); the first read
after opening a store in a fresh process, which also indexes the chunk, is reported apart.
Targets: write >= 250 frames/s, sequential read >= 400 frames/s, random read median <= 150 ms.

Frames come from ``SyntheticCamera`` (in ``WORKER``): a textured, lit arena with a bright rim, a
few bright blobs moving along smooth paths, and mild per-frame noise, so H.264 sees camera-like
content. Everything is seeded, so every run (and both interpreters) sees the same frames. Read
stores are cached under ``DIR`` (default ``$TMPDIR/imgstore-bench``), keyed by their
parameters, so reruns skip building them (``--rebuild`` forces it).

Each library runs in its own subprocesses of the worker script ``WORKER`` (written to a
temporary folder and run with ``python -I``, so neither the current directory nor PYTHONPATH
decides which imgstore it imports): ours with this interpreter (or ``--ours PYTHON``), upstream
with ``--upstream PYTHON``, an interpreter with upstream imgstore 0.4.0 and OpenCV; upstream is
never imported here. The ratio column is how many times faster ours is (throughput
ours/upstream, latency upstream/ours). ``--quick`` shrinks every size so all workloads run in
seconds (a CI smoke test); its numbers are not comparable with the targets. Timings are wall
clock: other processes' load skews them, so the load average is printed with the table.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any, Dict, List, Optional

#: part of the cached stores' names: bump when SyntheticCamera or the stores' settings change (or use --rebuild
#: after changing how this library writes; comparing readers wants the same stores)
DATA_VERSION = 1

#: the issue's targets
WRITE_TARGET_FPS = 250.0
READ_TARGET_FPS = 400.0
RANDOM_TARGET_MS = 150.0

FULL = dict(
    write_shape=(480, 640),
    write_frames=1000,
    write_chunksize=500,
    read_shape=(1024, 1280),
    read_frames=1000,
    long_gop=250,
    random_ours=50,
    random_upstream=20,
)
QUICK = dict(
    write_shape=(96, 128),
    write_frames=40,
    write_chunksize=20,
    read_shape=(192, 256),
    read_frames=120,
    long_gop=60,
    random_ours=10,
    random_upstream=5,
)

WORKER = r'''"""video_speed.py worker: runs the jobs in the JSON file argv[1] with this interpreter's imgstore."""

import hashlib
import json
import os
import shutil
import sys
import time

import numpy as np

import imgstore

T0 = 1_600_000_000.0
FPS = 25.0
RESULT_MARK = "RESULT "


def _smooth(rng, h, w, cell):
    """Uniform noise on a grid of ``cell``-pixel cells, bilinearly interpolated to h x w."""
    grid = rng.random((h // cell + 2, w // cell + 2), dtype=np.float32)
    y, x = np.arange(h, dtype=np.float32) / cell, np.arange(w, dtype=np.float32) / cell
    y0, x0 = y.astype(np.intp), x.astype(np.intp)
    fy, fx = (y - y0)[:, None], (x - x0)[None, :]
    top = grid[y0][:, x0] * (1 - fx) + grid[y0][:, x0 + 1] * fx
    bottom = grid[y0 + 1][:, x0] * (1 - fx) + grid[y0 + 1][:, x0 + 1] * fx
    return top * (1 - fy) + bottom * fy


class SyntheticCamera:
    """Deterministic camera-like grey frames.

    A static arena (smooth illumination, mottled texture at three scales, dark outside a
    bright elliptic rim), ``animals`` bright elongated blobs moving along smooth Lissajous paths
    (a few pixels per frame), and uniform +-2 sensor noise drawn afresh for every frame.
    """

    def __init__(self, height, width, seed=0, animals=5):
        self.h, self.w, self.seed = height, width, seed
        h, w = height, width
        rng = np.random.default_rng(seed)
        bg = 70 + 50 * _smooth(rng, h, w, max(h // 3, 2)) + 30 * _smooth(rng, h, w, max(h // 40, 2))
        bg += 20 * _smooth(rng, h, w, 2)
        yy, xx = np.ogrid[0:h, 0:w]
        r = np.hypot((yy - h / 2) / (h / 2), (xx - w / 2) / (w / 2))
        bg *= np.where(r < 0.92, 1.0, 0.45)
        bg[np.abs(r - 0.92) < 0.012] = 215
        self.background = np.clip(bg, 0, 255).astype(np.int16)
        sigma = max(h / 70, 1.5)
        self.half = half = int(3 * sigma)
        d = np.arange(-half, half + 1, dtype=np.float32)
        blob = 110 * np.exp(-(d[:, None] ** 2 + (d[None, :] / 1.8) ** 2) / (2 * sigma**2))
        self.blob = blob.astype(np.int16)
        # per animal: path amplitude (y, x; fraction of the frame), frequency (cycles/frame), phase
        self.paths = rng.uniform([0.2, 0.2, 0.002, 0.002, 0], [0.35, 0.35, 0.008, 0.008, 6.3], (animals, 5))

    def frame(self, i):
        h, w, half = self.h, self.w, self.half
        img = self.background.copy()
        for ay, ax, fy, fx, phase in self.paths:
            cy = int(h / 2 + ay * h * np.sin(2 * np.pi * fy * i + phase))
            cx = int(w / 2 + ax * w * np.cos(2 * np.pi * fx * i + 1.7 * phase))
            y0, y1, x0, x1 = max(cy - half, 0), min(cy + half + 1, h), max(cx - half, 0), min(cx + half + 1, w)
            img[y0:y1, x0:x1] += self.blob[y0 - cy + half : y1 - cy + half, x0 - cx + half : x1 - cx + half]
        img += np.random.default_rng([self.seed, i]).integers(-2, 3, (h, w), dtype=np.int8)
        return np.clip(img, 0, 255).astype(np.uint8)


def _digest(img):
    return hashlib.sha1(np.ascontiguousarray(img).tobytes()).hexdigest()


def _size_mb(path):
    return sum(e.stat().st_size for e in os.scandir(path) if e.is_file()) / 1e6


def _page_in(path):
    """Read every file of a store once, so timings start with it in the page cache."""
    for entry in os.scandir(path):
        if entry.is_file():
            with open(entry.path, "rb") as f:
                while f.read(1 << 23):
                    pass


def _write(path, fmt, frames, chunksize, settings):
    shape = frames[0].shape
    store = imgstore.new_for_format(fmt, path, imgshape=shape, imgdtype=np.uint8, chunksize=chunksize, **settings)
    try:
        for i, img in enumerate(frames):
            store.add_image(img, i, T0 + i / FPS)
    finally:
        try:
            store.close()
        except Exception:
            pass


def job_write(fmt, shape, frames, chunksize, seed, workdir):
    """frames/s writing ``frames`` frames (store creation to close), default settings."""
    cam = SyntheticCamera(*shape, seed=seed)
    imgs = [cam.frame(i) for i in range(frames)]
    frames_sha1 = hashlib.sha1(b"".join(_digest(img).encode() for img in imgs)).hexdigest()
    tag = fmt.replace("/", "-")
    warm, path = os.path.join(workdir, f"warm-{tag}"), os.path.join(workdir, f"write-{tag}")
    try:
        for p in (warm, path):
            shutil.rmtree(p, ignore_errors=True)
        try:
            _write(warm, fmt, imgs[:10], chunksize, {})
            t = time.perf_counter()
            _write(path, fmt, imgs, chunksize, {})
            seconds = time.perf_counter() - t
        except Exception as exc:
            return {"error": f"{type(exc).__name__}: {exc}", "frames_sha1": frames_sha1}
        return {"fps": frames / seconds, "seconds": seconds, "mb": _size_mb(path), "frames_sha1": frames_sha1}
    finally:
        for p in (warm, path):
            shutil.rmtree(p, ignore_errors=True)


def job_build(path, shape, frames, seed, gop):
    """Write a one-chunk avc1/mp4 store (``gop`` None: default), atomically (temp dir, rename)."""
    cam = SyntheticCamera(*shape, seed=seed)
    partial = path + ".partial"
    shutil.rmtree(partial, ignore_errors=True)
    t = time.perf_counter()
    settings = {} if gop is None else {"gop": gop}
    store = imgstore.new_for_format(
        "avc1/mp4", partial, imgshape=tuple(shape), imgdtype=np.uint8, chunksize=frames, **settings
    )
    for i in range(frames):
        store.add_image(cam.frame(i), i, T0 + i / FPS)
    store.close()
    os.replace(partial, path)
    return {"seconds": time.perf_counter() - t, "mb": _size_mb(path)}


def job_sequential(path):
    """frames/s of get_next_image() until EOFError (only the calls are timed) and each frame's sha1."""
    _page_in(path)
    store = imgstore.new_for_filename(path)
    for _ in range(3):
        store.get_next_image()
    store.close()

    t = time.perf_counter()
    store = imgstore.new_for_filename(path)
    open_s = time.perf_counter() - t
    digests, seconds = [], 0.0
    while True:
        t = time.perf_counter()
        try:
            img, _ = store.get_next_image()
        except EOFError:
            break
        seconds += time.perf_counter() - t
        digests.append(_digest(img))
    store.close()
    return {
        "fps": len(digests) / seconds,
        "frames": len(digests),
        "seconds": seconds,
        "open_s": open_s,
        "shape": list(img.shape),
        "digests": digests,
    }


def job_random(path, indices, digests):
    """Latency of get_image(None, frame_index=i), and which images match the sequential decode."""
    _page_in(path)
    store = imgstore.new_for_filename(path)
    t = time.perf_counter()
    store.get_image(None, frame_index=len(digests) // 2)  # warm-up; a fresh process's first read
    first_ms = (time.perf_counter() - t) * 1e3
    store.close()

    store = imgstore.new_for_filename(path)
    latencies, same = [], 0
    for i in indices:
        t = time.perf_counter()
        img, _ = store.get_image(None, frame_index=i)
        latencies.append(time.perf_counter() - t)
        same += i < len(digests) and _digest(img) == digests[i]
    store.close()
    ms = np.array(latencies) * 1e3
    return {
        "median_ms": float(np.median(ms)),
        "p95_ms": float(np.percentile(ms, 95)),
        "n": len(indices),
        "same": same,
        "first_ms": first_ms,
    }


if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        jobs = json.load(f)
    results = []
    for job in jobs:
        name = job.pop("job")
        results.append(globals()["job_" + name](**job))
    print(RESULT_MARK + json.dumps(results))
'''


class Worker:
    """Runs WORKER with one interpreter (``python -I``: no cwd, no PYTHONPATH on its path)."""

    def __init__(self, python: str, workdir: str, name: str) -> None:
        self.python, self.workdir, self.name = python, workdir, name
        self.script = os.path.join(workdir, "video_speed_worker.py")
        with open(self.script, "w") as f:
            f.write(WORKER)

    def run(self, jobs: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
        jobs_path = os.path.join(self.workdir, f"jobs-{self.name}-{os.getpid()}.json")
        with open(jobs_path, "w") as f:
            json.dump(jobs, f)
        try:
            proc = subprocess.run(
                [self.python, "-I", self.script, jobs_path], capture_output=True, text=True, cwd=self.workdir
            )
        finally:
            os.unlink(jobs_path)
        lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
        if proc.returncode or not lines:
            sys.exit(f"{self.name} worker ({self.python}) failed:\n{proc.stderr[-4000:]}")
        return json.loads(lines[-1][len("RESULT ") :])


def store_path(cache: str, cfg: Dict[str, Any], gop: Optional[int], seed: int) -> str:
    h, w = cfg["read_shape"]
    return os.path.join(cache, f"video-v{DATA_VERSION}-{w}x{h}-{cfg['read_frames']}f-gop{gop or 'default'}-s{seed}")


def random_indices(frames: int, n: int, seed: int) -> List[int]:
    import random

    rng = random.Random(seed + 1)
    return [rng.randrange(frames) for _ in range(n)]


def size_mb(path: str) -> float:
    return sum(e.stat().st_size for e in os.scandir(path) if e.is_file()) / 1e6


def check(value: float, target: float, higher_is_better: bool) -> str:
    ok = value >= target if higher_is_better else value <= target
    return f"{'>=' if higher_is_better else '<='} {target:g} {'ok' if ok else 'MISS'}"


class Table:
    """Rows of workload, ours, upstream, ratio, target; the upstream columns only with upstream."""

    def __init__(self, upstream: bool) -> None:
        self.columns = [0, 1, 2, 3, 4] if upstream else [0, 1, 4]
        self.rows: List[List[str]] = [["workload", "ours", "upstream", "ratio", "target"]]

    def add(self, workload: str, ours: str, upstream: str = "", ratio: str = "", target: str = "") -> None:
        self.rows.append([workload, ours, upstream, ratio, target])

    def speed(self, workload: str, ours: Dict[str, Any], upstream: Optional[Dict[str, Any]], target: str) -> None:
        """A frames/s row; a result without 'fps' is a format the library cannot write."""
        cell = lambda r: f"{r['fps']:.0f} f/s" if "fps" in r else "cannot write"  # noqa: E731
        ratio = f"x{ours['fps'] / upstream['fps']:.2f}" if upstream and "fps" in ours and "fps" in upstream else "-"
        self.add(workload, cell(ours), cell(upstream) if upstream else "", ratio, target)

    def latency(self, workload: str, ours_ms: float, upstream_ms: Optional[float], target: str) -> None:
        up, ratio = (f"{upstream_ms:.1f} ms", f"x{upstream_ms / ours_ms:.2f}") if upstream_ms else ("", "")
        self.add(workload, f"{ours_ms:.1f} ms", up, ratio, target)

    def print(self) -> None:
        widths = {c: max(len(row[c]) for row in self.rows) for c in self.columns}
        for n, row in enumerate(self.rows):
            print("  ".join(row[c].ljust(widths[c]) if c == 0 else row[c].rjust(widths[c]) for c in self.columns))
            if n == 0:
                print("  ".join("-" * widths[c] for c in self.columns))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upstream", metavar="PYTHON", help="interpreter with upstream imgstore 0.4.0 + OpenCV")
    parser.add_argument(
        "--ours",
        metavar="PYTHON",
        default=sys.executable,
        help="interpreter for our side (default: this one), e.g. to time another checkout",
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test that runs in seconds")
    parser.add_argument(
        "--dir",
        default=os.path.join(tempfile.gettempdir(), "imgstore-bench"),
        help="cache of generated stores (default: %(default)s)",
    )
    parser.add_argument("--rebuild", action="store_true", help="regenerate the cached stores")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    started, load_at_start = time.perf_counter(), os.getloadavg()[0]
    os.makedirs(args.dir, exist_ok=True)
    workdir = tempfile.mkdtemp(prefix="video-speed-", dir=args.dir)
    try:
        workers = {"ours": Worker(args.ours, workdir, "ours")}
        if args.upstream:
            workers["upstream"] = Worker(args.upstream, workdir, "upstream")
        run(args, QUICK if args.quick else FULL, workers, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(
        f"total run: {time.perf_counter() - started:.1f} s on {os.cpu_count()} CPUs; load average (1 min) "
        f"{load_at_start:.2f} at start, {os.getloadavg()[0]:.2f} at end (other processes' load skews timings)"
    )


def run(args: argparse.Namespace, cfg: Dict[str, Any], workers: Dict[str, Worker], workdir: str) -> None:
    seed = args.seed
    wh, ww = cfg["write_shape"]
    rh, rw = cfg["read_shape"]
    frames = cfg["read_frames"]
    write_formats = ("avc1/mp4", "mjpeg/avi")
    gops = {f"gop {cfg['long_gop']}": cfg["long_gop"], "default gop": None}
    paths = {label: store_path(args.dir, cfg, gop, seed) for label, gop in gops.items()}

    # the read stores: written once by this library, then cached
    build = []
    for label, path in paths.items():
        if args.rebuild:
            shutil.rmtree(path, ignore_errors=True)
        if not os.path.isdir(path):
            build.append(
                {"job": "build", "path": path, "shape": [rh, rw], "frames": frames, "seed": seed, "gop": gops[label]}
            )
    t = time.perf_counter()
    if build:
        workers["ours"].run(build)
    built = f"built in {time.perf_counter() - t:.1f} s" if build else "cached"
    notes = [f"read stores ({frames} frames, {rw}x{rh} grey avc1/mp4, one chunk): {built}, under {args.dir}"]

    # 1. write, 2. sequential read, 3. random read: one process per library and workload
    results: Dict[str, Dict[str, List[Dict[str, Any]]]] = {}
    for name, worker in workers.items():
        write = worker.run(
            [
                {
                    "job": "write",
                    "fmt": fmt,
                    "shape": [wh, ww],
                    "frames": cfg["write_frames"],
                    "chunksize": cfg["write_chunksize"],
                    "seed": seed,
                    "workdir": workdir,
                }
                for fmt in write_formats
            ]
        )
        seq = worker.run([{"job": "sequential", "path": path} for path in paths.values()])
        indices = random_indices(frames, cfg["random_ours"], seed)[: cfg[f"random_{name}"]]
        rand = worker.run(
            [
                {"job": "random", "path": path, "indices": indices, "digests": s["digests"]}
                for path, s in zip(paths.values(), seq)
            ]
        )
        results[name] = {"write": write, "seq": seq, "random": rand}
    ours, up = results["ours"], results.get("upstream")

    table = Table(up is not None)
    for i, fmt in enumerate(write_formats):
        target = "(reference)"
        if i == 0:
            target = check(ours["write"][i]["fps"], WRITE_TARGET_FPS, True) if "fps" in ours["write"][i] else "MISS"
        table.speed(
            f"1. write {fmt} {ww}x{wh} grey, {cfg['write_frames']} frames",
            ours["write"][i],
            up["write"][i] if up else None,
            target,
        )
    for i, label in enumerate(gops):
        table.speed(
            f"2. sequential read avc1/mp4 {rw}x{rh}, {label}",
            ours["seq"][i],
            up["seq"][i] if up else None,
            check(ours["seq"][i]["fps"], READ_TARGET_FPS, True),
        )
    for i, label in enumerate(gops):
        r, u = ours["random"][i], up["random"][i] if up else None
        n = f"n={r['n']}" + (f"/{u['n']}" if u else "")
        table.latency(
            f"3. random read {label}, median ({n})",
            r["median_ms"],
            u and u["median_ms"],
            check(r["median_ms"], RANDOM_TARGET_MS, False),
        )
        table.latency(f"3. random read {label}, p95 ({n})", r["p95_ms"], u and u["p95_ms"], "")
        table.add(
            f"3. random read {label}, vs sequential decode",
            f"exact {r['same']}/{r['n']}",
            f"differ {u['n'] - u['same']}/{u['n']}" if u else "",
            "",
            "exact",
        )

    for i, fmt in enumerate(write_formats):
        w = ours["write"][i]
        line = f"write {fmt}: ours {w['mb']:.2f} MB" if "mb" in w else f"write {fmt}: ours {w['error']}"
        if up:
            uw = up["write"][i]
            line += f"; upstream {uw['mb']:.2f} MB" if "mb" in uw else f"; upstream: {uw['error']}"
            line += f" ({'same' if uw['frames_sha1'] == w['frames_sha1'] else 'DIFFERENT'} input frames)"
        notes.append(line)
    for i, label in enumerate(gops):
        s, r = ours["seq"][i], ours["random"][i]
        open_ms, first_ms = f"{s['open_s'] * 1e3:.0f} ms ours", f"{r['first_ms']:.0f} ms ours"
        same = ""
        if up:
            open_ms += f", {up['seq'][i]['open_s'] * 1e3:.0f} ms upstream"
            first_ms += f", {up['random'][i]['first_ms']:.0f} ms upstream"
            equal = sum(a == b for a, b in zip(s["digests"], up["seq"][i]["digests"]))
            same = f"; upstream's sequential frames equal to ours: {equal}/{s['frames']}"
        notes.append(
            f"{label} store: {size_mb(paths[label]):.1f} MB; open {open_ms}; "
            f"first read in a fresh process {first_ms}{same}"
        )

    print()
    table.print()
    print()
    if up:
        print("ratio: how many times faster ours is (frames/s ours/upstream; latency upstream/ours)")
    if args.quick:
        print("--quick: shrunken sizes, a smoke test; the targets apply to the full run")
    for note in notes:
        print(note)


if __name__ == "__main__":
    main()
