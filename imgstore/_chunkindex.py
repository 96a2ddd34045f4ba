"""Per-chunk frame index files (``index.npz`` / ``index.yaml``): safe loading and atomic saving."""

from __future__ import annotations

import io
import logging
import os
import zipfile
from typing import Dict, Mapping, Optional, Tuple

import numpy as np
import yaml

from ._metadata import write_file_atomic
from .constants import FRAME_MD
from .errors import ChunkIndexError

log = logging.getLogger(__name__)

INDEX_EXTENSIONS = (".npz", ".yaml")

ChunkArrays = Tuple[np.ndarray, np.ndarray]


def find_chunk_index(path_without_extension: str) -> Optional[str]:
    """The existing index file for a chunk (npz preferred over yaml, as upstream), or None."""
    for extension in INDEX_EXTENSIONS:
        path = path_without_extension + extension
        if os.path.exists(path):
            return path
    return None


def load_chunk_index(path_without_extension: str) -> ChunkArrays:
    """Load ``(frame_number, frame_time)`` of one chunk; ``ChunkIndexError`` says what is wrong."""
    path = find_chunk_index(path_without_extension)
    if path is None:
        raise ChunkIndexError(f"missing index {path_without_extension}{{{','.join(INDEX_EXTENSIONS)}}}")
    raw = _load_npz(path) if path.endswith(".npz") else _load_yaml(path)
    return validate_chunk_arrays(raw.get("frame_number"), raw.get("frame_time"), path)


def _load_npz(path: str) -> Dict[str, object]:
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {key: npz[key] for key in FRAME_MD if key in npz.files}
    except ValueError as exc:  # object arrays: numpy refuses to unpickle them
        raise ChunkIndexError(f"{path}: unsafe or unreadable index arrays ({exc})") from None
    except (OSError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        raise ChunkIndexError(f"{path}: truncated or corrupt index ({exc})") from None


def _load_yaml(path: str) -> Dict[str, object]:
    try:
        with open(path, "rb") as f:
            data = yaml.safe_load(f)
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ChunkIndexError(f"{path}: not a valid YAML index ({exc})") from None
    if not isinstance(data, dict):
        raise ChunkIndexError(f"{path}: expected a mapping with {' and '.join(FRAME_MD)}")
    return data


def validate_chunk_arrays(frame_number: object, frame_time: object, path: str) -> ChunkArrays:
    """Check and normalise one chunk's arrays: 1-D, numeric, equal length; integral numbers become int64."""
    if frame_number is None or frame_time is None:
        raise ChunkIndexError(f"{path}: index lacks {'frame_number' if frame_number is None else 'frame_time'}")
    try:
        numbers = np.asarray(frame_number)
        raw_times = np.asarray(frame_time)
        if raw_times.dtype.kind in "cmMSUV":
            raise ChunkIndexError(f"{path}: frame_time must be real numbers, got dtype {raw_times.dtype}")
        times = raw_times.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise ChunkIndexError(f"{path}: index arrays are not numeric ({exc})") from None
    if numbers.ndim != 1 or times.ndim != 1:
        raise ChunkIndexError(f"{path}: index arrays must be one-dimensional")
    if len(numbers) != len(times):
        raise ChunkIndexError(f"{path}: frame_number has {len(numbers)} entries but frame_time has {len(times)}")
    if numbers.dtype.kind in "iub" or len(numbers) == 0:
        numbers = numbers.astype(np.int64)
    elif numbers.dtype.kind == "f":
        if np.all(np.isfinite(numbers)) and np.all(numbers == np.round(numbers)):
            numbers = numbers.astype(np.int64)
    else:
        raise ChunkIndexError(f"{path}: frame_number must be numeric, got dtype {numbers.dtype}")
    return numbers, times


def save_chunk_index(
    path_without_extension: str,
    frame_number: np.ndarray,
    frame_time: np.ndarray,
    extra: Optional[Mapping[str, object]] = None,
) -> str:
    """Write ``<path>.npz`` atomically with the frame arrays plus ``extra`` entries.

    Entries of ``extra`` that numpy could only store pickled (None, nested objects) are left out,
    so that every reader can load the file with ``allow_pickle=False``.
    """
    numbers = np.asarray(frame_number)
    arrays: Dict[str, np.ndarray] = {
        "frame_number": numbers.astype(np.int64) if numbers.dtype.kind in "iub" or not len(numbers) else numbers,
        "frame_time": np.asarray(frame_time, dtype=np.float64),
    }
    for key, value in (extra or {}).items():
        if key in arrays or value is None:
            continue
        try:
            arr = np.asarray(value)
        except (TypeError, ValueError):
            continue
        if arr.dtype != object:
            arrays[key] = arr
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    path = path_without_extension + ".npz"
    write_file_atomic(path, buffer.getvalue())
    return path


def remove_chunk_index(path_without_extension: str) -> Optional[str]:
    """Delete a chunk's index file(s); returns the path removed, if any."""
    removed = None
    for extension in INDEX_EXTENSIONS:
        path = path_without_extension + extension
        if os.path.exists(path):
            os.unlink(path)
            removed = path
    return removed
