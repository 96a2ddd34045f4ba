"""Time a trim that copies what it can against one that encodes every frame again.

    python benchmarks/edit_trim.py [--dir DIR] [--minutes M] [--format avc1/mp4] [--quick]

Builds (once, cached in ``DIR``, default ``$TMPDIR/imgstore-bench``) a store of ``--minutes`` of
640x480 grey frames of the synthetic camera at 25 frames per second in ``--format`` with its
default settings, then trims it to all but its first and last 1/12 (cutting a chunk at each
end, off its keyframes) twice in this process: with ``imgstore.edit.trim`` as it is (copying
whole chunks, remuxing the runs between keyframes, encoding again only the frames before the
first keyframe and after the last one of the cut chunks), and with ``copy=False`` (every frame
decoded and encoded again). Both results are checked: the same frame numbers and times.
``--quick`` shrinks everything to a smoke test whose figures mean nothing.
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

import imgstore  # noqa: E402
from imgstore import edit  # noqa: E402

T0 = 1_700_000_000.0
FPS = 25


def build(path: str, frames: int, fmt: str, shape: tuple) -> str:
    """The source store (cached: built once per size and format)."""
    if os.path.exists(os.path.join(path, "metadata.yaml")):
        return path
    partial = path + ".partial"
    shutil.rmtree(partial, ignore_errors=True)
    cam = SyntheticCamera(shape, seed=3)
    with imgstore.new_for_format(fmt, path=partial, imgshape=shape) as store:
        for i in range(frames):
            store.add_image(cam.frame(i), i, T0 + i / FPS)
    os.replace(partial, path)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dir", default=os.path.join(tempfile.gettempdir(), "imgstore-bench"))
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--format", default="avc1/mp4")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test")
    args = parser.parse_args()
    shape = (48, 64) if args.quick else (480, 640)
    frames = 300 if args.quick else round(args.minutes * 60 * FPS)
    name = f"trim-v1-{args.format.replace('/', '-')}-{shape[1]}x{shape[0]}-{frames}f"
    source = build(os.path.join(args.dir, name), frames, args.format, shape)
    start, end = frames // 12 + 3, frames - frames // 12 - 3  # off any keyframe
    work = tempfile.mkdtemp(prefix="imgstore-bench-trim-")
    load = os.getloadavg()[0]
    try:
        timings, reports = {}, {}
        for label, copy in (("copying", True), ("encoding again", False)):
            t = time.perf_counter()
            reports[label] = edit.trim(source, os.path.join(work, label), start, end, by="index", copy=copy)
            timings[label] = time.perf_counter() - t
        answers = []
        for label in timings:
            with imgstore.new_for_filename(os.path.join(work, label)) as store:
                answers.append(store.get_frame_metadata())
        assert answers[0] == answers[1], "the two trims hold different frames"
    finally:
        shutil.rmtree(work, ignore_errors=True)
    kept = end - start + 1
    print(
        f"{args.format} {shape[1]}x{shape[0]} grey, {frames} frames ({frames / FPS / 60:g} min at {FPS} fps); "
        f"trim keeps {kept}"
    )
    for label, seconds in timings.items():
        r = reports[label]
        print(
            f"trim, {label:15s} {seconds:8.2f} s  ({kept / seconds:8.0f} frames/s; "
            f"{r.copied} copied, {r.reencoded} encoded again)"
        )
    print(f"copying is x{timings['encoding again'] / timings['copying']:.1f} faster")
    print(f"load average {load:.2f} at start, {os.getloadavg()[0]:.2f} at end")


if __name__ == "__main__":
    main()
