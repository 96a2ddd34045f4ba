"""Hostile stores: the named cases of issue 19, and a mutation fuzzer over real stores.

A store may come from anyone: a lab's shared disk, a download, a colleague's USB stick. Reading one
must never hang, never exhaust memory, never open a file outside it, never raise anything but this
library's own errors, and never return a wrong frame. This module builds such stores and checks
exactly that.

- ``NAMED``: every hostile store of issue 19 (FIFOs, ``/dev/zero``, declared sizes of 10**12,
  nesting 50,000 deep, an ``extension`` that climbs out of the store...), built from a real store.
- The mutation fuzzer: real stores of each format (finished, with a writer killed mid-chunk, and
  one with an index cache), each file of which is, in turn, bit-flipped, cut short, swapped with
  another of the store's files, or replaced by a FIFO, a directory, a link to ``/dev/zero`` or a
  dangling link.

Every case runs in a worker process with a memory limit (``resource.setrlimit(RLIMIT_AS)``) and a
timeout; a case that times out is a hang, a worker that dies is a crash. ``inspect_store``
reads everything the public API offers and states what must hold (see its docstring).

The test suite runs a short fixed slice (``tests/test_hostile_stores.py``); the long mode is::

    python tests/hostile_corpus.py --long            # every format, every file, many seeds
    python tests/hostile_corpus.py --cases 200 --formats npy,avc1/mp4 --jobs 2
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import dataclasses
import json
import logging
import math
import os
import random
import resource
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

TESTS_DIR = Path(__file__).resolve().parent
if str(TESTS_DIR) not in sys.path:  # run as a script: framecodes beside this file
    sys.path.insert(0, str(TESTS_DIR))

from framecodes import decode_grid, make_grid_frame  # noqa: E402

#: address space a worker may use: imports and decoder threads take about 1.1 GB of it; a read
#: that runs away (/dev/zero, a declared 10**12 entries) fails long before the machine suffers
MEMORY_LIMIT_BYTES = 3 << 30
#: seconds a case may take: a normal one takes 0.02-0.5 s
CASE_TIMEOUT = 20.0
#: seconds the parent waits beyond that before it kills a worker that does not answer
KILL_GRACE = 10.0

FIRST_NUMBER = 1000
T0 = 1_700_000_000.0

CI_FORMATS = ("npy", "png", "jpg", "bpk", "mjpeg/avi", "avc1/mp4", "ffv1/mkv")
LONG_FORMATS = (
    "npy", "png", "jpg", "tif", "bmp", "ppm", "pgm", "bpk",
    "mjpeg/avi", "avc1/mp4", "h264/mkv", "ffv1/mkv", "hevc/mp4", "av1/mkv",
)  # fmt: skip
#: formats whose frame files carry a checksum: a damaged one is refused, never read as other pixels
CHECKSUMMED = ("png", "bpk")
#: byte mutations, of every file; 'values' rewrites metadata, an index or a journal with other
#: well-formed values; the rest replace a file by something that is not a regular file
MUTATIONS = ("flip", "cut", "swap", "values", "fifo", "directory", "devzero", "dangling")
BYTE_MUTATIONS = ("flip", "cut", "swap", "values")
#: files 'values' rewrites: metadata, chunk indexes, journals
VALUE_SUFFIXES = ("metadata.yaml", ".npz", ".journal")
#: the index cache a reader writes (``imgstore.index.cache``): it holds every chunk's frame list


# ------------------------------------------------------------------------------------------------
# the real stores everything starts from
# ------------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Base:
    """A real store to start from: ``variant`` is 'closed', 'killed' (a writer killed mid-chunk)
    or 'cached' (ten chunks, with the index cache a reader writes)."""

    fmt: str
    variant: str = "closed"

    @property
    def name(self) -> str:
        return f"{self.fmt}:{self.variant}"

    @property
    def shape(self) -> Tuple[int, ...]:
        grey = self.fmt in ("npy", "pgm", "ffv1/mkv", "h264/mkv", "bpk")
        return (48, 64) if grey else (48, 64, 3)

    @property
    def chunksize(self) -> int:
        return 1 if self.variant == "cached" else 4

    @property
    def frames(self) -> int:
        return 10


def bases(formats: Iterable[str]) -> List[Base]:
    out = []
    for fmt in formats:
        out += [Base(fmt, "closed"), Base(fmt, "killed")]
        if fmt == "npy":
            out.append(Base(fmt, "cached"))
    return out


def write_base(base: Base, path: Path) -> None:
    """Write the store of ``base`` at ``path``: frame ``i`` spells id ``i`` (see framecodes)."""
    import imgstore

    snapshot = None
    with imgstore.new_for_format(base.fmt, path=str(path.with_suffix(".writing")), imgshape=base.shape,
                                 chunksize=base.chunksize) as store:  # fmt: skip
        for i in range(base.frames):
            store.add_image(make_grid_frame(i, base.shape), FIRST_NUMBER + 3 * i, T0 + 0.1 * i)
            if i % 3 == 1:
                store.add_extra_data(i=i, note=f"after frame {i}")
        if base.variant == "killed":  # what a writer killed now leaves: the last chunk unfinished
            store.flush()
            snapshot = path.with_suffix(".snapshot")
            shutil.copytree(path.with_suffix(".writing"), snapshot, symlinks=True)
    os.replace(snapshot or path.with_suffix(".writing"), path)
    shutil.rmtree(path.with_suffix(".writing"), ignore_errors=True)
    if base.variant == "cached":
        from imgstore.index.sealedfile import SEALED_INDEX_FILENAME

        (path / SEALED_INDEX_FILENAME).unlink()  # a sealed store needs no cache: this one is as upstream's
        prime_cache(path)


def prime_cache(path: Path) -> None:
    """Make a reader write the store's index cache (as it does once index files have settled)."""
    import imgstore
    from imgstore.index import cache as _indexcache

    settle, _indexcache.SETTLE_NS = _indexcache.SETTLE_NS, 0
    try:
        imgstore.new_for_filename(str(path)).close()
    finally:
        _indexcache.SETTLE_NS = settle
    assert _index_cache_of(path).is_file(), "no index cache was written"


@dataclasses.dataclass
class Reference:
    """What the unmutated store reads as: per position, its chunk, place in the chunk, number, time, pixels."""

    store_block: Dict[str, Any]
    lossless: bool
    image_shape: Tuple[int, ...]
    dtype: str
    layout: str  # 'folder' or 'file'
    suffix: str  # frame file extension ('npy') or chunk file extension ('.mp4')
    frames: Dict[Tuple[int, int], Tuple[int, float, np.ndarray, int]]  # (chunk, idx) -> number, time, img, id


def read_reference(path: Path, base: Base) -> Reference:
    import yaml

    import imgstore

    store = imgstore.new_for_filename(str(path))
    try:
        frames = {}
        for position, (chunk_n, idx) in enumerate(positions(store)):
            img, (number, frame_time) = store.get_image(None, frame_index=position)
            frames[(chunk_n, idx)] = (number, frame_time, img, decode_grid(img))
        written = [frames[key][3] for key in sorted(frames)]
        if written != list(range(len(written))) or (base.variant == "closed" and len(written) != base.frames):
            raise AssertionError(f"{base.name}: the unmutated store reads back frames {written}")
        block = yaml.safe_load((path / "metadata.yaml").read_text())["__store"]
        video = "extension" in block
        return Reference(
            store_block=block,
            lossless=store.lossless,
            image_shape=tuple(store.image_shape),
            dtype=str(block["imgdtype"]),
            layout="file" if video else "folder",
            suffix=block["extension"] if video else block["format"],
            frames=frames,
        )
    finally:
        store.close()


def positions(store: Any) -> List[Tuple[int, int]]:
    """``(chunk, place in chunk)`` of each store position, from the public per-chunk index."""
    out = []
    for chunk_n in store.chunks:
        out += [(chunk_n, idx) for idx in range(len(store._get_chunk_metadata(chunk_n)["frame_number"]))]
    return out


def store_files(path: Path) -> List[str]:
    """Every file of a store, relative to it, in a fixed order."""
    return sorted(str(p.relative_to(path)) for p in path.rglob("*") if p.is_file() and not p.is_symlink())


# ------------------------------------------------------------------------------------------------
# mutations
# ------------------------------------------------------------------------------------------------
#: how a mutated store's file came to be: ('same', rel) unchanged, ('from', other rel) the bytes of
#: another file of the original store, ('damaged', rel) changed bytes or not a regular file at all
Origins = Dict[str, Tuple[str, str]]


def mutate(path: Path, kind: str, target: str, rng: random.Random) -> Tuple[Origins, str]:
    """Apply one mutation to the store at ``path``; returns the files it changed and what it did."""
    file = path / target
    data = file.read_bytes()
    if kind == "flip":
        buf = bytearray(data)
        bits = rng.choice((1, 1, 2, 4, 16)) if buf else 0
        for _ in range(bits):
            bit = rng.randrange(len(buf) * 8)
            buf[bit // 8] ^= 1 << (bit % 8)
        file.write_bytes(bytes(buf))
        return {target: ("damaged", target)}, f"flip {bits} bit(s) of {target}"
    if kind == "cut":
        size = rng.choice((0, rng.randrange(max(1, len(data))), max(0, len(data) - rng.randrange(1, 64))))
        file.write_bytes(data[:size])
        return {target: ("damaged", target)}, f"cut {target} to {size} of {len(data)} bytes"
    if kind == "values":
        return {target: ("damaged", target)}, f"{target}: {_rewrite_values(file, rng)}"
    if kind.startswith("set "):  # 'set <key>=<JSON value>': one metadata setting changed
        key, value = kind[4:].split("=", 1)
        _write_store_block(path, **{key: json.loads(value)})
        return {target: ("damaged", target)}, f"metadata {key}: {value}"
    if kind == "swap":
        others = [f for f in store_files(path) if f != target]
        other = rng.choice(others)
        other_data = (path / other).read_bytes()
        (path / other).write_bytes(data)
        file.write_bytes(other_data)
        return {target: ("from", other), other: ("from", target)}, f"swap {target} with {other}"
    file.unlink()
    if kind == "fifo":
        os.mkfifo(file)
    elif kind == "directory":
        file.mkdir()
    elif kind == "devzero":
        file.symlink_to("/dev/zero")
    elif kind == "dangling":
        file.symlink_to(path / "no-such-file")
    else:
        raise ValueError(f"unknown mutation {kind!r}")
    return {target: ("damaged", target)}, f"{target} replaced by a {kind}"


def _metadata_changes(smd: Dict[str, Any]) -> Dict[str, List[Any]]:
    """Other well-formed values for each ``__store`` key (what another program might have written)."""
    h, w = smd["imgshape"][:2]
    return {
        "imgshape": [[h, w, 3], [h, w], [w, h], [h // 2, w], [h * 2, w], [h + 1, w], [h, w, 4]],
        "imgdtype": ["uint16", "float32", "int8", "bool", "uint8"],
        "format": ["npy", "png", "jpg", "bpk", "mjpeg/avi", "mjpeg", "avc1/mp4", "ffv1/mkv", "libx264", "tif"],
        "class": ["DirectoryImgStore", "VideoImgStore", "VideoImgStoreFFMPEG"],
        "encoding": ["cv_bayerbg", "cv_bgra", "cv_yuv_yuyv", "cv_gray", None],
        "chunksize": [1, 3, 10**9],
        "extension": [".avi", ".mkv", ".mp4", None],
        "version": [1, 3],
    }


def _index_changes(numbers: np.ndarray, times: np.ndarray, rng: random.Random) -> Tuple[str, Any, Any]:
    """Another list of frames for a chunk: shorter, longer, reordered, with odd values."""
    n = len(numbers)
    changes: Dict[str, Callable[[], Tuple[Any, Any]]] = {
        "one frame fewer": lambda: (numbers[:-1], times[:-1]),
        "two frames more": lambda: (
            np.r_[numbers, numbers[-1:] + 1, numbers[-1:] + 2] if n else [1, 2],
            np.r_[times, times[-1:] + 1, times[-1:] + 2] if n else [1.0, 2.0],
        ),
        "reversed": lambda: (numbers[::-1], times[::-1]),
        "a number twice": lambda: (np.r_[numbers[:1], numbers[:-1]] if n else numbers, times),
        "a time NaN": lambda: (numbers, np.where(np.arange(n) == n // 2, np.nan, times)),
        "fractional numbers": lambda: (numbers + 0.5, times),
        "empty": lambda: (numbers[:0], times[:0]),
        "lengths differ": lambda: (numbers, times[:-1]),
        "huge numbers": lambda: (numbers + 2**62, times),
        "whole floats": lambda: (numbers.astype(float), times),
        "int32 and float32": lambda: (numbers.astype(np.int32), times.astype(np.float32)),
    }
    name = rng.choice(sorted(changes))
    return (name, *changes[name]())


def _rewrite_values(file: Path, rng: random.Random) -> str:
    """Rewrite metadata, an index or a journal with other well-formed values; says what changed."""
    import yaml

    name = file.name
    if name == "metadata.yaml":
        document = yaml.safe_load(file.read_text())
        smd = document["__store"]
        changes = _metadata_changes(smd)
        key = rng.choice(sorted(changes))
        smd[key] = rng.choice(changes[key])
        if smd[key] is None:
            del smd[key]
        file.write_text(yaml.safe_dump(document))
        return f"metadata {key}: {smd.get(key)!r}"
    if name.endswith(".npz"):
        with np.load(file, allow_pickle=False) as npz:
            arrays = dict(npz)
        what, arrays["frame_number"], arrays["frame_time"] = _index_changes(
            np.asarray(arrays["frame_number"]), np.asarray(arrays["frame_time"]), rng
        )
        with open(file, "wb") as f:
            np.savez(f, **arrays)
        return f"index: {what}"
    from imgstore.durability.journal import read_journal

    contents = read_journal(str(file))
    what, numbers, times = _index_changes(contents.frame_number, contents.frame_time, rng)
    count = min(len(numbers), len(times))
    file.write_bytes(_journal([(int(n) % 2**63, float(t)) for n, t in zip(numbers[:count], times[:count])]))
    return f"journal: {what}"


# ------------------------------------------------------------------------------------------------
# reading a store the way a user would, and what must hold
# ------------------------------------------------------------------------------------------------
class CaseTimeout(BaseException):
    """A case ran out of time (a BaseException: no ``except Exception`` or ``except OSError`` in
    the code under test may swallow it)."""


@dataclasses.dataclass
class Summary:
    """What reading a store gave."""

    outcome: str = "opened"  # 'opened', 'refused', 'hang', 'crash'
    open_error: Optional[List[str]] = None
    frame_count: int = 0
    chunks: List[int] = dataclasses.field(default_factory=list)
    ids: List[Optional[int]] = dataclasses.field(default_factory=list)  # per position (None: error)
    frames_checked: int = 0  # compared with the original frame
    frames_unverifiable: int = 0  # damaged data without a checksum: only shape and dtype checked
    frames_other_id: int = 0  # of those, frames whose pattern spells another frame's id (not a rule)
    extra_rows: Optional[int] = None
    errors: Dict[str, int] = dataclasses.field(default_factory=dict)  # our errors, by class
    foreign: List[str] = dataclasses.field(default_factory=list)  # anything else raised
    violations: List[str] = dataclasses.field(default_factory=list)
    unnamed: List[str] = dataclasses.field(default_factory=list)  # our errors naming no path
    seconds: float = 0.0
    description: str = ""


class _Reader:
    """Calls the store's API, sorting what comes out into our errors and foreign ones."""

    def __init__(self, summary: Summary, store_dir: Path) -> None:
        self.summary = summary
        self.store_dir = str(store_dir)

    def call(self, where: str, fn: Callable[[], Any]) -> Tuple[bool, Any]:
        import imgstore.errors

        try:
            return True, fn()
        except CaseTimeout:
            raise
        except imgstore.errors.ImgStoreError as exc:
            name = type(exc).__name__
            self.summary.errors[name] = self.summary.errors.get(name, 0) + 1
            if self.store_dir not in str(exc):
                self.summary.unnamed.append(f"{where}: {name}: {exc}")
            return False, exc
        except EOFError as exc:
            return False, exc
        except BaseException as exc:  # MemoryError, RecursionError, AttributeError...: not ours
            self.summary.foreign.append(f"{where}: {type(exc).__name__}: {str(exc)[:300]}")
            return False, exc


def inspect_store(store_dir: Path, ref: Optional[Reference], origins: Origins) -> Summary:
    """Read everything of the store at ``store_dir``; what must hold is recorded as violations.

    The guarantee, for a store whose files may have been changed in any way (``origins`` says
    which files changed and how; ``ref`` is how the unchanged store reads):

    1. Every call either returns or raises one of this library's errors (``ImgStoreError``;
       ``EOFError`` at the end of ``get_next_image``); nothing hangs, nothing runs out of memory.
    2. Every frame returned has the shape and dtype the store's metadata declares.
    3. A frame is never misplaced: the frame at a position comes from its own place in its own
       chunk. When that place's data (its frame file, or its chunk's video file) is unchanged, the
       frame equals the original frame there (lossless formats: exactly; lossy: the same frame id);
       when the data is another file of the original store (a swap), it equals the frame that file
       held; when the data is damaged, formats with a checksum (png, bpk) give the original frame
       or an error, and formats without one (npy, jpg, video...) can only be held to 2: a flipped
       bit in raw pixels or in a compressed stream is not detectable. Each returned frame's
       ``(frame_number, frame_time)`` is what ``get_frame_metadata`` lists at that position, and,
       while its chunk's index and journal are unchanged, what the original store had there. The
       index cache counts as every chunk's index: its frame columns carry no checksum (only its
       header does), so a bit flipped in them changes numbers or times, never pixels.
    4. When ``metadata.yaml`` was changed and still parses to other settings, frames are only
       held to 1 and 2 (the store is then another store: another format, shape, encoding).
    """
    import yaml

    import imgstore

    summary = Summary()
    reader = _Reader(summary, store_dir)
    started = time.monotonic()
    ok, store = reader.call("open", lambda: imgstore.new_for_filename(str(store_dir)))
    if not ok:
        summary.outcome = "refused"
        summary.open_error = [type(store).__name__, str(store)]
        summary.seconds = time.monotonic() - started
        return summary
    try:
        _inspect_open_store(store, reader, ref, origins, _metadata_intact(store_dir, ref, yaml))
    finally:
        reader.call("close", store.close)
    summary.seconds = time.monotonic() - started
    return summary


def _metadata_intact(store_dir: Path, ref: Optional[Reference], yaml: Any) -> bool:
    if ref is None:
        return False
    try:
        return yaml.safe_load((store_dir / "metadata.yaml").read_bytes())["__store"] == ref.store_block
    except Exception:  # a changed file that does not even parse: the library refused it already
        return False


def _inspect_open_store(store: Any, reader: _Reader, ref: Optional[Reference], origins: Origins,
                        intact: bool) -> None:  # fmt: skip
    summary = reader.summary
    ok, metadata = reader.call("get_frame_metadata", store.get_frame_metadata)
    ok_places, places = reader.call("positions", lambda: positions(store))
    summary.frame_count = store.frame_count
    summary.chunks = list(store.chunks)
    if not ok or not ok_places:
        return
    if len(places) != store.frame_count or len(metadata["frame_number"]) != store.frame_count:
        summary.violations.append(f"frame_count {store.frame_count}, chunk lengths {len(places)}, "
                                  f"metadata {len(metadata['frame_number'])} disagree")  # fmt: skip
        return
    shape, dtype = tuple(store.image_shape), np.dtype(store.view.metadata.imgdtype)
    check = _FrameCheck(summary, ref, origins, intact, shape, dtype, metadata, places)

    # sequentially, as most scripts read
    for position in range(store.frame_count + 1):
        ok, got = reader.call(f"get_next_image #{position}", store.get_next_image)
        if not ok:
            if isinstance(got, EOFError) and position < store.frame_count:
                summary.violations.append(f"EOFError at position {position} of {store.frame_count}")
            break
        if position == store.frame_count:
            summary.violations.append("get_next_image read past the last frame")
            break
        check.frame(f"get_next_image #{position}", position, *got)
    # by position, by number, by time
    summary.ids = []
    for position in range(store.frame_count):
        ok, got = reader.call(
            f"get_image(frame_index={position})", lambda p=position: store.get_image(None, frame_index=p)
        )
        summary.ids.append(check.frame(f"get_image(frame_index={position})", position, *got) if ok else None)
    for position in range(0, store.frame_count, 3):
        number = metadata["frame_number"][position]
        ok, got = reader.call(f"get_image({number})", lambda n=number: store.get_image(n))
        if ok and got[1][0] != number:
            summary.violations.append(f"get_image({number}) returned frame number {got[1][0]}")
    times = [t for t in metadata["frame_time"] if not math.isnan(t)]  # a NaN query is the caller's error
    for frame_time in times[:: max(1, len(times) // 3)]:
        reader.call(f"get_nearest_image({frame_time})", lambda t=frame_time: store.get_nearest_image(t))
    ok, df = reader.call("get_extra_data", store.get_extra_data)
    summary.extra_rows = (0 if df is None else len(df)) if ok else None
    reader.call("find_extra_data_files", store.find_extra_data_files)
    reader.call("refresh", store.refresh)


class _FrameCheck:
    """Rules 2 and 3 of ``inspect_store`` for one returned frame."""

    def __init__(self, summary: Summary, ref: Optional[Reference], origins: Origins, intact: bool,
                 shape: Tuple[int, ...], dtype: np.dtype, metadata: Dict[str, list],
                 places: List[Tuple[int, int]]) -> None:  # fmt: skip
        self.summary, self.ref, self.origins, self.intact = summary, ref, origins, intact
        self.shape, self.dtype, self.metadata, self.places = shape, dtype, metadata, places
        self.checked: set = set()

    def frame(self, where: str, position: int, img: Any, md: Tuple[Any, float]) -> Optional[int]:
        summary = self.summary
        if not isinstance(img, np.ndarray) or img.shape != self.shape or img.dtype != self.dtype:
            got = (getattr(img, "shape", None), getattr(img, "dtype", type(img).__name__))
            summary.violations.append(
                f"{where}: frame of shape/dtype {got}, the store declares {self.shape} {self.dtype}"
            )
            return None
        frame_id = decode_grid(img)
        listed = (self.metadata["frame_number"][position], self.metadata["frame_time"][position])
        if not _same_md(md, listed):
            summary.violations.append(f"{where}: frame number/time {md}, get_frame_metadata lists {listed}")
        if not self.intact or self.ref is None:
            return frame_id
        chunk_n, idx = self.places[position]
        ref = self.ref
        if self._index_intact(chunk_n) and (chunk_n, idx) in ref.frames:
            want = ref.frames[(chunk_n, idx)][:2]
            if not _same_md(md, want):
                summary.violations.append(f"{where}: frame number/time {md}, the unchanged index says {want}")
        data_kind, source = self._data_origin(chunk_n, idx)
        if source is None:  # damaged, or bytes of a file that held no frame
            if ref.layout == "folder" and ref.suffix in CHECKSUMMED and data_kind == "damaged":
                source = (chunk_n, idx)  # a checksummed frame file: the original or an error
            else:
                if position not in self.checked:
                    summary.frames_unverifiable += 1
                    want = ref.frames.get((chunk_n, idx))
                    summary.frames_other_id += want is not None and frame_id not in (-1, want[3])
                self.checked.add(position)
                return frame_id
        if source not in ref.frames:
            summary.violations.append(f"{where}: a frame was returned from {self._data_name(chunk_n, idx)}, "
                                      f"which held no frame at {source}")  # fmt: skip
            return frame_id
        want_img, want_id = ref.frames[source][2], ref.frames[source][3]
        same = np.array_equal(img, want_img) if ref.lossless else frame_id == want_id
        if not same:
            summary.violations.append(
                f"{where}: wrong pixels at chunk {chunk_n} frame {idx}: frame id {frame_id}, expected the "
                f"frame of {source} (id {want_id}) from {self._data_name(chunk_n, idx)} ({data_kind})"
            )
        summary.frames_checked += position not in self.checked
        self.checked.add(position)
        return frame_id

    def _data_name(self, chunk_n: int, idx: int) -> str:
        if self.ref.layout == "folder":
            return f"{chunk_n:06d}/{idx:06d}.{self.ref.suffix}"
        return f"{chunk_n:06d}{self.ref.suffix}"

    def _data_origin(self, chunk_n: int, idx: int) -> Tuple[str, Optional[Tuple[int, int]]]:
        """How the data of a place came to be, and which original place's frame it holds."""
        kind, rel = self.origins.get(self._data_name(chunk_n, idx), ("same", self._data_name(chunk_n, idx)))
        if kind == "damaged":
            return kind, None
        name = Path(rel).name
        if self.ref.layout == "folder":
            parent = Path(rel).parent.name
            if not (parent.isdigit() and name == f"{name[:6]}.{self.ref.suffix}" and name[:6].isdigit()):
                return kind, None
            return kind, (int(parent), int(name[:6]))
        if name != f"{name[:6]}{self.ref.suffix}" or not name[:6].isdigit():
            return kind, None
        return kind, (int(name[:6]), idx)

    def _index_intact(self, chunk_n: int) -> bool:
        """Whether none of the files that list a chunk's frames changed: its index, its journal,
        or the index cache (which stands in for every chunk's index)."""
        base = f"{chunk_n:06d}/index" if self.ref.layout == "folder" else f"{chunk_n:06d}"
        files = [base + suffix for suffix in (".npz", ".yaml", ".journal")]
        return all(f not in self.origins for f in files)


def _same_md(a: Tuple[Any, float], b: Tuple[Any, float]) -> bool:
    def same(x: Any, y: Any) -> bool:
        both_nan = isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y)
        return both_nan or x == y

    return same(a[0], b[0]) and same(a[1], b[1])


# ------------------------------------------------------------------------------------------------
# the named cases of issue 19
# ------------------------------------------------------------------------------------------------
def _write_store_block(path: Path, **changes: Any) -> None:
    import yaml

    md = yaml.safe_load((path / "metadata.yaml").read_text())
    md["__store"].update(changes)
    (path / "metadata.yaml").write_text(yaml.safe_dump(md))


def _index_cache_of(store: Path) -> Path:
    """Where a store's index cache is kept (the user's cache folder, not the store)."""
    from imgstore.index.cachefile import cache_path

    return Path(cache_path(str(store)))


def _replace(path: Path, make: Callable[[Path], None]) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()
    make(path)


def _npy_header(shape: str, descr: str = "|u1", body: bytes = b"\0" * 64) -> bytes:
    header = f"{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}".encode()
    header += b" " * (127 - 10 - len(header) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header + body


def _huge_npz(path: Path) -> None:
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("frame_number.npy", _npy_header("(1000000000000,)", "<i8", b"\0" * 8))
        archive.writestr("frame_time.npy", _npy_header("(1000000000000,)", "<f8", b"\0" * 8))
    path.write_bytes(buffer.getvalue())


def _zip_version(path: Path) -> None:
    """A damaged npz whose member needs 'zip version 17.3' (zipfile: NotImplementedError)."""
    data = bytearray(path.read_bytes())
    at = data.find(b"PK\x01\x02")
    data[at + 6], data[at + 8] = 173, 99  # version needed; an unknown compression method
    local = data.find(b"PK\x03\x04")
    data[local + 4], data[local + 8] = 173, 99
    path.write_bytes(bytes(data))


def _bad_npy_header_npz(path: Path) -> None:
    """An npz whose array header is an unterminated string literal (numpy: tokenize.TokenError)."""
    import io
    import zipfile

    bad = _npy_header("(4,), '''")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("frame_number.npy", bad)
        archive.writestr("frame_time.npy", bad)
    path.write_bytes(buffer.getvalue())


def _codec_tag_zzzz(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data.replace(b"avc1", b"zzzz"))


def _bmp_huge_width(path: Path) -> None:
    """A bmp header declaring a width of 2**30 (OpenCV: an assertion, cv2.error)."""
    data = bytearray(path.read_bytes())
    data[18:22] = (1 << 30).to_bytes(4, "little")
    path.write_bytes(bytes(data))


def _not_utf8_metadata(path: Path) -> None:
    """The muxer's name in a video's metadata made invalid UTF-8 (PyAV: UnicodeDecodeError)."""
    data = bytearray(path.read_bytes())
    at = data.index(b"Lavf")
    data[at + 1] = 0xE6  # a UTF-8 lead byte followed by ASCII
    path.write_bytes(bytes(data))


def _mkv_cluster_crc_size(path: Path) -> None:
    """The size of the first cluster's CRC-32 element grown from 4 to 68 bytes: seeking then fails
    with EPERM (PyAV: av.error.PermissionError, an FFmpegError and a PermissionError)."""
    import re

    found = re.search(rb"\x1f\x43\xb6\x75..\xbf\x84", path.read_bytes(), re.S)
    if found is None:
        raise AssertionError(f"{path}: no cluster with a CRC-32 element")
    data = bytearray(path.read_bytes())
    data[found.end() - 1] = 0xC4
    path.write_bytes(bytes(data))


def _escape(store: Path, outside: Path) -> None:
    """``extension: /../../secret.mp4``, and an unfinished chunk 0 for recovery to open through it.

    The chunk's path, ``<store>/000000/../../secret.mp4``, is ``secret.mp4`` beside the store:
    there lies a video whose frames (ids 4-7) are none of chunk 0's (ids 0-3).
    """
    shutil.copy(store / "000001.mp4", store.parent / "secret.mp4")
    (store / "000000.npz").unlink()
    (store / "000000.journal").write_bytes(_journal([(FIRST_NUMBER + 3 * i, T0 + 0.1 * i) for i in range(4)]))
    (store / "000000").mkdir()  # so that '000000/..' resolves
    _write_store_block(store, extension="/../../secret.mp4")


def _journal(records: Sequence[Tuple[int, float]]) -> bytes:
    import struct
    import zlib

    from imgstore.durability.journal import MAGIC

    out = MAGIC
    for number, frame_time in records:
        payload = struct.pack("<qd", number, frame_time)
        out += payload + struct.pack("<I", zlib.crc32(payload))
    return out


def _nested_json(depth: int) -> str:
    return "[" + '{"a": ' * depth + "1" + "}" * depth + "]"


@dataclasses.dataclass(frozen=True)
class Named:
    """A hostile store from issue 19: ``make(store, outside)`` turns a copy of ``base`` into it."""

    name: str
    base: Base
    make: Callable[[Path, Path], None]
    what: str


def _named() -> Dict[str, Named]:
    npy, npy_killed, mp4, mp4_killed = Base("npy"), Base("npy", "killed"), Base("avc1/mp4"), Base("avc1/mp4", "killed")
    cases = [
        Named("extension-escape", mp4, _escape,
              "metadata extension '/../../secret.mp4' with a chunk to recover: recovery must not open a file outside"),
        Named("fifo-lock", npy, lambda s, o: os.mkfifo(s / ".lock"), "a FIFO as .lock: opening must not hang"),
        Named("fifo-frame", npy, lambda s, o: _replace(s / "000000" / "000001.npy", os.mkfifo),
              "a FIFO as a frame file: get_image must not hang"),
        Named("fifo-frame-png", Base("png"), lambda s, o: _replace(s / "000000" / "000001.png", os.mkfifo),
              "a FIFO as a png frame file: get_image must not hang"),
        Named("fifo-index", npy, lambda s, o: _replace(s / "000001" / "index.npz", os.mkfifo),
              "a FIFO as a chunk index: opening must not hang"),
        Named("fifo-journal", npy_killed, lambda s, o: _replace(s / "000002" / "index.journal", os.mkfifo),
              "a FIFO as a journal: opening must not hang"),
        Named("fifo-extra", npy, lambda s, o: _replace(s / "000001" / "index.extra.json", os.mkfifo),
              "a FIFO as extra data: get_extra_data must not hang"),
        Named("fifo-video-to-recover", mp4_killed, lambda s, o: _replace(s / "000002.mp4", os.mkfifo),
              "a FIFO as the video of a chunk to recover: opening must not hang"),
        Named("fifo-index-cache", Base("npy", "cached"),
              lambda s, o: _replace(_index_cache_of(s), os.mkfifo), "a FIFO as the index cache"),
        Named("devzero-journal", npy_killed,
              lambda s, o: _replace(s / "000002" / "index.journal", lambda p: p.symlink_to("/dev/zero")),
              "a journal linked to /dev/zero: must not read until memory runs out"),
        Named("devzero-extra", npy,
              lambda s, o: _replace(s / "000001" / "index.extra.json", lambda p: p.symlink_to("/dev/zero")),
              "index.extra.json linked to /dev/zero: must not read until memory runs out"),
        Named("devzero-index", npy,
              lambda s, o: _replace(s / "000001" / "index.npz", lambda p: p.symlink_to("/dev/zero")),
              "index.npz linked to /dev/zero"),
        Named("index-declares-1e12", npy, lambda s, o: _huge_npz(s / "000001" / "index.npz"),
              "an index declaring 10**12 entries: that chunk is skipped, the store opens"),
        Named("npy-declares-1e6x1e6", npy,
              lambda s, o: (s / "000000" / "000001.npy").write_bytes(_npy_header("(1000000, 1000000)")),
              "an .npy frame declaring 10**6 x 10**6: FrameReadError, not MemoryError"),
        Named("metadata-nested-50000", npy,
              lambda s, o: (s / "metadata.yaml").open("a").write("deep: " + "[" * 50_000 + "]" * 50_000 + "\n"),
              "metadata nested 50,000 deep: MetadataError, not RecursionError"),
        Named("extra-nested-50000", npy,
              lambda s, o: (s / "000001" / "index.extra.json").write_text(_nested_json(50_000)),
              "extra data nested 50,000 deep: ExtraDataError, not RecursionError"),
        Named("metadata-20MB-string", npy,
              lambda s, o: (s / "metadata.yaml").open("a").write("note: '" + "x" * 20_000_000 + "'\n"),
              "a 20 MB string in metadata: refused at once, not parsed for 17 s"),
        Named("metadata-many-values", npy,
              lambda s, o: (s / "metadata.yaml").open("a").write("many: [" + "1," * 400_000 + "1]\n"),
              "400,000 values in metadata (under 1 MB): refused at once, not parsed for 25 s"),
        Named("npy-wrong-shape", npy,
              lambda s, o: np.save(s / "000000" / "000001.npy", np.zeros((7, 7), np.uint8)),
              "an .npy frame of another shape: FrameReadError, not returned"),
        Named("npy-wrong-dtype", npy,
              lambda s, o: np.save(s / "000000" / "000001.npy", np.zeros(Base("npy").shape, np.float64)),
              "an .npy frame of another dtype: FrameReadError, not returned"),
        Named("imgshape-1e6x1e6", npy, lambda s, o: _write_store_block(s, imgshape=[1_000_000, 1_000_000]),
              "imgshape 10**6 x 10**6: refused"),
        Named("npz-zip-version", npy, lambda s, o: _zip_version(s / "000001" / "index.npz"),
              "a damaged npz needing zip version 17.3: our error (NotImplementedError before)"),
        Named("npz-bad-npy-header", npy, lambda s, o: _bad_npy_header_npz(s / "000001" / "index.npz"),
              "an index whose array header does not parse: our error (tokenize.TokenError before)"),
        Named("npy-bad-header", npy,
              lambda s, o: (s / "000000" / "000001.npy").write_bytes(_npy_header("(48, 64), '''")),
              "a frame whose npy header does not parse: FrameReadError (tokenize.TokenError before)"),
        Named("mp4-codec-tag-zzzz", mp4, lambda s, o: _codec_tag_zzzz(s / "000000.mp4"),
              "an mp4 with codec tag zzzz: FrameReadError (AttributeError before)"),
        Named("mp4-metadata-not-utf8", mp4, lambda s, o: _not_utf8_metadata(s / "000000.mp4"),
              "an mp4 whose metadata is not UTF-8: FrameReadError (UnicodeDecodeError before)"),
        Named("mkv-cluster-damaged", Base("h264/mkv"), lambda s, o: _mkv_cluster_crc_size(s / "000000.mkv"),
              "a Matroska cluster that makes seeking fail: FrameReadError (av PermissionError before)"),
        Named("bmp-declares-huge-width", Base("bmp"), lambda s, o: _bmp_huge_width(s / "000000" / "000001.bmp"),
              "a bmp frame declaring a width of 2**30: FrameReadError (cv2.error before)"),
    ]  # fmt: skip
    return {case.name: case for case in cases}


NAMED = _named()


# ------------------------------------------------------------------------------------------------
# the worker: runs cases in a process of its own, under a memory limit, with a timeout
# ------------------------------------------------------------------------------------------------
class _Worker:
    """State of a worker process: the base stores it built and how they read."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.refs: Dict[str, Tuple[Path, Reference]] = {}

    def base(self, base: Base) -> Tuple[Path, Reference]:
        if base.name not in self.refs:
            path = self.root / "bases" / base.name.replace("/", "-") / "store"
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                write_base(base, path)
            self.refs[base.name] = (path, read_reference(path, base))
        return self.refs[base.name]

    def run(self, case: Dict[str, Any]) -> Dict[str, Any]:
        base = Base(*case["base"])
        path, ref = self.base(base)
        scratch = Path(tempfile.mkdtemp(prefix="case-", dir=self.root))
        store = scratch / "store"
        outside = scratch / "outside"
        outside.mkdir()
        shutil.copytree(path, store, symlinks=True)
        if base.variant == "cached":
            prime_cache(store)
        try:
            if "named" in case:
                NAMED[case["named"]].make(store, outside)
                origins: Origins = {f: ("damaged", f) for f in store_files(path)}  # compare nothing
                description = case["named"]
                ref_used: Optional[Reference] = None
            else:
                origins, description = mutate(store, case["kind"], case["target"], random.Random(case["seed"]))
                ref_used = ref
            signal.setitimer(signal.ITIMER_REAL, case.get("timeout", CASE_TIMEOUT))
            try:
                summary = inspect_store(store, ref_used, origins)
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
            summary.description = description
            return dataclasses.asdict(summary)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)


def _on_alarm(signum: int, frame: Any) -> None:
    raise CaseTimeout("case timed out")


def worker_main(root: str, memory_limit: int, reply_fd: int) -> None:
    """Answer cases (one JSON line each on stdin) with summaries (one JSON line each on ``reply_fd``)."""
    out = os.fdopen(reply_fd, "w")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)  # FFmpeg or OpenCV writing to stdout must not garble anything
    logging.disable(logging.CRITICAL)
    import av  # noqa: F401 - imported before the limit: its libraries map a lot of address space

    with contextlib.suppress(ImportError):  # (a machine without libGL: the formats needing OpenCV are not run)
        import cv2  # noqa: F401
    import pandas  # noqa: F401

    import imgstore  # noqa: F401

    resource.setrlimit(resource.RLIMIT_AS, (memory_limit, memory_limit))
    signal.signal(signal.SIGALRM, _on_alarm)
    worker = _Worker(Path(root))
    for line in sys.stdin:
        case = json.loads(line)
        try:
            result = worker.run(case)
        except CaseTimeout:
            result = dataclasses.asdict(Summary(outcome="hang", description=str(case)))
            out.write(json.dumps(result) + "\n")
            out.flush()
            os._exit(3)  # threads may still wait on a FIFO: this worker is done
        except Exception as exc:  # the harness itself failed (building a base store...): say so
            import traceback

            summary = Summary(outcome="crash", description=str(case))
            summary.foreign.append(f"harness: {type(exc).__name__}: {exc}: {traceback.format_exc()[-1500:]}")
            result = dataclasses.asdict(summary)
        out.write(json.dumps(result, default=str) + "\n")
        out.flush()


class Runner:
    """Runs cases in a worker process; a worker that hangs past the timeout is killed and replaced."""

    def __init__(self, root: Path, memory_limit: int = MEMORY_LIMIT_BYTES, timeout: float = CASE_TIMEOUT) -> None:
        self.root = root
        self.memory_limit = memory_limit
        self.timeout = timeout
        self._proc: Optional[subprocess.Popen] = None
        self._replies: Any = None
        self.log = root / "worker.log"

    def _start(self) -> None:
        read_fd, write_fd = os.pipe()
        env = dict(os.environ, MALLOC_ARENA_MAX="2", PYTHONPATH=os.pathsep.join([str(TESTS_DIR), *sys.path]))
        code = f"import hostile_corpus; hostile_corpus.worker_main({str(self.root)!r}, {self.memory_limit}, {write_fd})"
        with open(self.log, "ab") as log:
            self._proc = subprocess.Popen(
                [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=log,
                pass_fds=(write_fd,), env=env,
            )  # fmt: skip
        os.close(write_fd)
        self._replies = os.fdopen(read_fd, "r")

    def run(self, case: Dict[str, Any], timeout: Optional[float] = None) -> Dict[str, Any]:
        """The summary of one case (``outcome`` 'hang' or 'crash' when the worker could not answer)."""
        if self._proc is None or self._proc.poll() is not None:
            self._start()
        case = dict(case, timeout=timeout or self.timeout)
        started = time.monotonic()
        try:
            self._proc.stdin.write((json.dumps(case) + "\n").encode())
            self._proc.stdin.flush()
        except BrokenPipeError:
            pass
        # building a base store on first use takes a few seconds more
        ready, _, _ = select.select([self._replies], [], [], case["timeout"] + KILL_GRACE + 60)
        line = self._replies.readline() if ready else ""
        if line:
            result = json.loads(line)
            if result["outcome"] == "hang":
                self._stop()
            return result
        outcome = "hang" if not ready else "crash"
        code = self._stop()
        summary = Summary(outcome=outcome, seconds=time.monotonic() - started, description=json.dumps(case))
        if outcome == "crash":
            summary.foreign.append(f"worker died (exit status {code}); see {self.log}")
        return dataclasses.asdict(summary)

    def _stop(self) -> Optional[int]:
        proc, self._proc = self._proc, None
        if proc is None:
            return None
        with contextlib.suppress(OSError):
            proc.stdin.close()
        try:
            code = proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait()
        self._replies.close()
        return code

    def close(self) -> None:
        self._stop()

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


# ------------------------------------------------------------------------------------------------
# which cases: every file of every base store, with every mutation
# ------------------------------------------------------------------------------------------------
def fuzz_cases(base: Base, files: Sequence[str], seeds: int, kinds: Sequence[str] = MUTATIONS) -> List[Dict[str, Any]]:
    """Each file of ``base`` with each mutation: byte mutations with ``seeds`` seeds, node ones once."""
    cases = []
    for target in files:
        for kind in kinds:
            if kind == "values" and not target.endswith(VALUE_SUFFIXES):
                continue
            for seed in range(seeds if kind in BYTE_MUTATIONS else 1):
                cases.append({"base": [base.fmt, base.variant], "kind": kind, "target": target,
                              "seed": hash_seed(base.name, target, kind, seed)})  # fmt: skip
    return cases


def hash_seed(*parts: Any) -> int:
    """A seed that depends only on its parts (not on ``PYTHONHASHSEED``)."""
    import zlib

    return zlib.crc32(repr(parts).encode())


def is_frame_file(base: Base, rel: str) -> bool:
    """Whether ``rel`` is a frame file of a folder format (video chunks are not)."""
    return "/" in rel and rel.endswith("." + base.fmt.split("/")[0]) and Path(rel).stem.isdigit()


def ci_cases(root: Path, base: Base) -> List[Dict[str, Any]]:
    """The fixed slice the test suite runs: every file of ``base`` with every mutation, one seed each.

    Not in it: a FIFO in place of a folder format's frame file (one named case per format covers
    it); random other metadata values (``metadata_cases`` tries each); for the store with an index
    cache, its frame files (the other stores have the same).
    """
    files = base_files(root, base)
    if base.variant == "cached":
        files = [f for f in files if not is_frame_file(base, f)]
    return [
        case
        for case in fuzz_cases(base, files, 1)
        if not (case["kind"] == "fifo" and is_frame_file(base, case["target"]))
        and not (case["kind"] == "values" and case["target"] == "metadata.yaml")  # metadata_cases: each value
    ]


def metadata_cases(base: Base) -> List[Dict[str, Any]]:
    """Each other well-formed value of each ``__store`` setting, one case each."""
    shape = list(base.shape)
    smd = {"imgshape": shape, "imgdtype": "uint8"}
    cases = []
    for key, values in _metadata_changes(smd).items():
        for value in values:
            if key == "imgshape" and value == shape:
                continue
            kind = f"set {key}={json.dumps(value)}"
            cases.append({"base": [base.fmt, base.variant], "kind": kind, "target": "metadata.yaml", "seed": 0})
    return cases


def named_cases(names: Iterable[str] = NAMED) -> List[Dict[str, Any]]:
    return [{"base": [NAMED[n].base.fmt, NAMED[n].base.variant], "named": n} for n in names]


def base_files(root: Path, base: Base) -> List[str]:
    """The files of a base store (built here, in the calling process, the first time)."""
    path = root / "bases" / base.name.replace("/", "-") / "store"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        write_base(base, path)
    return store_files(path)


# ------------------------------------------------------------------------------------------------
# the long mode
# ------------------------------------------------------------------------------------------------
def run_all(cases: List[Dict[str, Any]], root: Path, jobs: int, progress: bool = True) -> List[Dict[str, Any]]:
    """Run ``cases`` on ``jobs`` workers; summaries in the order of the cases."""
    import concurrent.futures
    import queue

    runners: queue.Queue[Runner] = queue.Queue()
    for _ in range(jobs):
        runners.put(Runner(root))
    done = [0]

    def one(case: Dict[str, Any]) -> Dict[str, Any]:
        runner = runners.get()
        try:
            result = runner.run(case)
        finally:
            runners.put(runner)
        done[0] += 1
        if progress and done[0] % 100 == 0:
            print(f"  {done[0]}/{len(cases)} cases", file=sys.stderr, flush=True)
        return result

    try:
        with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
            return list(pool.map(one, cases))
    finally:
        while not runners.empty():
            runners.get().close()


def is_failure(result: Dict[str, Any]) -> bool:
    """Whether a case broke a rule of ``inspect_store`` (or raised our error without naming the file)."""
    return result["outcome"] in ("hang", "crash") or bool(
        result["foreign"] or result["violations"] or result["unnamed"]
    )


def report(cases: List[Dict[str, Any]], results: List[Dict[str, Any]], seconds: float) -> str:
    outcomes = collections.Counter(r["outcome"] for r in results)
    errors: collections.Counter = collections.Counter()
    for r in results:
        errors.update(r["errors"])
    failed = [(c, r) for c, r in zip(cases, results) if is_failure(r)]
    lines = [
        f"cases run: {len(results)} in {seconds:.0f} s",
        "outcomes: " + ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items())),
        "our errors raised, by type: " + ", ".join(f"{k} {v}" for k, v in errors.most_common()),
        f"frames compared with the original: {sum(r['frames_checked'] for r in results)}; "
        f"damaged without a checksum (shape and dtype checked only): {sum(r['frames_unverifiable'] for r in results)}, "
        f"of which spell another frame's id: {sum(r['frames_other_id'] for r in results)}",
        f"foreign errors: {sum(len(r['foreign']) for r in results)}; hangs: {outcomes.get('hang', 0)}; "
        f"crashes: {outcomes.get('crash', 0)}; wrong frames or numbers: {sum(len(r['violations']) for r in results)}",
        f"our errors that name no file of the store: {sum(len(r['unnamed']) for r in results)}",
    ]
    by_base: Dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for case, r in zip(cases, results):
        by_base[":".join(case["base"])][r["outcome"]] += 1
    lines.append("per base store: " + "; ".join(f"{b} {dict(c)}" for b, c in sorted(by_base.items())))
    for case, r in failed[:50]:
        lines.append(f"FAILED {r['description'] or case}: {r['outcome']} {r['foreign'][:2]} {r['violations'][:2]}")
    unnamed = collections.Counter(
        u.split(": ", 2)[1] + ": " + u.split(": ", 2)[2][:80] for r in results for u in r["unnamed"]
    )
    for text, count in unnamed.most_common(10):
        lines.append(f"unnamed ({count}x): {text}")
    return "\n".join(lines)


def format_table(cases: List[Dict[str, Any]], results: List[Dict[str, Any]]) -> str:
    """Per format, as a Markdown table: cases, frames compared, errors raised, and what must be 0."""
    rows: Dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for case, r in zip(cases, results):
        row = rows[case["base"][0]]
        row["cases"] += 1
        row["refused"] += r["outcome"] == "refused"
        row["compared"] += r["frames_checked"]
        row["unverifiable"] += r["frames_unverifiable"]
        row["other_id"] += r["frames_other_id"]
        row["errors"] += sum(r["errors"].values())
        row["hangs"] += r["outcome"] == "hang"
        row["crashes"] += r["outcome"] == "crash"
        row["foreign"] += len(r["foreign"])
        row["wrong"] += len(r["violations"])
        row["unnamed"] += len(r["unnamed"])
    lines = [
        "| format | cases | stores refused | frames compared | damaged frames (shape and dtype checked) "
        "| of which spell another id | our errors | hangs | crashes | other errors | wrong frames or numbers "
        "| errors naming no file |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    keys = (
        "cases", "refused", "compared", "unverifiable", "other_id", "errors", "hangs", "crashes", "foreign", "wrong",
        "unnamed",
    )  # fmt: skip
    for fmt in sorted(rows, key=lambda f: (f not in LONG_FORMATS, LONG_FORMATS.index(f) if f in LONG_FORMATS else 0)):
        lines.append(f"| {fmt} | " + " | ".join(f"{rows[fmt][k]:,}" for k in keys) + " |")
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--long", action="store_true", help="every format, every file, 6 seeds per byte mutation")
    parser.add_argument("--formats", help="comma-separated formats (default: the CI set, or all with --long)")
    parser.add_argument("--seeds", type=int, help="seeds per file and byte mutation (default 1, 6 with --long)")
    parser.add_argument("--cases", type=int, help="run only this many cases, chosen at random")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0, help="which random choice of --cases")
    parser.add_argument("--workdir", help="where base stores and cases live (default: a temporary directory)")
    args = parser.parse_args(argv)
    formats = args.formats.split(",") if args.formats else (LONG_FORMATS if args.long else CI_FORMATS)
    seeds = args.seeds or (6 if args.long else 1)
    root = Path(args.workdir or tempfile.mkdtemp(prefix="hostile-corpus-"))
    root.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    cases = named_cases()
    for base in bases(formats):
        cases += fuzz_cases(base, base_files(root, base), seeds) + metadata_cases(base)
    if args.cases:
        cases = random.Random(args.seed).sample(cases, min(args.cases, len(cases)))
    print(f"{len(cases)} cases over {', '.join(formats)}; work directory {root}", file=sys.stderr)
    results = run_all(cases, root, args.jobs)
    print(report(cases, results, time.monotonic() - started))
    print(format_table(cases, results))
    if not args.workdir:
        shutil.rmtree(root, ignore_errors=True)
    return 1 if any(is_failure(r) for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
