"""Extra data: per-chunk JSON records written beside frames, and readers for ours and Motif's JSON files
(Motif's HDF5 files: ``motif_h5``)."""

from __future__ import annotations

import datetime
import json
import logging
import math
import os
from typing import TYPE_CHECKING, Any, Dict, List, Optional

import numpy as np

from ..errors import ExtraDataError
from .fs import LOCAL, WRITE_FLAGS, LocalFileSystem, write_all
from .timezone import zone_or_none

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

    import pandas as pd

log = logging.getLogger(__name__)


class ExtraDataWriter:
    """Appends JSON records to one chunk's extra-data file as a JSON array.

    The file is created on the first record and every record goes to it at once (one system
    call, no buffer), so a reader (or a recovery after a crash) sees all records written so
    far; ``read_records`` accepts the unterminated array a crashed writer leaves.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd = -1

    def append(self, text: str) -> None:
        if self._fd < 0:
            self._fd = os.open(self.path, WRITE_FLAGS, 0o644)
            write_all(self._fd, ("[" + text).encode("utf-8"))
        else:
            write_all(self._fd, (",\n" + text).encode("utf-8"))

    @property
    def started(self) -> bool:
        """Whether a record was written (the file exists)."""
        return self._fd >= 0

    def close(self) -> None:
        if self._fd >= 0:
            try:
                write_all(self._fd, b"]")
            finally:
                os.close(self._fd)
                self._fd = -1

    def abandon(self) -> None:
        """Close the file as it is, after a failed write: no ']' after what may be a torn record
        (readers stop at the last whole one)."""
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            os.close(fd)

    def discard(self) -> None:
        """Close and delete the file (used when a store is emptied)."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        if os.path.exists(self.path):
            os.unlink(self.path)


class JsonCustomEncoder(json.JSONEncoder):
    """JSON encoder for extra data: numpy values, sets, bytes, complex numbers and datetimes."""

    def default(self, obj: Any) -> Any:
        if isinstance(obj, (np.ndarray, np.generic)):
            return obj.tolist()
        if isinstance(obj, complex):
            return [obj.real, obj.imag]
        if isinstance(obj, (set, frozenset)):
            return list(obj)
        if isinstance(obj, bytes):
            return obj.decode()
        if isinstance(obj, (datetime.datetime, datetime.date)):
            return obj.isoformat()
        return super().default(obj)


_RECORD_ENCODER: Optional[json.JSONEncoder] = None


def encode_record(data: Dict[str, Any]) -> str:
    """One extra-data record as JSON text; ``ExtraDataError`` names a value JSON cannot hold."""
    global _RECORD_ENCODER
    if _RECORD_ENCODER is None:  # made once: an encoder per record costs a third of the encoding
        _RECORD_ENCODER = JsonCustomEncoder(ensure_ascii=True)
    try:
        return _RECORD_ENCODER.encode(data)
    except (TypeError, ValueError) as exc:
        raise ExtraDataError(f"extra data cannot be written as JSON: {exc}") from None


#: the largest extra-data file read: a chunk's records take a few kilobytes to a few megabytes;
#: a file larger than this is refused rather than read into memory (JSON needs several times its size)
MAX_EXTRA_DATA_BYTES = 1 << 28


def read_records(path: str, warn: bool = True, fs: LocalFileSystem = LOCAL) -> List[Dict[str, Any]]:
    """The records of one of our (or upstream's) extra-data JSON files.

    A file a writer did not finish (it died before closing the array) is read up to its last
    complete record, with a warning (unless ``warn`` is false: a repair expects such files).
    """
    try:
        text = fs.read_bytes(path, limit=MAX_EXTRA_DATA_BYTES).decode("utf-8")
    except OSError as exc:  # also a FIFO, a device, or a file larger than the limit: never read
        raise ExtraDataError(f"{path}: cannot read extra data ({exc.strerror or exc})") from None
    except UnicodeDecodeError as exc:
        raise ExtraDataError(f"{path}: extra data is not UTF-8 text ({exc})") from None
    try:
        records = json.loads(text) if text.strip() else []
    except RecursionError:
        raise ExtraDataError(f"{path}: extra data nested too deeply to read") from None
    except ValueError as exc:  # JSONDecodeError, or an integer of more digits than Python converts
        try:
            records = _recover_unterminated(text)
        except (RecursionError, ValueError):
            records = None
        if records is None:
            raise ExtraDataError(f"{path}: corrupt extra data ({exc})") from None
        if warn:
            log.warning("%s: extra data was not closed (writer stopped early); read %d records", path, len(records))
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise ExtraDataError(f"{path}: extra data must be a JSON array of objects")
    return records


def _recover_unterminated(text: str) -> Optional[list]:
    """Records of an array whose writer died: all complete records, if only the last one is torn."""
    decoder = json.JSONDecoder()
    body = text.rstrip()
    if not body.startswith("["):
        return None
    records, pos = [], 1
    while True:
        while pos < len(body) and body[pos] in " \t\r\n":
            pos += 1
        if pos >= len(body):
            return records
        try:
            record, pos = decoder.raw_decode(body, pos)
        except json.JSONDecodeError:
            return None if ",\n" in body[pos:] else records
        records.append(record)
        while pos < len(body) and body[pos] in " \t\r\n":
            pos += 1
        if pos >= len(body):
            return records
        if body[pos] != ",":
            return None
        pos += 1


def files_of(store: Any) -> LocalFileSystem:
    """The file system a store's files are read through (for the functions upstream gives a store)."""
    view = getattr(store, "view", None)
    return view.layout.fs if view is not None else LOCAL


def motif_extra_data_json_to_df(store: Any, path: str) -> Optional[pd.DataFrame]:
    """Motif's ``NNNNNN.extra_data.json``: rows of recorded frames only, sorted by frame index."""
    return motif_json_frame(path, files_of(store))


def motif_json_frame(path: str, fs: LocalFileSystem = LOCAL) -> Optional[pd.DataFrame]:
    """Motif's ``NNNNNN.extra_data.json`` read through ``fs`` (see ``motif_extra_data_json_to_df``)."""
    import pandas as pd  # only extra data needs pandas: keep it out of `import imgstore`

    df = pd.DataFrame(read_records(path, fs=fs))
    if df.empty:
        return None
    try:  # columns of values that do not compare (text among numbers) cannot be filtered or sorted
        if "frame_number" in df.columns:
            df = df[df["frame_number"] >= 0]
        if df.empty:
            return None
        by = [c for c in ("frame_index", "sensor_time") if c in df.columns]
        return df.sort_values(by=by).reset_index(drop=True) if by else df.reset_index(drop=True)
    except (TypeError, ValueError) as exc:
        raise ExtraDataError(f"{path}: Motif extra data with values that are not numbers ({exc})") from None


def motif_get_parse_true_fps(store: Any, default: Optional[float] = 25.0, hwardware_only: bool = False) -> float:
    """The camera's real frame rate from Motif's user metadata (or the median frame interval)."""
    md = store.user_metadata
    if "hwframerate" in md:
        return float(md["hwframerate"])
    if "motifptpframerate" in md:
        return float(md["motifptpframerate"])
    if not hwardware_only and md.get("acquisitionframerate") and md.get("acquisitionframerateenable", False) is True:
        return float(md["acquisitionframerate"])
    if default is None:
        times = np.asarray(store.get_frame_metadata()["frame_time"], dtype=float)
        interval = float(np.median(np.diff(times))) if len(times) > 1 else math.nan
        return 1.0 / interval
    return default


def motif_get_recording_timezone(store: Any) -> ZoneInfo:
    """The user-metadata ``timezone`` of a Motif recording, else the store's zone."""
    _, tz = store.created
    user_tz = zone_or_none((store.user_metadata or {}).get("timezone"))
    return user_tz or tz
