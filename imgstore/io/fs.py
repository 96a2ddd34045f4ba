"""Where a store's files are read from: the local disk, or any fsspec URL (HTTP(S), S3, GCS...).

Reading a store needs only a few file operations: list a directory, test for a file, read a small
file whole (metadata, chunk indexes, extra data) and open a chunk for reading with seeks. Local
stores use ``os`` directly; a URL store goes through fsspec, which fetches only the byte ranges a
reader asks for (with a block cache), so one frame of a week-long recording costs a few requests.
"""

from __future__ import annotations

import email.utils
import errno
import functools
import io
import logging
import os
import posixpath
import stat
from typing import Any, BinaryIO, Dict, List, NamedTuple, Optional, Sequence, Tuple
from urllib.parse import urlsplit

from ..errors import MissingDependencyError, RangeRequestsError, StoreChangedError, StoreNotFoundError
from . import s3
from .rangefile import RangeFile, SharedBlocks

log = logging.getLogger(__name__)

#: bytes fetched per request when reading a chunk from a URL, and blocks kept per open chunk
REMOTE_BLOCK_SIZE = 1 << 18
#: the largest file read whole from a server that does not answer range requests (bytes), and
#: the storage option that changes it
WHOLE_FILE_LIMIT = 64 << 20
WHOLE_FILE_LIMIT_OPTION = "imgstore_whole_file_limit"
REMOTE_CACHED_BLOCKS = 64
#: small files (chunk indexes) fetched at the same time when a store at a URL opens
REMOTE_CONCURRENT_REQUESTS = 32


#: flags to open a store's file for reading: never waits (a FIFO opens at once, and is then refused)
#: and never makes a terminal the controlling one
READ_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_NONBLOCK", 0)
    | getattr(os, "O_NOCTTY", 0)
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_BINARY", 0)
)


class RefusedFileError(OSError):
    """A store's file that is not read at all: not a regular file, or larger than its format allows.

    An ``OSError``, so that callers that turn read errors into their own error (naming the file)
    handle it as they handle a file that cannot be read.
    """


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def open_regular(path: str) -> BinaryIO:
    """Open a regular file for reading (symlinks are followed); anything else is refused at once.

    A store may come from anyone: a FIFO in place of one of its files must not block the reader
    (opening a FIFO waits for a writer), and a device must not feed it without end (``/dev/zero``).
    The file is opened without waiting and checked before a byte is read: ``RefusedFileError``.
    """
    fd = os.open(path, READ_FLAGS)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise RefusedFileError(errno.EINVAL, f"not a regular file ({_kind(mode)})", path)
        f = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    return f


def read_regular(path: str, limit: int, writable: bool = False) -> Any:
    """The content of a regular file of at most ``limit`` bytes; ``RefusedFileError`` otherwise.

    Reads no more than the size the file has when opened (a file being appended to is read as
    it was then), so that nothing a reader is given can make it read or allocate more. Returns
    ``bytes``, or with ``writable`` a ``bytearray`` (arrays made from it can be written to).
    """
    with open_regular(path) as f:
        size = os.fstat(f.fileno()).st_size
        if size > limit:
            raise RefusedFileError(errno.EFBIG, f"{size} bytes, more than the {limit} such a file may hold", path)
        if not writable:
            return f.read(size)
        data = bytearray(size)
        del data[f.readinto(data) :]
        return data


def is_regular_file(path: str) -> bool:
    """Whether ``path`` is a regular file (symlinks followed); never opens it."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False


class Entry(NamedTuple):
    """One name in a directory listing."""

    name: str
    is_dir: bool


class PartialListing(NamedTuple):
    """The names of a directory that sort after a given one (``list_after``), and whether more follow."""

    entries: List[Entry]
    truncated: bool


def is_url(path: Any) -> bool:
    """Whether ``path`` names a store through fsspec (``scheme://...``) rather than on the local disk."""
    if not isinstance(path, str) or "://" not in path:
        return False
    scheme = path.split("://", 1)[0]
    return scheme.isidentifier() or all(part.isidentifier() for part in scheme.split("+"))


class LocalFileSystem:
    """The local disk."""

    #: whether reading a whole file costs more than its bytes (requests to a server): readers
    #: then use what a container indexes up front rather than scanning the file
    costly_reads = False
    #: whether ``list_after`` answers: a listing from a name on in one request, however many
    #: names the directory holds (where a whole listing costs a request per 1,000: S3)
    lists_after = False

    def join(self, *parts: str) -> str:
        return os.path.join(*parts)

    def dirname(self, path: str) -> str:
        return os.path.dirname(path)

    def file_name(self, path: str) -> str:
        """The name of the file at ``path`` (its last part; on a disk, '#' and '?' are part of it)."""
        return os.path.basename(path.rstrip("/"))

    def exists(self, path: str) -> bool:
        return os.path.exists(path)

    def isfile(self, path: str) -> bool:
        return os.path.isfile(path)

    def listdir(self, path: str) -> List[Entry]:
        with os.scandir(path) as entries:
            return [Entry(e.name, e.is_dir()) for e in entries]

    def open(self, path: str) -> BinaryIO:
        """A regular file opened for reading (``RefusedFileError`` for a FIFO, a device...)."""
        return open_regular(path)

    def source(self, path: str) -> Any:
        """What a library that reads files itself (FFmpeg, HDF5) is given: here, the path."""
        return path

    def read_bytes(self, path: str, limit: Optional[int] = None) -> bytes:
        """The whole content of a regular file; ``RefusedFileError`` when it holds more than ``limit`` bytes."""
        if limit is not None:
            return read_regular(path, limit)
        with open_regular(path) as f:
            return f.read()

    def read_range(self, path: str, start: int, end: int) -> bytes:
        """Bytes ``start:end`` of a file (fewer at its end)."""
        with open_regular(path) as f:
            f.seek(start)
            return f.read(max(0, end - start))

    def read_many(self, paths: Sequence[str], limit: Optional[int] = None) -> Dict[str, Any]:
        """The content of each file, or the exception reading it raised."""
        out: Dict[str, Any] = {}
        for path in paths:
            try:
                out[path] = self.read_bytes(path, limit)
            except OSError as exc:
                out[path] = exc
        return out

    def size_if_known(self, path: str) -> Optional[int]:
        """A file's size, if it can be had without a request of its own (None: not known)."""
        try:
            return os.path.getsize(path)
        except OSError:
            return None

    def modified(self, path: str) -> float:
        """Modification time, seconds since the epoch."""
        return os.path.getmtime(path)

    def version(self, path: str) -> Tuple[Any, ...]:
        """Something that changes whenever the file does (for caches keyed on a file's content)."""
        st = os.stat(path)
        return (st.st_mtime_ns, st.st_size)

    def forget(self) -> None:
        """Drop cached listings (a store being written elsewhere may have changed)."""

    def list_after(self, directory: str, name: str, limit: int) -> Optional[PartialListing]:
        """Up to ``limit`` names of ``directory`` that sort after ``name`` (by their UTF-8 bytes),
        in one request; None where that cannot be had without listing it whole (``lists_after``)."""
        return None

    def expect_size(self, path: str, size: int) -> None:
        """Say how large the file at ``path`` must be (its store's sealed index says so): a
        remote read of it that finds otherwise is a ``StoreChangedError``. Nothing on a disk,
        where the seal was checked against the files themselves when the store opened."""


class RemoteFileSystem(LocalFileSystem):
    """A directory tree behind an fsspec URL, read-only."""

    costly_reads = True

    def __init__(self, url: str, storage_options: Optional[Dict[str, Any]] = None) -> None:
        try:
            import fsspec
        except ImportError:
            raise MissingDependencyError(
                f"reading a store from a URL ({url}) needs fsspec: pip install 'imgstore-ng[remote]'"
            ) from None
        options = dict(storage_options or {})
        #: files a server that does not answer range requests may send whole (bytes; see ``source``)
        self.whole_file_limit = int(options.pop(WHOLE_FILE_LIMIT_OPTION, WHOLE_FILE_LIMIT))
        self._serves_ranges: Optional[bool] = None
        try:
            self._fs, _ = fsspec.core.url_to_fs(url, **options)
        except (ImportError, ValueError) as exc:
            raise MissingDependencyError(
                f"cannot read {url}: {exc} (pip install 'imgstore-ng[remote]' installs HTTP and S3 support)"
            ) from None
        self._listings: Dict[str, Dict[str, Dict[str, Any]]] = {}
        #: files asked about one by one (``remember_file``): a lone file's folder is not listed
        self._files: Dict[str, Dict[str, Any]] = {}
        #: files whose openings share the blocks fetched (``remember_file``)
        self._shared: Dict[str, SharedBlocks] = {}
        #: sizes files must have (``expect_size``), checked by every read of them
        self._expected: Dict[str, int] = {}
        self._s3 = s3.is_s3(self._fs)
        self.lists_after = self._s3

    def join(self, *parts: str) -> str:
        head, *rest = parts
        return posixpath.join(head.rstrip("/"), *rest) if rest else head

    def dirname(self, path: str) -> str:
        return path.rstrip("/").rsplit("/", 1)[0]

    def file_name(self, path: str) -> str:
        """The name of the file at the URL ``path``: the last part of its path, without a query."""
        return posixpath.basename(urlsplit(path).path.rstrip("/"))

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
        if path in self._files:
            return self._files[path]
        parent, _, name = path.rstrip("/").rpartition("/")
        return self._listing(parent).get(name)

    def remember_file(self, path: str) -> None:
        """Ask the server about one file (one request: its size, version and time), so that it is
        known without listing its folder, which for a lone file may be huge or not allowed; every
        opening of it (``source``) then shares the blocks fetched (``io.rangefile``)."""
        info = self._files[path] = dict(self._fs.info(path))
        size = info.get("size")
        if isinstance(size, int):
            fetch = functools.partial(self.read_range, path)
            self._shared[path] = SharedBlocks(fetch, size, REMOTE_BLOCK_SIZE, REMOTE_CACHED_BLOCKS)

    def exists(self, path: str) -> bool:
        if path in self._expected or self._info(path) is not None:
            return True
        parent = self.dirname(path).rstrip("/")
        if self._listings.get(parent):  # its folder's listing holds everything in it: not there
            return False
        return bool(self._listing(path))  # a folder its parent's listing cannot show (a bucket's root)

    def size_if_known(self, path: str) -> Optional[int]:
        if path in self._expected:  # the size it must have: any read finding another fails
            return self._expected[path]
        size = (self.listed(path) or {}).get("size")
        return size if isinstance(size, int) else None

    def listed(self, path: str) -> Optional[Dict[str, Any]]:
        """What the listing of ``path``'s folder fetched so far says of it: its details, ``{}``
        when the listing does not hold it, None when that folder has not been listed."""
        if path in self._files:
            return self._files[path]
        parent, _, name = path.rstrip("/").rpartition("/")
        listing = self._listings.get(parent.rstrip("/"))
        if not listing:
            return None
        return listing.get(name, {})

    def isfile(self, path: str) -> bool:
        if path in self._expected:  # (a missing one fails its first read)
            return True
        info = self._info(path)
        return info is not None and info.get("type") != "directory"

    def listdir(self, path: str) -> List[Entry]:
        return [Entry(name, info.get("type") == "directory") for name, info in self._listing(path).items()]

    def open(self, path: str) -> BinaryIO:
        return self._fs.open(
            path,
            "rb",
            block_size=REMOTE_BLOCK_SIZE,
            cache_type="blockcache",
            cache_options={"maxblocks": REMOTE_CACHED_BLOCKS},
        )

    def source(self, path: str) -> Any:
        """At a URL, a seekable file object that fetches byte ranges as the library reads.

        Whether the server answers range requests is asked once, with the first file (one byte
        of it). A server that does not (``python -m http.server``) sends whole files: one of at
        most ``whole_file_limit`` bytes is then read from memory; a larger one is refused with
        ``RangeRequestsError``, which says what to do.
        """
        expected = self._expected.get(path) if self._s3 else None
        if expected is not None:  # S3 serves ranges, and states the file's size with each
            fetch = functools.partial(self.read_range, path)
            return RangeFile(SharedBlocks(fetch, expected, REMOTE_BLOCK_SIZE, REMOTE_CACHED_BLOCKS), path)
        if not self._serves_ranges:  # not asked yet (None), or known not to (False)
            probe = self._fs.cat_file(path, start=0, end=1)
            self._serves_ranges = len(probe) <= 1
            if not self._serves_ranges:
                self._refuse_if_too_large(path, probe)
                log.info("%s: the server sends whole files (no range requests); read from memory", path)
                return io.BytesIO(probe)
        shared = self._shared.get(path)
        return RangeFile(shared, path) if shared is not None else self.open(path)

    def read_bytes(self, path: str, limit: Optional[int] = None) -> bytes:
        # the server says how large the file is only by sending it: the limit is checked after.
        # ``start=0``: one request. Without it s3fs first asks for the file's size (a HEAD) to
        # fetch a large file in parts; HTTP sends no Range header for it.
        try:
            data = self._fs.cat_file(path, start=0)
        except FileNotFoundError:
            if path in self._expected:
                raise StoreChangedError.of(path, "is missing") from None
            raise
        expected = self._expected.get(path, len(data))
        if len(data) != expected:
            raise StoreChangedError.of(path, f"has {len(data):,} bytes, {expected:,} when sealed")
        return _within(path, data, limit)

    def read_range(self, path: str, start: int, end: int) -> bytes:
        """Bytes ``start:end`` of a file, in one range request; a server that sends whole files
        instead is answered from a file of at most ``whole_file_limit`` bytes (see ``source``)."""
        if self._s3 and path in self._expected:
            data = s3.checked_range(self._fs, path, start, end, self._expected[path])
        else:
            data = self._fs.cat_file(path, start=start, end=end)
        if len(data) <= end - start:
            return data
        self._serves_ranges = False  # it sent the whole file
        self._refuse_if_too_large(path, data)
        return data[start:end]

    def expect_size(self, path: str, size: int) -> None:
        self._expected[path] = size

    def list_after(self, directory: str, name: str, limit: int) -> Optional[PartialListing]:
        if not self._s3:
            return None
        entries, truncated = s3.list_after(self._fs, directory, name, limit)
        return PartialListing([Entry(e.name, e.is_dir) for e in entries], truncated)

    def _refuse_if_too_large(self, path: str, whole: bytes) -> None:
        """``RangeRequestsError`` when a server that sends whole files sent more than may be read whole."""
        if len(whole) > self.whole_file_limit:
            raise RangeRequestsError(
                f"{path}: the server does not answer HTTP range requests, and this file "
                f"({len(whole):,} bytes) is larger than the {self.whole_file_limit:,} bytes read whole "
                f"(storage option {WHOLE_FILE_LIMIT_OPTION!r}); serve the store with a server that "
                "answers them (nginx, Apache, S3...), or download it"
            )

    def read_many(self, paths: Sequence[str], limit: Optional[int] = None) -> Dict[str, Any]:
        if not paths:
            return {}
        got = self._fs.cat(list(paths), on_error="return", batch_size=REMOTE_CONCURRENT_REQUESTS)
        # fsspec keys results by its own spelling of each path (without the scheme, for some)
        by_tail = {k.rstrip("/").split("://", 1)[-1]: v for k, v in got.items()}
        out = {p: by_tail.get(p.split("://", 1)[-1], FileNotFoundError(p)) for p in paths}
        for p, data in out.items():
            if isinstance(data, bytes):
                try:
                    _within(p, data, limit)
                except RefusedFileError as exc:
                    out[p] = exc
        return out

    def modified(self, path: str) -> float:
        info = self._info(path) or {}
        for key in ("mtime", "LastModified", "Last-Modified", "last_modified", "created"):
            value = info.get(key)
            if hasattr(value, "timestamp"):
                return float(value.timestamp())
            if isinstance(value, (int, float)):
                return float(value)
            if isinstance(value, str) and value:  # an HTTP date (Last-Modified)
                try:
                    return email.utils.parsedate_to_datetime(value).timestamp()
                except (TypeError, ValueError):
                    pass
        raise OSError(f"{path}: the server gives no modification time")

    def version(self, path: str) -> Tuple[Any, ...]:
        info = self._info(path) or {}
        modified = info.get("LastModified", info.get("Last-Modified", ""))
        return (info.get("size"), info.get("ETag") or info.get("etag"), str(modified))

    def forget(self) -> None:
        self._listings.clear()  # (files asked about one by one are not listed: nothing to drop)


def _within(path: str, data: bytes, limit: Optional[int]) -> bytes:
    if limit is not None and len(data) > limit:
        raise RefusedFileError(errno.EFBIG, f"{len(data)} bytes, more than the {limit} such a file may hold", path)
    return data


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


def require_store(fs: LocalFileSystem, store_dir: str, metadata_path: str, given: str) -> None:
    """``StoreNotFoundError`` unless ``store_dir`` holds a metadata file."""
    if not fs.isfile(metadata_path):
        what = "does not exist" if not fs.exists(store_dir) else "holds no metadata.yaml"
        raise StoreNotFoundError(f"path '{given}' {what}: not an imgstore")
