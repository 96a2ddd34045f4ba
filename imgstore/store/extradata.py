"""Reading a store's extra data (ours, and Motif's JSON and HDF5 files), and renumbering it on reindex."""

from __future__ import annotations

import dataclasses
import json
import logging
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple

import numpy as np

from ..constants import EXTRA_DATA_FILE_EXTENSIONS
from ..errors import ExtraDataError, ImgStoreError
from ..io.extra import motif_json_frame, read_records
from ..io.metadata import write_file_atomic
from ..io.motif_h5 import motif_extra_data_h5_attrs, motif_h5_frame
from .layout import OWN_EXTRA_EXTENSIONS, ChunkLayout

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)


def read_extra_data(layout: ChunkLayout, ignore_corrupt_chunks: bool = False) -> Optional[pd.DataFrame]:
    """All extra data of a store as one DataFrame, in chunk order (None when there is none)."""
    frames = []
    for path in layout.extra_data_files():
        try:
            df = read_extra_file(layout, path)
        except (ExtraDataError, OSError) as exc:
            if not ignore_corrupt_chunks:
                raise
            log.warning("skipping corrupt extra data %s: %s", path, exc)
            continue
        if df is not None and not df.empty:
            frames.append(df)
        else:
            log.info("chunk extra data %s is empty", path)
    if frames:
        import pandas as pd  # only extra data needs pandas: keep it out of `import imgstore`

        return pd.concat(frames, axis=0, ignore_index=True)
    return None


def read_extra_file(layout: ChunkLayout, path: str) -> Optional[pd.DataFrame]:
    """One extra-data file of the store as a DataFrame: ours, or Motif's JSON or HDF5 (None: no rows)."""
    if path.endswith(".extra_data.h5"):
        return motif_h5_frame(path, layout.fs)
    if layout.is_motif_extra_data(path):
        return motif_json_frame(path, layout.fs)
    import pandas as pd

    return pd.DataFrame(read_records(path, fs=layout.fs))


def extra_data_samplerate(layout: ChunkLayout) -> float:
    """The sample rate of Motif's HDF5 extra data (one dataset only)."""
    for path in layout.extra_data_files(extensions=(".extra_data.h5",)):
        attrs = motif_extra_data_h5_attrs(path, layout.fs)
        datasets = attrs["_datasets"]
        if len(datasets) > 1:
            raise ImgStoreError(f"{path}: multiple sample rates; use motif_extra_data_h5_attrs")
        if len(datasets) == 1 and "samplerate" in attrs.get(datasets[0], {}):
            return attrs[datasets[0]]["samplerate"]
    raise ImgStoreError(f"store {layout.basedir}: no sample rate or dataset found in extra data")


def has_extra_data(layout: ChunkLayout, extensions: Tuple[str, ...] = EXTRA_DATA_FILE_EXTENSIONS) -> bool:
    return any(layout.extra_data_paths(n, extensions) for n in layout.chunk_numbers())


def renumber_extra_data(layout: ChunkLayout, new_numbers: np.ndarray) -> None:
    """Rewrite the ``frame_number`` of our own extra-data records from their ``frame_index`` (reindex).

    The number they had is kept as ``_frame_number_before_reindex``.
    """
    for chunk_n in layout.chunk_numbers():
        for path in layout.extra_data_paths(chunk_n, OWN_EXTRA_EXTENSIONS):
            records = read_records(path)
            for record in records:
                index = record.get("frame_index")
                if not isinstance(index, int) or not 0 <= index < len(new_numbers):
                    log.warning("%s: record without a valid frame_index left as it was: %r", path, record)
                    continue
                record["_frame_number_before_reindex"] = record.get("frame_number")
                record["frame_number"] = int(new_numbers[index])
            write_file_atomic(path, json.dumps(records).encode("utf-8"))


@dataclasses.dataclass
class OwnRecords:
    """Our own extra-data records of a store, for edits that carry them into a new store."""

    #: by the store position of the frame each was written with (its ``frame_index``), in the order written
    by_position: Dict[int, List[Dict[str, Any]]]
    #: those written before the first frame (``frame_index`` -1), in the order written
    before_first_frame: List[Dict[str, Any]]


def own_records(layout: ChunkLayout) -> OwnRecords:
    """Our own extra-data records of the store at ``layout`` (Motif's files are not among them:
    ``imgstore.edit_motif`` carries those). A record whose ``frame_index`` is no position at all
    is left out, with a warning."""
    found = OwnRecords({}, [])
    for chunk_n in layout.chunk_numbers():
        for path in layout.extra_data_paths(chunk_n):
            if path.endswith(".extra_data.h5") or layout.is_motif_extra_data(path):
                continue
            for record in read_records(path, fs=layout.fs):
                index = record.get("frame_index")
                if isinstance(index, bool) or not isinstance(index, int):
                    log.warning("%s: a record without a frame is not carried into edited stores: %r", path, record)
                elif index >= 0:
                    found.by_position.setdefault(index, []).append(record)
                else:  # -1: the writer had no frame yet
                    found.before_first_frame.append(record)
    return found
