"""Oracle script: open stores with an imgstore implementation and dump what it answers.

Run by ``tests/upstream_oracle.py`` with upstream imgstore 0.4.0 (``main``), and loaded by path
in the test process, where ``dump_store`` is called with our own ``imgstore``, so both readers
are probed in the same way. Needs only numpy (and the ``imgstore`` module it is given).

A dump holds the store's properties, ``get_frame_metadata()``, ``get_extra_data()`` as
``{columns, kinds, records}``, and, for every frame, the reads by ``get_next_image()``,
``get_image(None, frame_index=i)``, ``get_image(frame_number)`` and
``get_nearest_image(frame_time)``, plus the reads that must fail. Each read is
``{frame_number, frame_time, kinds, attr_frame_number, digest}`` or ``{raises, message}``.
NaN stays a float NaN (JSON ``NaN``).
"""

from __future__ import annotations

import datetime
import traceback
from types import ModuleType
from typing import Any, Callable

import numpy as np

import framecodes as _framecodes  # tests/ is on sys.path in both the oracle and pytest


def jsonable(obj: Any) -> Any:
    """``obj`` with numpy scalars/arrays, tuples and non-string keys turned into JSON types."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def kind(value: Any) -> str:
    """A coarse type name: ``bool``, ``int``, ``float``, ``str``, ``None`` or the class name."""
    if value is None:
        return "None"
    if isinstance(value, (bool, np.bool_)):
        return "bool"
    if isinstance(value, (int, np.integer)):
        return "int"
    if isinstance(value, (float, np.floating)):
        return "float"
    if isinstance(value, str):
        return "str"
    return type(value).__name__


def failure(exc: BaseException) -> dict:
    """How a call failed: the exception's class names (MRO) and message."""
    return {"raises": [c.__name__ for c in type(exc).__mro__], "message": str(exc)}


def read(store: Any, call: Callable[[], Any], query: Any = None) -> dict:
    """Run one image read and describe its result (or its failure)."""
    try:
        img, (frame_number, frame_time) = call()
    except Exception as exc:
        out = failure(exc)
    else:
        out = {
            "frame_number": jsonable(frame_number),
            "frame_time": jsonable(frame_time),
            "kinds": [kind(frame_number), kind(frame_time)],
            "attr_frame_number": jsonable(store.frame_number),
            "digest": _framecodes.digest(img, lossy=not store.lossless),
        }
    if query is not None:
        out["query"] = query
    return out


def created(store: Any) -> dict:
    """``store.created`` as ``{aware, utc, utcoffset_s, tz}`` (``utc``: the instant in UTC)."""
    dt, tz = store.created
    offset = dt.utcoffset()
    aware = offset is not None
    return {
        "aware": aware,
        "utc": dt.astimezone(datetime.timezone.utc).isoformat() if aware else dt.isoformat(),
        "utcoffset_s": offset.total_seconds() if aware else None,
        "tz": str(tz),
    }


def props(store: Any) -> dict:
    """The store's properties right after opening."""
    return jsonable(
        {
            "class_mro": [c.__name__ for c in type(store).__mro__],
            "frame_count": store.frame_count,
            "len": len(store),
            "frame_min": store.frame_min,
            "frame_max": store.frame_max,
            "frame_number": store.frame_number,
            "chunks": list(store.chunks),
            "image_shape": list(store.image_shape),
            "uuid": store.uuid,
            "user_metadata": store.user_metadata,
            "frame_time_min": store.frame_time_min,
            "frame_time_max": store.frame_time_max,
            "has_extra_data": store.has_extra_data,
            "lossless": store.lossless,
            "mode": store.mode,
            "created": created(store),
        }
    )


def frame_metadata(store: Any) -> dict:
    """``get_frame_metadata()`` with the container and element kinds it used."""
    md = store.get_frame_metadata()
    return {
        "type": type(md).__name__,
        "value_types": {k: type(v).__name__ for k, v in md.items()},
        "kinds": {k: sorted({kind(x) for x in v}) for k, v in md.items()},
        "values": jsonable({k: list(v) for k, v in md.items()}),
    }


def extra_data(store: Any) -> dict | None:
    """``get_extra_data()`` as columns, dtype kinds and records (NaN where a record lacks a key)."""
    df = store.get_extra_data()
    if df is None:
        return None
    return {
        "type": type(df).__name__,
        "columns": [str(c) for c in df.columns],
        "kinds": {str(c): df[c].dtype.kind for c in df.columns},
        "records": jsonable(df.to_dict(orient="records")),
    }


def _nearest_number_queries(numbers: list) -> list:
    """Frame numbers to ask ``get_image(n, exact_only=False)`` for: below, above, in gaps."""
    if not numbers:
        return []
    lo, hi = min(numbers), max(numbers)
    present = set(numbers)
    gaps = [n for n in range(lo, hi) if n not in present][:3]
    return [lo - 5, hi + 7, *gaps]


def frame_reads(store: Any, md: dict) -> dict:
    """Every frame read sequentially, by index, by number and by time, and reads that fail."""
    count = len(md["frame_number"])
    numbers = [int(n) for n in md["frame_number"]]
    times = [float(t) for t in md["frame_time"]]
    unique_numbers = list(dict.fromkeys(numbers))
    missing = (max(numbers) + 1000) if numbers else 12345
    return {
        "sequential": [read(store, store.get_next_image) for _ in range(count)],
        "sequential_end": read(store, store.get_next_image),
        "by_index": [read(store, lambda i=i: store.get_image(None, frame_index=i), i) for i in range(count)],
        "by_number": [read(store, lambda n=n: store.get_image(n), n) for n in unique_numbers],
        "nearest_number": [
            read(store, lambda n=n: store.get_image(n, exact_only=False), n) for n in _nearest_number_queries(numbers)
        ],
        "nearest_time": [read(store, lambda t=t: store.get_nearest_image(t), t) for t in times],
        "missing_number": read(store, lambda: store.get_image(missing), missing),
        "bad_index": read(store, lambda: store.get_image(None, frame_index=count), count),
    }


def dump_store(imgstore: ModuleType, path: str) -> dict:
    """Everything a reader answers about the store at ``path`` (see the module docstring)."""
    store = imgstore.new_for_filename(path)
    try:
        out = {"props": props(store), "frame_metadata": frame_metadata(store)}
        out["extra_data"] = extra_data(store)
        out.update(frame_reads(store, out["frame_metadata"]["values"]))
    finally:
        store.close()
    return out


def main(paths: list) -> dict:
    """Oracle entry point: dump each store in ``paths`` with upstream; errors are per store."""
    import imgstore

    results = {}
    for path in paths:
        try:
            results[path] = dump_store(imgstore, path)
        except Exception as exc:
            results[path] = {"error": traceback.format_exc(), **failure(exc)}
    return results
