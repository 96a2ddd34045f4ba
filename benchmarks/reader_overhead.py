"""What our sequential reading costs over the raw decoder, with the machine's load taken out.

    python benchmarks/reader_overhead.py [--stores x264,motif,ffmpeg,colour,own] [--rounds 7] [--dir DIR] [--quick]

``peer_readers.py`` runs every reader in a fresh process, one after another: the fair way to
compare readers with different start-up costs, but on a shared machine the load changes between
two processes seconds apart, and on small frames (640x480: half a millisecond each) a round's
ratio moves by +-30 %. Here ours (``get_next_image`` over the whole store) and the raw limit
(PyAV decoding each file with its own frame threads, the luma plane mapped to full range in
``cv2.LUT`` bands, or BGR by swscale for colour: ``peer_jobs.PyAVReader``) run alternately in
one warm process, so both see the same load; the ratio is taken within each round and every
frame of both is checked by the code drawn in it. The files are ``peer_readers.py``'s (made
there, or here on first use), and ``own``: a store our writer made (``avc1/mp4``, full-range
grey, 1280x1024, 3 chunks), whose limit is PyAV decoding it with slice threads and the luma plane copied. What
it leaves out, the peer table has: the open and the first frame in a fresh process.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from camera import SyntheticCamera  # noqa: E402
from peer_jobs import PyAVReader, StoreReader, frame_code, page_in  # noqa: E402
from peer_readers import DATA_VERSION, FPS, QUICK_SHAPES, STORES, T0, build, coded_frame, spread  # noqa: E402


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
    conversion = "bgr24" if colour else "luma" if key == "own" else "lut-bands"
    # our own files are sliced: slice threads are the fastest raw decoder of them (frame threads
    # are what FFmpeg picks by default, and what the others' files need)
    raw = PyAVReader(store, conversion=conversion, thread_type="SLICE" if key == "own" else "AUTO")
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

    limit = {"bgr24": "raw PyAV, BGR", "luma": "raw PyAV, slice threads, luma plane copied"}.get(
        conversion, "raw PyAV, range LUT in bands"
    )
    print(
        f"{key:8} {'x'.join(map(str, store['shape'])):>14} {total:>6}  {spread(speeds['ours'], ',.0f'):>22}  "
        f"{spread(speeds['raw'], ',.0f'):>22}  {spread(ratios, '.2f'):>18}  ({limit})"
    )


def own_store(cache: str, shape: tuple, chunks: int, count: int) -> dict:
    """A store our writer made (``avc1/mp4``: sliced x264, full-range grey) of the same coded
    camera frames, made once; as ``peer_readers.build`` returns a store."""
    import imgstore

    path = os.path.join(cache, f"own-v{DATA_VERSION}-avc1-{'x'.join(map(str, shape))}-{chunks}x{count}")
    if not os.path.isdir(path):
        partial = path + ".partial"
        shutil.rmtree(partial, ignore_errors=True)
        camera = SyntheticCamera(shape, seed=20)
        kwargs = dict(basedir=partial, imgshape=shape, imgdtype="uint8", chunksize=count)
        with imgstore.new_for_format("avc1/mp4", mode="w", **kwargs) as store:
            for i in range(chunks * count):
                store.add_image(coded_frame(camera, i), i, T0 + i / FPS)
        os.replace(partial, path)
    files = [os.path.join(path, f"{n:06d}.mp4") for n in range(chunks)]
    return {"path": path, "files": files, "counts": [count] * chunks, "shape": list(shape)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stores", default="x264,motif,ffmpeg,colour,own")
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
        if key == "own":
            store = own_store(args.dir, shapes["x264"], STORES["x264"]["chunks"], args.frames)
        else:
            store = build(args.dir, key, shapes[key], args.frames, rebuild=False)
        bench(key, store, args.rounds)
    load = os.getloadavg()[0]
    print(f"median (range) of {args.rounds} rounds, alternating in one process; load {load:.1f} at the end")


if __name__ == "__main__":
    main()
