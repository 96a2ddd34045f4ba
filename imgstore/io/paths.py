"""Turn the ``path`` / ``basedir`` arguments users pass into a store directory and its metadata file."""

from __future__ import annotations

import os
from typing import Optional, Tuple, Union

from ..constants import STORE_MD_FILENAME
from ..errors import ImgStoreError, StoreNotFoundError
from .fs import is_url

PathArg = Union[str, "os.PathLike[str]", None]


def _is_metadata_file(path: str) -> bool:
    return os.path.basename(path) == STORE_MD_FILENAME


def parse_store_path(path: PathArg, basedir: PathArg, for_reading: bool) -> Tuple[str, str]:
    """Return ``(store_dir, metadata_path)`` for a store directory or its metadata.yaml.

    ``path`` and ``basedir`` are the two spellings upstream accepted; exactly one must be given.
    When reading, the store must exist (``StoreNotFoundError``, a ``ValueError``, otherwise).
    """
    path = os.fspath(path) if path else None
    basedir = os.fspath(basedir) if basedir else None
    if path and basedir:
        raise ImgStoreError(f"path and basedir are mutually exclusive (got path={path!r}, basedir={basedir!r})")
    if not path and not basedir:
        raise ImgStoreError(f"should be a path to a store {STORE_MD_FILENAME} file or a directory containing one")

    if is_url(path or basedir):  # read through fsspec: checked when the store's files are read
        url = str(path or basedir).rstrip("/")
        store_dir = url.rsplit("/", 1)[0] if _is_metadata_file(url) else url
        return store_dir, f"{store_dir}/{STORE_MD_FILENAME}"

    if basedir:
        if _is_metadata_file(basedir):
            raise ImgStoreError(f"basedir should be a directory, not a {STORE_MD_FILENAME} file: {basedir!r}")
        store_dir = basedir
    elif _is_metadata_file(path):
        store_dir = os.path.dirname(path) or "."
    else:
        store_dir = path

    metadata_path = os.path.join(store_dir, STORE_MD_FILENAME)
    if for_reading and not os.path.isfile(metadata_path):
        what = "does not exist" if not os.path.exists(store_dir) else f"holds no {STORE_MD_FILENAME}"
        raise StoreNotFoundError(f"path '{path or basedir}' {what}: not an imgstore")
    return store_dir, metadata_path


def chunk_name(chunk_n: int) -> str:
    """The six-digit name every chunk file or folder carries (``%06d``)."""
    return f"{chunk_n:06d}"


def after_chunk(chunk_n: int) -> str:
    """A name that sorts (by its bytes, as S3 lists) after every file and folder name of chunk
    ``chunk_n`` (``NNNNNN``, ``NNNNNN.mp4``, ``NNNNNN/index.npz``) and before those of any later
    six-digit chunk: where a listing of what came after it starts."""
    return chunk_name(chunk_n) + "~"


def parse_chunk_name(name: str) -> Optional[int]:
    """The chunk number of a file or folder stem, or None when it is not a chunk name."""
    return int(name) if name.isdigit() and name.isascii() else None
