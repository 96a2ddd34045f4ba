"""Long recordings for the open/lookup workloads, made without any store library.

A week at 25 fps is 15.1 million frames in ~1,500 chunks: encoding that much video would take
hours, and opening a store never decodes a frame. So these stores are real ``VideoImgStore``
directories (``avc1/mp4``, 640x480 grey, chunks of 10,000 frames) whose chunk indexes are real
``NNNNNN.npz`` files written with ``np.savez`` as upstream imgstore writes them (frame arrays plus
a copy of the ``__store`` metadata), but whose chunk videos are all hard links to one short
video (upstream opens the first chunk's video when it opens a store). Frame numbers count up
from 1,000 with one dropped frame every 5,000 frames; times are 25 fps with up to 2 ms of
jitter. Everything is seeded, so the same store is built every time; it is built under a
temporary name and renamed, so an interrupted build is never mistaken for a finished one.
"""

from __future__ import annotations

import os
import shutil
from typing import Dict

import numpy as np
import yaml

T0 = 1_600_000_000.0
FPS = 25.0
CHUNKSIZE = 10_000
SHAPE = (480, 640)
#: bump when the layout or contents change, so cached stores are rebuilt
VERSION = 1


def store_metadata(chunksize: int) -> Dict[str, object]:
    return {
        "class": "VideoImgStore",
        "version": 2,
        "imgshape": list(SHAPE),
        "imgdtype": "uint8",
        "chunksize": chunksize,
        "format": "avc1/mp4",
        "encoding": None,
        "extension": ".mp4",
        "created_utc": "2020-09-13T12:26:40",
        "timezone_local": "UTC",
        "uuid": "0" * 32,
    }


def frame_numbers(start: int, stop: int) -> np.ndarray:
    """Camera frame numbers of store frames ``start:stop``: one frame dropped every 5,000."""
    k = np.arange(start, stop, dtype=np.int64)
    return 1000 + k + k // 5000


def build_long_store(path: str, frames: int, video: str, chunksize: int = CHUNKSIZE) -> None:
    """Write the store at ``path`` (nothing to do when it exists)."""
    if os.path.isdir(path):
        return
    partial = path + ".partial"
    shutil.rmtree(partial, ignore_errors=True)
    os.makedirs(partial)
    smd = store_metadata(chunksize)
    with open(os.path.join(partial, "metadata.yaml"), "w") as f:
        yaml.safe_dump({"__store": smd}, f)
    extra = {k: np.asarray(v) for k, v in smd.items() if v is not None}
    for chunk_n, start in enumerate(range(0, frames, chunksize)):
        stop = min(start + chunksize, frames)
        numbers = frame_numbers(start, stop)
        jitter = np.random.default_rng([7, chunk_n]).uniform(0, 0.002, stop - start)
        base = os.path.join(partial, f"{chunk_n:06d}")
        np.savez(base + ".npz", frame_number=numbers, frame_time=T0 + numbers / FPS + jitter, **extra)
        try:
            os.link(video, base + ".mp4")
        except OSError:  # no hard links here: a copy does as well
            shutil.copyfile(video, base + ".mp4")
    os.replace(partial, path)


def lookup_queries(frames: int, n: int, seed: int) -> Dict[str, list]:
    """Random frame numbers that exist, and times between frames, for index lookups."""
    rng = np.random.default_rng(seed)
    positions = rng.integers(0, frames, n)
    numbers = 1000 + positions + positions // 5000
    return {"number": numbers.tolist(), "time": (T0 + numbers / FPS + 0.013).tolist()}
