"""Motif's extra data carried into edited stores (``imgstore.edit``).

Motif writes a chunk's extra data beside it in the store root, in files of its own. An edit
writes the rows that belong to the new store as files of the same kinds, per chunk of the new
store, once its frames are written (its chunks are known then):

- ``NNNNNN.extra_data.json`` rows are records of a frame, as ours are. A row goes with the frame
  whose number it carries (the one at its ``frame_index`` when that frame has the number, else the
  first with the number in the file's own chunk, else in the store) into the new chunk holding
  that frame, its ``frame_index`` counted in the new store. Rows of before the first frame (a
  negative or NaN number: readers leave them out) go with the piece that starts at the source's
  first frame; rows of frames the store lacks are left out, with a warning.
- ``NNNNNN.extra_data.h5`` samples are a signal at its own rate, each stamped with the camera
  frame it was taken at. A sample goes by that frame's time into the new chunk whose span holds
  it: from the chunk's first frame's time to just before the next chunk's first frame; the last
  chunk of each source's frames ends at its last frame's time. The piece that starts at the
  source's first frame also takes the samples before it, the one that ends at its last frame the
  samples after it. Samples cannot be placed by time in frames whose times go back: those are
  left out, with a warning.

Each file is read twice: once to decide where its rows go, then, chunk of the new store by chunk,
to write them, so that memory holds one chunk's rows at a time rather than a whole recording's.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .errors import ExtraDataError, ImgStoreError
from .io.extra import encode_record, read_records
from .io.fs import LocalFileSystem
from .io.metadata import write_file_atomic
from .io.motif_h5 import import_h5py, motif_h5_samples, write_motif_h5
from .io.paths import chunk_name
from .store.factory import new_for_filename

__all__ = ["carry_motif_extra_data", "find_motif_extra_data", "motif_files"]

_log = logging.getLogger(__name__)

JSON, H5 = ".extra_data.json", ".extra_data.h5"
#: where a row goes, besides a position: nowhere (its frame is not in the store), or before the first frame
_ABSENT, _BEFORE = -1, -2
#: parsed JSON files kept for the writing pass (a chunk of the new store takes rows of one or two)
_PARSED_KEPT = 2

Parts = Sequence[Tuple[Any, np.ndarray]]
#: per source, ``(chunk number, path)`` of its Motif files
MotifFiles = List[List[Tuple[int, str]]]


def motif_files(store: Any) -> List[Tuple[int, str]]:
    """``(chunk number, path)`` of the Motif extra-data files of a read store, in chunk order."""
    layout = store.view.layout
    return [(n, path) for n in layout.chunk_numbers() for path in layout.extra_data_paths(n)
            if layout.is_motif_extra_data(path)]  # fmt: skip


def find_motif_extra_data(parts: Parts) -> MotifFiles:
    """The Motif extra-data files of each source (see ``motif_files``), looked for once per edit;
    refused, before anything is written, when HDF5 files are among them and h5py is missing."""
    found = [motif_files(store) for store, _ in parts]
    for path in (path for files in found for _, path in files):
        if path.endswith(H5):
            import_h5py(f"carrying {path} (Motif's HDF5 extra data) into an edited store")
            break
    return found


@dataclasses.dataclass
class _Part:
    """One source's frames in the new store: ``positions`` (source) became ``first``, ``first + 1``..."""

    store: Any
    positions: np.ndarray
    first: int

    def __post_init__(self) -> None:
        self._order = np.argsort(self.positions, kind="stable")
        self._sorted = self.positions[self._order]

    @property
    def from_the_start(self) -> bool:
        """Whether the piece holds the source's first frame (and so what came before it)."""
        return bool(len(self.positions)) and int(self._sorted[0]) == 0

    @property
    def to_the_end(self) -> bool:
        """Whether the piece holds the source's last frame (and so what came after it)."""
        return bool(len(self.positions)) and int(self._sorted[-1]) == self.store.view.table.frame_count - 1

    def new_positions(self, source: np.ndarray) -> np.ndarray:
        """The new store's position of each source position (-1: not kept)."""
        at = np.minimum(np.searchsorted(self._sorted, source), max(len(self._sorted) - 1, 0))
        kept = (source >= 0) & (self._sorted[at] == source) if len(self._sorted) else np.zeros(len(source), bool)
        return np.where(kept, self.first + self._order[at], -1)


@dataclasses.dataclass
class _Routed:
    """One source file's rows that go into the new store, and the chunk each goes into."""

    path: str
    fs: LocalFileSystem
    #: the rows carried: for JSON their place in the file's array, for HDF5 their row in the file
    rows: np.ndarray
    chunks: np.ndarray
    #: JSON: the new ``frame_index`` of each row carried (-1: as it was)
    new_index: Optional[np.ndarray] = None

    @classmethod
    def of(cls, path: str, fs: LocalFileSystem, chunks: np.ndarray, rows: np.ndarray,
           new_index: Optional[np.ndarray] = None) -> _Routed:  # fmt: skip
        """Only the rows with a chunk (``chunks`` >= 0): a short trim of a long recording keeps few."""
        carried = np.flatnonzero(chunks >= 0)
        return cls(path, fs, rows[carried], chunks[carried], None if new_index is None else new_index[carried])


def carry_motif_extra_data(parts: Parts, found: MotifFiles, dest: str) -> int:
    """Write the Motif extra data of ``parts`` (each ``(store, positions)``, as ``edit.write_store``
    takes them; ``found``: their files, from ``find_motif_extra_data``) into the finished store at
    ``dest``; returns the number of rows written."""
    if not any(found):
        return 0
    with new_for_filename(dest) as target:
        table = target.view.table
        total = sum(len(positions) for _, positions in parts)
        if table.frame_count != total:
            raise ImgStoreError(f"{dest}: {table.frame_count} frames written, {total} expected")
        at = np.searchsorted(table.chunk_starts, np.arange(total), side="right") - 1
        chunk_of = table.chunk_ids[at]  # the new store's chunk of each of its positions
        routed: List[_Routed] = []
        first = 0
        for (store, positions), files in zip(parts, found):
            part = _Part(store, np.asarray(positions, dtype=np.int64), first)
            first += len(positions)
            spans = _Spans.of(part, chunk_of) if any(p.endswith(H5) for _, p in files) else None
            for chunk_n, path in files:
                if path.endswith(H5):
                    if spans is not None:
                        routed.append(_route_samples(part, path, spans))
                else:
                    routed.append(_route_rows(part, chunk_n, path, chunk_of))
        return _write(routed, target.view.layout)


# ----------------------------------------------------------------------------------------------
# JSON: rows follow their frames
# ----------------------------------------------------------------------------------------------
def _route_rows(part: _Part, chunk_n: int, path: str, chunk_of: np.ndarray) -> _Routed:
    fs = part.store.view.layout.fs
    rows = read_records(path, fs=fs)
    source = _row_positions(rows, path, part.store.view.table, chunk_n)
    new = part.new_positions(source)
    chunks = np.where(new >= 0, chunk_of[np.maximum(new, 0)], -1)
    if part.from_the_start:
        chunks[source == _BEFORE] = chunk_of[part.first]
    absent = int(np.count_nonzero(source == _ABSENT))
    if absent:
        _log.warning("%s: %d %s for frames not in the store not carried into the edited store",
                     path, absent, "row" if absent == 1 else "rows")  # fmt: skip
    return _Routed.of(path, fs, chunks, np.arange(len(rows)), new)


def _row_positions(rows: List[Dict[str, Any]], path: str, table: Any, chunk_n: int) -> np.ndarray:
    """The source position of each row's frame, ``_BEFORE`` or ``_ABSENT`` (see the module's rule)."""
    numbers = table.frame_number
    count = table.frame_count
    local: Dict[Any, int] = {}
    chunk = table.chunk_slice(chunk_n)
    for k, number in enumerate(numbers[chunk].tolist()):
        local.setdefault(number, chunk.start + k)
    out = np.empty(len(rows), dtype=np.int64)
    for r, row in enumerate(rows):
        number, index = row.get("frame_number"), row.get("frame_index")
        valid_index = isinstance(index, int) and not isinstance(index, bool) and 0 <= index < count
        if number is None:  # no number: its index says which frame, if anything
            out[r] = index if valid_index else _BEFORE
        elif isinstance(number, bool) or not isinstance(number, (int, float)):
            raise ExtraDataError(f"{path}: a row's frame_number {number!r} is not a number: {row!r}")
        elif number != number or number < 0:  # NaN or negative: before the first frame
            out[r] = _BEFORE
        elif valid_index and numbers[index] == number:
            out[r] = index
        else:
            found = local.get(number)
            out[r] = found if found is not None else max(table.find_number(number), _ABSENT)
    return out


# ----------------------------------------------------------------------------------------------
# HDF5: samples follow their time
# ----------------------------------------------------------------------------------------------
@dataclasses.dataclass
class _Spans:
    """The time spans of one part's runs of frames in the new store's chunks."""

    starts: np.ndarray
    chunks: np.ndarray
    #: the last run's end, included
    end: float

    @classmethod
    def of(cls, part: _Part, chunk_of: np.ndarray) -> Optional[_Spans]:
        times = np.asarray(part.store.view.table.frame_time, dtype=np.float64)[part.positions]
        if not len(times):
            return None
        if np.isnan(times).any() or (np.diff(times) < 0).any():
            _log.warning("%s: frame times go back or are missing; Motif's HDF5 extra data (placed by time) "
                         "is not carried into the edited store", part.store.filename)  # fmt: skip
            return None
        chunks = chunk_of[part.first : part.first + len(times)]
        runs = np.concatenate([[0], np.flatnonzero(np.diff(chunks)) + 1])
        starts = times[runs].copy()
        if part.from_the_start:
            starts[0] = -np.inf
        return cls(starts, chunks[runs], np.inf if part.to_the_end else float(times[-1]))

    def route(self, times: np.ndarray) -> np.ndarray:
        """The new store's chunk of each time (-1: outside every span)."""
        run = np.searchsorted(self.starts, times, side="right") - 1
        inside = (run >= 0) & ~np.isnan(times) & ((run < len(self.starts) - 1) | (times <= self.end))
        return np.where(inside, self.chunks[np.maximum(run, 0)], -1)


def _route_samples(part: _Part, path: str, spans: _Spans) -> _Routed:
    fs = part.store.view.layout.fs
    samples = motif_h5_samples(path, fs)
    times = samples.frame_time
    if times is None:  # a file without the camera's times: the time of the frame of its number
        table = part.store.view.table
        found = table.find_numbers(samples.frame_number)
        times = np.where(found >= 0, np.asarray(table.frame_time, np.float64)[np.maximum(found, 0)], np.nan)
    return _Routed.of(path, fs, spans.route(times), samples.rows)


# ----------------------------------------------------------------------------------------------
# writing, chunk by chunk of the new store
# ----------------------------------------------------------------------------------------------
def _write(routed: List[_Routed], layout: Any) -> int:
    by_chunk: Dict[int, List[Tuple[_Routed, np.ndarray]]] = {}
    for item in routed:
        for chunk in np.unique(item.chunks).tolist():
            by_chunk.setdefault(chunk, []).append((item, np.flatnonzero(item.chunks == chunk)))
    parsed = _Parsed()
    written = 0
    for chunk in sorted(by_chunk):
        name = layout.fs.join(layout.basedir, chunk_name(chunk))
        rows = [(item, chosen) for item, chosen in by_chunk[chunk] if item.path.endswith(JSON)]
        samples = [(item, chosen) for item, chosen in by_chunk[chunk] if item.path.endswith(H5)]
        if rows:
            written += _write_rows(name + JSON, rows, parsed)
        if samples:
            written += write_motif_h5(name + H5, [(i.fs, i.path, i.rows[chosen]) for i, chosen in samples])
        _warn_if_hidden(layout, chunk, bool(rows), bool(samples))
    return written


def _write_rows(path: str, pieces: List[Tuple[_Routed, np.ndarray]], parsed: _Parsed) -> int:
    texts = []
    for item, chosen in pieces:
        rows = parsed.get(item)
        indexes = item.new_index if item.new_index is not None else np.full(len(item.rows), -1)
        for r, index in zip(item.rows[chosen].tolist(), indexes[chosen].tolist()):
            row = rows[r]
            texts.append(encode_record(dict(row, frame_index=index) if index >= 0 and "frame_index" in row else row))
    write_file_atomic(path, ("[" + ",\n".join(texts) + "]").encode("utf-8"))
    return len(texts)


def _warn_if_hidden(layout: Any, chunk: int, rows: bool, samples: bool) -> None:
    """Readers take one extra-data file per chunk (Motif's HDF5, else Motif's JSON, else ours)."""
    ours = layout.fs.exists(layout.index_base(chunk) + ".extra.json")
    if (rows and samples) or ours:
        _log.warning("chunk %d of %s: extra data of several kinds (ours, Motif's JSON or HDF5) from different "
                     "source chunks; readers see only %s", chunk, layout.basedir,
                     "Motif's HDF5 file" if samples else "Motif's JSON file")  # fmt: skip


class _Parsed:
    """The last few JSON files read in the writing pass (rows of one file feed one or two chunks)."""

    def __init__(self) -> None:
        self._files: Dict[str, List[Dict[str, Any]]] = {}

    def get(self, item: _Routed) -> List[Dict[str, Any]]:
        rows = self._files.get(item.path)
        if rows is None:
            rows = read_records(item.path, fs=item.fs, warn=False)  # (warned in the first pass)
            if len(self._files) >= _PARSED_KEPT:
                del self._files[next(iter(self._files))]
            self._files[item.path] = rows
        return rows
