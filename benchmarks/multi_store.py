"""Time several cameras read as one: stepping, the mosaic, and random access by time.

    python benchmarks/multi_store.py [--dir DIR] [--cameras N] [--frames N] [--repeats N] [--quick]

Builds (once, cached in ``DIR``, default ``$TMPDIR/imgstore-bench``) ``--cameras`` stores of
640x480 grey MJPEG (``mjpeg/avi``) frames of the synthetic camera at 25 frames per second, each
starting a few milliseconds after the last (cameras are never in phase). Then, in this process,
each timed ``--repeats`` times (the best is printed, since other processes' load only slows):

- stepping: every step of a ``MultiStore`` of the cameras in order (decoding every camera's
  frame), steps/s; and the same frames read camera by camera with ``get_next_image``, the limit
  the stepping can reach;
- mosaic: every step turned into one tiled image as well, steps/s;
- random access: 200 seeded random times, ``step_at_time`` against one ``get_nearest_image``
  per camera at the same times (the ratio is what the issue targets: <= 2);
- mosaic export: ``imgstore-export CAMERAS OUT --mosaic`` (run in this process) to H.264 ``.mp4``
  and MJPEG ``.avi``, steps/s, against the limit: the video writer alone encoding the same
  mosaics, already in memory (its figure is for the first 300).

``--quick`` shrinks everything to a smoke test whose figures mean nothing.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from camera import SyntheticCamera  # noqa: E402

import imgstore  # noqa: E402

T0 = 1_700_000_000.0
FPS = 25.0


def build(path: str, frames: int, shape: tuple, camera: int) -> str:
    """A store of ``frames`` synthetic frames at 25 fps, offset by ``camera`` milliseconds (cached)."""
    if os.path.exists(os.path.join(path, "metadata.yaml")):
        return path
    partial = path + ".partial"
    shutil.rmtree(partial, ignore_errors=True)
    cam = SyntheticCamera(shape, seed=camera)
    with imgstore.new_for_format("mjpeg/avi", path=partial, imgshape=shape, chunksize=1000) as store:
        for i in range(frames):
            store.add_image(cam.frame(i), i, T0 + camera * 0.003 + i / FPS)
    os.replace(partial, path)
    return path


def best(repeats: int, work) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        work()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dir", default=os.path.join(tempfile.gettempdir(), "imgstore-bench"))
    parser.add_argument("--cameras", type=int, default=4)
    parser.add_argument("--frames", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test")
    args = parser.parse_args()
    shape = (48, 64) if args.quick else (480, 640)
    frames = 30 if args.quick else args.frames
    repeats = 1 if args.quick else args.repeats
    paths = [
        build(os.path.join(args.dir, f"multi-v1-{shape[1]}x{shape[0]}-{frames}f-cam{c}"), frames, shape, c)
        for c in range(args.cameras)
    ]
    load = os.getloadavg()

    def step_all() -> None:
        with imgstore.MultiStore(paths) as multi:
            for _ in multi:
                pass

    def each_camera() -> None:
        for path in paths:
            with imgstore.new_for_filename(path) as store:
                for _ in range(store.frame_count):
                    store.get_next_image()

    def mosaic_all() -> None:
        with imgstore.MultiStore(paths) as multi:
            for step in multi:
                multi.mosaic(step)

    rng = random.Random(0)
    queries = [T0 + rng.uniform(0, frames / FPS) for _ in range(20 if args.quick else 200)]
    with imgstore.MultiStore(paths) as multi:
        stores = multi.stores

        def by_time() -> None:
            for t in queries:
                multi.step_at_time(t)

        def nearest_each() -> None:
            for t in queries:
                for store in stores:
                    store.get_nearest_image(t)

        random_multi = best(repeats, by_time) / len(queries)
        random_each = best(repeats, nearest_each) / len(queries)
    steps = frames
    stepping = steps / best(repeats, step_all)
    limit = steps / best(repeats, each_camera)
    mosaic = steps / best(repeats, mosaic_all)
    print(f"{args.cameras} cameras of {shape[1]}x{shape[0]} grey mjpeg/avi, {frames} frames each (best of {repeats})")
    print(
        f"stepping        {stepping:8.1f} steps/s   (each camera read alone, in turn: {limit:.1f} steps/s; "
        f"x{stepping / limit:.2f})"
    )
    print(f"with mosaic     {mosaic:8.1f} steps/s")
    print(
        f"random by time  {random_multi * 1000:8.2f} ms/step   (one get_nearest_image per camera: "
        f"{random_each * 1000:.2f} ms; x{random_multi / random_each:.2f})"
    )
    for ext in (".mp4", ".avi"):
        export, encode = _export_and_limit(paths, repeats, ext)
        print(
            f"mosaic export {ext:4s} {frames / export:6.1f} steps/s   (the encoder alone, same mosaics: "
            f"{encode:.1f} frames/s; x{frames / export / encode:.2f})"
        )
    end = os.getloadavg()[0]
    print(f"load average {load[0]:.2f} at start, {end:.2f} at end (other processes' load slows every figure)")


def _export_and_limit(paths: list, repeats: int, ext: str) -> tuple:
    """Seconds for the mosaic export of every step, and the encoder's frames/s on the same mosaics."""
    from fractions import Fraction

    from imgstore.apps import export
    from imgstore.codecs.video_file import VideoFileWriter
    from imgstore.mosaic import mosaic_of

    out = os.path.join(tempfile.mkdtemp(prefix="imgstore-bench-export-"), "rig" + ext)

    def run_export() -> None:
        for path in (out, out + ".frames.csv"):
            if os.path.exists(path):
                os.unlink(path)
        assert export.main([*paths, out, "--mosaic", "--fps", "25", "-q"]) == 0

    seconds = best(repeats, run_export)
    with imgstore.MultiStore(paths) as multi:
        shapes = [s.image_shape for s in multi.stores]
        mosaics = [mosaic_of(multi[i].images, shapes, keep_grey=True) for i in range(min(300, len(multi)))]

    def encode() -> None:
        writer = VideoFileWriter(out, Fraction(25))
        for mosaic in mosaics:
            writer.write(mosaic)
        writer.close()

    rate = len(mosaics) / best(repeats, encode)
    shutil.rmtree(os.path.dirname(out), ignore_errors=True)
    return seconds, rate


if __name__ == "__main__":
    main()
