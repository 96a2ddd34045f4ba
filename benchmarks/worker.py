"""Benchmark jobs, run in a subprocess by one interpreter: ours, or one with upstream imgstore 0.4.0.

    python -I worker.py JOBS.json

``JOBS.json`` is a list of ``{"job": name, ...arguments}``; the results are printed as one line
``RESULT <json list>``. The script is run with ``-I`` so that neither the current directory nor
PYTHONPATH decides which ``imgstore`` is imported; ``camera.py`` is found beside this file. Only
the calls a workload names are timed, with ``time.perf_counter``. Everything here works with
both libraries' public API (upstream 0.4.0's too); jobs named ``limit_*`` use no imgstore at all.
With ``IMGSTORE_BENCH_CHECKOUT`` set in the environment, the imgstore of that checkout is imported
instead of the installed one.
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import shutil
import statistics
import sys
import time

import numpy as np

if os.environ.get("IMGSTORE_BENCH_CHECKOUT"):  # a checkout to measure instead of the installed imgstore
    sys.path.insert(0, os.environ["IMGSTORE_BENCH_CHECKOUT"])
import imgstore

sys.path.append(os.path.dirname(os.path.abspath(__file__)))  # after imgstore: camera.py only
from camera import SyntheticCamera

T0 = 1_600_000_000.0
FPS = 25.0
RESULT_MARK = "RESULT "


def _digest(img):
    return hashlib.sha1(np.ascontiguousarray(img).tobytes()).hexdigest()


def _size_mb(path):
    total = 0
    for root, _, files in os.walk(path):
        total += sum(os.path.getsize(os.path.join(root, f)) for f in files)
    return total / 1e6


def _peak_rss_mb():
    """Peak RSS of this process (VmHWM: ru_maxrss would count the parent's RSS at fork too)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux, bytes on macOS


def _rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def _page_in(path):
    """Read every file of a store once, so that timings start with it in the page cache."""
    for root, _, files in os.walk(path):
        for name in files:
            with open(os.path.join(root, name), "rb") as f:
                while f.read(1 << 23):
                    pass


def _frames(frames_file):
    """The distinct frames a write job cycles through (written once by run.py)."""
    return np.load(frames_file, mmap_mode="r")


def job_info():
    return {"version": imgstore.__version__, "file": imgstore.__file__, "python": sys.version.split()[0]}


def _write_store(path, fmt, frames, count, chunksize, settings=None):
    shape = frames.shape[1:]
    store = imgstore.new_for_format(
        fmt, path=path, imgshape=shape, imgdtype=np.uint8, chunksize=chunksize, **(settings or {})
    )
    try:
        for i in range(count):
            store.add_image(frames[i % len(frames)], i, T0 + i / FPS)
    finally:
        store.close()


def job_write(fmt, frames_file, count, chunksize, workdir):
    """frames/s writing ``count`` frames, from store creation to close, default settings."""
    frames = np.ascontiguousarray(_frames(frames_file))
    tag = fmt.replace("/", "-")
    warm, path = os.path.join(workdir, f"warm-{tag}"), os.path.join(workdir, f"write-{tag}")
    try:
        for p in (warm, path):
            shutil.rmtree(p, ignore_errors=True)
        try:
            _write_store(warm, fmt, frames, min(10, count), chunksize)
            t = time.perf_counter()
            _write_store(path, fmt, frames, count, chunksize)
            seconds = time.perf_counter() - t
        except Exception as exc:  # the library cannot write this format: say why
            return {"error": f"{type(exc).__name__}: {exc}"[:200]}
        return {"fps": count / seconds, "seconds": seconds, "mb": _size_mb(path)}
    finally:
        for p in (warm, path):
            shutil.rmtree(p, ignore_errors=True)


def job_build(path, fmt, shape, count, chunksize, seed, settings=None):
    """Write a store of SyntheticCamera frames (atomically: a temporary name, then renamed)."""
    cam = SyntheticCamera(shape, seed=seed)
    partial = path + ".partial"
    shutil.rmtree(partial, ignore_errors=True)
    t = time.perf_counter()
    store = imgstore.new_for_format(
        fmt, path=partial, imgshape=tuple(shape), imgdtype=np.uint8, chunksize=chunksize, **(settings or {})
    )
    for i in range(count):
        store.add_image(cam.frame(i), i, T0 + i / FPS)
    store.close()
    os.replace(partial, path)
    return {"seconds": time.perf_counter() - t, "mb": _size_mb(path)}


def job_open(path, queries=None, metadata=False, metadata_limit=0):
    """Open a store (this process is fresh), then optionally time index lookups and get_frame_metadata.

    ``metadata_limit`` rounds then time ``get_frame_metadata()`` again against its limit, numpy's
    ``tolist()`` of the two columns concatenated from the chunk index files (read with ``np.load``
    beforehand, not timed), alternating which goes first; both must give the same lists.
    """
    rss_before = _peak_rss_mb()
    t = time.perf_counter()
    store = imgstore.new_for_filename(path)
    out = {
        "open_s": time.perf_counter() - t,
        "peak_rss_mb": _peak_rss_mb(),
        "rss_before_mb": rss_before,
        "frames": store.frame_count,
    }
    index = store._index  # both libraries keep their ImgStoreIndex here
    if queries:
        out["lookups"] = {}
        for name, what, nearest in (("number", "frame_number", False), ("time", "frame_time", True)):
            find = index.find_chunk_nearest if nearest else index.find_chunk
            latencies, answers = [], []
            for value in queries[name]:
                t = time.perf_counter()
                answers.append(list(find(what, value)))
                latencies.append(time.perf_counter() - t)
            out["lookups"][name] = {
                "first_ms": latencies[0] * 1e3,
                "median_ms": statistics.median(latencies) * 1e3,
                "n": len(latencies),
                "answers": answers,
            }
    if metadata:
        t = time.perf_counter()
        md = store.get_frame_metadata()
        out["metadata_s"] = time.perf_counter() - t
        out["metadata_types"] = {k: f"{type(v).__name__} of {type(v[0]).__name__}" for k, v in md.items()}
        out["metadata_len"] = len(md["frame_number"])
        out["metadata_peak_rss_mb"] = _peak_rss_mb()
        del md
        if metadata_limit:
            out.update(_metadata_against_limit(store, path, metadata_limit))
    store.close()
    return out


def _index_columns(path):
    """Frame numbers and times of every chunk, concatenated in chunk order, read with np.load alone."""
    numbers, times = [], []
    for name in sorted(os.listdir(path)):
        if name.endswith(".npz"):
            with np.load(os.path.join(path, name)) as data:
                numbers.append(data["frame_number"])
                times.append(data["frame_time"])
    return np.concatenate(numbers), np.concatenate(times)


def _metadata_against_limit(store, path, rounds):
    """Seconds of ``get_frame_metadata()`` and of ``tolist()`` of the columns, back to back, ``rounds`` times."""
    numbers, times = _index_columns(path)

    def limit():
        return {"frame_number": numbers.tolist(), "frame_time": times.tolist()}

    timed = {"ours": [], "limit": []}
    same = True
    for r in range(rounds):
        made = {}
        for who, call in (("ours", store.get_frame_metadata), ("limit", limit))[:: 1 if r % 2 == 0 else -1]:
            t = time.perf_counter()
            made[who] = call()
            timed[who].append(time.perf_counter() - t)
        if r == 0:
            same = made["ours"] == made["limit"] and all(
                type(made["ours"][k][i]) is type(made["limit"][k][i]) for k in made["ours"] for i in (0, -1)
            )
        del made
    return {"metadata_rounds_s": timed["ours"], "metadata_limit_s": timed["limit"], "metadata_limit_same": same}


def job_sequential(path):
    """frames/s of get_next_image() until EOFError (only the calls are timed), each frame's sha1, and RSS."""
    _page_in(path)
    store = imgstore.new_for_filename(path)
    for _ in range(3):
        store.get_next_image()
    store.close()

    store = imgstore.new_for_filename(path)
    digests, seconds, rss = [], 0.0, []
    total = store.frame_count
    try:
        while True:
            t = time.perf_counter()
            try:
                img, _ = store.get_next_image()
            except EOFError:
                break
            seconds += time.perf_counter() - t
            digests.append(_digest(img))
            if len(digests) in (max(total // 10, 1), total):
                rss.append(_rss_mb())
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {exc}"[:200], "digests": digests}
    store.close()
    return {
        "fps": len(digests) / seconds,
        "frames": len(digests),
        "shape": list(img.shape),
        "digests": digests,
        "rss_growth_mb": rss[-1] - rss[0] if len(rss) == 2 else 0.0,
    }


def job_stream_memory(path, every):
    """RSS while reading a long store to its end with get_next_image (one sample every ``every`` frames)."""
    store = imgstore.new_for_filename(path)
    samples, n = [], 0
    while True:
        try:
            store.get_next_image()
        except EOFError:
            break
        n += 1
        if n % every == 0:
            samples.append(_rss_mb())
    store.close()
    return {"frames": n, "rss_mb": samples}


def job_random(path, indices, digests):
    """Latency of get_image(None, frame_index=i), and which images match the sequential decode."""
    _page_in(path)
    store = imgstore.new_for_filename(path)
    t = time.perf_counter()
    store.get_image(None, frame_index=len(digests) // 2)  # a fresh process's first read
    first_ms = (time.perf_counter() - t) * 1e3
    store.close()

    store = imgstore.new_for_filename(path)
    latencies, same = [], 0
    for i in indices:
        t = time.perf_counter()
        img, _ = store.get_image(None, frame_index=i)
        latencies.append(time.perf_counter() - t)
        same += i < len(digests) and _digest(img) == digests[i]
    store.close()
    ms = np.array(latencies) * 1e3
    return {
        "median_ms": float(np.median(ms)),
        "p95_ms": float(np.percentile(ms, 95)),
        "n": len(indices),
        "same": int(same),
        "first_ms": first_ms,
    }


def job_extra(workdir, count):
    """add_extra_data records/s (only those calls timed) and get_extra_data() seconds, on an npy store."""
    path = os.path.join(workdir, "extra")
    shutil.rmtree(path, ignore_errors=True)
    store = imgstore.new_for_format("npy", path=path, imgshape=(8, 8), imgdtype=np.uint8, chunksize=1000)
    img = np.zeros((8, 8), np.uint8)
    seconds = 0.0
    for i in range(count):
        store.add_image(img, i, T0 + i / FPS)
        t = time.perf_counter()
        event = "light" if i % 50 == 0 else ""
        store.add_extra_data(temperature=20.0 + (i % 7) * 0.1, humidity=40 + i % 13, event=event)
        seconds += time.perf_counter() - t
    store.close()
    import pandas  # noqa: F401 - imported before the clock starts (our library imports it on first use)

    store = imgstore.new_for_filename(path)
    t = time.perf_counter()
    df = store.get_extra_data()
    read_s = time.perf_counter() - t
    store.close()
    shutil.rmtree(path, ignore_errors=True)
    return {"write_rps": count / seconds, "read_s": read_s, "rows": 0 if df is None else len(df)}


# -- limits: the same work without any store library -----------------------------------------------
def job_limit_npy_write(frames_file, count, workdir):
    """np.save of each frame to its own file."""
    frames = np.ascontiguousarray(_frames(frames_file))
    folder = os.path.join(workdir, "limit-npy")
    os.makedirs(folder, exist_ok=True)
    t = time.perf_counter()
    for i in range(count):
        np.save(os.path.join(folder, f"{i:06d}.npy"), frames[i % len(frames)])
    seconds = time.perf_counter() - t
    shutil.rmtree(folder, ignore_errors=True)
    return {"fps": count / seconds}


def job_limit_imencode(frames_file, count, extension, workdir, quality=None, to_files=True):
    """OpenCV's encoder on one thread per core (it releases the GIL): cv2.imencode alone, then
    (``to_files``) cv2.imwrite of every frame to its own file (creating a file per frame costs too).
    ``quality``: the JPEG quality, when not OpenCV's default."""
    import concurrent.futures

    import cv2

    frames = np.ascontiguousarray(_frames(frames_file))
    threads = len(os.sched_getaffinity(0))
    folder = os.path.join(workdir, "limit-imwrite")
    os.makedirs(folder, exist_ok=True)
    out = {"threads": threads}
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if quality else []
    jobs = {
        "fps": lambda i: cv2.imencode("." + extension, frames[i % len(frames)], params),
        "fps_files": lambda i: cv2.imwrite(
            os.path.join(folder, f"{i:06d}.{extension}"), frames[i % len(frames)], params
        ),
    }
    if not to_files:
        del jobs["fps_files"]
    try:
        with concurrent.futures.ThreadPoolExecutor(threads) as pool:
            for name, job in jobs.items():
                t = time.perf_counter()
                list(pool.map(job, range(count)))
                out[name] = count / (time.perf_counter() - t)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return out


def job_limit_video_write(frames_file, count, fmt, workdir):
    """PyAV encoding of the frames into a file exactly as our writer sets up the encoder and muxer.

    The store format's container (MP4 for ``avc1/mp4``), encoder, pixel format, encoder options,
    keyframe interval, threads, time base and colour range, and the crash-safe muxer options,
    all from our writer's own functions (as ``write_speed.py`` does), so that ours and the
    limit differ only by the store around the encoder; frames by PyAV's ``from_ndarray``.
    """
    from fractions import Fraction

    import av

    from imgstore.codecs.video import NOMINAL_FPS, WRITTEN_FORMATS, frame_kind, resolve_settings
    from imgstore.codecs.video_av_base import FULL_RANGE, NDARRAY_FORMATS, crash_safe_muxer_options
    from imgstore.codecs.video_av_write import _encoder_options

    frames = np.ascontiguousarray(_frames(frames_file))
    video = WRITTEN_FORMATS[fmt]
    shape = frames.shape[1:]
    settings = resolve_settings(video, shape, "uint8", None)
    full_range = settings["pix_fmt"].startswith("gray")
    layout = NDARRAY_FORMATS[frame_kind(shape, "uint8")]
    path = os.path.join(workdir, "limit-video." + fmt.split("/")[1])
    t = time.perf_counter()
    container = av.open(path, "w", format=video.container, options=crash_safe_muxer_options(video.container))
    stream = container.add_stream(video.encoder, rate=NOMINAL_FPS, options=_encoder_options(video, settings))
    stream.height, stream.width = video.coded_size(shape)
    stream.pix_fmt = settings["pix_fmt"]
    ctx = stream.codec_context
    if full_range:
        ctx.color_range = FULL_RANGE
    if "gop" in settings:
        ctx.gop_size = int(settings["gop"])
    ctx.thread_count = int(settings.get("threads", 0))
    ctx.time_base = Fraction(1, NOMINAL_FPS)
    for i in range(count):
        frame = av.VideoFrame.from_ndarray(frames[i % len(frames)], format=layout)
        frame.pts = i
        if full_range:
            frame.color_range = FULL_RANGE
        container.mux(stream.encode(frame))
    container.mux(stream.encode(None))
    container.close()
    seconds = time.perf_counter() - t
    os.unlink(path)
    return {"fps": count / seconds, "container": video.container}


def job_limit_decode(path, kind):
    """Sequential decode of a store's chunks without the store: PyAV for video, np.load / cv2.imread for files."""
    _page_in(path)
    n, t = 0, time.perf_counter()
    if kind == "video":
        import av

        for name in sorted(os.listdir(path)):
            if name.endswith((".mp4", ".avi", ".mkv")):
                with av.open(os.path.join(path, name)) as container:
                    stream = container.streams.video[0]
                    stream.thread_type = "AUTO"
                    for frame in container.decode(stream):
                        frame.to_ndarray(format="gray")
                        n += 1
    else:
        import cv2

        for root, _, files in sorted(os.walk(path)):
            for name in sorted(files):
                full = os.path.join(root, name)
                if name.endswith(".npy"):
                    np.load(full)
                elif name.endswith((".png", ".jpg")):
                    cv2.imread(full, cv2.IMREAD_GRAYSCALE)
                else:
                    continue
                n += 1
    seconds = time.perf_counter() - t
    return {"fps": n / seconds, "frames": n}


if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        jobs = json.load(f)
    results = []
    for job in jobs:
        name = job.pop("job")
        results.append(globals()["job_" + name](**job))
    print(RESULT_MARK + json.dumps(results))
