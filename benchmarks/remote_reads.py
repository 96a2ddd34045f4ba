"""What reading a store from a URL costs: requests and bytes, over real servers on loopback.

Builds (deterministically, in --dir) an MJPEG store with 1000-frame chunks and a 300-chunk
directory store, and serves them, per back-end, with a Range-capable HTTP server and with moto's
S3 server, each counting every request and byte; reports for each: opening the store, one frame
from the middle of a chunk, the next ten frames, opening a store of many chunks (sealed: three
requests, whatever its length), a week-long sealed store (1,512 chunk indexes, as
``datasets.py`` builds it, sealed with ``seal_store``; on S3 with 1-byte stand-ins for its
video files, which opening does not read) and one random frame of our own fragmented-MP4 chunk
(1280x1024, GOP 50) against the bytes of its GOP, random frames of a store of such chunks
through Dask (frames/s and bytes per frame; picked from the whole array, and with
``to_dask(frames=...)``), and a plain MP4 (1 GB, as cameras write them) opened and read at one
random frame, against the bytes of that frame's GOP plus the file's header (``moov``).

The S3 rows need ``moto[server]`` and ``s3fs`` (both in the ``test`` extra); without them they
are skipped. moto reads a whole object for every range request it answers: its seconds for
frames of large files measure moto more than this library (its requests and bytes do not).

    python benchmarks/remote_reads.py [--dir DIR] [--quick] [--backends http,s3] [--repeat 2] [--week-only]
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import shutil
import struct
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from datasets import build_long_store

import imgstore
from imgstore.codecs.video_av_packets import PACKETS_KEY, decode_packet_table
from imgstore.index.sealedfile import SEALED_INDEX_FILENAME, VERSION
from imgstore.store.sealing import seal_store

from framecodes import decode_grid, make_grid_frame
from remote_servers import CountingS3Server, RangeRequestHandler, Server, Traffic, gop_bytes


def build(root: Path, frames: int, chunks: int) -> None:
    if (root / "done").exists():
        return
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    shape = (480, 640)
    with imgstore.new_for_format(
        "mjpeg/avi", mode="w", basedir=str(root / "mjpeg"), imgshape=shape, imgdtype="uint8", chunksize=frames // 2
    ) as store:
        for i in range(frames):
            store.add_image(make_grid_frame(i % 4096, shape), i, 1e9 + i / 25)
    with imgstore.new_for_format(
        "npy", mode="w", basedir=str(root / "many"), imgshape=(8, 8), imgdtype="uint8", chunksize=10
    ) as store:
        for i in range(chunks * 10):
            store.add_image(np.zeros((8, 8), np.uint8), i, 1e9 + i / 25)
    (root / "done").touch()


def build_fmp4(root: Path, frames: int, chunksize: Optional[int] = None, name: str = "fmp4") -> Path:
    """Our crash-safe (fragmented) MP4 chunks, 1280x1024 grey, GOP 50 (one chunk by default)."""
    path = root / name
    if not (path / "done").exists():
        shutil.rmtree(path, ignore_errors=True)
        shape = (1024, 1280)
        with imgstore.new_for_format(
            "avc1/mp4", mode="w", basedir=str(path), imgshape=shape, imgdtype="uint8",
            chunksize=chunksize or frames, gop=50,
        ) as store:  # fmt: skip
            for i in range(frames):
                store.add_image(make_grid_frame(i % 4096, shape), i, 1e9 + i / 25)
        (path / "done").touch()
    return path


def seal_version(path: Path) -> Optional[int]:
    """The version of the sealed index at ``path`` (None: there is none)."""
    try:
        with open(path, "rb") as f:
            return struct.unpack("<24sI", f.read(28))[1]
    except (OSError, struct.error):
        return None


def build_week(root: Path, frames: int) -> Path:
    """The week-long store of ``datasets.py`` (real chunk indexes, one shared video), sealed
    (again, when sealed by an older version of the library)."""
    path = root / "week"
    if (path / "metadata.yaml").exists() and seal_version(path / SEALED_INDEX_FILENAME) not in (None, VERSION):
        (path / SEALED_INDEX_FILENAME).unlink()  # (a new file: the old one may be a hard link)
        seal_store(str(path))
    if not (path / SEALED_INDEX_FILENAME).exists():
        video = root / "short.mp4"
        if not video.exists():
            build_fmp4(root, 100)  # any short chunk of ours serves as every chunk's video
            shutil.copyfile(root / "fmp4" / "000000.mp4", video)
        shutil.rmtree(path, ignore_errors=True)
        build_long_store(str(path), frames, str(video))
        seal_store(str(path))
    return path


def build_plain_mp4(root: Path, frames: int) -> Path:
    """A plain MP4 as cameras and ffmpeg write them (libx264 with B-frames, GOP 50, its header
    at the end), 1280x1024 with noisy frames: about 1 GB at 1,300 frames."""
    import av

    path = root / "plain-20161113T000000Z.mp4"
    if not path.exists():
        shape = (1024, 1280)
        partial = path.with_suffix(".part.mp4")
        with av.open(str(partial), "w") as container:
            options = {"g": "50", "bf": "2", "crf": "8", "preset": "ultrafast"}
            stream = container.add_stream("libx264", rate=25, options=options)
            stream.width, stream.height, stream.pix_fmt = shape[1], shape[0], "yuv420p"
            for i in range(frames):
                frame = av.VideoFrame.from_ndarray(make_grid_frame(i % 4096, shape), format="gray")
                frame.pts = i
                for packet in stream.encode(frame.reformat(format="yuv420p")):
                    container.mux(packet)
            for packet in stream.encode(None):
                container.mux(packet)
        partial.rename(path)
    return path


def dask_random_frames(backend: Backend, name: str, count: int, n: int) -> List[Tuple[str, float, float]]:
    """``n`` random frames of a store through Dask (2 worker threads), each checked: frames per
    second and bytes fetched per frame, picked from the whole array (``to_dask(frames_per_task=50)
    [picks]``: every task they lie in) and with ``to_dask(frames=picks)`` (only their GOPs)."""
    import imgstore.dask

    picks = sorted(np.random.default_rng(5).choice(count, n, replace=False).tolist())
    out = []
    for label, make in (
        ("to_dask(frames_per_task=50)[picks]", lambda store: imgstore.dask.to_dask(store, frames_per_task=50)[picks]),
        ("to_dask(frames=picks)", lambda store: imgstore.dask.to_dask(store, frames=picks)),
    ):
        with backend.open(name) as store:
            array = make(store)
            backend.traffic.reset()
            t0 = time.perf_counter()
            frames = array.compute(scheduler="threads", num_workers=2)
            seconds = time.perf_counter() - t0
        assert [decode_grid(img) for img in frames] == [i % 4096 for i in picks]
        out.append((label, n / seconds, backend.traffic.total_bytes / n))
    return out


def plain_gops(path: Path) -> tuple:
    """Per frame (presentation order) the bytes of its GOP, and the size of the file's ``moov``."""
    moov, at = 0, 0
    with open(path, "rb") as f:  # the top-level boxes: size and type
        while True:
            f.seek(at)
            head = f.read(16)
            if len(head) < 8:
                break
            size, kind = int.from_bytes(head[:4], "big"), head[4:8]
            size = int.from_bytes(head[8:16], "big") if size == 1 else size
            if kind == b"moov":
                moov = size
            if size <= 0:
                break
            at += size
    return gop_bytes(str(path)), moov


def chunk_gop_bytes(store: Path, frame: int) -> int:
    """Bytes of the GOP (decode order) holding ``frame`` of chunk 0, from its packet table."""
    with np.load(store / "000000.npz") as index:
        table = decode_packet_table(index[PACKETS_KEY], "bench")
    at = table.pts.tolist().index(sorted(table.pts.tolist())[frame])
    keys = np.flatnonzero(table.key)
    start, later = keys[keys <= at].max(), keys[keys > at]
    stop = int(later.min()) if len(later) else len(table.pts)
    return int(table.pos[stop - 1] + table.size[stop - 1] - table.pos[start])


def build_week_placeholders(root: Path) -> Path:
    """The week store with 1-byte stand-ins for its 1,512 video files (its indexes and seal as
    they are): opening reads neither, and an S3 server on loopback holds it in memory."""
    path, week = root / "week-placeholders", root / "week"
    if seal_version(path / SEALED_INDEX_FILENAME) != VERSION:
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir()
        for item in week.iterdir():
            if item.suffix in (".npz", ".yaml"):
                os.link(item, path / item.name)
            elif item.suffix == ".mp4":
                (path / item.name).write_bytes(b"\0")
        seal_store(str(path))
    return path


class Backend:
    """Where the benchmark's stores are read from: a base URL, its storage options and its traffic."""

    def __init__(self, name: str, url: str, traffic: Traffic, options: Optional[dict] = None) -> None:
        self.name, self.url, self.traffic, self.options = name, url, traffic, options

    def open(self, name: str) -> Any:
        extra = {"storage_options": self.options} if self.options else {}
        return imgstore.new_for_filename(f"{self.url}/{name}", **extra)


def serve_http(root: Path) -> Tuple[Backend, Callable[[], None]]:
    traffic = Traffic()
    handler = type("Handler", (RangeRequestHandler,), {"traffic": traffic})
    server = Server(("127.0.0.1", 0), functools.partial(handler, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return Backend("loopback HTTP", f"http://127.0.0.1:{server.server_address[1]}", traffic), server.shutdown


def serve_s3(root: Path, names: Sequence[str]) -> Tuple[Backend, Callable[[], None]]:
    """moto's S3 server on loopback, counting requests and bytes, with ``names`` uploaded to bucket ``bench``."""
    import s3fs

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's server logs every request
    # moto reads a whole object for every range request: objects kept in memory, not spilled to
    # temporary files, make that a copy rather than a read from disk
    os.environ.setdefault("MOTO_S3_DEFAULT_KEY_BUFFER_SIZE", str(2 << 30))
    traffic = Traffic()
    server = CountingS3Server(traffic)
    options = server.start()
    fs = s3fs.S3FileSystem(**options)
    fs.mkdir("bench")
    t0 = time.perf_counter()
    for name in names:
        fs.put(str(root / name), f"bench/{name}", recursive=(root / name).is_dir())
    print(f"uploaded to moto in {time.perf_counter() - t0:.0f} s", flush=True)
    return Backend("moto S3", "s3://bench", traffic, options), server.stop


class Meter:
    """Runs workloads against one back-end: a row each of seconds, requests and bytes."""

    def __init__(self, traffic: Traffic) -> None:
        self.traffic = traffic
        self.rows: List[Tuple[str, float, int, int]] = []

    def __call__(self, label: str, action: Callable[[], Any]) -> Any:
        self.traffic.reset()
        t0 = time.perf_counter()
        result = action()
        self.rows.append((label, time.perf_counter() - t0, len(self.traffic.requests), self.traffic.total_bytes))
        return result

    def print(self, backend: Backend) -> None:
        print(f"\n== {backend.name} ({backend.url}); load average {os.getloadavg()[0]:.2f} ==")
        print(f"{'workload':<34} {'seconds':>8} {'requests':>9} {'bytes':>12}")
        for label, seconds, requests, nbytes in self.rows:
            print(f"{label:<34} {seconds:>8.3f} {requests:>9} {nbytes:>12,}")


def open_week(backend: Backend, measure: Meter, args: Any, sizes: dict) -> str:
    """The sealed week store opened ``--repeat`` times; the line that sums them up."""
    week = sizes["week"]
    opens, cpu_times = [], []
    for _ in range(args.repeat):
        cpu = time.thread_time()  # this thread's CPU: the decoding, not the server's or fsspec's I/O threads
        weekly = measure("open the sealed week store", lambda: backend.open(week))
        cpu_times.append(time.thread_time() - cpu)
        opens.append(measure.rows[-1][1])
    assert weekly.frame_count == sizes["week_frames"], weekly.frame_count
    return (
        f"week store ({week}): {len(weekly.chunks)} chunks, {weekly.frame_count:,} frames; "
        f"opened in {', '.join(f'{s:.2f}' for s in opens)} s, of which the opening thread's CPU "
        f"{', '.join(f'{s:.2f}' for s in cpu_times)} s (target <= 3 requests, <= 1 s)"
    )


def run(backend: Backend, root: Path, args: Any, sizes: dict) -> None:
    """Every workload against ``backend`` (only the week store's open with ``--week-only``); prints its table."""
    measure = Meter(backend.traffic)
    if args.week_only:
        summary = open_week(backend, measure, args, sizes)
        measure.print(backend)
        print(summary, flush=True)
        return
    rows = measure.rows
    frames, chunks = sizes["frames"], sizes["chunks"]
    chunk_size = os.path.getsize(root / "mjpeg" / "000001.avi")
    store = measure("open the MJPEG store", lambda: backend.open("mjpeg"))
    middle = frames // 2 + frames // 4
    img = measure(f"one frame of a {chunk_size / 1e6:.0f} MB chunk", lambda: store.get_image(None, frame_index=middle))
    assert decode_grid(img[0]) == middle % 4096
    measure("the next 10 frames", lambda: [store.get_image(None, frame_index=middle + k) for k in range(1, 11)])
    many = measure(f"open a sealed store of {chunks} chunks", lambda: backend.open("many"))
    assert len(many.chunks) == chunks
    week_summary = open_week(backend, measure, args, sizes)
    remote = backend.open("fmp4")
    count = remote.frame_count
    measure("fMP4 chunk: its index (once)", lambda: remote.get_image(None, frame_index=count - 1))
    ratios = []
    for i in np.random.default_rng(3).choice(count - 1, 10, replace=False).tolist():
        img = measure(f"fMP4 1280x1024 frame {i}", lambda i=i: remote.get_image(None, frame_index=i))
        assert decode_grid(img[0]) == i
        ratios.append(rows[-1][3] / chunk_gop_bytes(root / "fmp4", i))
    dask_results = []
    for _ in range(args.repeat):
        dask_results.append(dask_random_frames(backend, "video-store", sizes["dask_frames"], sizes["dask_picks"]))
    plain, (plain_needs, moov) = sizes["plain"], sizes["plain_gops"]
    plain_ratios = []
    for i in np.random.default_rng(4).choice(len(plain_needs), 10, replace=False).tolist():
        video = measure(f"open {plain.stat().st_size / 1e6:,.0f} MB plain MP4", lambda: backend.open(plain.name))
        opened = rows[-1][3]
        img = measure(f"  and its frame {i}", lambda i=i, video=video: video.get_image(None, frame_index=i))
        assert decode_grid(img[0][..., 0]) == i % 4096
        plain_ratios.append((opened + rows[-1][3]) / (plain_needs[i] + moov))
        video.close()

    measure.print(backend)
    print(week_summary)
    print(f"fMP4 random frames: bytes / GOP bytes = {min(ratios):.2f}..{max(ratios):.2f} (target <= 1.5)")
    for label in [label for label, _, _ in dask_results[0]]:
        runs = [(rate, nbytes) for result in dask_results for name, rate, nbytes in result if name == label]
        print(
            f"Dask, {sizes['dask_picks']} random frames of a {sizes['dask_frames']:,}-frame store "
            f"({sizes['dask_chunk']}-frame fMP4 chunks, GOP 50, 2 threads), {label}: "
            f"{', '.join(f'{rate:.1f}' for rate, _ in runs)} frames/s, "
            f"{', '.join(f'{nbytes:,.0f}' for _, nbytes in runs)} bytes/frame"
        )
    print(
        f"plain MP4 ({moov:,}-byte moov), opened and one random frame: bytes / (GOP bytes + moov) = "
        f"{min(plain_ratios):.2f}..{max(plain_ratios):.2f} (target <= 1.5)",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", default=os.path.join(tempfile.gettempdir(), "imgstore-bench-remote"))
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a smoke test)")
    parser.add_argument(
        "--backends", default="http,s3", help="comma-separated: http, s3 (moto; needs moto[server], s3fs)"
    )
    parser.add_argument("--repeat", type=int, default=2, help="runs of the week-store open and of the Dask reads")
    parser.add_argument("--week-only", action="store_true", help="only the week-long store's open (and only it served)")
    args = parser.parse_args()
    frames, chunks = (200, 20) if args.quick else (2000, 300)
    root = Path(args.dir) / ("quick" if args.quick else "full")
    if not args.week_only:
        build(root, frames, chunks)  # (first: it starts ``root`` afresh when it is not complete)
    root.mkdir(parents=True, exist_ok=True)
    build_week(root, 20_000 if args.quick else 15_120_000)
    sizes: Dict[str, Any] = {"week_frames": 20_000 if args.quick else 15_120_000}
    if not args.week_only:
        build_fmp4(root, 100 if args.quick else 500)
        plain = build_plain_mp4(root, 30 if args.quick else 1300)
        dask_frames, dask_chunk = (60, 30) if args.quick else (3000, 500)
        build_fmp4(root, dask_frames, dask_chunk, name="video-store")
        sizes.update(
            frames=frames,
            chunks=chunks,
            plain=plain,
            plain_gops=plain_gops(plain),
            dask_frames=dask_frames,
            dask_chunk=dask_chunk,
            dask_picks=10 if args.quick else 100,
        )
    print(f"load average at the start: {' '.join(f'{v:.2f}' for v in os.getloadavg())}", flush=True)
    for kind in args.backends.split(","):
        if kind == "http":
            backend, stop = serve_http(root)
            sizes["week"] = "week"
        elif kind == "s3":
            try:
                import moto.server  # noqa: F401 - only whether it is there
                import s3fs  # noqa: F401
            except ImportError as exc:
                print(f"\n== moto S3: skipped ({exc}: pip install 'moto[server]' s3fs) ==")
                continue
            build_week_placeholders(root)
            names = ["mjpeg", "many", "fmp4", "video-store", sizes["plain"].name] if not args.week_only else []
            names.append("week-placeholders")
            backend, stop = serve_s3(root, names)
            sizes["week"] = "week-placeholders"
        else:
            raise SystemExit(f"unknown backend {kind!r}: http or s3")
        try:
            run(backend, root, args, sizes)
        finally:
            stop()
    print(f"load average at the end: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
