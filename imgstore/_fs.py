"""Where a store's files are read from: the local disk, or any fsspec URL (HTTP(S), S3, GCS...).

Reading a store needs only a few file operations: list a directory, test for a file, read a small
file whole (metadata, chunk indexes, extra data) and open a chunk for reading with seeks. Local
stores use ``os`` directly; a URL store goes through fsspec, which fetches only the byte ranges a
reader asks for (with a block cache), so one frame of a week-long recording costs a few requests.
"""

from __future__ import annotations

import logging
import os
import posixpath
from typing import Any, BinaryIO, Dict, List, NamedTuple, Optional, Sequence, Tuple

from .errors import MissingDependencyError, StoreNotFoundError

log = logging.getLogger(__name__)

#: bytes fetched per request when reading a chunk from a URL, and blocks kept per open chunk
REMOTE_BLOCK_SIZE = 1 << 18
REMOTE_CACHED_BLOCKS = 64
#: small files (chunk indexes) fetched at the same time when a store at a URL opens
REMOTE_CONCURRENT_REQUESTS = 32


class Entry(NamedTuple):
    """One name in a directory listing."""

    name: str
    is_dir: bool


def is_url(path: Any) -> bool:
    """Whether ``path`` names a store through fsspec (``scheme://...``) rather than on the local disk."""
    if not isinstance(path, str) or "://" not in path:
        return False
    scheme = path.split("://", 1)[0]
    return scheme.isidentifier() or all(part.isidentifier() for part in scheme.split("+"))


class LocalFileSystem:
    """The local disk."""

    remote = False

    def join(self, *parts: str) -> str:
        return os.path.join(*parts)

    def dirname(self, path: str) -> str:
        return os.path.dirname(path)

    def exists(self, path: str) -> bool:
        return os.path.exists(path)

    def isfile(self, path: str) -> bool:
        return os.path.isfile(path)

    def listdir(self, path: str) -> List[Entry]:
        with os.scandir(path) as entries:
            return [Entry(e.name, e.is_dir()) for e in entries]

    def open(self, path: str) -> BinaryIO:
        return open(path, "rb")

    def read_bytes(self, path: str) -> bytes:
        with open(path, "rb") as f:
            return f.read()

    def read_many(self, paths: Sequence[str]) -> Dict[str, Any]:
        """The content of each file, or the exception reading it raised."""
        out: Dict[str, Any] = {}
        for path in paths:
            try:
                out[path] = self.read_bytes(path)
            except OSError as exc:
                out[path] = exc
        return out

    def modified(self, path: str) -> float:
        """Modification time, seconds since the epoch."""
        return os.path.getmtime(path)

    def version(self, path: str) -> Tuple[Any, ...]:
        """Something that changes whenever the file does (for caches keyed on a file's content)."""
        st = os.stat(path)
        return (st.st_mtime_ns, st.st_size)

    def forget(self) -> None:
        """Drop cached listings (a store being written elsewhere may have changed)."""


class RemoteFileSystem(LocalFileSystem):
    """A directory tree behind an fsspec URL, read-only."""

    remote = True

    def __init__(self, url: str, storage_options: Optional[Dict[str, Any]] = None) -> None:
        try:
            import fsspec
        except ImportError:
            raise MissingDependencyError(
                f"reading a store from a URL ({url}) needs fsspec: pip install imgstore[remote]"
            ) from None
        try:
            self._fs, _ = fsspec.core.url_to_fs(url, **(storage_options or {}))
        except (ImportError, ValueError) as exc:
            raise MissingDependencyError(
                f"cannot read {url}: {exc} (pip install imgstore[remote] installs HTTP and S3 support)"
            ) from None
        self._listings: Dict[str, Dict[str, Dict[str, Any]]] = {}

    def join(self, *parts: str) -> str:
        head, *rest = parts
        return posixpath.join(head.rstrip("/"), *rest) if rest else head

    def dirname(self, path: str) -> str:
        return path.rstrip("/").rsplit("/", 1)[0]

    def _listing(self, directory: str) -> Dict[str, Dict[str, Any]]:
        key = directory.rstrip("/")
        if key not in self._listings:
            try:
                infos = self._fs.ls(key + "/", detail=True)
            except FileNotFoundError:
                infos = []
            listing = {}
            for info in infos:
                name = info["name"].rstrip("/").rsplit("/", 1)[-1]
                if name:
                    listing[name] = info
            self._listings[key] = listing
        return self._listings[key]

    def _info(self, path: str) -> Optional[Dict[str, Any]]:
        parent, _, name = path.rstrip("/").rpartition("/")
        return self._listing(parent).get(name)

    def exists(self, path: str) -> bool:
        return self._info(path) is not None or bool(self._listing(path))

    def isfile(self, path: str) -> bool:
        info = self._info(path)
        return info is not None and info.get("type") != "directory"

    def listdir(self, path: str) -> List[Entry]:
        return [Entry(name, info.get("type") == "directory") for name, info in self._listing(path).items()]

    def open(self, path: str) -> BinaryIO:
        return self._fs.open(
            path, "rb", block_size=REMOTE_BLOCK_SIZE, cache_type="blockcache",
            cache_options={"maxblocks": REMOTE_CACHED_BLOCKS},
        )

    def read_bytes(self, path: str) -> bytes:
        return self._fs.cat_file(path)

    def read_many(self, paths: Sequence[str]) -> Dict[str, Any]:
        if not paths:
            return {}
        got = self._fs.cat(list(paths), on_error="return", batch_size=REMOTE_CONCURRENT_REQUESTS)
        # fsspec keys results by its own spelling of each path (without the scheme, for some)
        by_tail = {k.rstrip("/").split("://", 1)[-1]: v for k, v in got.items()}
        return {p: by_tail.get(p.split("://", 1)[-1], FileNotFoundError(p)) for p in paths}

    def modified(self, path: str) -> float:
        info = self._info(path) or {}
        for key in ("mtime", "LastModified", "last_modified", "created"):
            value = info.get(key)
            if hasattr(value, "timestamp"):
                return float(value.timestamp())
            if isinstance(value, (int, float)):
                return float(value)
        raise OSError(f"{path}: the server gives no modification time")

    def version(self, path: str) -> Tuple[Any, ...]:
        info = self._info(path) or {}
        return (info.get("size"), info.get("ETag") or info.get("etag"), str(info.get("LastModified", "")))

    def forget(self) -> None:
        self._listings.clear()


LOCAL = LocalFileSystem()


#: flags of a file written with os.write, created or emptied (binary on Windows too)
WRITE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0)


def write_all(fd: int, data: bytes) -> None:
    """Write all of ``data`` with as few system calls as the OS allows, no user-space buffer:
    once this returns, a crash of the process loses none of it."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def filesystem_for(store_dir: str, storage_options: Optional[Dict[str, Any]] = None) -> LocalFileSystem:
    """The file system a store directory lives on (``storage_options`` go to fsspec for URLs)."""
    return RemoteFileSystem(store_dir, storage_options) if is_url(store_dir) else LOCAL


def require_store(fs: LocalFileSystem, store_dir: str, metadata_path: str, given: str) -> None:
    """``StoreNotFoundError`` unless ``store_dir`` holds a metadata file."""
    if not fs.isfile(metadata_path):
        what = "does not exist" if not fs.exists(store_dir) else "holds no metadata.yaml"
        raise StoreNotFoundError(f"path '{given}' {what}: not an imgstore")
