"""H.264 writing: our ``avc1/mp4`` store against raw x264 through PyAV with the same settings.

    python benchmarks/write_speed.py [--frames 1000] [--rounds 3] [--dir DIR] [--quick] [--profile]

Every writer encodes the same 1280x1024 grey camera-like frames (``camera.py``; 100 distinct
frames, cycled) in a fresh process, and each round runs them all back to back, in alternating
order (forwards in even rounds, backwards in odd ones), so that a busy machine slows them alike.
The writers:

- ``ours``: ``imgstore.new_for_format('avc1/mp4', mode='w', ...)``, ``add_image`` per frame,
  ``close()``: our default settings, one chunk; timed from creating the store to ``close()``
  returning, which includes what finishing a chunk costs (index, packet table, the check that
  the file holds every frame, fsyncs);
- ``raw``: PyAV alone, exactly as our writer sets up x264 and the muxer (``limit_settings``
  below reads them from our writer's own functions: libx264, CRF 20, preset veryfast, GOP 50,
  no scene-cut keyframes, ``gray`` (4:0:0) full range, automatic threads, time base 1/25;
  MP4 fragmented per frame with ``flush_packets``), timed from ``av.open`` to ``close()``;
- ``raw, one copy per frame``: the same, but each frame handed to FFmpeg as ours does it (one
  numpy copy wrapped by ``VideoFrame.from_numpy_buffer``) rather than by ``from_ndarray``, which
  copies every frame twice: the encoder's own speed;
- ``raw, no flush_packets`` and ``raw, plain MP4``: ``raw`` without our crash-safe muxing
  (first without flushing every packet to the file, then neither fragmented nor flushed), to
  show what those cost.

Every file is checked to hold every frame, ``ours`` and ``raw`` to carry the same x264 settings
string (x264 writes its options into the stream), and all the H.264 streams to be byte for byte
the same (x264 is deterministic with frame threads: same settings and frames, same stream). The
table gives each writer's median frames/s with its range over the rounds, and each one's ratio
to ``raw`` measured in the same round (median and range). ``--profile`` also prints where ours
spends its time (cProfile, one more run). ``--quick`` writes a few small frames: a smoke test,
figures mean nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any, Dict, List

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
RESULT_MARK = "RESULT "
DISTINCT = 100
WRITERS = ("ours", "raw", "raw, one copy per frame", "raw, no flush_packets", "raw, plain MP4")


def limit_settings() -> Dict[str, Any]:
    """How our writer sets up x264 and the MP4 muxer for grey frames, from its own functions."""
    from fractions import Fraction

    from imgstore.codecs.video import AVC1_MP4, NOMINAL_FPS, resolve_settings
    from imgstore.codecs.video_av_base import FULL_RANGE, crash_safe_muxer_options
    from imgstore.codecs.video_av_write import _encoder_options

    settings = resolve_settings(AVC1_MP4, (2, 2), "uint8", None)
    return {
        "container": AVC1_MP4.container,
        "encoder": AVC1_MP4.encoder,
        "rate": NOMINAL_FPS,
        "pix_fmt": settings["pix_fmt"],
        "encoder_options": _encoder_options(AVC1_MP4, settings),
        "muxer_options": crash_safe_muxer_options(AVC1_MP4.container),
        "gop": int(settings["gop"]),
        "threads": int(settings.get("threads", 0)),
        "time_base": Fraction(1, NOMINAL_FPS),
        "color_range": FULL_RANGE,
    }


# -- the jobs, each run in a fresh process ----------------------------------------------------------
def job_ours(frames: np.ndarray, count: int, workdir: str) -> Dict[str, Any]:
    import imgstore
    from imgstore.codecs import video_av_packets, video_av_write  # noqa: F401 (imports are not timed)

    path = os.path.join(workdir, "store")
    t = time.perf_counter()
    store = imgstore.new_for_format("avc1/mp4", mode="w", basedir=path, imgshape=frames.shape[1:], imgdtype=np.uint8)
    for i in range(count):
        store.add_image(frames[i % len(frames)], i, 1_600_000_000.0 + i / 25)
    store.close()
    seconds = time.perf_counter() - t
    video = os.path.join(path, "000000.mp4")
    return {"fps": count / seconds, "x264": x264_settings(video), **stream_digest(video)}


def job_raw(frames: np.ndarray, count: int, workdir: str, muxing: str = "ours", copy: bool = False) -> Dict[str, Any]:
    """PyAV alone; ``muxing``: 'ours' (crash-safe), 'noflush' (fragmented, not flushed), 'plain';
    frames made by ``from_ndarray``, or with ``copy`` by one numpy copy and ``from_numpy_buffer``."""
    import av

    s = limit_settings()
    muxer_options = dict(s["muxer_options"])
    if muxing != "ours":
        muxer_options.pop("flush_packets")
    if muxing == "plain":
        muxer_options.pop("movflags")
    path = os.path.join(workdir, "raw.mp4")
    t = time.perf_counter()
    container = av.open(path, "w", format=s["container"], options=muxer_options)
    stream = container.add_stream(s["encoder"], rate=s["rate"], options=s["encoder_options"])
    stream.width, stream.height = frames.shape[2], frames.shape[1]
    stream.pix_fmt = s["pix_fmt"]
    ctx = stream.codec_context
    ctx.color_range, ctx.gop_size, ctx.thread_count, ctx.time_base = (
        s["color_range"],
        s["gop"],
        s["threads"],
        s["time_base"],
    )
    for i in range(count):
        img = frames[i % len(frames)]
        if copy:
            frame = av.VideoFrame.from_numpy_buffer(img.copy(), format="gray")
        else:
            frame = av.VideoFrame.from_ndarray(img, format="gray")
        frame.pts = i
        frame.color_range = s["color_range"]
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode(None):
        container.mux(packet)
    container.close()
    seconds = time.perf_counter() - t
    return {"fps": count / seconds, "x264": x264_settings(path), **stream_digest(path)}


def x264_settings(path: str) -> str:
    """The options string x264 writes into the stream it encodes ('' when there is none)."""
    with open(path, "rb") as f:
        found = re.search(rb"x264 - core [^\x00]*", f.read(1 << 20))
    return found.group(0).decode("ascii", "replace") if found else ""


def stream_digest(path: str) -> Dict[str, Any]:
    """How many frames the file holds, and a SHA-1 of their encoded bytes (the H.264 stream, without the container)."""
    import hashlib

    import av

    digest, frames = hashlib.sha1(), 0
    with av.open(path) as container:
        for packet in container.demux(video=0):
            if packet.size:
                digest.update(bytes(packet))
                frames += 1
    return {"frames": frames, "sha1": digest.hexdigest()}


def job_profile(frames: np.ndarray, count: int, workdir: str) -> Dict[str, Any]:
    """Ours under cProfile: the functions taking most of the time, cumulative."""
    import cProfile
    import io
    import pstats

    profile = cProfile.Profile()
    profile.runcall(job_ours, frames, count, workdir)
    text = io.StringIO()
    pstats.Stats(profile, stream=text).sort_stats("tottime").print_stats(18)
    return {"profile": text.getvalue()}


def run_job(args: argparse.Namespace) -> None:
    sys.path.insert(0, REPO)  # the imgstore of this checkout, whatever PYTHONPATH says
    frames = np.ascontiguousarray(np.load(args.frames_file))
    workdir = tempfile.mkdtemp(dir=args.dir)
    try:
        jobs = {
            "ours": lambda: job_ours(frames, args.count, workdir),
            "raw": lambda: job_raw(frames, args.count, workdir),
            "raw, one copy per frame": lambda: job_raw(frames, args.count, workdir, copy=True),
            "raw, no flush_packets": lambda: job_raw(frames, args.count, workdir, "noflush"),
            "raw, plain MP4": lambda: job_raw(frames, args.count, workdir, "plain"),
            "profile": lambda: job_profile(frames, args.count, workdir),
        }
        result = jobs[args.job]()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    sys.stdout.write(RESULT_MARK + json.dumps(result) + "\n")


# -- the run --------------------------------------------------------------------------------------
def frames_file(folder: str, shape: tuple) -> str:
    """The distinct frames every writer cycles through, made once."""
    sys.path.insert(0, HERE)
    from camera import SyntheticCamera

    path = os.path.join(folder, f"write-speed-frames-{shape[0]}x{shape[1]}-{DISTINCT}.npy")
    if not os.path.exists(path):
        np.save(path + ".partial.npy", SyntheticCamera(shape, seed=0).frames(DISTINCT))
        os.replace(path + ".partial.npy", path)
    return path


def spawn(job: str, frames: str, count: int, folder: str) -> Dict[str, Any]:
    cmd = [sys.executable, "-I", os.path.abspath(__file__), "--job", job, "--frames-file", frames]
    proc = subprocess.run([*cmd, "--count", str(count), "--dir", folder], capture_output=True, text=True, check=False)
    lines = [line for line in proc.stdout.splitlines() if line.startswith(RESULT_MARK)]
    if proc.returncode or not lines:
        raise RuntimeError(f"job {job} failed:\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1][len(RESULT_MARK) :])


def spread(values: List[float], digits: int = 0) -> str:
    fmt = f"{{:,.{digits}f}}"
    low, mid, high = min(values), statistics.median(values), max(values)
    return fmt.format(mid) + (f" ({fmt.format(low)}-{fmt.format(high)})" if len(values) > 1 else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=1000, help="frames per write (default 1000)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dir", default=os.path.join(tempfile.gettempdir(), "imgstore-bench"))
    parser.add_argument("--quick", action="store_true", help="tiny frames, one round: a smoke test")
    parser.add_argument("--profile", action="store_true", help="also profile ours once")
    parser.add_argument("--job", help=argparse.SUPPRESS)
    parser.add_argument("--frames-file", help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.job:
        run_job(args)
        return
    shape, count, rounds = ((64, 80), 30, 1) if args.quick else ((1024, 1280), args.frames, args.rounds)
    os.makedirs(args.dir, exist_ok=True)
    frames = frames_file(args.dir, shape)
    results: Dict[str, List[Dict[str, Any]]] = {w: [] for w in WRITERS}
    load = os.getloadavg()[0]
    for r in range(rounds):
        for writer in WRITERS if r % 2 == 0 else WRITERS[::-1]:
            results[writer].append(spawn(writer, frames, count, args.dir))
    print(f"H.264 write, {shape[1]}x{shape[0]} grey, {count} frames per write, {rounds} rounds in alternating order")
    print(f"load average {load:.2f} at the start, {os.getloadavg()[0]:.2f} at the end (2 cores: above 2 is contention)")
    print()
    print("| writer | frames/s, median (range) | ratio to raw in the same round, median (range) |")
    print("| --- | --- | --- |")
    raw = [res["fps"] for res in results["raw"]]
    for writer in WRITERS:
        fps = [res["fps"] for res in results[writer]]
        ratios = [f / r for f, r in zip(fps, raw)]
        print(f"| {writer} | {spread(fps)} | {spread(ratios, 2)} |")
    print()
    same = {res["x264"] for w in ("ours", "raw") for res in results[w]}
    print("x264 settings, ours and raw: " + ("the same" if len(same) == 1 else "DIFFERENT"))
    for text in sorted(same):
        print(f"  {text}")
    streams = {res["sha1"] for w in WRITERS for res in results[w]}
    print(
        "H.264 streams of every writer and round: "
        + ("identical (same settings, same frames)" if len(streams) == 1 else f"{len(streams)} different")
    )
    frames_written = {w: {res["frames"] for res in results[w]} for w in WRITERS}
    bad = {w: n for w, n in frames_written.items() if n != {count}}
    print("frames in every file: " + (f"{count}" if not bad else f"!! {bad}"))
    if args.profile:
        print()
        print(spawn("profile", frames, count, args.dir)["profile"])


if __name__ == "__main__":
    main()
