"""Chunk indexes of a store at a URL: fetched together, parsed from memory, never unpickled.

A local store's indexes are read (and cached) by ``index.cache``; a URL store is read-only and
cannot be stat-ed cheaply, so its index files are fetched in one concurrent batch (fsspec sends
the requests together) and parsed by the local loader's parser: npz preferred over yaml, arrays
checked, never unpickled.
"""

from __future__ import annotations

import logging
from typing import Dict, List, Sequence, Tuple

import numpy as np

from ..errors import ChunkIndexError
from ..io.fs import LocalFileSystem
from .chunkfile import INDEX_EXTENSIONS, MAX_INDEX_BYTES, MAX_YAML_INDEX_BYTES, parse_chunk_index
from .frametable import FrameTable
from .storeindex import ImgStoreIndex

log = logging.getLogger(__name__)


def load_remote_index(fs: LocalFileSystem, chunks: Sequence[Tuple[int, str]]) -> ImgStoreIndex:
    """The index of ``(chunk_n, index base)`` chunks read through ``fs``; bad chunks are skipped with a warning."""
    # one request per chunk: its index.npz, fetched without listing its folder; then index.yaml
    # (upstream's old format) for those that have no npz
    paths: Dict[int, str] = {}
    contents: Dict[str, object] = {}
    missing = list(chunks)
    for extension in INDEX_EXTENSIONS:
        limit = MAX_INDEX_BYTES if extension == ".npz" else MAX_YAML_INDEX_BYTES
        got = fs.read_many([base + extension for _, base in missing], limit=limit)
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
