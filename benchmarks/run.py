"""The benchmark suite: every workload of the performance issue, ours against upstream imgstore 0.4.0.

    python benchmarks/run.py [--upstream PYTHON] [--quick] [--dir DIR] [--rebuild] [--ours PYTHON]

Prints one table: workload, ours, upstream, ratio (how many times faster ours is), limit (the
same work without a store library, where one is meaningful: raw np.save, cv2.imencode alone and
cv2.imwrite to a file per frame, PyAV encode (the encoder and muxer set up as our writer sets them
up: same container, options and threads) and decode; our PNG writer deflates with ISA-L, so
OpenCV's PNG encoder is no limit for it, only what upstream's writer is bound by) and the
issue's target with ``ok``/``MISS``. Without ``--upstream`` the upstream and ratio columns stay
empty. Workloads:

- write: frames/s per format (npy, png, jpg, mjpeg/avi, avc1/mp4, ffv1/mkv) at 640x480 grey and
  1920x1080 colour, from store creation to ``close()``, default settings;
- open: seconds and peak RSS of opening 3,000-frame, 1-day and 1-week stores, each open in a
  fresh process; ours without its index cache (the open writes it) and with it;
- index-only lookups by frame number and nearest time (median), and ``get_frame_metadata()``
  (seconds and return types; then, in the same process, again in turn with its limit, numpy's
  ``tolist()`` of the columns, as a ratio), on the 1-week store;
- sequential ``get_next_image`` frames/s per format (640x480 grey), and H.264 at 1280x1024
  (GOP 250);
- random ``get_image(frame_index=i)`` latency (median, p95) for H.264 (GOP 250) and MJPEG, and
  exactness: each image compared with the same library's sequential decode;
- extra data: ``add_extra_data`` records/s and ``get_extra_data()`` seconds;
- memory while streaming a multi-chunk store: RSS growth from the first tenth to the end.

Data is generated deterministically (``camera.py``: camera-like frames; ``datasets.py``: long
recordings with real chunk indexes whose chunk videos are one shared short video) and cached
under ``DIR`` (default ``$TMPDIR/imgstore-bench``; ``--rebuild`` regenerates it). Read stores are
written by our library; both libraries read the same files. Each library runs in subprocesses
of ``worker.py`` (``python -I``): ours with this interpreter (or ``--ours``), upstream with
``--upstream``, an interpreter with ``imgstore==0.4.0`` and OpenCV; upstream is never imported
here. Timings are wall clock: the machine's load average is printed with the table, since other
processes' load skews them. ``--quick`` runs every workload at tiny sizes in well under a minute
(the CI smoke test); its figures mean nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any, Dict, List, Optional

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from camera import SyntheticCamera  # noqa: E402
from datasets import VERSION as LONG_VERSION  # noqa: E402
from datasets import build_long_store, lookup_queries  # noqa: E402

#: part of cached data's names: bump when camera.py or the read stores' settings change
DATA_VERSION = 2
#: where our library's workers keep their index caches (this run's folder: removed before each cold open)
OUR_CACHE_DIR_NAME = "our-index-caches"
WRITE_FORMATS = ("npy", "png", "jpg", "mjpeg/avi", "avc1/mp4", "ffv1/mkv")
VIDEO_FORMATS = ("mjpeg/avi", "avc1/mp4", "ffv1/mkv")

#: (value, True: higher is better) per workload key, from the issue
TARGETS = {
    "write png grey": (550, True),
    "write jpg grey": (1500, True),
    "write mjpeg/avi grey": (1000, True),
    "write avc1/mp4 grey": (250, True),
    "read png": (180, True),
    "read jpg": (290, True),
    "read npy": (5000, True),
    "read h264 big": (400, True),
    "open week cold": (1.0, False),
    "open week cached": (0.2, False),
    "open week rss": (400, False),
    "lookup": (0.05, False),
    "metadata": (1.5, False),
    "metadata vs limit": (0.9, True),
    "random h264": (150, False),
    "random mjpeg": (6, False),
}

FULL = dict(
    grey=(480, 640),
    colour=(1080, 1920, 3),
    distinct={"grey": 100, "colour": 20},
    write={
        "grey": {"npy": 2000, "png": 600, "jpg": 1500, "mjpeg/avi": 1500, "avc1/mp4": 600, "ffv1/mkv": 300},
        "colour": {"npy": 200, "png": 40, "jpg": 150, "mjpeg/avi": 150, "avc1/mp4": 60, "ffv1/mkv": 30},
    },
    read={"npy": 2000, "png": 600, "jpg": 1000, "mjpeg/avi": 1000, "avc1/mp4": 1000, "ffv1/mkv": 300},
    dir_chunksize=200,
    big=(1024, 1280),
    big_frames=1000,
    gop=250,
    random={"ours": 50, "upstream": 20},
    long={"3,000-frame": 3000, "1-day": 2_160_000, "1-week": 15_120_000},
    long_chunksize=10_000,
    queries={"ours": 2000, "upstream": 5},
    metadata_rounds=3,
    extra=5000,
    stream=(120, 160, 6000, 500),
)
QUICK = dict(
    grey=(48, 64),
    colour=(48, 64, 3),
    distinct={"grey": 5, "colour": 5},
    write={k: {f: 20 for f in WRITE_FORMATS} for k in ("grey", "colour")},
    read={f: 60 for f in WRITE_FORMATS},
    dir_chunksize=20,
    big=(96, 128),
    big_frames=120,
    gop=30,
    random={"ours": 10, "upstream": 5},
    long={"3,000-frame": 3000, "1-day": 20_000, "1-week": 60_000},
    long_chunksize=1000,
    queries={"ours": 50, "upstream": 3},
    metadata_rounds=1,
    extra=200,
    stream=(48, 64, 600, 100),
)


class Worker:
    """Runs ``worker.py`` jobs with one interpreter, in fresh subprocesses."""

    def __init__(self, name: str, python: str, workdir: str, checkout: Optional[str] = None) -> None:
        self.name, self.python, self.workdir = name, python, workdir
        self.env = {**os.environ, "IMGSTORE_BENCH_CHECKOUT": checkout} if checkout else None

    def run(self, jobs: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
        """All ``jobs`` in one fresh process; their results in order."""
        jobs_path = os.path.join(self.workdir, f"jobs-{self.name}.json")
        with open(jobs_path, "w") as f:
            json.dump(jobs, f)
        proc = subprocess.run(
            [self.python, "-I", os.path.join(HERE, "worker.py"), jobs_path],
            capture_output=True,
            text=True,
            cwd=self.workdir,
            env=self.env,
        )
        lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
        if proc.returncode or not lines:
            sys.exit(f"{self.name} worker ({self.python}) failed on {jobs[0]['job']}:\n{proc.stderr[-4000:]}")
        return json.loads(lines[-1][len("RESULT ") :])

    def one(self, job: str, **kwargs: Any) -> Dict[str, Any]:
        """One job in its own fresh process."""
        return self.run([{"job": job, **kwargs}])[0]


class Table:
    """workload | ours | upstream | ratio | limit | target; upstream and ratio only with upstream."""

    HEADER = ("workload", "ours", "upstream", "ratio", "limit", "target")

    def __init__(self, upstream: bool) -> None:
        self.upstream = upstream
        self.rows: List[List[str]] = []

    def add(
        self, workload: str, ours: str, upstream: str = "", ratio: str = "", limit: str = "", target: str = ""
    ) -> None:
        self.rows.append([workload, ours, upstream, ratio, limit, target])

    def section(self, title: str) -> None:
        self.rows.append([title])

    def print(self) -> None:
        columns = [0, 1, 2, 3, 4, 5] if self.upstream else [0, 1, 4, 5]
        rows = [list(self.HEADER)] + [r for r in self.rows if len(r) > 1]
        widths = {c: max(len(r[c]) for r in rows) for c in columns}
        line = lambda r: "  ".join(r[c].ljust(widths[c]) if c in (0, 5) else r[c].rjust(widths[c]) for c in columns)  # noqa: E731
        print(line(self.HEADER).rstrip())
        print("  ".join("-" * widths[c] for c in columns))
        for r in self.rows:
            print(f"[{r[0]}]" if len(r) == 1 else line(r).rstrip())


def judge(key: str, value: Optional[float]) -> str:
    """The target of a workload, with ok/MISS for our value."""
    if key not in TARGETS:
        return ""
    target, higher = TARGETS[key]
    text = f"{'>=' if higher else '<='} {target:g}"
    if value is None:
        return f"{text} MISS"
    return f"{text} {'ok' if (value >= target if higher else value <= target) else 'MISS'}"


def fps(result: Optional[Dict[str, Any]]) -> str:
    if result is None:
        return ""
    return f"{result['fps']:,.0f} f/s" if "fps" in result else "cannot"


def ratio(ours: Optional[float], upstream: Optional[float], higher_is_better: bool) -> str:
    if not ours or not upstream:
        return ""
    return f"x{(ours / upstream) if higher_is_better else (upstream / ours):,.1f}"


def seconds(value: Optional[float]) -> str:
    if value is None:
        return ""
    return f"{value:.3f} s" if value < 10 else f"{value:.1f} s"


def ms(value: Optional[float]) -> str:
    if value is None:
        return ""
    return f"{value:.4f} ms" if value < 0.1 else f"{value:.2f} ms" if value < 10 else f"{value:,.0f} ms"


def mb(value: Optional[float]) -> str:
    return "" if value is None else f"{value:,.0f} MB"


# ------------------------------------------------------------------------------------------------
# data
# ------------------------------------------------------------------------------------------------
def frames_file(cache: str, kind: str, shape: tuple, n: int, seed: int) -> str:
    """The distinct frames write jobs cycle through, as one .npy (generated once)."""
    path = os.path.join(cache, f"frames-v{DATA_VERSION}-{kind}-{'x'.join(map(str, shape))}-{n}-s{seed}.npy")
    if not os.path.exists(path):
        np.save(path + ".partial.npy", SyntheticCamera(shape, seed=seed).frames(n))
        os.replace(path + ".partial.npy", path)
    return path


def read_store(
    cache: str,
    fmt: str,
    shape: tuple,
    frames: int,
    chunksize: int,
    seed: int,
    settings: Optional[Dict[str, Any]] = None,
) -> Dict[str, Any]:
    tag = "-".join(f"{k}{v}" for k, v in sorted((settings or {}).items()))
    size = "x".join(map(str, shape))
    name = f"read-v{DATA_VERSION}-{fmt.replace('/', '-')}-{size}-{frames}f-c{chunksize}-{tag}-s{seed}"
    return {
        "job": "build",
        "path": os.path.join(cache, name),
        "fmt": fmt,
        "shape": list(shape),
        "count": frames,
        "chunksize": chunksize,
        "seed": seed,
        "settings": settings or {},
    }


def build_read_stores(ours: Worker, jobs: List[Dict[str, Any]], rebuild: bool) -> str:
    todo = []
    for job in jobs:
        if rebuild:
            shutil.rmtree(job["path"], ignore_errors=True)
        if not os.path.isdir(job["path"]):
            todo.append(job)
    if not todo:
        return "cached"
    t = time.perf_counter()
    ours.run(todo)
    return f"built in {time.perf_counter() - t:.0f} s"


def build_long_stores(ours: Worker, cache: str, cfg: Dict[str, Any], rebuild: bool) -> Dict[str, str]:
    """The 3,000-frame, 1-day and 1-week stores (index files real, chunk videos one shared file)."""
    video_store = os.path.join(cache, f"long-v{LONG_VERSION}-video")
    if rebuild:
        shutil.rmtree(video_store, ignore_errors=True)
    if not os.path.isdir(video_store):
        ours.run(
            [
                {
                    "job": "build",
                    "path": video_store,
                    "fmt": "avc1/mp4",
                    "shape": [480, 640],
                    "count": 25,
                    "chunksize": 1000,
                    "seed": 3,
                }
            ]
        )
    video = os.path.join(video_store, "000000.mp4")
    paths = {}
    for label, frames in cfg["long"].items():
        path = os.path.join(cache, f"long-v{LONG_VERSION}-{frames}f-c{cfg['long_chunksize']}")
        if rebuild:
            shutil.rmtree(path, ignore_errors=True)
        build_long_store(path, frames, video, cfg["long_chunksize"])
        paths[label] = path
    # index files younger than 2 s are not cached yet (see imgstore/index/cache.py): let them settle
    newest = max(os.stat(os.path.join(p, "metadata.yaml")).st_mtime for p in paths.values())
    time.sleep(max(0.0, 2.5 - (time.time() - newest)))
    return paths


# ------------------------------------------------------------------------------------------------
# the run
# ------------------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upstream", metavar="PYTHON", help="interpreter with upstream imgstore 0.4.0 + OpenCV")
    parser.add_argument(
        "--ours",
        metavar="PYTHON",
        default=sys.executable,
        help="interpreter for our side (default: this one), e.g. to time another checkout",
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test (CI); figures mean nothing")
    parser.add_argument(
        "--dir",
        default=os.path.join(tempfile.gettempdir(), "imgstore-bench"),
        help="where generated data is cached (default: %(default)s)",
    )
    parser.add_argument("--rebuild", action="store_true", help="regenerate the cached data")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    started, load_at_start = time.perf_counter(), os.getloadavg()
    os.makedirs(args.dir, exist_ok=True)
    # our library keeps index caches in the user's cache folder: here, one of the benchmark's own
    os.environ["IMGSTORE_CACHE_DIR"] = os.path.join(args.dir, OUR_CACHE_DIR_NAME)
    workdir = tempfile.mkdtemp(prefix="run-", dir=args.dir)
    try:
        workers = {"ours": Worker("ours", args.ours, workdir)}
        if args.upstream:
            workers["upstream"] = Worker("upstream", args.upstream, workdir)
        table, notes = Table(bool(args.upstream)), []
        run(args, QUICK if args.quick else FULL, workers, workdir, table, notes)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print()
    table.print()
    print()
    if args.upstream:
        print("ratio: how many times faster ours is (throughput ours/upstream; time upstream/ours)")
    if args.quick:
        print("--quick: shrunken sizes, a smoke test; the targets apply to the full run")
    for note in notes:
        print(note)
    load_at_end = os.getloadavg()
    print(
        f"total {time.perf_counter() - started:.0f} s on {os.cpu_count()} CPUs; load average (1/5/15 min) "
        f"{'/'.join(f'{v:.2f}' for v in load_at_start)} at start, {'/'.join(f'{v:.2f}' for v in load_at_end)} "
        "at end (other processes' load skews every timing)"
    )


def run(
    args: argparse.Namespace,
    cfg: Dict[str, Any],
    workers: Dict[str, Worker],
    workdir: str,
    table: Table,
    notes: List[str],
) -> None:
    ours = workers["ours"]
    for name, worker in workers.items():
        info = worker.one("info")
        notes.append(f"{name}: imgstore {info['version']} from {info['file']} (Python {info['python']})")
        if name == "upstream" and info["version"] != "0.4.0":
            sys.exit(f"--upstream imports imgstore {info['version']}, not 0.4.0")

    t = time.perf_counter()
    cache, seed = args.dir, args.seed
    frames = {kind: frames_file(cache, kind, cfg[kind], cfg["distinct"][kind], seed) for kind in ("grey", "colour")}
    grey, big = tuple(cfg["grey"]), tuple(cfg["big"])
    read_jobs = {
        fmt: read_store(cache, fmt, grey, n, cfg["dir_chunksize"] if fmt not in VIDEO_FORMATS else 10_000, seed)
        for fmt, n in cfg["read"].items()
    }
    read_jobs["h264 big"] = read_store(cache, "avc1/mp4", big, cfg["big_frames"], 10_000, seed, {"gop": cfg["gop"]})
    sh, sw, sn, sc = cfg["stream"]
    stream_jobs = {fmt: read_store(cache, fmt, (sh, sw), sn, sc, seed) for fmt in ("npy", "avc1/mp4")}
    built = build_read_stores(ours, [*read_jobs.values(), *stream_jobs.values()], args.rebuild)
    long_paths = build_long_stores(ours, cache, cfg, args.rebuild)
    notes.append(f"data under {cache}: read stores {built}; ready in {time.perf_counter() - t:.0f} s")

    write_rows(cfg, workers, frames, workdir, table)
    open_rows(cfg, workers, long_paths, table, notes)
    read_rows(cfg, workers, read_jobs, table, notes)
    extra_rows(cfg, workers, workdir, table)
    stream_rows(cfg, workers, stream_jobs, table)


def write_rows(cfg, workers, frames, workdir, table) -> None:
    """All writes of a library run in one process (one store after another), the limits in another."""
    ours, up = workers["ours"], workers.get("upstream")
    cases = [(kind, fmt) for kind in ("grey", "colour") for fmt in WRITE_FORMATS]
    jobs = [
        {
            "job": "write",
            "fmt": fmt,
            "frames_file": frames[kind],
            "count": cfg["write"][kind][fmt],
            "chunksize": 10_000 if fmt in VIDEO_FORMATS else cfg["dir_chunksize"],
            "workdir": workdir,
        }
        for kind, fmt in cases
    ]
    o_all = ours.run(jobs)
    u_all = up.run(jobs) if up else [None] * len(jobs)
    limits = ours.run(
        [write_limit_job(fmt, frames[kind], cfg["write"][kind][fmt], kind, workdir) for kind, fmt in cases]
    )
    for i, (kind, fmt) in enumerate(cases):
        shape = cfg[kind]
        label = f"{shape[1]}x{shape[0]} {kind}"
        if fmt == WRITE_FORMATS[0]:
            table.section(f"write, {label}, frames/s from creation to close()")
        o, u, count = o_all[i], u_all[i], cfg["write"][kind][fmt]
        value = o.get("fps")
        table.add(
            f"write {fmt} {label} ({count} frames)",
            fps(o),
            fps(u),
            ratio(value, u and u.get("fps"), True),
            limit_cell(fmt, limits[i]),
            judge(f"write {fmt} {kind}", value) if kind == "grey" else "",
        )


def write_limit_job(fmt: str, frames_file: str, count: int, kind: str, workdir: str) -> Dict[str, Any]:
    if fmt == "npy":
        return {"job": "limit_npy_write", "frames_file": frames_file, "count": count, "workdir": workdir}
    if fmt in ("png", "jpg"):
        return {
            "job": "limit_imencode",
            "frames_file": frames_file,
            "count": count,
            "extension": fmt,
            "workdir": workdir,
        }
    if fmt == "mjpeg/avi":  # the store's JPEGs come from cv2.imencode at the quality its default maps to
        from imgstore.codecs.mjpeg import jpeg_quality
        from imgstore.codecs.video import MJPEG_AVI

        return {
            "job": "limit_imencode",
            "frames_file": frames_file,
            "count": count,
            "extension": "jpg",
            "quality": jpeg_quality(MJPEG_AVI.defaults["quality"]),
            "to_files": False,
            "workdir": workdir,
        }
    # the encoder and muxer set up exactly as our writer sets them up (container, options, threads)
    return {"job": "limit_video_write", "frames_file": frames_file, "count": count, "fmt": fmt, "workdir": workdir}


def limit_cell(fmt: str, result: Dict[str, Any]) -> str:
    if fmt == "npy":
        return f"np.save {result['fps']:,.0f}"
    if fmt in ("png", "jpg", "mjpeg/avi"):
        files = f", to files {result['fps_files']:,.0f}" if "fps_files" in result else ""
        return f"imencode x{result['threads']} {result['fps']:,.0f}{files}"
    return f"PyAV {result['fps']:,.0f} ({result.get('container', '')}, our writer's settings)"


def open_rows(cfg, workers, long_paths, table, notes) -> None:
    ours, up = workers["ours"], workers.get("upstream")
    week_frames = cfg["long"]["1-week"]
    queries = lookup_queries(week_frames, cfg["queries"]["ours"], 11)
    up_queries = {k: v[: cfg["queries"]["upstream"]] for k, v in queries.items()}
    table.section("open a store (each in a fresh process), seconds and peak RSS of the process")
    for label, path in long_paths.items():
        week = label == "1-week"
        frames = cfg["long"][label]
        chunks = -(-frames // cfg["long_chunksize"])
        shutil.rmtree(os.environ["IMGSTORE_CACHE_DIR"], ignore_errors=True)  # a cold open: no index cache
        cold = ours.one("open", path=path)
        cached = ours.one(
            "open",
            path=path,
            queries=queries if week else None,
            metadata=week,
            metadata_limit=cfg["metadata_rounds"] if week else 0,
        )
        u = up.one("open", path=path, queries=up_queries if week else None, metadata=week) if up else None
        name = f"open {label} store ({frames:,} frames, {chunks:,} chunk{'s' if chunks > 1 else ''})"
        table.add(
            f"{name}, no index cache",
            seconds(cold["open_s"]),
            seconds(u and u["open_s"]),
            ratio(cold["open_s"], u and u["open_s"], False),
            "",
            judge("open week cold", cold["open_s"]) if week else "",
        )
        table.add(
            f"{name}, index cache",
            seconds(cached["open_s"]),
            seconds(u and u["open_s"]),
            ratio(cached["open_s"], u and u["open_s"], False),
            "",
            judge("open week cached", cached["open_s"]) if week else "",
        )
        peak = max(cold["peak_rss_mb"], cached["peak_rss_mb"])  # both measured right after opening
        table.add(
            f"{name}, peak RSS (no cache / cache)",
            f"{mb(cold['peak_rss_mb'])} / {mb(cached['peak_rss_mb'])}",
            mb(u and u["peak_rss_mb"]),
            ratio(peak, u and u["peak_rss_mb"], False),
            "",
            judge("open week rss", peak) if week else "",
        )
        for r, who in ((cold, "ours"), (u, "upstream")):
            if r and r["frames"] != frames:
                notes.append(f"!! {who} opened {label} with {r['frames']} frames, expected {frames}")
        if week:
            lookup_rows(cached, u, table, notes)
            notes.append(
                f"RSS of a process before opening (imports): ours {mb(cold['rss_before_mb'])}"
                + (f", upstream {mb(u['rss_before_mb'])}" if u else "")
            )


def lookup_rows(o, u, table, notes) -> None:
    table.section("1-week store: index only (no pixels)")
    for key, name in (("number", "lookup by frame number"), ("time", "lookup nearest frame time")):
        lo, lu = o["lookups"][key], u and u["lookups"][key]
        table.add(
            f"{name}, median (n={lo['n']}" + (f"/{lu['n']})" if lu else ")"),
            ms(lo["median_ms"]),
            ms(lu and lu["median_ms"]),
            ratio(lo["median_ms"], lu and lu["median_ms"], False),
            "",
            judge("lookup", lo["median_ms"]),
        )
        notes.append(f"{name}: ours' first lookup after opening {ms(lo['first_ms'])}")
        if lu:
            same = sum(a == b for a, b in zip(lo["answers"], lu["answers"]))
            notes.append(f"{name}: answers equal to upstream's: {same}/{lu['n']}")
    table.add(
        "get_frame_metadata()",
        seconds(o["metadata_s"]),
        seconds(u and u["metadata_s"]),
        ratio(o["metadata_s"], u and u["metadata_s"], False),
        "",
        judge("metadata", o["metadata_s"]),
    )
    metadata_limit_row(o, table, notes)
    types = f"get_frame_metadata() returns {o['metadata_types']} ({o['metadata_len']:,} frames)"
    if u:
        same = "same as" if u["metadata_types"] == o["metadata_types"] else "DIFFERENT from"
        types += f", {same} upstream's {u['metadata_types']}"
    notes.append(
        types
        + f"; process peak RSS after it: ours {mb(o['metadata_peak_rss_mb'])}"
        + (f", upstream {mb(u['metadata_peak_rss_mb'])}" if u else "")
    )


def metadata_limit_row(o, table, notes) -> None:
    """get_frame_metadata() against numpy's tolist() of the same columns, timed in turn in one process."""
    ours_s, limit_s = o["metadata_rounds_s"], o["metadata_limit_s"]
    speeds = [lim / t for t, lim in zip(ours_s, limit_s)]  # how fast ours is, as a fraction of the limit
    span = lambda v, f: f(statistics.median(v)) + (f" ({f(min(v))}-{f(max(v))})" if len(v) > 1 else "")  # noqa: E731
    table.add(
        f"get_frame_metadata() again, {len(ours_s)} rounds in turn with tolist()",
        span(ours_s, seconds),
        "",
        "",
        f"tolist() {span(limit_s, seconds)}: x{span(speeds, lambda x: f'{x:.2f}')}",
        judge("metadata vs limit", statistics.median(speeds)),
    )
    if not o["metadata_limit_same"]:
        notes.append("!! get_frame_metadata() differs from tolist() of the chunk index files' columns")


def read_rows(cfg, workers, read_jobs, table, notes) -> None:
    """Sequential reads of a library in one process, random reads in another, limits in a third."""
    ours, up = workers["ours"], workers.get("upstream")
    grey, big = cfg["grey"], cfg["big"]
    keys = list(read_jobs)
    paths = [read_jobs[k]["path"] for k in keys]
    seq = {who: w.run([{"job": "sequential", "path": p} for p in paths]) for who, w in workers.items()}
    kinds = ["video" if read_jobs[k]["fmt"] in VIDEO_FORMATS else "files" for k in keys]
    limits = ours.run([{"job": "limit_decode", "path": p, "kind": kind} for p, kind in zip(paths, kinds)])
    table.section(f"sequential get_next_image(), {grey[1]}x{grey[0]} grey (H.264 also {big[1]}x{big[0]}), frames/s")
    for i, key in enumerate(keys):
        job = read_jobs[key]
        o, u = seq["ours"][i], seq["upstream"][i] if up else None
        tool = "PyAV" if kinds[i] == "video" else "np.load" if key == "npy" else "imread"
        name = job["fmt"] + (f" {big[1]}x{big[0]} GOP {cfg['gop']}" if key == "h264 big" else "")
        table.add(
            f"read {name} ({job['count']} frames)",
            fps(o) if "fps" in o else "error",
            (fps(u) if "fps" in u else "cannot") if u else "",
            ratio(o.get("fps"), u and u.get("fps"), True),
            f"{tool} {limits[i]['fps']:,.0f}",
            judge(f"read {key}", o.get("fps")),
        )
        for r, who in ((o, "ours"), (u, "upstream")):
            if r and "error" in r:
                notes.append(f"read {name}: {who} failed: {r['error']}")
        if u and "fps" in u and "fps" in o:
            equal = sum(a == b for a, b in zip(o["digests"], u["digests"]))
            notes.append(f"read {name}: upstream's frames equal to ours: {equal}/{len(o['digests'])}")
    growth = {
        who: max((r["rss_growth_mb"] for r in results if "rss_growth_mb" in r), default=0.0)
        for who, results in seq.items()
    }
    notes.append(
        "RSS growth during any sequential read above (first tenth to end): "
        + ", ".join(f"{who} {value:.1f} MB" for who, value in growth.items())
    )

    table.section("random get_image(frame_index=i) at seeded random positions")
    cases = (
        ("h264 big", f"avc1/mp4 {big[1]}x{big[0]} GOP {cfg['gop']}", "random h264"),
        ("mjpeg/avi", f"mjpeg/avi {grey[1]}x{grey[0]}", "random mjpeg"),
    )
    results: Dict[str, List[Optional[Dict[str, Any]]]] = {}
    for who, worker in workers.items():
        jobs, slots = [], []
        for key, _, _ in cases:
            s = seq[who][keys.index(key)]
            if "fps" not in s:
                continue
            indices = np.random.default_rng(seed_for(key)).integers(0, read_jobs[key]["count"], cfg["random"][who])
            jobs.append(
                {"job": "random", "path": read_jobs[key]["path"], "indices": indices.tolist(), "digests": s["digests"]}
            )
            slots.append(key)
        done = dict(zip(slots, worker.run(jobs) if jobs else []))
        results[who] = [done.get(key) for key, _, _ in cases]
    for i, (_, label, target) in enumerate(cases):
        o, u = results["ours"][i], results["upstream"][i] if up else None
        n = f"n={o['n']}" + (f"/{u['n']}" if u else "")
        table.add(
            f"random {label}, median ({n})",
            ms(o["median_ms"]),
            ms(u and u["median_ms"]),
            ratio(o["median_ms"], u and u["median_ms"], False),
            "",
            judge(target, o["median_ms"]),
        )
        table.add(
            f"random {label}, p95", ms(o["p95_ms"]), ms(u and u["p95_ms"]), ratio(o["p95_ms"], u and u["p95_ms"], False)
        )
        table.add(
            f"random {label}, same as sequential decode",
            f"{o['same']}/{o['n']}",
            f"{u['same']}/{u['n']}" if u else "",
            "",
            "",
            "exact" + (" ok" if o["same"] == o["n"] else " MISS"),
        )
        notes.append(
            f"random {label}: first read in a fresh process {ms(o['first_ms'])} ours"
            + (f", {ms(u['first_ms'])} upstream" if u else "")
        )


def seed_for(key: str) -> int:
    return sum(key.encode())


def extra_rows(cfg, workers, workdir, table) -> None:
    ours, up = workers["ours"], workers.get("upstream")
    o = ours.one("extra", workdir=workdir, count=cfg["extra"])
    u = up.one("extra", workdir=workdir, count=cfg["extra"]) if up else None
    table.section(f"extra data ({cfg['extra']:,} records, one per frame, npy store)")
    table.add(
        "add_extra_data(), records/s",
        f"{o['write_rps']:,.0f} r/s",
        f"{u['write_rps']:,.0f} r/s" if u else "",
        ratio(o["write_rps"], u and u["write_rps"], True),
    )
    table.add(
        f"get_extra_data() ({o['rows']:,} rows" + (f"/{u['rows']:,})" if u else ")"),
        seconds(o["read_s"]),
        seconds(u and u["read_s"]),
        ratio(o["read_s"], u and u["read_s"], False),
    )


def stream_rows(cfg, workers, stream_jobs, table) -> None:
    table.section("memory while streaming a multi-chunk store to its end (RSS, first tenth -> end)")
    for fmt, job in stream_jobs.items():
        every = max(job["count"] // 10, 1)
        cells = {}
        for who, worker in workers.items():
            r = worker.one("stream_memory", path=job["path"], every=every)
            cells[who] = f"{r['rss_mb'][-1] - r['rss_mb'][0]:+.1f} MB" if len(r["rss_mb"]) > 1 else "?"
        chunks = -(-job["count"] // job["chunksize"])
        table.add(
            f"stream {fmt} {job['shape'][1]}x{job['shape'][0]}, {job['count']:,} frames in {chunks} chunks",
            cells["ours"],
            cells.get("upstream", ""),
            "",
            "",
            "flat",
        )


if __name__ == "__main__":
    main()
