"""Oracle script: write the fixture stores with upstream imgstore 0.4.0 and record its answers.

Run by ``tests/upstream_fixtures.py`` through ``tests/upstream_oracle.py``; only upstream's
interpreter runs it. For each spec it writes a store (as ``write_store.py`` does, plus the
special steps a spec names), derives a plan of reads from the store's own frame index, replays
the plan with upstream and writes ``<name>.expected.json`` beside the store, in the schema of
``../shared/fixtures/README.md`` (read by ``tests/compat/test_fixtures.py``). Upstream's Motif example
(``imgstore/tests/data/store_mp4`` in its wheel) is copied and answered in the same way.

``<name>.expected.json`` holds ``plan`` (the reads, in order) and ``expected`` (upstream's answers):

1. open the store folder: ``props`` (class, counts, frame and time bounds, chunks, shape, uuid,
   user metadata, ``frame_number`` right after opening, ``created`` as UTC instant, offset and
   zone names), ``frame_metadata``, ``extra_data`` (columns and records), then
   ``get_next_image()`` ``frame_count`` times (``sequential``) and once more (``sequential_end``);
2. open its metadata.yaml: ``get_image(None, exact_only=True, frame_index=i)`` for ``index_order``,
   ``get_image(n, exact_only=True)`` for ``by_number``, ``exact_only=False`` for
   ``nearest_number``, ``get_image(n)`` for ``missing_number``, ``get_image(None, frame_index=i)``
   for ``bad_index``, ``get_nearest_image(t)`` for ``nearest_time``, then each
   ``seek_then_next`` (a seek by index, number or time, then ``n_next`` ``get_next_image()``);
3. ``extract_only_frame(path, i)`` for each ``[i, 'dir' | 'yaml']`` of ``extract_only``.

A read is ``{frame_number, frame_time, attr_frame_number, digest}`` or ``{raises, message}``; a
digest (``framecodes.digest``) has shape, dtype, sha256, mean, the frame's code and, for lossy
stores, an 8x8 thumbnail. ``created_rule`` ``mtime`` (no ``created_utc``): the creation time is
metadata.yaml's modification time, computed when testing.

Where upstream is plainly wrong the recorded answer is corrected, and ``deviations`` says so:

- 16-bit png: upstream reads the frames back as 8 bits; the answer is the 16-bit frame written;
- ``extract_only_frame(path, i)``: the answer is what ``get_image(None, frame_index=i)`` gives;
- ``created``: answered with the reader's zone set to UTC, where upstream's reading is right.
"""

from __future__ import annotations

import datetime
import importlib.util
import json
import os
import random
import shutil
import time
from typing import Any, Callable

import numpy as np
import yaml

import framecodes  # tests/ is on sys.path in the oracle

TOLERANCE = 3.0
DEVIATION_UINT16 = (
    "uint16 frames: upstream returns uint8 (IMREAD_GRAYSCALE/COLOR); the answer is the 16-bit frame written"
)
DEVIATION_EXTRACT = "extract_only_frame(path, i) returns the same image as get_image(None, frame_index=i)"


def _load_sibling(name: str) -> Any:
    """``<name>.py`` beside this script (the writer and reader the compatibility tests share), as a module."""
    here = os.path.dirname(os.path.abspath(__file__))
    spec = importlib.util.spec_from_file_location(f"_fixture_{name}", os.path.join(here, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _use_zone(zone: str) -> None:
    """Make ``zone`` this process's local zone (for ``time``, ``datetime`` and tzlocal)."""
    import tzlocal

    os.environ["TZ"] = zone
    time.tzset()
    tzlocal.reload_localzone()


#: ``obj`` with numpy values, tuples and non-string keys turned into JSON types
jsonable = _load_sibling("read_store").jsonable


# -- writing ---------------------------------------------------------------------------------------


def write(imgstore: Any, writer: Any, spec: dict) -> None:
    """Write the store of ``spec`` with upstream, then apply its special step, if any."""
    path = spec["path"]
    if spec.get("chunks"):  # assembled from encoded videos with insert_chunk
        store = writer.open_for_writing(imgstore, spec)
        try:
            for chunk in spec["chunks"]:
                store.insert_chunk(chunk["video"], chunk["frame_numbers"], chunk["frame_times"], move=False)
        finally:
            store.close()
    else:
        writer.write_store(imgstore, spec)
    if spec.get("reindex"):
        store = imgstore.new_for_filename(path)
        try:
            store.reindex()
        finally:
            store.close()
    if spec.get("old_format"):
        _make_old_format(path, spec["old_format"])


def _make_old_format(path: str, user_metadata: dict) -> None:
    """Turn a store into the old layout: no created_utc/timezone_local/uuid, bare chunk indexes."""
    md_path = os.path.join(path, "metadata.yaml")
    with open(md_path, encoding="utf-8") as f:
        metadata = yaml.safe_load(f)
    for key in ("created_utc", "timezone_local", "uuid"):
        metadata["__store"].pop(key, None)
    metadata.update(user_metadata)
    with open(md_path, "w", encoding="utf-8") as f:
        yaml.safe_dump(metadata, f)
    for root, _, files in os.walk(path):
        for name in files:
            if name.endswith(".npz"):
                index = os.path.join(root, name)
                with np.load(index, allow_pickle=True) as npz:
                    arrays = {key: npz[key] for key in ("frame_number", "frame_time")}
                np.savez(index, **arrays)


# -- the plan --------------------------------------------------------------------------------------


def make_plan(name: str, numbers: list, times: list, lossy: bool, code_scheme: str, created_rule: str) -> dict:
    """The reads to replay, derived from the store's frame numbers and times (seeded by ``name``)."""
    rng = random.Random(name)
    n = len(numbers)
    unique = sorted(set(numbers))
    lo, hi = unique[0], unique[-1]
    gaps = [k for k in range(lo, hi) if k not in set(unique)]
    index_order = list(range(n))
    rng.shuffle(index_order)
    by_number = list(unique)
    rng.shuffle(by_number)
    middle = unique[len(unique) // 2]
    t_sorted = sorted(times)
    t_lo, t_hi = t_sorted[0], t_sorted[-1]
    nearest_time = [t_lo - 100.0, t_hi + 100.0, t_lo, t_sorted[n // 2], t_hi]
    for k in range(0, n - 1, max(1, (n - 1) // 6)):
        a, b = t_sorted[k], t_sorted[k + 1]
        nearest_time += [a + 0.5 * (b - a), a + 0.3 * (b - a)]
    chunk_edge = min(n - 1, max(1, n // 2))
    seeks = [["frame_index", i] for i in dict.fromkeys([0, chunk_edge - 1, chunk_edge, n - 2, n - 1]) if 0 <= i < n]
    steps = [{"seek": seek, "n_next": 2} for seek in seeks]
    steps.append({"seek": ["frame_number", numbers[min(2, n - 1)]], "n_next": 2})
    steps.append(
        {"seek": ["frame_time", t_sorted[n // 3] + 0.25 * (t_sorted[n // 3 + 1] - t_sorted[n // 3])], "n_next": 1}
    )
    return {
        "lossy": lossy,
        "tolerance": TOLERANCE,
        "frame_count": n,
        "index_order": index_order,
        "by_number": by_number,
        "nearest_number": [lo - 3, hi + 4, middle, *gaps[:6]],
        "missing_number": [lo - 1, hi + 1, *gaps[:4]],
        "bad_index": [n, n + 5],
        "nearest_time": nearest_time,
        "seek_then_next": steps,
        "extract_only": [[0, "dir"], [1, "dir"], [n // 2, "dir"], [n - 1, "dir"], [n - 1, "yaml"]],
        "code_scheme": code_scheme,
        "created_rule": created_rule,
    }


# -- upstream's answers ----------------------------------------------------------------------------


class Answers:
    """Replays a plan with upstream and records each answer as ``tests/compat/test_fixtures.py`` reads it."""

    def __init__(self, plan: dict, written_uint16: dict | None) -> None:
        self.plan = plan
        #: frame id -> the 16-bit frame written, for the stores upstream reads back as 8 bits
        self.written_uint16 = written_uint16

    def digest(self, img: np.ndarray) -> dict:
        if self.written_uint16 is not None:  # the deviation: the frame written, not upstream's 8 bits
            img = self.written_uint16[framecodes.decode_grid(img)]
        return framecodes.digest(img, self.plan["lossy"], self.plan["code_scheme"])

    @staticmethod
    def failure(exc: BaseException) -> dict:
        return {"raises": [c.__name__ for c in type(exc).__mro__], "message": str(exc)}

    def read(self, store: Any, call: Callable[[], Any], query: Any = None) -> dict:
        try:
            img, (frame_number, frame_time) = call()
        except Exception as exc:
            out = self.failure(exc)
        else:
            out = {
                "frame_number": jsonable(frame_number),
                "frame_time": jsonable(frame_time),
                "attr_frame_number": jsonable(store.frame_number),
                "digest": self.digest(img),
            }
        if query is not None:
            out["query"] = query
        return out


def _created(store: Any) -> dict:
    dt, tz = store.created
    names = sorted({str(tz), *([tz.key] if getattr(tz, "key", None) else [])})
    return {
        "aware": dt.utcoffset() is not None,
        "utc": dt.astimezone(datetime.timezone.utc).isoformat(),
        "utcoffset_s": dt.utcoffset().total_seconds(),
        "tz_names": names,
    }


def _props(store: Any) -> dict:
    return jsonable(
        {
            "class_mro": [c.__name__ for c in type(store).__mro__],
            "frame_count": store.frame_count,
            "frame_min": store.frame_min,
            "frame_max": store.frame_max,
            "chunks": list(store.chunks),
            "image_shape": list(store.image_shape),
            "uuid": store.uuid,
            "user_metadata": store.user_metadata,
            "frame_time_min": store.frame_time_min,
            "frame_time_max": store.frame_time_max,
            "has_extra_data": store.has_extra_data,
            "lossless": store.lossless,
            "frame_number": store.frame_number,
            "len": len(store),
            "created": _created(store),
        }
    )


def _extra_data(store: Any) -> dict | None:
    df = store.get_extra_data()
    if df is None:
        return None
    return {"columns": [str(c) for c in df.columns], "records": jsonable(df.to_dict(orient="records"))}


def answer(imgstore: Any, store_dir: str, plan: dict, answers: Answers) -> dict:
    """Upstream's answers to ``plan`` on the store at ``store_dir`` (the order of the README)."""
    expected: dict = {}
    store = imgstore.new_for_filename(store_dir)
    try:
        expected["props"] = _props(store)
        expected["frame_metadata"] = jsonable(store.get_frame_metadata())
        expected["extra_data"] = _extra_data(store)
        expected["sequential"] = [answers.read(store, store.get_next_image) for _ in range(plan["frame_count"])]
        expected["sequential_end"] = answers.read(store, store.get_next_image)
    finally:
        store.close()

    store = imgstore.new_for_filename(os.path.join(store_dir, "metadata.yaml"))
    try:
        expected["open_via_yaml_frame_count"] = store.frame_count
        parts = {
            "by_index": ("index_order", lambda i: lambda: store.get_image(None, exact_only=True, frame_index=i)),
            "by_number": ("by_number", lambda n: lambda: store.get_image(n, exact_only=True)),
            "nearest_number": ("nearest_number", lambda n: lambda: store.get_image(n, exact_only=False)),
            "missing_number": ("missing_number", lambda n: lambda: store.get_image(n)),
            "bad_index": ("bad_index", lambda i: lambda: store.get_image(None, frame_index=i)),
            "nearest_time": ("nearest_time", lambda t: lambda: store.get_nearest_image(t)),
        }
        for label, (key, make_call) in parts.items():
            expected[label] = [answers.read(store, make_call(q), q) for q in plan[key]]
        expected["seek_then_next"] = [_seek(store, step, answers) for step in plan["seek_then_next"]]
    finally:
        store.close()

    expected["extract_only"] = [_extract(imgstore, store_dir, i, via, answers) for i, via in plan["extract_only"]]
    return expected


def _seek(store: Any, step: dict, answers: Answers) -> dict:
    kind, value = step["seek"]
    if kind == "frame_index":
        first = answers.read(store, lambda: store.get_image(None, frame_index=value))
    elif kind == "frame_number":
        first = answers.read(store, lambda: store.get_image(value))
    else:
        first = answers.read(store, lambda: store.get_nearest_image(value))
    return {"first": first, "next": [answers.read(store, store.get_next_image) for _ in range(step["n_next"])]}


def _extract(imgstore: Any, store_dir: str, index: int, via: str, answers: Answers) -> dict:
    """The deviation: ``get_image(None, frame_index=i)`` of a store opened by ``path``."""
    path = store_dir if via == "dir" else os.path.join(store_dir, "metadata.yaml")
    store = imgstore.new_for_filename(path)
    try:
        img, _ = store.get_image(None, frame_index=index)
    except Exception as exc:
        return Answers.failure(exc)
    finally:
        store.close()
    return {"digest": answers.digest(img)}


def record(imgstore: Any, name: str, store_dir: str, spec: dict) -> None:
    """Derive the plan of the store at ``store_dir``, answer it with upstream, write the JSON."""
    store = imgstore.new_for_filename(store_dir)
    try:
        md = store.get_frame_metadata()
        lossy = not store.lossless
    finally:
        store.close()
    code_scheme = spec.get("code_scheme", "grid")
    created_rule = spec.get("created_rule", "stored")
    plan = make_plan(
        name,
        [int(n) for n in md["frame_number"]],
        [float(t) for t in md["frame_time"]],
        lossy,
        code_scheme,
        created_rule,
    )
    deviations = [DEVIATION_EXTRACT]
    written = None
    if spec.get("imgdtype") == "uint16" and spec.get("format") in ("png", "tif"):
        deviations.append(DEVIATION_UINT16)
        writer = _load_sibling("write_store")
        written = {i: f for i, f in enumerate(writer.make_frames(spec))}
    doc = {
        "schema": 1,
        "name": name,
        "description": spec.get("description", ""),
        "generator": f"upstream imgstore {imgstore.__version__} (numpy {np.__version__}), at test time",
        "plan": plan,
        "expected": answer(imgstore, store_dir, plan, Answers(plan, written)),
        "deviations": deviations,
    }
    with open(os.path.join(os.path.dirname(store_dir), f"{name}.expected.json"), "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=1)


def main(workdir: str, specs: list) -> dict:
    """Write every spec's store (and copy upstream's Motif example) into ``workdir``; answer each."""
    import imgstore

    writer = _load_sibling("write_store")
    for spec in specs:
        _use_zone(spec.get("zone", "UTC"))
        write(imgstore, writer, spec)
    motif = os.path.join(os.path.dirname(imgstore.__file__), "tests", "data", "store_mp4")
    shutil.copytree(motif, os.path.join(workdir, "store_mp4"))
    _use_zone("UTC")  # upstream reads created_utc as local time: right only in UTC
    names = []
    for spec in specs:
        name = os.path.basename(spec["path"])
        record(imgstore, name, spec["path"], spec)
        names.append(name)
    motif_spec = {
        "code_scheme": "barcode16",
        "created_rule": "mtime",
        "description": "upstream's own Motif recording (imgstore/tests/data/store_mp4 in its wheel)",
    }
    record(imgstore, "store_mp4", os.path.join(workdir, "store_mp4"), motif_spec)
    return {"names": [*names, "store_mp4"]}
