"""Our reading of video written by others, against upstream, the peer readers and the raw decoders.

    python benchmarks/peer_readers.py [--upstream PYTHON] [--peers PYTHON] [--quick] [--dir DIR]
                                      [--stores x264,motif,...] [--frames 1000] [--random 60]
                                      [--rounds N] [--baseline CHECKOUT]

Third-party files, made once (cached in ``DIR``, default ``$TMPDIR/imgstore-bench``) by FFmpeg
itself, never by our writer, from the synthetic camera's frames (``camera.py``) with a frame
code in the top-left corner of every frame (``tests/framecodes.py``), so that every reader is
checked frame-exact:

- ``x264``: libx264 with its defaults (preset medium, CRF 23, B-frames, GOP 250, frame threads:
  not sliced), encoded through PyAV from grey frames to yuv420p, 1280x1024, 3 files of 1,000
  frames, put into an ``avc1/mp4`` store with ``insert_chunk``: a store whose chunks someone
  else encoded;
- ``motif``: as Motif records (its recording in upstream's wheel was made so): the ``ffmpeg``
  program fed BGR frames with no options, so libx264's defaults and yuv444p (High 4:4:4
  Predictive, B-frames, GOP 250, time base 1/12800), 1280x1024 grey content, 1,000 frames,
  in Motif's layout (``format: libx264``, no ``extension``, ``VideoImgStoreFFMPEG`` chunk index);
- ``ffmpeg``: the ``ffmpeg`` program with no options fed grey frames (yuv420p High, B-frames),
  640x480, 1,000 frames: a typical camera size, where per-frame overheads weigh most;
- ``colour``: libx264 defaults through PyAV, yuv420p, 1920x1080 colour, 1,000 frames, read
  as BGR.

Readers, each in a fresh process (``peer_jobs.py``, started with ``python -I``): ours (the
imgstore of this checkout), upstream 0.4.0 (``--upstream``), raw PyAV (decode only; the luma
plane copied; the luma plane through a limited-to-full-range lookup table, the faithful grey of
a limited-range file, mapped by ``cv2.LUT`` whole or in bands as ours maps it; BGR for
colour), raw ``cv2.VideoCapture``, and torchcodec and decord when ``--peers`` names an
interpreter that has them (a separate venv: they need torch). Sequential is the first
``--frames`` frames in order, timed from the open; random is ``--random`` seeded positions
over the whole store, median and p95 of ``get_image(frame_index=i)`` or the peer's own way to
one frame; raw PyAV's random row (range table in bands, or BGR) is the limit for exact random
access: seek to the keyframe, decode on with the non-reference frames before the target
skipped, stop at the target's timestamp (``peer_jobs.PyAVReader.file_get``). The tables print
ours as a ratio to each reader (how many times faster ours is) and how many frames each
returned exactly; ``--rounds`` runs every reader several times in turn and prints medians and
ranges, with ratios taken within each round.
``--baseline`` adds the imgstore of another checkout, to measure a change in the same run.
``--quick`` makes small files and runs every reader once: a smoke test whose figures mean nothing.
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
from typing import Any, Dict, List

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
CHECKOUT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.append(os.path.join(CHECKOUT, "tests"))

from camera import SyntheticCamera  # noqa: E402
from peer_jobs import CODE_SIZE, RESULT_MARK  # noqa: E402

from framecodes import make_grid_frame  # noqa: E402

#: part of the cached files' names: bump when the files' making changes
DATA_VERSION = 2
T0 = 1_600_000_000.0
FPS = 25

#: store key -> how its files are made; shapes and counts are the full run's (``--quick`` shrinks them)
STORES: Dict[str, Dict[str, Any]] = {
    "x264": {
        "label": "libx264 defaults via PyAV (yuv420p, B-frames, GOP 250, frame threads), grey",
        "shape": (1024, 1280),
        "chunks": 3,
        "maker": "pyav",
    },
    "motif": {
        "label": "Motif-like: ffmpeg fed BGR, no options (yuv444p High 4:4:4, B-frames, GOP 250), grey",
        "shape": (1024, 1280),
        "chunks": 1,
        "maker": "ffmpeg-bgr24",
        "layout": "motif",
    },
    "ffmpeg": {
        "label": "ffmpeg-default MP4: ffmpeg fed grey, no options (yuv420p High, B-frames), grey",
        "shape": (480, 640),
        "chunks": 1,
        "maker": "ffmpeg-gray",
    },
    "colour": {
        "label": "colour, libx264 defaults via PyAV (yuv420p, B-frames, GOP 250, frame threads), read as BGR",
        "shape": (1080, 1920, 3),
        "chunks": 1,
        "maker": "pyav",
    },
}
QUICK_SHAPES = {"x264": (256, 320), "motif": (256, 320), "ffmpeg": (240, 320), "colour": (256, 320, 3)}


# ------------------------------------------------------------------------------------------------
# the files
# ------------------------------------------------------------------------------------------------
def coded_frame(camera: SyntheticCamera, i: int) -> np.ndarray:
    """Frame ``i`` of the camera with its frame code (``make_grid_frame``) in the top-left corner."""
    img = camera.frame(i)
    img[:CODE_SIZE, :CODE_SIZE] = make_grid_frame(i, (CODE_SIZE, CODE_SIZE, *img.shape[2:]), noise=False)
    return img


def encode_pyav(path: str, camera: SyntheticCamera, start: int, count: int) -> None:
    """libx264 with no options but the pixel format (yuv420p), through PyAV.

    PyAV's codec contexts default to slice threads, which libx264 takes as ``sliced_threads=1``;
    frame threads are what ``ffmpeg`` and other programs get by default, so they are asked for.
    """
    import av

    shape = camera.shape
    with av.open(path, "w") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.height, stream.width = shape[0], shape[1]
        stream.pix_fmt = "yuv420p"
        stream.codec_context.thread_type = "FRAME"
        for i in range(count):
            frame = av.VideoFrame.from_ndarray(
                coded_frame(camera, start + i), format="bgr24" if len(shape) == 3 else "gray"
            )
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


def encode_ffmpeg(path: str, camera: SyntheticCamera, start: int, count: int, pix_fmt: str) -> None:
    """The ``ffmpeg`` program fed raw ``pix_fmt`` frames, with no encoding options at all."""
    h, w = camera.shape[:2]
    command = ["ffmpeg", "-v", "error", "-f", "rawvideo", "-pix_fmt", pix_fmt, "-s", f"{w}x{h}", "-r", str(FPS)]
    proc = subprocess.Popen([*command, "-i", "-", "-y", path], stdin=subprocess.PIPE)
    for i in range(count):
        img = coded_frame(camera, start + i)
        if pix_fmt == "bgr24" and img.ndim == 2:
            img = np.repeat(img[:, :, None], 3, axis=2)
        proc.stdin.write(np.ascontiguousarray(img).tobytes())
    proc.stdin.close()
    if proc.wait():
        sys.exit(f"ffmpeg failed making {path}")


def motif_store(path: str, shape: tuple, files: List[str], count: int) -> None:
    """Motif's layout: ``metadata.yaml`` without ``extension``, chunk indexes with Motif's keys."""
    import yaml

    smd = {
        "chunksize": count,
        "class": "VideoImgStore",
        "encoding": "",
        "format": "libx264",
        "imgdtype": "uint8",
        "imgshape": list(shape),
        "uuid": "5eed" * 8,
        "version": 2,
    }
    with open(os.path.join(path, "metadata.yaml"), "w") as f:
        yaml.safe_dump({"__store": smd}, f)
    for n, file in enumerate(files):
        numbers = np.arange(n * count, (n + 1) * count, dtype=np.int64)
        index = {k: np.asarray(v) for k, v in smd.items()}
        index["class"] = np.asarray("VideoImgStoreFFMPEG")
        np.savez(os.path.join(path, f"{n:06d}.npz"), frame_number=numbers, frame_time=T0 + numbers / FPS, **index)
        os.replace(file, os.path.join(path, f"{n:06d}.mp4"))


def our_store(path: str, shape: tuple, files: List[str], count: int) -> None:
    """An ``avc1/mp4`` store of this library whose chunks are ``files``, added by ``insert_chunk``."""
    import imgstore

    store = imgstore.new_for_format("avc1/mp4", path=path, imgshape=shape, imgdtype=np.uint8, chunksize=count)
    for n, file in enumerate(files):
        numbers = np.arange(n * count, (n + 1) * count, dtype=np.int64)
        store.insert_chunk(file, numbers, T0 + numbers / FPS)
    store.close()


def build(cache: str, key: str, shape: tuple, count: int, rebuild: bool) -> Dict[str, Any]:
    """The store of ``key`` (made once; under a temporary name until whole), as a job's ``store``."""
    spec = STORES[key]
    size = "x".join(map(str, shape))
    path = os.path.join(cache, f"peers-v{DATA_VERSION}-{key}-{size}-{spec['chunks']}x{count}")
    if rebuild:
        shutil.rmtree(path, ignore_errors=True)
    if not os.path.isdir(path):
        t = time.perf_counter()
        partial, files = path + ".partial", []
        shutil.rmtree(partial, ignore_errors=True)
        os.makedirs(partial + ".files")
        camera = SyntheticCamera(shape, seed=20)
        for n in range(spec["chunks"]):
            files.append(os.path.join(partial + ".files", f"{n:06d}.mp4"))
            if spec["maker"] == "pyav":
                encode_pyav(files[-1], camera, n * count, count)
            else:
                encode_ffmpeg(files[-1], camera, n * count, count, spec["maker"].split("-")[1])
        if spec.get("layout") == "motif":
            os.makedirs(partial)
            motif_store(partial, shape, files, count)
        else:
            our_store(partial, shape, files, count)
        shutil.rmtree(partial + ".files")
        os.replace(partial, path)
        print(f"made {path} in {time.perf_counter() - t:.0f} s", file=sys.stderr)
    files = [os.path.join(path, f"{n:06d}.mp4") for n in range(spec["chunks"])]
    return {"path": path, "files": files, "counts": [count] * spec["chunks"], "shape": list(shape)}


def describe(file: str) -> str:
    """Codec, profile, pixel format, B-frames and GOP of a file, as FFmpeg sees it."""
    import av

    with av.open(file) as container:
        stream = container.streams.video[0]
        ctx = stream.codec_context
        packets = [p for p in container.demux(stream) if p.pts is not None and p.size]
        keys = sum(p.is_keyframe for p in packets)
        gop = f"GOP {len(packets) // max(keys, 1)}"
        b_frames = "B-frames" if ctx.has_b_frames else "no B-frames"
        sliced = "sliced" if packets and b"sliced_threads=1" in bytes(packets[0]) else "not sliced"
        return f"{ctx.name} {ctx.profile} {ctx.pix_fmt}, {ctx.width}x{ctx.height}, {b_frames}, {gop}, {sliced}"


# ------------------------------------------------------------------------------------------------
# the readers
# ------------------------------------------------------------------------------------------------
def run_job(python: str, job: Dict[str, Any], workdir: str) -> Dict[str, Any]:
    """One job in a fresh process of ``python``; its result, or ``{"error": ...}``."""
    path = os.path.join(workdir, "job.json")
    with open(path, "w") as f:
        json.dump(job, f)
    proc = subprocess.run(
        [python, "-I", os.path.join(HERE, "peer_jobs.py"), path], capture_output=True, text=True, cwd=workdir
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith(RESULT_MARK)]
    if proc.returncode or not lines:
        return {"error": (proc.stderr.strip().splitlines() or ["no output"])[-1][:160]}
    return json.loads(lines[-1][len(RESULT_MARK) :])


def readers(args: argparse.Namespace, colour: bool) -> List[Dict[str, Any]]:
    """(label, interpreter, reader, options, modes) of every reader this run has."""
    me = sys.executable
    out = [{"label": "ours", "python": me, "reader": "ours", "options": {"checkout": args.checkout}}]
    if args.baseline:
        out.append({"label": "ours, baseline", "python": me, "reader": "ours", "options": {"checkout": args.baseline}})
    if args.upstream:
        out.append({"label": "upstream 0.4.0", "python": args.upstream, "reader": "upstream"})
    out.append({"label": "cv2.VideoCapture", "python": me, "reader": "cv2"})
    if args.peers:
        out.append({"label": "torchcodec (exact)", "python": args.peers, "reader": "torchcodec"})
        out.append(
            {
                "label": "torchcodec, threads 0",
                "python": args.peers,
                "reader": "torchcodec",
                "random": False,
                "options": {"threads": 0},
            }
        )
        out.append({"label": "decord", "python": args.peers, "reader": "decord"})
    limits = [
        ("decode only", "none"),
        ("luma plane copied", "luma"),
        ("luma through range LUT", "lut"),
        ("range LUT in bands", "lut-bands"),
    ]
    if colour:
        limits = [("decode only", "none"), ("BGR (swscale)", "bgr24")]
    for label, conversion in limits:
        out.append(
            {
                "label": f"raw PyAV: {label}",
                "python": me,
                "reader": "pyav",
                "options": {"conversion": conversion},
                # random access: the least work for an exact frame, with the conversion ours does
                "random": conversion in ("lut-bands", "bgr24"),
                "limit": True,
            }
        )
    return out


def spread(values: List[float], fmt: str) -> str:
    """The median of ``values``, with their range when there are several."""
    if not values:
        return ""
    text = format(float(np.median(values)), fmt)
    return text if len(values) == 1 else f"{text} ({format(min(values), fmt)}-{format(max(values), fmt)})"


def print_table(title: str, rows: List[List[str]]) -> None:
    header = ["reader", "sequential f/s", "ours x", "random median ms", "ours x", "exact seq / random"]
    rows = [header, *rows]
    widths = [max(len(r[c]) for r in rows) for c in range(len(header))]
    print(f"\n[{title}]")
    for n, r in enumerate(rows):
        print("  ".join(v.ljust(widths[c]) if c == 0 else v.rjust(widths[c]) for c, v in enumerate(r)).rstrip())
        if n == 0:
            print("  ".join("-" * w for w in widths))
    sys.stdout.flush()


def bench_store(args, key, store, workdir, notes) -> None:
    """Every reader on one store, ``--rounds`` times in turn; ratios to ours are taken within a round."""
    colour = len(store["shape"]) == 3
    total = sum(store["counts"])
    indices = np.random.default_rng(sum(key.encode())).integers(0, total, args.random).tolist()
    chosen = readers(args, colour)
    runs: List[List[tuple]] = [[] for _ in chosen]  # per reader: (sequential, random) of each round
    for _ in range(args.rounds):
        for reader, results in zip(chosen, runs):
            job = {"reader": reader["reader"], "store": store, "options": reader.get("options", {})}
            seq = run_job(reader["python"], {**job, "mode": "sequential", "count": args.frames}, workdir)
            rnd = None
            if reader.get("random", True):
                rnd = run_job(reader["python"], {**job, "mode": "random", "indices": indices}, workdir)
            results.append((seq, rnd))
            for r in (seq, rnd):
                if r and "where" in r and r["where"] not in notes:
                    notes.append(r["where"])
    rows = []
    for reader, results in zip(chosen, runs):
        fps = [s["fps"] for s, _ in results if "fps" in s]
        medians = [r["median_ms"] for _, r in results if r and "median_ms" in r]
        seq_ratios, rnd_ratios = [], []
        if reader is not chosen[0]:
            for (s, r), (os_, or_) in zip(results, runs[0]):
                if "fps" in s and "fps" in os_:
                    seq_ratios.append(os_["fps"] / s["fps"])
                if r and "median_ms" in r and or_ and "median_ms" in or_:
                    rnd_ratios.append(r["median_ms"] / or_["median_ms"])
        errors = [x["error"][:50] for pair in results for x in pair if x and "error" in x]
        seq_exact = f"{sum(s.get('exact', 0) for s, _ in results)}/{args.frames * args.rounds}"
        rnd_exact = f" / {sum(r.get('exact', 0) for _, r in results if r)}/{args.random * args.rounds}"
        rows.append(
            [
                reader["label"],
                spread(fps, ",.0f") or errors[0],
                spread(seq_ratios, ".2f"),
                spread(medians, ",.1f") or (errors[-1] if reader.get("random", True) else ""),
                spread(rnd_ratios, ".2f"),
                seq_exact + (rnd_exact if reader.get("random", True) else ""),
            ]
        )
    spec = STORES[key]
    size = "x".join(map(str, store["shape"][1::-1]))
    files = f"{len(store['files'])} x {store['counts'][0]} frames"
    title = f"{key}: {spec['label']}, {size}, {files}; {describe(store['files'][0])}"
    print_table(title, rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upstream", metavar="PYTHON", help="interpreter with upstream imgstore 0.4.0 + OpenCV")
    parser.add_argument("--peers", metavar="PYTHON", help="interpreter with torchcodec and decord (a venv of its own)")
    parser.add_argument(
        "--checkout", default=CHECKOUT, help="where ours' imgstore is imported from (default: this checkout)"
    )
    parser.add_argument(
        "--baseline", metavar="CHECKOUT", help="also time the imgstore of this checkout, as 'ours, baseline'"
    )
    parser.add_argument("--quick", action="store_true", help="small files: a smoke test; figures mean nothing")
    parser.add_argument("--dir", default=os.path.join(tempfile.gettempdir(), "imgstore-bench"))
    parser.add_argument("--rebuild", action="store_true", help="make the files again")
    parser.add_argument("--stores", default=",".join(STORES), help="which stores (default: %(default)s)")
    parser.add_argument("--frames", type=int, default=1000, help="frames read in order (default: %(default)s)")
    parser.add_argument("--random", type=int, default=60, help="random positions read (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=1, help="every reader this many times in turn (default: 1)")
    args = parser.parse_args()
    count = 1000
    if args.quick:
        count, args.frames, args.random, args.rounds = 60, 60, 5, 1
    load_at_start, started = os.getloadavg(), time.perf_counter()
    os.makedirs(args.dir, exist_ok=True)
    sys.path.insert(0, args.checkout)  # the files are put into stores by this checkout's imgstore
    stores = {}
    for key in args.stores.split(","):
        shape = QUICK_SHAPES[key] if args.quick else STORES[key]["shape"]
        stores[key] = build(args.dir, key, shape, count, args.rebuild)
    workdir = tempfile.mkdtemp(prefix="peers-", dir=args.dir)
    notes: List[str] = []
    try:
        for key, store in stores.items():
            bench_store(args, key, store, workdir, notes)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print()
    print(
        "ours x: how many times faster ours is (sequential: ours f/s / its f/s; random: its median / ours), "
        "taken within each round"
    )
    if args.rounds > 1:
        print(f"{args.rounds} rounds, every reader in turn in each: median (range) over the rounds")
    if args.quick:
        print("--quick: small files, a smoke test; its figures mean nothing")
    for note in notes:
        print(f"- {note}")
    load = lambda v: "/".join(f"{x:.2f}" for x in v)  # noqa: E731
    print(
        f"total {time.perf_counter() - started:.0f} s on {os.cpu_count()} CPUs; load average (1/5/15 min) "
        f"{load(load_at_start)} at start, {load(os.getloadavg())} at end"
    )


if __name__ == "__main__":
    main()
