"""``ImgStoreIndex``: the frame index of a whole store (upstream's import path and API).

Lookups are answered from numpy arrays (see ``index.frametable``); sqlite is used only to import and
export the optional ``.index.sqlite`` file, in the schema upstream reads.
"""

from __future__ import annotations

import logging
import math
import operator
import os
import sqlite3
import uuid
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from ..constants import FRAME_MD
from ..errors import ChunkIndexError, IndexFileError
from .chunkfile import load_chunk_index
from .frametable import NOT_FOUND, FrameTable, FrameTableBuilder, as_frame_index, as_frame_number, as_query_time

__all__ = ["FRAME_MD", "ImgStoreIndex"]

log = logging.getLogger(__name__)

_SCHEMA = (
    "CREATE TABLE frames (chunk INTEGER, frame_idx INTEGER, frame_number INTEGER, frame_time REAL)",
    "CREATE TABLE chunks (chunk INTEGER, chunk_path TEXT)",
    "CREATE TABLE index_information (name TEXT, value TEXT)",
    "CREATE TABLE summary (name TEXT, value REAL)",
    "CREATE INDEX chunk_index ON frames (chunk, frame_idx)",
)


class ImgStoreIndex:
    """Frame numbers and times of every frame in a store, by chunk, with fast lookups."""

    VERSION = "1"
    #: upstream's class-level logger, kept for code that logs through it
    log = logging.getLogger(__name__)

    def __init__(
        self,
        db: Optional[sqlite3.Connection] = None,
        *,
        table: Optional[FrameTable] = None,
        chunk_paths: Optional[Dict[int, str]] = None,
    ) -> None:
        if db is not None:
            table, chunk_paths = _read_sqlite(db, "<sqlite connection>")
        self._table = table if table is not None else FrameTable([], [], [])
        self._chunk_paths = dict(chunk_paths or {})
        self.frame_min, self.frame_max = self._table.number_range()
        # an empty index has no frame numbers (NaN) but spans no time (0.0), as upstream's
        self.frame_time_min, self.frame_time_max = self._table.time_range() if self._table.frame_count else (0.0, 0.0)

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def new_from_chunks(cls, chunk_n_and_chunk_paths: Iterable[Tuple[int, str]]) -> ImgStoreIndex:
        """Build from chunk index files; ``chunk_path`` is the index path without extension.

        A chunk whose index is missing, truncated or inconsistent is skipped with a warning that
        names it; empty chunks are skipped silently.
        """
        chunks = sorted(chunk_n_and_chunk_paths, key=operator.itemgetter(0))
        builder = FrameTableBuilder(len(chunks))
        paths: Dict[int, str] = {}
        for chunk_n, chunk_path in chunks:
            try:
                frame_number, frame_time = load_chunk_index(chunk_path)
            except ChunkIndexError as exc:
                log.warning("skipping chunk %s: %s", chunk_n, exc)
                continue
            if len(frame_number):
                builder.add(int(chunk_n), frame_number, frame_time)
                paths[int(chunk_n)] = chunk_path
        return cls(table=builder.build(), chunk_paths=paths)

    @classmethod
    def new_from_file(cls, path: str) -> ImgStoreIndex:
        """Load a saved ``.index.sqlite`` (read-only; chunk paths stored in it are never used to open files)."""
        if not os.path.isfile(path):
            raise IndexFileError(f"{path}: no such index file")
        try:
            db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        except sqlite3.Error as exc:
            raise IndexFileError(f"{path}: cannot open index ({exc})") from None
        try:
            table, chunk_paths = _read_sqlite(db, path)
        finally:
            db.close()
        return cls(table=table, chunk_paths=chunk_paths)

    @classmethod
    def from_arrays(
        cls, chunk_ids: Sequence[int], frame_numbers: Sequence[np.ndarray], frame_times: Sequence[np.ndarray]
    ) -> ImgStoreIndex:
        """Build from per-chunk arrays already in memory (chunks in ascending order)."""
        return cls(table=FrameTable(chunk_ids, frame_numbers, frame_times))

    @classmethod
    def create_database(cls, conn: sqlite3.Connection) -> None:
        """Create upstream's ``.index.sqlite`` tables (empty, with this index version) in ``conn``."""
        with conn:
            for statement in _SCHEMA:
                conn.execute(statement)
            conn.execute("INSERT INTO index_information VALUES (?, ?)", ("version", cls.VERSION))

    # -- export -------------------------------------------------------------------------------
    def to_file(self, path: str) -> None:
        """Write the index as ``.index.sqlite`` in upstream's schema, atomically."""
        tmp = f"{path}.{uuid.uuid4().hex[:8]}.tmp"
        db = sqlite3.connect(tmp)
        try:
            self.create_database(db)
            with db:
                db.executemany("INSERT INTO frames VALUES (?,?,?,?)", self._frame_rows())
                db.executemany(
                    "INSERT INTO chunks VALUES (?, ?)", [(c, self._chunk_paths.get(c, "")) for c in self.chunks]
                )
                db.executemany("INSERT INTO summary VALUES (?, ?)", self._summary_rows())
            db.close()
            os.replace(tmp, path)
        except BaseException:
            db.close()
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    def _frame_rows(self) -> Iterable[Tuple[int, int, object, float]]:
        table = self._table
        for pos, chunk_n in enumerate(table.chunk_ids.tolist()):
            sel = slice(int(table.chunk_starts[pos]), int(table.chunk_starts[pos + 1]))
            fns = table.frame_number[sel].tolist()
            fts = table.frame_time[sel].tolist()
            yield from zip([chunk_n] * len(fns), range(len(fns)), fns, fts)

    def _summary_rows(self) -> List[Tuple[str, float]]:
        # upstream writes +-inf for an empty index; keep that so it reads ours unchanged
        def value(v: float, empty: float) -> float:
            return empty if math.isnan(v) or not self.frame_count else v

        return [
            ("frame_time_min", value(self.frame_time_min, math.inf)),
            ("frame_time_max", value(self.frame_time_max, -math.inf)),
            ("frame_min", value(self.frame_min, math.inf)),
            ("frame_max", value(self.frame_max, -math.inf)),
        ]

    # -- queries ------------------------------------------------------------------------------
    @property
    def frame_count(self) -> int:
        return self._table.frame_count

    @property
    def chunks(self) -> Tuple[int, ...]:
        """The non-empty chunks, ascending."""
        return tuple(self._table.chunk_ids.tolist())

    @property
    def table(self) -> FrameTable:
        """The underlying arrays (for code in this package that needs them without copies)."""
        return self._table

    def get_all_metadata(self) -> Dict[str, list]:
        """``{'frame_number': [...], 'frame_time': [...]}`` for every frame, in store order."""
        return self._table.as_lists()

    def get_chunk_path(self, chunk_n: int) -> str:
        """The index path (without extension) a chunk was loaded from ('' when built from arrays)."""
        return self._chunk_paths.get(int(chunk_n), "")

    def get_chunk_metadata(self, chunk_n: int) -> Dict[str, list]:
        """The same for one chunk (empty lists for a chunk not in the index)."""
        return self._table.as_lists(self._table.chunk_slice(int(as_frame_number(chunk_n))))

    def find_chunk(self, what: str, value: object) -> Tuple[int, int]:
        """``(chunk_n, frame_idx)`` of the frame whose ``what`` equals ``value``, else ``(-1, -1)``.

        ``what`` is ``'frame_number'``, ``'frame_time'`` or ``'index'``; with duplicates the frame
        first in store order wins.
        """
        if what == "index":
            return self._table.locate(as_frame_index(value))
        if what == "frame_number":
            return self._locate(self._table.find_number(as_frame_number(value)))
        if what == "frame_time":
            return self._locate(self._table.find_time(as_query_time(value)))
        raise ValueError(f"find_chunk: what must be 'frame_number', 'frame_time' or 'index', not {what!r}")

    def find_chunk_nearest(self, what: str, value: object) -> Tuple[int, int]:
        """``(chunk_n, frame_idx)`` of the frame whose ``what`` is nearest ``value`` (ties: first in store order)."""
        if what == "frame_number":
            return self._locate(self._table.nearest_number(as_frame_number(value)))
        if what == "frame_time":
            return self._locate(self._table.nearest_time(as_query_time(value)))
        raise ValueError(f"find_chunk_nearest: what must be 'frame_number' or 'frame_time', not {what!r}")

    def _locate(self, frame_index: int) -> Tuple[int, int]:
        if frame_index == NOT_FOUND:
            return NOT_FOUND, NOT_FOUND
        return self._table.locate(frame_index)

    def __repr__(self) -> str:
        return f"<ImgStoreIndex frames={self.frame_count} chunks={len(self.chunks)}>"


def _read_sqlite(db: sqlite3.Connection, path: str) -> Tuple[FrameTable, Dict[int, str]]:
    """Read upstream's schema into a ``FrameTable``; ``IndexFileError`` for anything unexpected."""
    try:
        cur = db.cursor()
        cur.execute("SELECT value FROM index_information WHERE name = ?", ("version",))
        row = cur.fetchone()
        if row is None or str(row[0]) != ImgStoreIndex.VERSION:
            raise IndexFileError(
                f"{path}: unsupported index version {row and row[0]!r} (expected {ImgStoreIndex.VERSION!r})"
            )
        rows = cur.execute("SELECT chunk, frame_idx, frame_number, frame_time FROM frames ORDER BY rowid").fetchall()
        chunk_rows = cur.execute("SELECT chunk, chunk_path FROM chunks ORDER BY chunk").fetchall()
    except (sqlite3.Error, UnicodeDecodeError) as exc:  # a damaged text value fails to decode
        raise IndexFileError(f"{path}: unreadable index ({exc})") from None
    return _table_from_rows(rows, path), {int(c): str(p) for c, p in chunk_rows if isinstance(c, int)}


def _table_from_rows(rows: List[tuple], path: str) -> FrameTable:
    try:
        arr = np.array([r[:3] for r in rows], dtype=np.int64).reshape(-1, 3)
        times = np.array([r[3] for r in rows], dtype=np.float64)
    except (TypeError, ValueError, OverflowError) as exc:
        raise IndexFileError(f"{path}: frames table holds non-numeric values ({exc})") from None
    chunks, frame_idx, numbers = arr[:, 0], arr[:, 1], arr[:, 2]
    if len(chunks) and np.any(np.diff(chunks) < 0):
        raise IndexFileError(f"{path}: frames are not in chunk order")
    ids, starts = np.unique(chunks, return_index=True)
    bounds = [*starts.tolist(), len(chunks)]
    for i in range(len(ids)):
        if not np.array_equal(frame_idx[bounds[i] : bounds[i + 1]], np.arange(bounds[i + 1] - bounds[i])):
            raise IndexFileError(f"{path}: frame_idx of chunk {ids[i]} is not 0..n-1 in order")
    split = [slice(bounds[i], bounds[i + 1]) for i in range(len(ids))]
    return FrameTable(ids.tolist(), [numbers[s] for s in split], [times[s] for s in split])
