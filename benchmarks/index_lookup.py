"""Time frame-index lookups on a store of N frames (default 1,000,000), index only.

Builds (once, deterministically) a DirectoryImgStore whose chunk indexes are real ``index.npz``
files but whose chunk folders hold no frames, then times opening it and the lookups behind
``get_image`` (by frame number, exact and nearest; by frame index) and ``get_nearest_image``
(nearest time). With ``--upstream PYTHON`` (an interpreter with upstream imgstore 0.4.0) the
same lookups are timed there too, on the same store.

    python benchmarks/index_lookup.py [--frames 1000000] [--chunksize 200] [--upstream PYTHON]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

T0 = 1_600_000_000.0
FPS = 25.0


def build_store(path: str, frames: int, chunksize: int) -> None:
    """A store whose frame numbers have a gap every 1000 frames (dropped frames) and jittered times."""
    from imgstore._chunkindex import save_chunk_index
    from imgstore._metadata import StoreMetadata, write_metadata

    if os.path.exists(os.path.join(path, "metadata.yaml")):
        return
    os.makedirs(path)
    rng = np.random.default_rng(0)
    numbers = np.arange(frames, dtype=np.int64) + np.arange(frames) // 1000
    times = T0 + numbers / FPS + rng.uniform(0, 0.002, frames)
    smd = StoreMetadata(class_name="DirectoryImgStore", imgshape=(480, 640), imgdtype="uint8",
                        chunksize=chunksize, format="npy", created_utc="2020-09-13T12:26:40",
                        timezone_local="UTC", uuid="0" * 32)
    write_metadata(os.path.join(path, "metadata.yaml"), smd, {})
    for chunk_n, start in enumerate(range(0, frames, chunksize)):
        folder = os.path.join(path, f"{chunk_n:06d}")
        os.mkdir(folder)
        sel = slice(start, start + chunksize)
        save_chunk_index(os.path.join(folder, "index"), numbers[sel], times[sel])


def queries(frames: int, n: int) -> dict:
    rng = np.random.default_rng(1)
    positions = rng.integers(0, frames, n)
    numbers = positions + positions // 1000
    return {
        "number": numbers.tolist(),
        "nearest_number": (numbers + 0.4).tolist(),
        "time": (T0 + numbers / FPS + 0.011).tolist(),
        "index": positions.tolist(),
    }


TIMER = r'''
import json, statistics, sys, time
import imgstore
from imgstore.index import ImgStoreIndex

path, q = sys.argv[1], json.loads(sys.argv[2])
t = time.perf_counter()
store = imgstore.new_for_filename(path)
open_s = time.perf_counter() - t
index = store._index

def median_ms(fn, values):
    times = []
    for v in values:
        t = time.perf_counter()
        fn(v)
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3

out = {
    "open_s": open_s,
    "by number (exact)": median_ms(lambda v: index.find_chunk("frame_number", v), q["number"]),
    "by number (nearest)": median_ms(lambda v: index.find_chunk_nearest("frame_number", v), q["nearest_number"]),
    "nearest time": median_ms(lambda v: index.find_chunk_nearest("frame_time", v), q["time"]),
    "by index": median_ms(lambda v: index.find_chunk("index", v), q["index"]),
}
print(json.dumps(out))
'''


def run(python: str, path: str, q: dict) -> dict:
    env = dict(os.environ, PYTHONPATH="")
    proc = subprocess.run([python, "-c", TIMER, path, json.dumps(q)], capture_output=True, text=True,
                          cwd=tempfile.gettempdir(), env=env, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=1_000_000)
    parser.add_argument("--chunksize", type=int, default=200)
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--upstream", metavar="PYTHON", help="interpreter with upstream imgstore 0.4.0")
    parser.add_argument("--upstream-queries", type=int, default=20)
    parser.add_argument("--dir", default=os.path.join(tempfile.gettempdir(), "imgstore-bench"))
    args = parser.parse_args()

    path = os.path.join(args.dir, f"index-{args.frames}-{args.chunksize}")
    t = time.perf_counter()
    build_store(path, args.frames, args.chunksize)
    print(f"store: {path} ({args.frames:,} frames, {-(-args.frames // args.chunksize):,} chunks; "
          f"ready in {time.perf_counter() - t:.1f} s)")

    results = {"ours": run(sys.executable, path, queries(args.frames, args.queries))}
    if args.upstream:
        results["upstream 0.4.0"] = run(args.upstream, path, queries(args.frames, args.upstream_queries))

    names = list(results)
    print(f"{'':22}" + "".join(f"{n:>18}" for n in names))
    print(f"{'open store (s)':22}" + "".join(f"{results[n]['open_s']:>18.2f}" for n in names))
    for key in ("by number (exact)", "by number (nearest)", "nearest time", "by index"):
        print(f"{key + ' (ms)':22}" + "".join(f"{results[n][key]:>18.4f}" for n in names))
    print("(lookups: median over random queries; index only, no pixels decoded)")


if __name__ == "__main__":
    main()
