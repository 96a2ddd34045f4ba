"""Where a store lives: a directory on this machine's disk, or one behind a URL.

This is the one place that tells the two apart (``location_for``). Everything that differs
between them is a method of the two classes, so that the store, its read view, Dask tasks and the
tools never ask whether a store is remote:

- a local store may be being written right now: its unfinished chunks are looked at and
  recovered, and a lock file says whether its writer is alive; its chunk indexes are read through
  the index cache, and chunk files are opened by path;
- a store at a URL is read as it was uploaded: finished chunks only, indexes fetched in one
  concurrent batch, chunk files read through fsspec (byte ranges, never whole files).

Both pickle as the recipe to reach the store again (path or URL, and fsspec's storage options),
never as open connections.
"""

from __future__ import annotations

import copy
import dataclasses
import os
from typing import Any, Dict, NamedTuple, Optional, Sequence, Tuple, Union

from ..codecs.base import ChunkCodec, ChunkReader, Shape
from ..constants import STORE_LOCK_FILENAME, STORE_MD_FILENAME
from ..durability.lock import describe_owner, read_owner, writer_state
from ..errors import ChunkIndexError, StoreChangedError
from ..index.cache import Fallback, load_index
from ..index.chunkfile import INDEX_EXTENSIONS, MAX_INDEX_BYTES, find_chunk_index, index_notes, load_chunk_index
from ..index.remote import load_remote_index
from ..index.sealedfile import SealedChunk
from ..index.storeindex import ImgStoreIndex
from ..io.fs import LOCAL, LocalFileSystem, RemoteFileSystem, is_url, require_store
from ..io.metadata import StoreMetadata, read_metadata

__all__ = ["LocalLocation", "RemoteLocation", "StoreLocation", "location_for"]

#: chunks as the index loaders take them: ``(chunk number, index path without extension)``
Chunks = Sequence[Tuple[int, str]]


class FileFacts(NamedTuple):
    """What a location can tell about a file of the store without a request of its own."""

    missing: bool
    size: Optional[int]  # None: not known
    changed_ns: Optional[int]  # last modification (ns since the epoch); None: not known


class _Location:
    """What both locations share: equality by where they lead, and ``metadata.yaml`` read once.

    The factory learns the store's class from the metadata and the store opened next uses the
    same answer (one request for a store at a URL, not two).
    """

    basedir: str
    fs: LocalFileSystem
    _metadata: Optional[Tuple[StoreMetadata, Dict[str, Any]]] = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.basedir!r})"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self.__reduce__() == other.__reduce__()

    def __hash__(self) -> int:
        return hash(self.absolute())

    def absolute(self) -> str:
        raise NotImplementedError

    @property
    def metadata_path(self) -> str:
        return self.fs.join(self.basedir, STORE_MD_FILENAME)

    def resolve(self, path: str) -> str:
        """``path`` as written in the store's metadata, as something to open: a URL or an absolute
        path as it is, a relative path from the store's own directory (on this disk or at a URL)."""
        if is_url(path) or os.path.isabs(path):
            return path
        return self.fs.join(self.basedir, path)

    def index_notes(self, index_base: str) -> Dict[str, Any]:
        """What a codec kept in a chunk's npz index file (``ChunkCodec.index_notes``); nothing when
        there is no such file. One that cannot be read is a ``ChunkIndexError``."""
        path = index_base + ".npz"
        try:
            data = self.fs.read_bytes(path, limit=MAX_INDEX_BYTES)
        except FileNotFoundError:
            return {}
        except StoreChangedError:
            raise
        except OSError as exc:
            raise ChunkIndexError(f"{path}: cannot read index ({exc})") from None
        return index_notes(data, path)

    def read_metadata(self) -> Tuple[StoreMetadata, Dict[str, Any]]:
        """``(store metadata, user metadata)``; a copy the caller may change, read from the file once."""
        if self._metadata is None:
            self._metadata = read_metadata(self.metadata_path, self.fs)
        smd, user_metadata = self._metadata
        return dataclasses.replace(smd, other=dict(smd.other)), copy.deepcopy(user_metadata)


class LocalLocation(_Location):
    """A store directory on this machine's disk."""

    #: whether stores here may be written (and repaired)
    writable = True
    #: whether a writer may be at work on the files: unfinished chunks are then recovered and read
    sees_writers = True
    #: whether a chunk's keyframes can be found cheaply (one demux of a local file)
    finds_keyframes = True
    #: whether a sealed store opens without listing its directory whole (``store.seal.open_from_seal``)
    opens_from_seal_alone = False

    def __init__(self, basedir: str) -> None:
        self.basedir = os.fspath(basedir)
        self.fs: LocalFileSystem = LOCAL
        self.storage_options: Dict[str, Any] = {}

    def __reduce__(self) -> Tuple[Any, ...]:
        return type(self), (self.absolute(),)

    def absolute(self) -> str:
        """The store's directory as any process on this machine finds it, whatever its working directory."""
        return os.path.abspath(self.basedir)

    def portable(self) -> LocalLocation:
        """The same location, as a process with another working directory finds it."""
        return LocalLocation(self.absolute())

    def require_store(self) -> None:
        """``StoreNotFoundError`` unless the directory holds a metadata file (saying which is missing)."""
        require_store(self.fs, self.basedir, self.metadata_path, self.basedir)

    def has_index_file(self, index_base: str) -> bool:
        return find_chunk_index(index_base) is not None

    def contains(self, path: str) -> bool:
        """Whether ``path`` lies inside the store (so that writing there would change it)."""
        root = self.absolute()
        return os.path.commonpath([root, os.path.abspath(path)]) == root

    def index_lists_frames(self, index_base: str) -> Optional[bool]:
        """Whether a chunk's index lists any frame (an unreadable one counts as listing some)."""
        if find_chunk_index(index_base) is None:
            return False
        try:
            return len(load_chunk_index(index_base)[0]) > 0
        except ChunkIndexError:
            return True

    def load_index(self, chunks: Chunks, every_chunk: bool = True, sealed: Fallback = None) -> ImgStoreIndex:
        """The index of finished ``chunks``: through the index cache when they are all of them, else
        from ``sealed`` (the store's sealed index, if it fits), else from the chunk files."""
        if every_chunk:
            return load_index(self.basedir, chunks, fallback=sealed)
        return ImgStoreIndex.new_from_chunks(chunks)

    def file_facts(self, path: str) -> Optional[FileFacts]:
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return FileFacts(True, None, None)
        except OSError:
            return None
        return FileFacts(False, st.st_size if os.path.isfile(path) else None, st.st_mtime_ns)

    def sealed_at(self, path: str) -> Optional[int]:
        """When the sealed index at ``path`` was written (files changed since do not fit it)."""
        return os.stat(path).st_mtime_ns

    def open_reader(
        self,
        codec: ChunkCodec,
        path: str,
        shape: Shape,
        dtype: str,
        count: int,
        index_base: Optional[str] = None,
        sealed: Optional[SealedChunk] = None,
    ) -> ChunkReader:
        """A reader of one chunk; with ``index_base``, given the notes the codec keeps in its index
        file. (``sealed``: unused; the seal of a store on this disk was checked when it opened.)"""
        if index_base is not None and codec.reads_index_notes:
            return codec.open_reader(path, shape, dtype, count, notes=self.index_notes(index_base))
        return codec.open_reader(path, shape, dtype, count)

    def writer_state(self) -> Tuple[str, str]:
        """``(state, who)``: 'alive', 'stale' (its writer died) or 'none' (closed), and the writer's description."""
        lock = os.path.join(self.basedir, STORE_LOCK_FILENAME)
        return writer_state(lock), describe_owner(read_owner(lock))


class RemoteLocation(_Location):
    """A store behind an fsspec URL (HTTP(S), S3, GCS...), read as it was uploaded."""

    writable = False
    sees_writers = False
    #: aligning to keyframes would fetch whole chunks: tasks keep fixed sizes
    finds_keyframes = False

    @property
    def opens_from_seal_alone(self) -> bool:
        """Whether a sealed store opens without listing its directory whole: where a whole listing
        costs a request per 1,000 files and a listing can start after the last chunk (S3)."""
        return self.fs.lists_after

    def __init__(self, url: str, storage_options: Optional[Dict[str, Any]] = None) -> None:
        self.basedir = url.rstrip("/")
        self.storage_options = dict(storage_options or {})
        self.fs: LocalFileSystem = RemoteFileSystem(self.basedir, self.storage_options)

    def __reduce__(self) -> Tuple[Any, ...]:
        return type(self), (self.basedir, self.storage_options)

    def absolute(self) -> str:
        return self.basedir

    def portable(self) -> RemoteLocation:
        return self

    def require_store(self) -> None:
        """``StoreNotFoundError`` unless the store's metadata file can be read (read once, not listed)."""
        self.read_metadata()

    def has_index_file(self, index_base: str) -> bool:
        return any(self.fs.exists(index_base + extension) for extension in INDEX_EXTENSIONS)

    def contains(self, path: str) -> bool:
        return False  # nothing on this machine is inside a store at a URL

    def index_lists_frames(self, index_base: str) -> Optional[bool]:
        return None  # not worth a request: the chunk is skipped either way

    def load_index(self, chunks: Chunks, every_chunk: bool = True, sealed: Fallback = None) -> ImgStoreIndex:
        """The index of finished ``chunks``: from ``sealed`` (one request) if it fits, else one request per chunk."""
        index = sealed() if sealed is not None and every_chunk else None
        return index if index is not None else load_remote_index(self.fs, chunks)

    def file_facts(self, path: str) -> Optional[FileFacts]:
        """What the directory listings fetched so far say (never a request of its own)."""
        listed = self.fs.listed(path)
        if listed is None:
            return None
        return FileFacts(False, listed.get("size"), None) if listed else FileFacts(True, None, None)

    def sealed_at(self, path: str) -> Optional[int]:
        return None  # servers' times say when a file was uploaded, not when it was written

    def open_reader(
        self,
        codec: ChunkCodec,
        path: str,
        shape: Shape,
        dtype: str,
        count: int,
        index_base: Optional[str] = None,
        sealed: Optional[SealedChunk] = None,
    ) -> ChunkReader:
        """A reader of one chunk at the URL; with ``index_base``, given the notes the codec keeps in
        its index file (one request: its packet table saves fetching the chunk's own index).

        ``sealed``: what the store's seal says of the chunk's files, when the store opened from
        its seal alone: each read of them then checks their size (``StoreChangedError``), at no
        request of its own.
        """
        if sealed is not None:
            self.fs.expect_size(self.fs.join(self.basedir, sealed.index_name), sealed.index_size)
            if sealed.data_size >= 0:  # (-1: a folder of frame files)
                self.fs.expect_size(self.fs.join(self.basedir, sealed.data_name), sealed.data_size)
        if index_base is not None and codec.reads_index_notes:
            return codec.open_remote_reader(path, shape, dtype, count, self.fs, notes=self.index_notes(index_base))
        return codec.open_remote_reader(path, shape, dtype, count, self.fs)

    def writer_state(self) -> Tuple[str, str]:
        """'uploaded-open' when the store was uploaded with its writer's lock file (not closed), else 'none'."""
        lock = self.fs.join(self.basedir, STORE_LOCK_FILENAME)
        return ("uploaded-open" if self.fs.exists(lock) else "none"), ""


#: what store code holds: either kind, used through the methods both have
StoreLocation = Union[LocalLocation, RemoteLocation]


def location_for(path: Any, storage_options: Optional[Dict[str, Any]] = None) -> StoreLocation:
    """The location of the store at ``path``: a URL (``scheme://...``) or a local directory.

    A location given is returned as it is (the factory hands the store the one it read from).
    """
    if isinstance(path, (LocalLocation, RemoteLocation)):
        return path
    path = os.fspath(path)
    if is_url(path):
        return RemoteLocation(path, storage_options)
    return LocalLocation(path)  # storage options are fsspec's: a local directory needs none
