"""What our sequential reading costs over the raw decoder, with the machine's load taken out.

    python benchmarks/reader_overhead.py [--stores x264,motif,ffmpeg,colour] [--rounds 7] [--dir DIR] [--quick]

``peer_readers.py`` runs every reader in a fresh process, one after another: the fair way to
compare readers with different start-up costs, but on a shared machine the load changes between
two processes seconds apart, and on small frames (640x480: half a millisecond each) a round's
ratio moves by +-30 %. Here ours (``get_next_image`` over the whole store) and the raw limit
(PyAV decoding each file with its own frame threads, the luma plane mapped to full range in
``cv2.LUT`` bands, or BGR by swscale for colour: ``peer_jobs.PyAVReader``) run alternately in
one warm process, so both see the same load; the ratio is taken within each round and every
frame of both is checked by the code drawn in it. The files are ``peer_readers.py``'s (made
there, or here on first use). What it leaves out, the peer table has: the open and the first
frame in a fresh process.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from peer_jobs import PyAVReader, StoreReader, frame_code, page_in  # noqa: E402
from peer_readers import QUICK_SHAPES, STORES, build, spread  # noqa: E402


def timed_run(reader, layout: str) -> tuple:
    """Frames/s of every frame of ``reader`` in order (its open included) and how many are exact."""
    started = time.perf_counter()
    reader.open()
    got = exact = 0
    for img in reader.frames():
        exact += frame_code(img, layout) == got
        got += 1
    return got / (time.perf_counter() - started), got, exact


def bench(key: str, store: dict, rounds: int) -> None:
    colour = len(store["shape"]) == 3
    layout = "bgr" if colour else "gray"
    ours = StoreReader(store)
    raw = PyAVReader(store, conversion="bgr24" if colour else "lut-bands")
    page_in(store["files"])
    timed_run(ours, layout), timed_run(raw, layout)  # warm: imports, page cache, first allocations
    ratios, speeds = [], {"ours": [], "raw": []}
    total = sum(store["counts"])
    for _ in range(rounds):
        ours_fps, n_ours, exact_ours = timed_run(ours, layout)
        raw_fps, n_raw, exact_raw = timed_run(raw, layout)
        if not (n_ours == n_raw == exact_ours == exact_raw == total):
            raise SystemExit(f"{key}: not frame-exact (ours {exact_ours}/{n_ours}, raw {exact_raw}/{n_raw} of {total})")
        speeds["ours"].append(ours_fps)
        speeds["raw"].append(raw_fps)
        ratios.append(ours_fps / raw_fps)
        ours.store.close()

    limit = "raw PyAV, BGR" if colour else "raw PyAV, range LUT in bands"
    print(
        f"{key:8} {'x'.join(map(str, store['shape'])):>14} {total:>6}  {spread(speeds['ours'], ',.0f'):>22}  "
        f"{spread(speeds['raw'], ',.0f'):>22}  {spread(ratios, '.2f'):>18}  ({limit})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stores", default="x264,motif,ffmpeg,colour")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--frames", type=int, default=1000, help="frames per file of the stores (as peer_readers)")
    parser.add_argument("--quick", action="store_true", help="small files, one round: a smoke test")
    parser.add_argument("--dir", default=os.path.join(tempfile.gettempdir(), "imgstore-bench"))
    args = parser.parse_args()
    shapes = {key: spec["shape"] for key, spec in STORES.items()}
    if args.quick:
        shapes, args.frames, args.rounds = QUICK_SHAPES, 60, 1
    os.makedirs(args.dir, exist_ok=True)
    print(f"{'store':8} {'shape':>14} {'frames':>6}  {'ours f/s':>22}  {'raw limit f/s':>22}  {'ours / limit':>18}")
    for key in args.stores.split(","):
        bench(key, build(args.dir, key, shapes[key], args.frames, rebuild=False), args.rounds)
    load = os.getloadavg()[0]
    print(f"median (range) of {args.rounds} rounds, alternating in one process; load {load:.1f} at the end")


if __name__ == "__main__":
    main()
