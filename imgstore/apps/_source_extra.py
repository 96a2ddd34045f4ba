"""A source store's extra-data rows for ``imgstore-save``, each placed after the frame it followed.

Copying a store writes each row right after the same frame in the new store, so that the rows keep
their place among the frames (their frame tags are written again by the new store).
"""

from __future__ import annotations

import logging
import math
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

log = logging.getLogger(__name__)

#: the columns a store writes into every extra-data row itself (from the last frame added)
_FRAME_COLUMNS = ("frame_time", "frame_number", "frame_index")


class ExtraRows:
    """A source store's extra-data rows, each attached to the position of the frame it followed.

    A store tags each row with the last frame added before it (``frame_index``, and its
    ``frame_number`` and ``frame_time``; -1 and no frame before the first). Writing the rows of
    position ``i`` right after the ``i``-th frame written puts the same tags on them in the new
    store. The tag columns are left out of :meth:`at` (the new store writes them itself).
    """

    def __init__(self, rows: List[Tuple[int, Dict[str, Any]]]) -> None:
        self._by_position: Dict[int, List[Dict[str, Any]]] = {}
        for position, row in rows:
            self._by_position.setdefault(position, []).append(row)
        self.total = len(rows)

    def at(self, position: int) -> List[Dict[str, Any]]:
        """The rows that followed the frame at ``position`` (-1: rows written before any frame)."""
        return self._by_position.get(position, [])

    def up_to(self, position: int) -> int:
        """How many rows follow the frames at positions -1 .. ``position``."""
        return sum(len(rows) for p, rows in self._by_position.items() if p <= position)


def _extra_records(store: Any, path: str) -> List[Dict[str, Any]]:
    """The rows of one extra-data file as dicts: ours exactly as written, Motif's through pandas."""
    from ..io.extra import read_records
    from ..store.extradata import read_extra_file

    layout = store.view.layout
    if not layout.is_motif_extra_data(path):
        return read_records(path)
    df = read_extra_file(layout, path)
    return [] if df is None else df.to_dict("records")


def _row_position(row: Dict[str, Any], numbers: np.ndarray, times: np.ndarray) -> Optional[int]:
    """The store position of the frame a row followed (None: it names none).

    Its ``frame_index`` when that agrees with its ``frame_number``; else the frame with its
    number (among repeated numbers, the one nearest its ``frame_time``).
    """
    index, number = row.get("frame_index"), row.get("frame_number")
    if _is_number(index) and float(index).is_integer() and -1 <= index < len(numbers):
        if index < 0 or number is None or _same(numbers[int(index)], number):
            return int(index)
    if not _is_number(number):
        return None
    hits = np.flatnonzero(numbers == number)
    if len(hits) == 0:
        return None
    when = row.get("frame_time")
    if len(hits) > 1 and _is_number(when):
        with np.errstate(invalid="ignore"):
            distance = np.abs(times[hits] - float(when))
        if np.isfinite(distance).any():
            return int(hits[np.nanargmin(distance)])
    return int(hits[0])


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def _same(a: Any, b: Any) -> bool:
    """Equal frame numbers (NaN equals NaN: a store without numbers)."""
    try:
        return bool(a == b) or (math.isnan(float(a)) and math.isnan(float(b)))
    except (TypeError, ValueError):
        return False


def read_extra_rows(store: Any) -> Optional[ExtraRows]:
    """Every extra-data row of ``store`` with the position of the frame it followed (None: no extra data).

    A row that names no frame of the store (no usable ``frame_index`` or ``frame_number``) goes
    before the first frame, with a warning.
    """
    paths = store.find_extra_data_files()
    if not paths:
        return None
    md = store.get_frame_metadata()
    numbers = np.asarray(md["frame_number"])
    times = np.asarray(md["frame_time"], dtype=np.float64)
    rows: List[Tuple[int, Dict[str, Any]]] = []
    unplaced = 0
    for path in paths:
        for record in _extra_records(store, path):
            position = _row_position(record, numbers, times)
            if position is None:
                unplaced += 1
                position = -1
            rows.append((position, {k: v for k, v in record.items() if k not in _FRAME_COLUMNS}))
    if unplaced:
        log.warning(
            "store %s: %d extra-data row(s) name no frame of the store; copied before the first frame",
            store.filename,
            unplaced,
        )
    rows.sort(key=lambda item: item[0])  # stable: rows of one frame keep their order
    return ExtraRows(rows)
