"""What reading a store from a URL costs: requests and bytes, over a real HTTP server on loopback.

Builds (deterministically, in --dir) an MJPEG store with 1000-frame chunks and a 300-chunk
directory store, serves them with a Range-capable HTTP server that counts every request and
byte, and reports: opening the store, one frame from the middle of a chunk, the next ten frames,
and opening a store of many chunks (one request per chunk index).

    python benchmarks/remote_reads.py [--dir DIR] [--quick]
"""

from __future__ import annotations

import argparse
import functools
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import imgstore

from framecodes import decode_grid, make_grid_frame
from remote_servers import RangeRequestHandler, Server, Traffic


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", default=os.path.join(tempfile.gettempdir(), "imgstore-bench-remote"))
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a smoke test)")
    args = parser.parse_args()
    frames, chunks = (200, 20) if args.quick else (2000, 300)
    root = Path(args.dir) / ("quick" if args.quick else "full")
    build(root, frames, chunks)

    traffic = Traffic()
    handler = type("Handler", (RangeRequestHandler,), {"traffic": traffic})
    server = Server(("127.0.0.1", 0), functools.partial(handler, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    chunk_size = os.path.getsize(root / "mjpeg" / "000001.avi")
    rows = []

    def measure(label: str, action) -> None:
        traffic.reset()
        t0 = time.perf_counter()
        result = action()
        rows.append((label, time.perf_counter() - t0, len(traffic.requests), traffic.total_bytes))
        return result

    store = measure("open the MJPEG store", lambda: imgstore.new_for_filename(f"{url}/mjpeg"))
    middle = frames // 2 + frames // 4
    img = measure(f"one frame of a {chunk_size / 1e6:.0f} MB chunk", lambda: store.get_image(None, frame_index=middle))
    assert decode_grid(img[0]) == middle % 4096
    measure("the next 10 frames", lambda: [store.get_image(None, frame_index=middle + k) for k in range(1, 11)])
    many = measure(f"open a store of {chunks} chunks", lambda: imgstore.new_for_filename(f"{url}/many"))
    assert len(many.chunks) == chunks
    server.shutdown()

    print(f"{'workload':<34} {'seconds':>8} {'requests':>9} {'bytes':>12}")
    for label, seconds, requests, nbytes in rows:
        print(f"{label:<34} {seconds:>8.3f} {requests:>9} {nbytes:>12,}")


if __name__ == "__main__":
    main()
