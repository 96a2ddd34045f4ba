"""One peer-reader job, run in a fresh process by ``peer_readers.py``: one reader, one store, one mode.

    python -I peer_jobs.py JOB.json

``JOB.json`` is ``{"reader": name, "mode": "sequential"|"random", "store": {...}, ...}``; the
result is printed as one line ``RESULT <json>``. Every reader hands back numpy frames, and
every frame's identity is read from the frame code drawn in its top-left corner
(``tests/framecodes.py``), so each reader is checked frame-exact, not just timed.

Readers (each imports only what it needs, so any interpreter runs the ones it has):

- ``ours`` / ``upstream``: ``imgstore.new_for_filename``, then ``get_next_image`` or
  ``get_image(None, frame_index=i)``. ``ours`` imports the imgstore of ``checkout`` (the
  checkout this script lives in, unless told otherwise); ``upstream`` the interpreter's own.
- ``pyav``: PyAV decoding the chunk files with no store around it; ``conversion`` says what is
  done with each frame: ``none`` (decode only), ``luma`` (the luma plane copied out), ``lut``
  (the luma plane mapped from limited to full range by a lookup table, ``cv2.LUT``: the
  faithful grey of a limited-range file), ``lut-bands`` (the same in bands of fewer than 2**18
  pixels, which OpenCV maps on the calling thread, as ours does), ``gray`` (swscale to grey) or ``bgr24``.
  ``thread_type`` and ``thread_count`` set the decoder's threads (default ``AUTO``, 0). Its
  random access is the least work an exact reader must do (the limit for ours): seek to the
  keyframe before the frame, decode forward skipping the non-reference frames shown before it
  (``skip_frame='NONREF'``), stop at its timestamp; each file's timestamps and keyframes are
  learnt by one demux when the file is first used.
- ``cv2``: ``cv2.VideoCapture`` (BGR, turned grey with ``cvtColor`` for a grey store, as
  upstream does); random access by ``CAP_PROP_POS_FRAMES``.
- ``torchcodec``: ``VideoDecoder(seek_mode="exact")``, RGB frames, ``num_ffmpeg_threads``.
- ``decord``: ``VideoReader`` on the CPU, RGB frames, ``num_threads``.

Timing (``time.perf_counter``): sequential reading is timed from the open to the last frame,
the frame-code checks included; a random read is the one call that returns the frame, with
whatever the reader does lazily then (opening a chunk, indexing it). Imports (of imgstore and
of PyAV and OpenCV, which the stores import on first use) and reading the files into the page
cache happen before the clock starts.
"""

from __future__ import annotations

import bisect
import importlib
import json
import os
import statistics
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
RESULT_MARK = "RESULT "
#: side of the square in the top-left corner of every frame that holds its frame code
CODE_SIZE = 128
sys.path.append(os.path.join(os.path.dirname(HERE), "tests"))  # framecodes.py (numpy only); appended: no shadowing
from framecodes import decode_grid  # noqa: E402


def frame_code(img: np.ndarray, layout: str) -> int:
    """The frame id drawn in the corner of ``img`` (-1 when unreadable); ``layout``: gray, bgr or rgb."""
    corner = img[:CODE_SIZE, :CODE_SIZE]
    if corner.ndim == 3:  # the grid's first channel is blue (see make_grid_frame)
        corner = corner[:, :, 2 if layout == "rgb" else 0]
    return decode_grid(corner)


def page_in(paths) -> None:
    """Read files once so that every reader starts with them in the page cache."""
    for path in paths:
        with open(path, "rb") as f:
            while f.read(1 << 23):
                pass


def limited_to_full() -> np.ndarray:
    """The lookup table from limited-range (16-235) luma to full-range grey."""
    return np.clip(np.round((np.arange(256) - 16) * 255 / 219), 0, 255).astype(np.uint8)


# -- readers: .open() (timed), .frames() yields frames in order, .get(i) one frame by store position ---
class StoreReader:
    """``imgstore`` (ours or upstream 0.4.0) through its public API."""

    def __init__(self, store, checkout=None, **_):
        if checkout:
            sys.path.insert(0, checkout)
        import imgstore

        for name in ("av", "cv2"):  # what the libraries import on first use: imported before the clock starts
            try:
                importlib.import_module(name)
            except ImportError:  # upstream reads with OpenCV alone
                pass

        self.imgstore, self.path = imgstore, store["path"]
        self.layout = "bgr" if len(store["shape"]) == 3 else "gray"
        self.where = f"imgstore {imgstore.__version__} from {os.path.dirname(imgstore.__file__)}"

    def open(self):
        self.store = self.imgstore.new_for_filename(self.path)

    def frames(self):
        while True:
            try:
                img, _ = self.store.get_next_image()
            except EOFError:
                return
            yield img

    def get(self, i):
        return self.store.get_image(None, frame_index=i)[0]


class FileReader:
    """A reader of the chunk files themselves, one decoder per file, opened on first use."""

    def __init__(self, store, **_):
        self.files, self.counts = store["files"], store["counts"]
        self.colour = len(store["shape"]) == 3
        self.decoders = {}

    def open(self):
        pass

    def frames(self):
        for n in range(len(self.files)):
            yield from self.file_frames(n)

    def get(self, i):
        n = 0
        while i >= self.counts[n]:
            i, n = i - self.counts[n], n + 1
        if n not in self.decoders:
            self.decoders[n] = self.open_file(self.files[n])
        return self.file_get(self.decoders[n], i)


class PyAVReader(FileReader):
    def __init__(self, store, conversion="lut", thread_type="AUTO", thread_count=0, **kw):
        super().__init__(store, **kw)
        import av

        self.av, self.conversion = av, conversion
        self.thread_type, self.thread_count = thread_type, thread_count
        self.layout = "bgr" if conversion == "bgr24" else "gray"
        self.where = f"PyAV {av.__version__}, libavcodec {'.'.join(map(str, av.library_versions['libavcodec']))}"
        if conversion in ("lut", "lut-bands"):
            import cv2

            self.lut, self.cv2_lut = limited_to_full(), cv2.LUT

    def file_frames(self, n):
        with self.av.open(self.files[n]) as container:
            stream = container.streams.video[0]
            stream.thread_type = self.thread_type
            stream.codec_context.thread_count = self.thread_count
            for frame in container.decode(stream):
                yield self.convert(frame)

    def open_file(self, path):
        """The file open for random access, with its frames' timestamps and its keyframes' (one
        demux), and where its decoder stands: the demuxer, frames decoded but not yet returned,
        the timestamp of the frame returned last."""
        container = self.av.open(path)
        stream = container.streams.video[0]
        stream.thread_type = self.thread_type
        stream.codec_context.thread_count = self.thread_count
        packets = [(p.pts, p.is_keyframe) for p in container.demux(stream) if p.pts is not None and p.size]
        pts = sorted(p for p, _ in packets)
        keyframes = sorted(p for p, key in packets if key)
        return {"container": container, "stream": stream, "pts": pts, "keyframes": keyframes, "packets": None}

    def file_get(self, f, i):
        """The least work for frame ``i``: unless the decoder stands before it in its GOP (then it
        decodes on), seek to the keyframe before it; decode forward with the non-reference frames
        shown before it skipped (``skip_frame='NONREF'``), to its timestamp."""
        ctx, target, keyframes = f["stream"].codec_context, f["pts"][i], f["keyframes"]
        gop = bisect.bisect_right(keyframes, target)
        if f["packets"] is None or not (f["last"] < target and bisect.bisect_right(keyframes, f["last"]) == gop):
            f["container"].seek(keyframes[gop - 1], stream=f["stream"], backward=True)
            ctx.flush_buffers()
            f["packets"], f["pending"] = f["container"].demux(f["stream"]), []
        while True:
            for n, frame in enumerate(f["pending"]):
                if frame.pts == target:
                    f["pending"], f["last"] = f["pending"][n + 1 :], target
                    return self.convert(frame)
            f["pending"] = [frame for frame in f["pending"] if frame.pts > target]
            packet = next(f["packets"], None)
            if packet is None:
                f["packets"] = None
                return None
            if packet.size:
                ctx.skip_frame = "NONREF" if packet.pts is not None and packet.pts < target else "DEFAULT"
            f["pending"] += ctx.decode(packet if packet.size else None)

    def convert(self, frame):
        if self.conversion == "none":
            return frame
        if self.conversion in ("gray", "bgr24"):
            return frame.to_ndarray(format=self.conversion)
        plane = frame.planes[0]
        rows = np.frombuffer(plane, np.uint8).reshape(frame.height, plane.line_size)[:, : frame.width]
        if self.conversion == "luma":
            return rows.copy()
        if self.conversion == "lut-bands":  # as ours maps it: bands OpenCV maps on this thread
            out, band = np.empty(rows.shape, np.uint8), ((1 << 18) - 1) // rows.shape[1]
            for top in range(0, rows.shape[0], band):
                self.cv2_lut(rows[top : top + band], self.lut, dst=out[top : top + band])
            return out
        return self.cv2_lut(rows, self.lut)


class CV2Reader(FileReader):
    def __init__(self, store, **kw):
        super().__init__(store, **kw)
        import cv2

        self.cv2, self.layout = cv2, "bgr" if self.colour else "gray"
        self.where = f"OpenCV {cv2.__version__}"

    def read(self, cap):
        ok, img = cap.read()
        if not ok:
            return None
        return img if self.colour else self.cv2.cvtColor(img, self.cv2.COLOR_BGR2GRAY)

    def file_frames(self, n):
        cap = self.cv2.VideoCapture(self.files[n])
        try:
            while (img := self.read(cap)) is not None:
                yield img
        finally:
            cap.release()

    def open_file(self, path):
        return self.cv2.VideoCapture(path)

    def file_get(self, cap, i):
        cap.set(self.cv2.CAP_PROP_POS_FRAMES, i)
        return self.read(cap)


class TorchcodecReader(FileReader):
    def __init__(self, store, threads=1, **kw):
        super().__init__(store, **kw)
        import torchcodec
        from torchcodec.decoders import VideoDecoder

        self.decoder_class, self.threads, self.layout = VideoDecoder, threads, "rgb"
        self.where = f"torchcodec {torchcodec.__version__}, num_ffmpeg_threads={threads}"

    def open_file(self, path):
        return self.decoder_class(path, seek_mode="exact", dimension_order="NHWC", num_ffmpeg_threads=self.threads)

    def file_frames(self, n):
        decoder = self.open_file(self.files[n])
        for i in range(len(decoder)):
            yield decoder[i].numpy()

    def file_get(self, decoder, i):
        return decoder[i].numpy()


class DecordReader(FileReader):
    def __init__(self, store, threads=0, **kw):
        super().__init__(store, **kw)
        import decord

        self.decord, self.threads, self.layout = decord, threads, "rgb"
        self.where = f"decord {decord.__version__}, num_threads={threads}"

    def open_file(self, path):
        return self.decord.VideoReader(path, ctx=self.decord.cpu(0), num_threads=self.threads)

    def file_frames(self, n):
        reader = self.open_file(self.files[n])
        for _ in range(len(reader)):
            yield reader.next().asnumpy()

    def file_get(self, reader, i):
        return reader[i].asnumpy()


READERS = {
    "ours": StoreReader,
    "upstream": StoreReader,
    "pyav": PyAVReader,
    "cv2": CV2Reader,
    "torchcodec": TorchcodecReader,
    "decord": DecordReader,
}


def run_sequential(reader, count):
    """Frames/s of the first ``count`` frames in order, and how many carry the code of their position.

    Wall clock from the open to the last frame, each frame's code check included (the same small
    cost for every reader): with frame threads the decoder works on while the caller does
    anything else, so timing only the calls would count work done between them as free.
    """
    started = time.perf_counter()
    reader.open()
    frames, got, exact, first_ms = reader.frames(), 0, 0, 0.0
    while got < count:
        img = next(frames, None)
        if img is None:
            break
        if not got:
            first_ms = (time.perf_counter() - started) * 1e3
        if not isinstance(img, np.ndarray):  # PyAV, decode only: the code is read off the luma plane
            plane = img.planes[0]
            img = np.frombuffer(plane, np.uint8).reshape(img.height, plane.line_size)
        exact += frame_code(img, reader.layout) == got
        got += 1
    return {"fps": got / (time.perf_counter() - started), "n": got, "exact": int(exact), "first_ms": first_ms}


def run_random(reader, indices):
    """Median and p95 latency of one frame at each of ``indices``, and how many are exact."""
    reader.open()
    latencies, exact = [], 0
    for i in indices:
        t = time.perf_counter()
        img = reader.get(i)
        latencies.append(time.perf_counter() - t)
        exact += img is not None and frame_code(img, reader.layout) == i
    ms = np.array(latencies) * 1e3
    return {
        "median_ms": float(np.median(ms)),
        "p95_ms": float(np.percentile(ms, 95)),
        "mean_ms": statistics.fmean(ms),
        "n": len(indices),
        "exact": int(exact),
        "first_ms": float(ms[0]),
    }


def main(job_path: str) -> None:
    with open(job_path) as f:
        job = json.load(f)
    store = job["store"]
    reader = READERS[job["reader"]](store, **job.get("options", {}))
    page_in(store["files"])
    if job["mode"] == "sequential":
        result = run_sequential(reader, job["count"])
    else:
        result = run_random(reader, job["indices"])
    result["where"] = reader.where
    print(RESULT_MARK + json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1])
