"""Chunk indexes of a store at a URL: fetched together, parsed from memory, never unpickled.

A local store's indexes are read (and cached) by ``_indexcache``; a URL store is read-only and
cannot be stat-ed cheaply, so its index files are fetched in one concurrent batch (fsspec sends
the requests together) and parsed as the local loader would: npz preferred over yaml, arrays
checked, ``allow_pickle=False``.
"""

from __future__ import annotations

import io
import logging
import zipfile
from typing import Dict, List, Sequence, Tuple

import numpy as np
import yaml

from ._chunkindex import INDEX_EXTENSIONS, validate_chunk_arrays
from ._frameindex import FrameTable
from ._fs import LocalFileSystem
from .constants import FRAME_MD
from .errors import ChunkIndexError
from .index import ImgStoreIndex

log = logging.getLogger(__name__)


def load_remote_index(fs: LocalFileSystem, chunks: Sequence[Tuple[int, str]]) -> ImgStoreIndex:
    """The index of ``(chunk_n, index base)`` chunks read through ``fs``; bad chunks are skipped with a warning."""
    # one request per chunk: its index.npz, fetched without listing its folder; then index.yaml
    # (upstream's old format) for those that have no npz
    paths: Dict[int, str] = {}
    contents: Dict[str, object] = {}
    missing = list(chunks)
    for extension in INDEX_EXTENSIONS:
        got = fs.read_many([base + extension for _, base in missing])
        still = []
        for chunk_n, base in missing:
            data = got[base + extension]
            if isinstance(data, FileNotFoundError):
                still.append((chunk_n, base))
            else:
                paths[chunk_n] = base + extension
                contents[base + extension] = data
        missing = still
    for chunk_n, base in missing:
        log.warning("skipping chunk %s: missing index %s{%s}", chunk_n, base, ",".join(INDEX_EXTENSIONS))
    ids: List[int] = []
    numbers: List[np.ndarray] = []
    times: List[np.ndarray] = []
    chunk_paths: Dict[int, str] = {}
    for chunk_n, base in sorted(chunks):
        path = paths.get(chunk_n)
        if path is None:
            continue
        try:
            data = contents[path]
            if isinstance(data, BaseException):
                raise ChunkIndexError(f"{path}: cannot be read ({data})")
            frame_number, frame_time = parse_chunk_index(data, path)
        except ChunkIndexError as exc:
            log.warning("skipping chunk %s: %s", chunk_n, exc)
            continue
        if len(frame_number):
            ids.append(chunk_n)
            numbers.append(frame_number)
            times.append(frame_time)
            chunk_paths[chunk_n] = base
    return ImgStoreIndex(table=FrameTable(ids, numbers, times), chunk_paths=chunk_paths)


def parse_chunk_index(data: bytes, path: str) -> Tuple[np.ndarray, np.ndarray]:
    """``(frame_number, frame_time)`` from the bytes of an ``index.npz`` or ``index.yaml``."""
    if path.endswith(".npz"):
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as npz:
                raw = {key: npz[key] for key in FRAME_MD if key in npz.files}
        except ValueError as exc:
            raise ChunkIndexError(f"{path}: unsafe or unreadable index arrays ({exc})") from None
        except (OSError, EOFError, zipfile.BadZipFile, KeyError) as exc:
            raise ChunkIndexError(f"{path}: truncated or corrupt index ({exc})") from None
    else:
        try:
            raw = yaml.safe_load(data)
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise ChunkIndexError(f"{path}: not a valid YAML index ({exc})") from None
        if not isinstance(raw, dict):
            raise ChunkIndexError(f"{path}: expected a mapping with {' and '.join(FRAME_MD)}")
    return validate_chunk_arrays(raw.get("frame_number"), raw.get("frame_time"), path)
