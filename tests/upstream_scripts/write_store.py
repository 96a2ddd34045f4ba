"""Oracle script: write stores from JSON specs with an imgstore implementation.

Run by ``tests/upstream_oracle.py`` with upstream imgstore 0.4.0 (``main``), and loaded by path
in the test process, where ``write_store`` is called with our own ``imgstore``, so both writers
get the same calls. Frames come from ``tests/framecodes.py`` (numpy only).

A spec is a dict with keys ``path``, ``format``, ``imgshape``, ``imgdtype``, ``chunksize``,
``frame_numbers``, ``frame_times`` and optionally ``frame_shape`` (shape of the frames given to
``add_image``, default ``imgshape``), ``frame_ids`` (default ``0..n-1``), ``noise`` (default
true), ``metadata`` (user metadata), ``encoding`` and ``extra``: a list of
``{"after": i, "data": {...}}``, each added with ``add_extra_data(**data)`` after frame ``i``
(``-1``: before the first frame).
"""

from __future__ import annotations

import copy
import traceback
from types import ModuleType
from typing import Any

import numpy as np

import framecodes as _framecodes  # tests/ is on sys.path in both the oracle and pytest


def make_frames(spec: dict) -> list[np.ndarray]:
    """The frames that ``write_store`` adds for ``spec``, in order."""
    shape = tuple(spec.get("frame_shape") or spec["imgshape"])
    count = len(spec["frame_numbers"])
    ids = spec.get("frame_ids") or list(range(count))
    noise = spec.get("noise", True)
    return [_framecodes.make_grid_frame(fid, shape, spec["imgdtype"], noise=noise) for fid in ids]


def open_for_writing(imgstore: ModuleType, spec: dict) -> Any:
    """``imgstore.new_for_format(...)`` in write mode, as the spec asks."""
    kwargs: dict = {
        "basedir": spec["path"],
        "mode": "w",
        "imgshape": tuple(spec["imgshape"]),
        "imgdtype": spec["imgdtype"],
        "chunksize": spec["chunksize"],
    }
    if spec.get("metadata") is not None:
        kwargs["metadata"] = copy.deepcopy(spec["metadata"])
    if spec.get("encoding"):
        kwargs["encoding"] = spec["encoding"]
    return imgstore.new_for_format(spec["format"], **kwargs)


def _extra_after(spec: dict) -> dict[int, list[dict]]:
    """The extra-data records of ``spec`` grouped by the frame index they follow."""
    grouped: dict[int, list[dict]] = {}
    for item in spec.get("extra", []):
        grouped.setdefault(int(item["after"]), []).append(item["data"])
    return grouped


def write_store(imgstore: ModuleType, spec: dict) -> dict:
    """Write the store of ``spec``; return its uuid and the digests of the frames given."""
    frames = make_frames(spec)
    extra = _extra_after(spec)
    store = open_for_writing(imgstore, spec)
    try:
        for data in extra.get(-1, []):
            store.add_extra_data(**copy.deepcopy(data))
        for i, (img, number, time) in enumerate(zip(frames, spec["frame_numbers"], spec["frame_times"])):
            store.add_image(img, number, time)
            for data in extra.get(i, []):
                store.add_extra_data(**copy.deepcopy(data))
        uuid = store.uuid
    finally:
        store.close()
    return {"uuid": uuid, "written": [_framecodes.digest(f, lossy=False) for f in frames]}


def main(specs: list) -> dict:
    """Oracle entry point: write each spec with upstream; errors are reported per store."""
    import imgstore

    results = {}
    for spec in specs:
        try:
            results[spec["path"]] = write_store(imgstore, spec)
        except Exception as exc:
            results[spec["path"]] = {
                "error": traceback.format_exc(),
                "raises": [c.__name__ for c in type(exc).__mro__],
                "message": str(exc),
            }
    return results
