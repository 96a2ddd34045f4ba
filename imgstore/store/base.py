"""The base store: modes, metadata, chunk roll-over, the frame index and the reading API.

Subclasses fix the on-disk layout of chunks (a folder per chunk, or a file per chunk); the chunk
format itself is a codec from the registry, so nothing here knows how pixels are encoded.
"""

from __future__ import annotations

import datetime
import errno
import json
import logging
import math
import numbers
import operator
import os
import sqlite3
import time as timelib
import uuid as uuidlib
from typing import TYPE_CHECKING, Any, Dict, Iterable, Iterator, List, Optional, Sequence, Set, Tuple

import numpy as np

from .. import codecs
from ..codecs.sensor import decoder_for, encoding_to_cv2
from ..constants import (
    EXTRA_DATA_FILE_EXTENSIONS,
    FRAME_MD,
    STORE_INDEX_FILENAME,
    STORE_LOCK_FILENAME,
    STORE_MD_FILENAME,
    STORE_MD_KEY,
    STORE_VERSION,
)
from ..durability.journal import ChunkJournal, journal_path
from ..durability.lock import WriterLock, describe_owner, read_owner, writer_state
from ..durability.recovery import ChunkArrays, RecoveredChunk, merged_index, recover_chunk, write_recovered_index
from ..errors import (
    ExtraDataError,
    FrameArgumentError,
    FrameNotFoundError,
    FrameReadError,
    ImageDtypeError,
    ImageShapeError,
    ImgStoreError,
    IncompatibleStoreError,
    StoreExistsError,
    StoreLockedError,
    StoreWriteError,
)
from ..index.cache import load_index
from ..index.chunkfile import INDEX_EXTENSIONS, find_chunk_index, remove_chunk_index, save_chunk_index
from ..index.frametable import (
    as_frame_index,
    as_frame_number,
    as_frame_time,
    as_query_number,
    as_query_time,
    as_stored_frame_number,
)
from ..index.remote import load_remote_index
from ..index.storeindex import ImgStoreIndex
from ..io.durable import fsync_path
from ..io.extra import (
    ExtraDataWriter,
    encode_record,
    motif_extra_data_h5_attrs,
    motif_extra_data_h5_to_df,
    motif_extra_data_json_to_df,
    read_records,
)
from ..io.fs import filesystem_for, is_url, require_store
from ..io.metadata import StoreMetadata, plain_user_metadata, read_metadata, write_file_atomic, write_metadata
from ..io.paths import chunk_name, parse_chunk_name
from ..io.timezone import (
    get_local_timezone,
    get_local_timezone_zoneinfo,
    parse_created_utc,
    synthesize_created,
    utc_now_naive_iso,
    zone_or_none,
)

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

Image = np.ndarray
FrameMD = Tuple[Any, float]

_MOTIF_EXTRA_EXTENSIONS = (".extra_data.h5", ".extra_data.json")
#: free space below which a failed write without an errno is reported as a full disk
_DISK_FULL_BYTES = 1 << 20
#: how often ``get_next_image(timeout=...)`` looks for new frames of a store being written
_LIVE_POLL_SECONDS = 0.05
_OWN_EXTRA_EXTENSIONS = (".extra.json", ".extra_data.json")


class _ImgStore:
    """Everything a store does, whatever its chunk layout and format."""

    _version = STORE_VERSION
    _supported_modes = "wr"
    #: class names in metadata.yaml this class reads
    _readable_classes: Tuple[str, ...] = ()

    #: the per-frame metadata every chunk index keeps: ``('frame_number', 'frame_time')``
    FRAME_MD = FRAME_MD

    def __init__(
        self,
        basedir: str,
        mode: str = "r",
        imgshape: Optional[Tuple[int, ...]] = None,
        imgdtype: Any = np.uint8,
        chunksize: Optional[int] = None,
        metadata: Optional[Dict[str, Any]] = None,
        encoding: Optional[str] = None,
        write_encode_encoding: Optional[str] = None,
        format: Optional[str] = None,
        index: Optional[ImgStoreIndex] = None,
        writer_options: Optional[Dict[str, Any]] = None,
        storage_options: Optional[Dict[str, Any]] = None,
    ) -> None:
        if mode not in ("r", "w") or mode not in self._supported_modes:
            raise ImgStoreError(f"mode {mode!r} not supported (use 'r' to read or 'w' to write)")
        if not basedir:
            raise ImgStoreError("basedir must name the store directory")
        self._basedir = os.fspath(basedir)
        if is_url(self._basedir):
            self._basedir = self._basedir.rstrip("/")
            if mode != "r":
                raise ImgStoreError(
                    f"{self._basedir}: stores at a URL are read-only; record into a local directory and upload it"
                )
        #: where the store's files are read from (the local disk, or fsspec for a URL)
        self._fs = filesystem_for(self._basedir, storage_options)
        self._storage_options = dict(storage_options or {})
        self._mode = mode
        self._closed = False
        self._user_metadata: Dict[str, Any] = {}
        self._decode_image = decoder_for(None)
        self._encode_image = decoder_for(None)
        self._writer_options: Dict[str, Any] = dict(writer_options or {})

        #: number of the frame read or added last (NaN before the first), as upstream exposes it
        self.frame_number: Any = math.nan
        #: time of the frame read or added last (NaN before the first), as upstream exposes it
        self.frame_time: float = math.nan
        #: upstream's (chunk number, index path without extension) of every chunk found when the
        #: store was opened for reading; None when writing, or when opened with a given index
        #: until ``_iter_chunk_n_and_chunk_paths`` looks
        self._chunk_n_and_chunk_paths: Optional[List[Tuple[int, str]]] = None
        #: the chunk being written, or the chunk of the frame read last
        self._chunk_n = 0

        if mode == "w":
            self._init_write(imgshape, imgdtype, chunksize, metadata, encoding, write_encode_encoding, format)
        else:
            self._init_read(index)

    # ------------------------------------------------------------------------------------------
    # layout: subclasses say where chunk data, indexes and extra data live
    # ------------------------------------------------------------------------------------------
    def _chunk_path(self, chunk_n: int) -> str:
        """Where the codec keeps chunk ``chunk_n`` (a folder or a file)."""
        raise NotImplementedError

    def _chunk_index_base(self, chunk_n: int) -> str:
        """Path of the chunk's index without extension (``.npz``/``.yaml`` are appended)."""
        raise NotImplementedError

    def _chunk_numbers_on_disk(self) -> List[int]:
        """Chunk numbers present in the store directory, ascending (indexed or not)."""
        raise NotImplementedError

    def _scan_chunks(self) -> Tuple[List[int], List[Tuple[int, str]]]:
        """``(unfinished chunks, (chunk_n, index path without extension) of the finished ones)``.

        Layout hook: this looks at each chunk's files; a video store lists its directory once.
        """
        unfinished = self._unfinished_chunks()
        skip = set(unfinished)
        return unfinished, [(n, self._chunk_index_base(n)) for n in self._chunk_numbers_on_disk() if n not in skip]

    def _has_index_file(self, base: str) -> bool:
        if not self._fs.remote:
            return find_chunk_index(base) is not None
        return any(self._fs.exists(base + extension) for extension in INDEX_EXTENSIONS)

    def _unfinished_chunks(self) -> List[int]:
        """Chunks being written, or whose writer died: a journal but no index file yet.

        Also a chunk the writer had only just made room for (an empty folder) when it died.
        A store at a URL is read as it was uploaded: finished (or repaired) chunks only, which
        spares a request per chunk.
        """
        if self._fs.remote:
            return []
        unfinished = []
        for chunk_n in self._chunk_numbers_on_disk():
            base = self._chunk_index_base(chunk_n)
            if self._fs.exists(journal_path(base)):
                if not self._has_index_file(base):
                    unfinished.append(chunk_n)
            elif self._chunk_is_empty(chunk_n) and not self._has_index_file(base):
                unfinished.append(chunk_n)
        return unfinished

    def _write_empty_chunk(self, chunk_n: int) -> None:
        """Layout hook: leave the files of a chunk that ends with no frames, as upstream leaves them."""

    def _chunk_is_empty(self, chunk_n: int) -> bool:
        """Layout hook: whether a chunk holds nothing at all (no frames, no index, no journal)."""
        return False

    def _remove_chunk_data(self, chunk_n: int) -> None:
        """Delete a chunk's frames (used by ``empty``)."""
        raise NotImplementedError

    # ------------------------------------------------------------------------------------------
    # opening
    # ------------------------------------------------------------------------------------------
    @classmethod
    def _codec_for(cls, fmt: object) -> codecs.ChunkCodec:
        return codecs.get_codec(fmt, store_class=cls.__name__)

    def _writer_codec(self, fmt: object) -> codecs.ChunkCodec:
        """The codec that writes ``fmt`` for this store."""
        return self._codec_for(fmt)

    def _reader_codec(self, fmt: object) -> codecs.ChunkCodec:
        """The codec that reads a store of ``fmt``."""
        return codecs.get_reader_codec(fmt, type(self).__name__)

    def _init_write(
        self, imgshape: Any, imgdtype: Any, chunksize: Any, metadata: Any, encoding: Any, write_encoding: Any, fmt: Any
    ) -> None:
        if imgshape is None or fmt is None or imgdtype is None:
            raise ImgStoreError("imgshape, imgdtype and format must be given to write a store")
        self._codec = self._writer_codec(fmt)
        _, color_variant = codecs.split_format(fmt)
        input_shape = _parse_shape(imgshape)
        dtype = _parse_dtype(imgdtype)
        if chunksize is None:
            chunksize = self._codec.default_chunksize
        if isinstance(chunksize, bool) or not isinstance(chunksize, (int, np.integer)) or chunksize < 1:
            raise ImgStoreError(f"chunksize must be a positive integer, got {chunksize!r}")
        for name in (encoding, write_encoding):
            if name and not _known_encoding(name):
                raise ImgStoreError(f"unsupported store image encoding: {name!r}")

        # 'png+color' with an encoding: convert to colour before writing, store no encoding
        if color_variant and encoding:
            write_encoding, encoding = encoding, None
        write_shape = self._codec.written_shape(input_shape)
        if tuple(write_shape[:2]) != tuple(input_shape[:2]):
            from ..codecs.video import dropped_edges

            log.warning(
                "store %s: format '%s' stores even sizes only: frames of %dx%d are stored as %dx%d, "
                "%s of every frame dropped (ffv1/mkv keeps every size)",
                self._basedir,
                self._codec.name,
                input_shape[1],
                input_shape[0],
                write_shape[1],
                write_shape[0],
                dropped_edges(input_shape, write_shape),
            )
        if write_encoding:  # frames are converted to colour before they are written
            self._encode_image = decoder_for(write_encoding)
            write_shape = (write_shape[0], write_shape[1], 3)
        self._codec.check_image_type(write_shape, dtype)
        self._codec.check_options(write_shape, dtype, self._writer_options)

        if metadata is not None and not isinstance(metadata, dict):
            raise ImgStoreError(f"metadata must be a dictionary, got {type(metadata).__name__}")
        user_md = dict(metadata or {})
        store_extras = user_md.pop(STORE_MD_KEY, None) or {}
        self._user_metadata = plain_user_metadata(user_md)

        self._smd = StoreMetadata(
            class_name=type(self).__name__,
            imgshape=tuple(write_shape),
            imgdtype=dtype,
            chunksize=int(chunksize),
            format=self._codec.name,
            encoding=encoding or None,
            created_utc=utc_now_naive_iso(),
            timezone_local=get_local_timezone(),
            uuid=uuidlib.uuid4().hex,
            extension=self._chunk_extension_for_write(),
            other=plain_user_metadata(dict(store_extras)),
        )
        self._input_shape = input_shape
        self._setup_from_metadata()

        metadata_path = self.full_path
        lock_path = os.path.join(self._basedir, STORE_LOCK_FILENAME)
        if os.path.exists(metadata_path) and writer_state(lock_path) == "alive":
            raise StoreLockedError(
                f"{self._basedir} is being written by another process ({describe_owner(read_owner(lock_path))}); "
                "refusing to open it for writing"
            )
        if os.path.exists(metadata_path):
            raise StoreExistsError(
                f"{self._basedir} already holds a store ({STORE_MD_FILENAME}); "
                "refusing to overwrite it: choose a new directory"
            )
        made_dir = not os.path.isdir(self._basedir)
        try:
            os.makedirs(self._basedir, exist_ok=True)
            # refuses a second writer while the first is alive, even one that started a moment ago
            self._lock = WriterLock(lock_path)
        except OSError as exc:
            if made_dir:
                _remove_empty_dir(self._basedir)
            if isinstance(exc, ImgStoreError):  # another writer holds it
                raise
            raise _creation_error(self._basedir, exc) from exc
        wrote_metadata = False
        try:
            if os.path.exists(metadata_path):
                raise StoreExistsError(
                    f"{self._basedir} already holds a store ({STORE_MD_FILENAME}): choose a new directory"
                )
            stale = self._chunk_numbers_on_disk()
            if stale:
                raise StoreExistsError(
                    f"{self._basedir} already holds chunk data ({chunk_name(stale[0])}...) "
                    "but no store metadata: refusing to mix stores, choose a new directory"
                )
            write_metadata(metadata_path, self._smd, self._user_metadata)
            wrote_metadata = True
            self._reset_write_state()
        except BaseException as exc:
            # leave the directory as it was, so that creating the store again can succeed
            if wrote_metadata:
                _remove_quietly(metadata_path)
            self._release_lock(remove=self._lock.created)
            if made_dir:
                _remove_empty_dir(self._basedir)
            if isinstance(exc, OSError) and not isinstance(exc, ImgStoreError):
                raise _creation_error(self._basedir, exc) from exc
            raise

    def _chunk_extension_for_write(self) -> Optional[str]:
        """The ``extension`` metadata key (video stores only)."""
        return None

    def _init_read(self, index: Optional[ImgStoreIndex]) -> None:
        require_store(self._fs, self._basedir, self.full_path, self._basedir)
        smd, user_md = read_metadata(self.full_path, self._fs)
        self._readability_check(smd.class_name, smd.version)
        self._smd = smd
        self._user_metadata = user_md
        try:
            self._codec = self._reader_codec(smd.format)
        except ImgStoreError as exc:  # an unknown format, or one whose package is missing: say which store
            raise type(exc)(f"{self.full_path}: {exc}") from None
        self._input_shape = smd.imgshape
        self._setup_from_metadata()
        self._decode_image = decoder_for(smd.encoding)

        self._finished_chunks: Tuple[int, ...] = ()
        self._recovered_chunks: Tuple[int, ...] = ()
        if index is None:
            index = self._build_index_from_disk(report=True)
            self._chunk_n_and_chunk_paths = self._chunks_and_index_paths()
        elif not isinstance(index, ImgStoreIndex):
            raise TypeError(f"index must be an ImgStoreIndex, got {type(index).__name__}")
        self._set_index(index)

    def _chunks_and_index_paths(self) -> List[Tuple[int, str]]:
        """``(chunk number, index path without extension)`` of every chunk that was read."""
        return [(n, self._chunk_index_base(n)) for n in sorted({*self._finished_chunks, *self._recovered_chunks})]

    def _iter_chunk_n_and_chunk_paths(self) -> Iterator[Tuple[int, str]]:
        """Upstream's ``(chunk_n, index path without extension)`` of each chunk, ascending.

        Looked up on disk the first time when the store was opened with a given index.
        """
        if self._chunk_n_and_chunk_paths is None:
            unfinished, finished = self._scan_chunks()
            found = {n: base for n, base in finished}
            found.update((n, self._chunk_index_base(n)) for n in unfinished)
            self._chunk_n_and_chunk_paths = sorted(found.items())
        yield from sorted(self._chunk_n_and_chunk_paths, key=operator.itemgetter(0))

    def _readability_check(self, smd_class: str, smd_version: int) -> bool:
        if smd_class not in self._readable_classes:
            raise IncompatibleStoreError(
                f"{self.full_path}: incompatible store, "
                f"can_read:{sorted(self._readable_classes)!r} opened:{smd_class!r}"
            )
        if smd_version != self._version:
            raise IncompatibleStoreError(f"{self.full_path}: incompatible store version {smd_version!r}")
        return True

    def _setup_from_metadata(self) -> None:
        """Derive the creation time, zone and encoding from ``self._smd``."""
        smd = self._smd
        if smd.encoding and not _known_encoding(smd.encoding):
            raise ImgStoreError(f"{self.full_path}: unknown image encoding {smd.encoding!r}")
        created = parse_created_utc(smd.created_utc)
        tz = zone_or_none(smd.timezone_local)
        user_tz = self._user_metadata.get("timezone")
        if created is None:
            if smd.created_utc is not None:
                log.warning("%s: unreadable created_utc %r; synthesizing it", self.full_path, smd.created_utc)
            else:
                log.info("%s: old store without creation time; synthesizing it", self.full_path)
            created, synthesized_tz = synthesize_created(
                self._basedir, lambda: self._fs.modified(self.full_path), user_tz
            )
            tz = tz or synthesized_tz
        elif tz is None:  # keep the stored instant; only the zone is missing or unknown
            if smd.timezone_local is not None:
                log.warning("%s: unknown timezone_local %r", self.full_path, smd.timezone_local)
            tz = zone_or_none(user_tz) or get_local_timezone_zoneinfo()
        self._created_utc = created
        self._timezone_local = tz

    def _set_index(self, index: ImgStoreIndex) -> None:
        self._index = index
        self._table = index.table
        self._position = -1  # frame index of the last frame read
        self._reader: Optional[codecs.ChunkReader] = None
        self._reader_chunk = -1

    # ------------------------------------------------------------------------------------------
    # properties
    # ------------------------------------------------------------------------------------------
    @property
    def filename(self) -> str:
        """The store directory."""
        return self._basedir

    @property
    def full_path(self) -> str:
        """Path of the store's metadata.yaml."""
        return self._fs.join(self._basedir, STORE_MD_FILENAME)

    @property
    def mode(self) -> str:
        return self._mode

    @property
    def user_metadata(self) -> Dict[str, Any]:
        """Every top-level key of metadata.yaml except ``__store``."""
        return self._user_metadata

    @property
    def uuid(self) -> Optional[str]:
        return self._smd.uuid

    @property
    def created(self) -> Tuple[datetime.datetime, Any]:
        """``(creation instant as an aware UTC datetime, the store's time zone)``."""
        return self._created_utc, self._timezone_local

    @property
    def image_shape(self) -> Tuple[int, ...]:
        """Shape of the images reads return (colour when the store has a sensor encoding)."""
        shape = tuple(self._smd.imgshape)
        if self._smd.encoding:
            return shape[0], shape[1], 3
        return shape

    @property
    def lossless(self) -> bool:
        """Whether the format stores pixels exactly (after the conversion it may need: ``pgm`` is grey)."""
        return self._codec.lossless

    @property
    def frame_count(self) -> int:
        return self._table.frame_count if self._mode == "r" else self._frame_n

    def __len__(self) -> int:
        return self.frame_count

    @property
    def frame_min(self) -> float:
        return self._index.frame_min if self._mode == "r" else self._written_min

    @property
    def frame_max(self) -> float:
        return self._index.frame_max if self._mode == "r" else self._written_max

    @property
    def frame_time_min(self) -> float:
        """Time of the earliest frame (0.0 for an empty store, as upstream's index gives)."""
        if self._mode == "r":
            return self._index.frame_time_min
        return self._written_t0 if self._frame_n else 0.0

    @property
    def frame_time_max(self) -> float:
        """Time of the latest frame (0.0 for an empty store)."""
        if self._mode == "r":
            return self._index.frame_time_max
        return self._written_tn if self._frame_n else 0.0

    @property
    def duration(self) -> float:
        """Seconds from the first to the last frame time (0 for an empty store)."""
        span = self.frame_time_max - self.frame_time_min
        return 0.0 if math.isnan(span) else span

    @property
    def chunks(self) -> List[int]:
        """Reading: the non-empty chunks. Writing: the chunks completed so far."""
        if self._mode == "r":
            return list(self._index.chunks)
        return list(range(self._chunk_n + (self._chunk_state != "open")))

    @classmethod
    def supported_formats(cls, backend: Optional[str] = None) -> List[str]:
        """Formats this install can write with this store class (and video ``backend``)."""
        return codecs.formats_for(cls.__name__, backend)

    @classmethod
    def supports_format(cls, fmt: str) -> bool:
        try:
            cls._codec_for(fmt)
        except ImgStoreError:
            return False
        return True

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} {self._basedir!r} mode={self._mode!r} format={self._smd.format!r} "
            f"frames={self.frame_count}>"
        )

    # ------------------------------------------------------------------------------------------
    # pickling (Dask, multiprocessing) and lazy arrays
    # ------------------------------------------------------------------------------------------
    def __reduce__(self) -> Tuple[Any, ...]:
        """A read store pickles as the recipe to reopen it (class, path, backend), never open files.

        The unpickled store is freshly opened on the same directory (made absolute, so a process
        with another working directory finds it); the read position is not kept. A write store
        refuses: what it holds is a file being written, which no other process can continue.
        """
        if self._mode != "r":
            raise ImgStoreError(
                f"cannot pickle store {self._basedir}: it is open for writing; close it and pickle "
                "a store opened for reading (imgstore.new_for_filename)"
            )
        basedir = self._basedir if "://" in self._basedir else os.path.abspath(self._basedir)
        options: Dict[str, Any] = {"backend": self._backend} if hasattr(self, "_backend") else {}
        if self._storage_options:
            options["storage_options"] = self._storage_options
        decoding = self._decode_image is not decoder_for(None)
        return type(self)._reopen_unpickled, (basedir, options, decoding)

    @classmethod
    def _reopen_unpickled(cls, basedir: str, options: Dict[str, Any], decoding: bool) -> _ImgStore:
        store = cls(basedir=basedir, mode="r", **options)
        if not decoding:
            store.disable_decoding()
        return store

    def to_dask(self, **kwargs: Any) -> Any:
        """This store as a lazy ``dask.array.Array``; see ``imgstore.dask.to_dask`` (needs ``imgstore-ng[dask]``)."""
        from ..dask import to_dask  # dask is optional: imported only when asked for

        return to_dask(self, **kwargs)

    # ------------------------------------------------------------------------------------------
    # writing
    #
    # The rule: a call that raises leaves the store as if it had not been made, and no frame
    # that add_image accepted is lost without an error saying so. Arguments are checked before
    # anything is written. When a write fails (a full or failing disk), the chunk being written
    # is abandoned at once: what its files hold whole, up to its journal, is what it keeps; the
    # error names the frame not written and every frame accepted earlier that did not make it
    # (frames still being encoded, or written by encoder threads); recording goes on in a new
    # chunk. A full chunk is finished when the next call needs room (or on flush and close), so
    # that a failure there is reported by a call whose own data was not written. The chunk
    # being written is 'open', 'full' or 'closed' (``_chunk_state``).
    # ------------------------------------------------------------------------------------------
    def _reset_write_state(self) -> None:
        #: chunks a failed write damaged, with what recovery found in them (their index is written on close)
        self._abandoned_chunks: Dict[int, Optional[RecoveredChunk]] = {}
        self._frame_n = 0
        self._written_min = self._written_max = math.nan
        self._written_t0 = self._written_tn = math.nan
        self.frame_number = math.nan
        self.frame_time = math.nan
        self._open_chunk(0)

    def _prepare_chunk(self, chunk_n: int) -> None:
        """Layout hook: make room for a new chunk before any frame or extra data arrives."""

    def _unprepare_chunk(self, chunk_n: int) -> None:
        """Layout hook: undo ``_prepare_chunk`` for a chunk that could not be started."""

    def _open_chunk(self, chunk_n: int) -> None:
        """Start chunk ``chunk_n``: its folder (a layout hook) and its journal, or nothing at all."""
        self._prepare_chunk(chunk_n)
        journal = journal_path(self._chunk_index_base(chunk_n))
        try:
            # each frame's number and time, durable as soon as the frame is written (see _journal)
            self._journal = ChunkJournal(journal)
        except BaseException:
            for undo in (lambda: os.unlink(journal), lambda: self._unprepare_chunk(chunk_n)):
                try:
                    undo()
                except OSError:
                    pass
            raise
        self._chunk_n = chunk_n
        self._writer: Optional[codecs.ChunkWriter] = None  # opened with the chunk's first frame
        self._chunk_frame_numbers: List[Any] = []
        self._chunk_frame_times: List[float] = []
        self._extra_writer = ExtraDataWriter(self._chunk_index_base(chunk_n) + ".extra.json")
        #: 'open' (taking frames), 'full' (chunksize frames: finished before anything else is
        #: written) or 'closed' (finished, abandoned or inserted: the next write opens a new chunk)
        self._chunk_state = "open"

    def _make_room(self, not_written: Optional[str], frame_number: Any = None) -> None:
        """Before writing: finish a full chunk, and start a new one after a finished or abandoned one.

        A failure raises ``StoreWriteError``, saying that ``not_written`` (the frame or extra
        data about to be written) was not, and naming the frames of the full chunk lost, if any.
        """
        if self._chunk_state == "full":
            try:
                self._finish_chunk()
            except OSError as exc:
                raise self._write_failed(exc, "finish the chunk", not_written, frame_number) from exc
        if self._chunk_state != "closed":
            return
        try:
            self._open_chunk(self._chunk_n + 1)
        except OSError as exc:  # the chunk stays closed: the next call tries again
            reason = _os_reason(exc, self._basedir)
            raise self._write_error(
                f"cannot start chunk {self._chunk_n + 1} ({reason})", (), not_written, frame_number
            ) from exc

    def _finish_chunk(self) -> None:
        """Close the chunk's writer, then write its index (and close its extra data).

        The journal goes only once the index is on disk. A failure abandons the chunk (see
        ``_write_failed``): its frames stay readable from the journal and its files, and
        ``repair_store`` writes the index once the disk has room.
        """
        self._close_writer()
        if not self._chunk_frame_numbers:
            self._write_empty_chunk(self._chunk_n)
        save_chunk_index(
            self._chunk_index_base(self._chunk_n),
            np.asarray(self._chunk_frame_numbers),
            np.asarray(self._chunk_frame_times, dtype=np.float64),
            extra=self._smd.to_dict(),
        )
        try:
            self._extra_writer.close()
        except OSError as exc:  # only the closing ']' is missing: readers accept that
            log.warning("store %s: extra data of chunk %d left unterminated (%s)", self._basedir, self._chunk_n, exc)
        self._journal.remove()
        self._chunk_state = "closed"

    def _write_failed(
        self, exc: BaseException, action: str, not_written: Optional[str] = None, frame_number: Any = None
    ) -> StoreWriteError:
        """Abandon the chunk being written after ``exc``; the error to raise.

        The chunk keeps the frames that read back whole, in journal order; the frames it was
        given beyond those are lost and named, and the running statistics forget them.
        """
        chunk_n = self._chunk_n
        lost = self._abandon_chunk()
        reason = _os_reason(exc, self._basedir) if isinstance(exc, OSError) else str(exc)
        return self._write_error(f"chunk {chunk_n}: cannot {action} ({reason})", lost, not_written, frame_number)

    def _write_error(
        self, problem: str, lost: Sequence[Any], not_written: Optional[str] = None, frame_number: Any = None
    ) -> StoreWriteError:
        """A ``StoreWriteError`` saying what was not written and naming the frames lost with it."""
        message = f"store {self._basedir}: {problem}"
        if not_written is not None:
            message += f"; {not_written} was not added"
        if lost:
            message += f"; {len(lost)} frames added before were lost: {_describe_numbers(lost)}"
        else:
            message += "; every frame added before is kept"
        error = StoreWriteError(message)
        error.frame_number = frame_number
        error.lost_frames = tuple(lost)
        return error

    def _abandon_chunk(self) -> List[Any]:
        """Leave the chunk being written as a dead writer would; the frames it was given but lost.

        Its journal tells recovery (now, and when the store is opened or closed) what it holds.
        """
        chunk_n = self._chunk_n
        if self._writer is not None:
            try:
                self._writer.close()
            except Exception as exc:
                log.debug("closing the damaged chunk %d of %s: %s", chunk_n, self._basedir, exc)
            self._writer = None
        for close in (self._journal.close, self._extra_writer.abandon):
            try:
                close()
            except OSError as exc:  # what reached the disk is what recovery finds
                log.debug("closing a file of the damaged chunk %d of %s: %s", chunk_n, self._basedir, exc)
        self._chunk_state = "closed"
        recovered = self._abandoned_chunks[chunk_n] = self._recover_chunk(chunk_n)
        kept = 0 if recovered is None else len(recovered.frame_number)
        lost = self._chunk_frame_numbers[kept:]
        del self._chunk_frame_numbers[kept:]
        del self._chunk_frame_times[kept:]
        if lost:
            self._recount_written()
        return lost

    def _finish_abandoned_chunks(self) -> None:
        """Write the index of each chunk a failed write damaged, from the frames it holds whole."""
        for chunk_n, chunk in list(self._abandoned_chunks.items()):
            if chunk is None:
                del self._abandoned_chunks[chunk_n]
                continue
            try:
                write_recovered_index(self._chunk_index_base(chunk_n), chunk, self._smd.to_dict())
            except OSError as exc:
                raise self._write_error(
                    f"cannot write the index of chunk {chunk_n}, damaged by a failed write "
                    f"({_os_reason(exc, self._basedir)}); its frames are recovered from its journal when the store "
                    "is opened, and imgstore.repair_store() writes its index once the disk has room",
                    (),
                ) from exc
            del self._abandoned_chunks[chunk_n]
            log.warning(
                "store %s: chunk %d, damaged by a failed write, holds %d frames",
                self._basedir,
                chunk_n,
                len(chunk.frame_number),
            )

    def flush(self) -> None:
        """Make the frames added so far durable, even against a power cut, without closing the store.

        Frames still being encoded are written first; then each file of the store written since
        (frames, journal, extra data, folders) is synced to the disk. A killed writer never
        loses frames added before its last ``flush()``, except those a video encoder holds back
        to compress better (see the crash-safety page). A failure raises ``StoreWriteError``
        naming the frames lost, if any.
        """
        self._require_mode("w", "flush")
        if self._chunk_state == "full":  # finishing it writes its index: the most durable there is
            self._make_room(None)
            return
        if self._chunk_state == "closed":
            return  # the chunk's files are closed (after a fsync, or abandoned); nothing is pending
        try:
            if self._writer is not None:
                self._writer.flush()
                self._writer.sync()
            self._journal.sync()
            for path in (self._extra_writer.path,) if self._extra_writer.started else ():
                fsync_path(path)
            for folder in dict.fromkeys((os.path.dirname(self._chunk_path(self._chunk_n)), self._basedir)):
                fsync_path(folder)
        except OSError as exc:
            raise self._write_failed(exc, "flush the frames added") from exc

    def _require_mode(self, mode: str, action: str) -> None:
        # a read store stays readable after close(), which only releases open files (as upstream)
        if self._closed and self._mode == "w":
            raise ImgStoreError(f"cannot {action}: store {self._basedir} is closed")
        if self._mode != mode:
            opened = "reading" if self._mode == "r" else "writing"
            raise ImgStoreError(f"cannot {action}: store {self._basedir} is open for {opened}")

    def add_image(self, img: Image, frame_number: Any, frame_time: Any) -> None:
        """Append one frame with its camera frame number and time (seconds since the epoch).

        Either the frame is kept, or this raises (and the store is as before the call, but for
        frames lost to a failing disk, which the error names: ``StoreWriteError.lost_frames``).
        """
        self._require_mode("w", "add images")
        number = as_stored_frame_number(frame_number)
        time = as_frame_time(frame_time) if frame_time is not None else math.nan
        img = self._encode_image(self._check_image(img))
        if img.shape[:2] != self._smd.imgshape[:2]:  # formats that need even sizes keep the top-left part
            img = img[: self._smd.imgshape[0], : self._smd.imgshape[1]]
        self._make_room(f"frame #{number}", number)
        try:
            if self._writer is None:
                self._writer = self._codec.open_writer(
                    self._chunk_path(self._chunk_n), self._smd.imgshape, self._smd.imgdtype, self._writer_options
                )
            self._writer.write(img)
            self._journal.append(number, time)
        except OSError as exc:
            raise self._write_failed(exc, f"write frame #{number}", f"frame #{number}", number) from exc
        self._chunk_frame_numbers.append(number)
        self._chunk_frame_times.append(time)
        self._count_written((number,), (time,))
        if len(self._chunk_frame_numbers) >= self._smd.chunksize:
            self._chunk_state = "full"

    def _count_written(self, numbers: Sequence[Any], times: Sequence[float]) -> None:
        """Take frames just written (their numbers and times, in order) into the running statistics:
        frame range, first and last time, count; the last one becomes the current frame."""
        low, high = min(numbers), max(numbers)
        if not low >= self._written_min:  # (NaN before the first frame: comparisons are False)
            self._written_min = float(low)
        if not high <= self._written_max:
            self._written_max = float(high)
        if self._frame_n == 0:
            self._written_t0 = float(times[0])
        self._written_tn = float(times[-1])
        self.frame_number = numbers[-1]
        self.frame_time = float(times[-1])
        self._frame_n += len(numbers)

    def _recount_written(self) -> None:
        """The running statistics from the frames really kept (after frames were lost)."""
        md = self.get_frame_metadata()
        numbers, times = md["frame_number"], md["frame_time"]
        self._frame_n = 0
        self._written_min = self._written_max = math.nan
        self._written_t0 = self._written_tn = math.nan
        self.frame_number = self.frame_time = math.nan
        if numbers:
            self._count_written(numbers, times)

    def _close_writer(self) -> None:
        if self._writer is not None:
            writer, self._writer = self._writer, None
            writer.close()

    def _check_image(self, img: Any) -> np.ndarray:
        """The image as an array of the store's dtype; refuses other shapes and lossy casts."""
        arr = np.asarray(img)
        if arr.shape != tuple(self._input_shape):
            raise ImageShapeError(
                f"image of shape {arr.shape} does not fit store {self._basedir} (shape {tuple(self._input_shape)})"
            )
        dtype = np.dtype(self._smd.imgdtype)
        if arr.dtype == dtype:
            return arr
        if arr.dtype.kind not in "uifb":
            raise ImageDtypeError(f"image dtype {arr.dtype} is not numeric (store {self._basedir} holds {dtype})")
        with np.errstate(invalid="ignore", over="ignore"):
            cast = arr.astype(dtype)
        if not np.array_equal(cast, arr):
            raise ImageDtypeError(
                f"image values do not fit the store's dtype {dtype} without loss (got {arr.dtype}, "
                f"range {arr.min()}..{arr.max()}); convert them first (store {self._basedir})"
            )
        return cast

    def add_extra_data(self, **data: Any) -> None:
        """Record extra values (sensor readings, events...) tagged with the last frame added."""
        self._require_mode("w", "add extra data")
        if not data:
            return
        record = dict(data)
        record["frame_time"] = self.frame_time
        record["frame_number"] = self.frame_number
        record["frame_index"] = self._frame_n - 1
        text = encode_record(record)
        self._make_room("the extra data")
        try:
            self._extra_writer.append(text)
        except OSError as exc:
            raise self._write_failed(exc, f"write extra data to {self._extra_writer.path}", "the extra data") from exc

    def insert_chunk(self, video_path: str, frame_numbers: Any, frame_times: Any, move: bool = True) -> None:
        raise ImgStoreError(f"{type(self).__name__} does not support insert_chunk")

    def empty(self) -> None:
        """Delete every frame written so far and start again from chunk 0 (metadata is kept)."""
        self._require_mode("w", "empty the store")
        if self._writer is not None:
            self._abandon_chunk()  # its frames are deleted below: whatever the writer holds goes too
        self._extra_writer.discard()
        self._journal.remove()
        for chunk_n in self._chunk_numbers_on_disk():
            self._remove_chunk_data(chunk_n)
            base = self._chunk_index_base(chunk_n)
            remove_chunk_index(base)
            for path in [*self._extra_data_paths(chunk_n), journal_path(base)]:
                if os.path.exists(path):
                    os.unlink(path)
        saved_index = os.path.join(self._basedir, STORE_INDEX_FILENAME)
        if os.path.exists(saved_index):
            os.unlink(saved_index)
        self._reset_write_state()

    def close(self, save_index: bool = False) -> None:
        """Finish writing (indexes, extra data, lock) or release readers. Safe to call twice.

        When writing, a failure raises ``StoreWriteError``: what was written stays readable
        (recovered from the journals when the store is opened) and the lock file stays, so that
        ``imgstore.repair_store`` can finish the store once the disk has room.
        """
        if self._closed:
            return
        self._closed = True
        if self._mode == "w":
            try:
                self._finish_writing()
            except BaseException:
                # the lock file stays: it tells readers the store was not finished
                self._release_lock(remove=False)
                raise
            self._release_lock(remove=True)
            if save_index:
                path = os.path.join(self._basedir, STORE_INDEX_FILENAME)
                try:
                    self._build_index_from_disk().to_file(path)
                except (OSError, sqlite3.Error) as exc:
                    reason = _os_reason(exc, self._basedir) if isinstance(exc, OSError) else str(exc)
                    raise StoreWriteError(
                        f"store {self._basedir}: cannot write {STORE_INDEX_FILENAME} ({reason}); the store is "
                        "complete without it"
                    ) from exc
        else:
            self._close_reader()
            if save_index:
                self.save_index()

    def _release_lock(self, remove: bool) -> None:
        """Let go of the writer's lock; a failure to close its file loses nothing, so it is only logged."""
        try:
            self._lock.release(remove=remove)
        except OSError as exc:
            log.warning("store %s: closing the lock file failed (%s)", self._basedir, exc)

    def _finish_writing(self) -> None:
        """Finish the chunk being written and those failed writes damaged.

        A store whose frame count fills its last chunk ends, as upstream's, with an empty chunk
        (an index, and for video stores an empty video file) that holds any extra data added
        after the last frame.
        """
        if self._chunk_state == "full":
            self._make_room("the store's last (empty) chunk")
        if self._chunk_state == "open":
            try:
                self._finish_chunk()
            except OSError as exc:
                raise self._write_failed(exc, "finish the chunk") from exc
        self._finish_abandoned_chunks()

    def __enter__(self) -> _ImgStore:
        return self

    def __exit__(self, exc_type: Any, exc_val: Any, exc_tb: Any) -> None:
        self.close()

    def _load_finished_index(self, chunks: List[Tuple[int, str]]) -> ImgStoreIndex:
        """The index of finished chunks, from their index files."""
        if self._fs.remote:
            return load_remote_index(self._fs, chunks)
        return ImgStoreIndex.new_from_chunks(chunks)

    def _build_index_from_disk(self, report: bool = False) -> ImgStoreIndex:
        """Every finished chunk's frames, plus those of unfinished chunks that can be recovered.

        With ``report``, says (once, when a store is opened) what was recovered and whether a
        writer is still at work or died without closing the store.
        """
        unfinished, finished = self._scan_chunks()
        if self._fs.remote:
            index = load_remote_index(self._fs, finished)
        else:
            index = load_index(self._basedir, finished)  # through the store's index cache (see _indexcache)
        # only chunks whose frames were loaded count as known: a chunk listed between a writer
        # making it and journaling it, or whose index failed to load, is looked at again
        self._finished_chunks = tuple(index.chunks)
        recovered = self._recover_unfinished(unfinished)
        self._recovered_chunks = tuple(c.chunk_n for c in recovered)
        if report:
            self._report_recovery(recovered)
        return merged_index(index, [self._recovered_arrays(c) for c in recovered])

    def _recover_unfinished(self, unfinished: Optional[Sequence[int]] = None) -> List[RecoveredChunk]:
        recovered = []
        for chunk_n in self._scan_chunks()[0] if unfinished is None else unfinished:
            chunk = self._recover_chunk(chunk_n)
            if chunk is not None:
                recovered.append(chunk)
        return recovered

    def _recover_chunk(self, chunk_n: int) -> Optional[RecoveredChunk]:
        """The frames of an unfinished chunk that read back whole, numbered from its journal."""
        journal = journal_path(self._chunk_index_base(chunk_n))
        return recover_chunk(
            chunk_n, journal, self._codec, self._chunk_path(chunk_n), self._smd.imgshape, self._smd.imgdtype
        )

    def _recovered_arrays(self, chunk: RecoveredChunk) -> ChunkArrays:
        return ChunkArrays(chunk.chunk_n, chunk.frame_number, chunk.frame_time, self._chunk_index_base(chunk.chunk_n))

    def _report_recovery(self, recovered: List[RecoveredChunk]) -> None:
        lock = self._fs.join(self._basedir, STORE_LOCK_FILENAME)
        if self._fs.remote:  # no way to ask whether a writer elsewhere is alive
            if recovered or self._fs.exists(lock):
                log.warning(
                    "store %s was not closed when it was uploaded: it is being written, or its writer "
                    "died; %d frames of unfinished chunks are readable",
                    self._basedir,
                    sum(len(c.frame_number) for c in recovered),
                )
            return
        state = writer_state(lock)
        owner = describe_owner(read_owner(lock))
        frames = sum(len(c.frame_number) for c in recovered)
        if state == "alive":
            log.info(
                "%s is being written (%s); %d frames of the chunk in progress are readable so far "
                "(refresh() picks up more)",
                self._basedir,
                owner,
                frames,
            )
            return
        if not recovered and state == "none":
            return
        what = f"its writer ({owner}) stopped without closing it" if state == "stale" else "it has unfinished chunks"
        if recovered:
            lost = sum(c.lost for c in recovered)
            chunks = ", ".join(str(c.chunk_n) for c in recovered)
            log.warning(
                "store %s: %s; recovered %d frames of unfinished chunk(s) %s from their journals%s. "
                "imgstore.repair_store(%r) (or imgstore-info --repair) writes their indexes so that "
                "every program reads them",
                self._basedir,
                what,
                frames,
                chunks,
                f" ({lost} more were not on disk whole)" if lost else "",
                self._basedir,
            )
        else:
            log.warning(
                "store %s: %s (stale lock file %s); no frames were lost. imgstore.repair_store(%r) removes the lock",
                self._basedir,
                what,
                STORE_LOCK_FILENAME,
                self._basedir,
            )

    def refresh(self) -> int:
        """Take in the frames a writer added since the store was opened; returns how many are new.

        For reading a store while it is being recorded (live analysis): chunks finished since the
        last look are loaded, and the chunk in progress is re-read from its journal. Frames already
        seen keep their frame index, so the read position is kept.
        """
        self._require_mode("r", "refresh")
        before = self._table.frame_count
        unfinished, finished = self._scan_chunks()
        known = set(self._finished_chunks)
        finished = [(n, base) for n, base in finished if n not in known]
        recovered = self._recover_unfinished(unfinished)
        index = self._index
        if finished:
            new = self._load_finished_index(finished)
            added = [ChunkArrays(n, *_chunk_columns(new, n), new.get_chunk_path(n)) for n in new.chunks]
            index = merged_index(index, added)
        index = merged_index(
            index,
            [self._recovered_arrays(c) for c in recovered],
            drop=set(self._recovered_chunks) - {n for n, _ in finished},
        )
        loaded = new.chunks if finished else ()
        self._finished_chunks = tuple(sorted({*self._finished_chunks, *loaded}))
        self._recovered_chunks = tuple(c.chunk_n for c in recovered)
        if self._chunk_n_and_chunk_paths is not None:
            self._chunk_n_and_chunk_paths = self._chunks_and_index_paths()
        if index is not self._index:
            reader_chunk = self._reader_chunk
            if reader_chunk >= 0 and index.table.chunk_slice(reader_chunk) != self._table.chunk_slice(reader_chunk):
                self._close_reader()  # the chunk grew: its reader knows only the frames it had
            self._index = index
            self._table = index.table
        return self._table.frame_count - before

    def save_index(self, path: Optional[str] = None) -> None:
        """Write the frame index to ``.index.sqlite`` (or ``path``) in the schema upstream reads."""
        self._require_mode("r", "save the index (use close(save_index=True) when writing)")
        self._index.to_file(path or os.path.join(self._basedir, STORE_INDEX_FILENAME))

    # ------------------------------------------------------------------------------------------
    # reading
    # ------------------------------------------------------------------------------------------
    def _read_frame(self, frame_index: int) -> Tuple[Image, FrameMD]:
        """Read the frame at a store position and make it the current frame."""
        chunk_n, frame_idx = self._table.locate(frame_index)
        if chunk_n != self._reader_chunk:
            self._close_reader()
            frames = self._table.chunk_slice(chunk_n)
            count = frames.stop - frames.start
            if self._fs.remote:
                self._reader = self._codec.open_remote_reader(
                    self._chunk_path(chunk_n), self._smd.imgshape, self._smd.imgdtype, count, self._fs
                )
            else:
                self._reader = self._codec.open_reader(
                    self._chunk_path(chunk_n), self._smd.imgshape, self._smd.imgdtype, count
                )
            self._reader_chunk = chunk_n
        self._chunk_n = chunk_n
        img = self._reader.read(frame_idx)
        if img.shape != tuple(self._smd.imgshape) or img.dtype != self._smd.imgdtype:  # a hostile or foreign file
            raise FrameReadError(
                f"{self._chunk_path(chunk_n)}: frame {frame_idx} of chunk {chunk_n} is a {img.dtype} image of shape "
                f"{img.shape}, not one of this store's frames ({self._smd.imgdtype}, {tuple(self._smd.imgshape)})"
            )
        img = self._decode_image(img)
        number = self._table.frame_number[frame_index].item()
        time = self._table.frame_time[frame_index].item()
        self._position = frame_index
        self.frame_number = number
        self.frame_time = time
        return img, (number, time)

    def _close_reader(self) -> None:
        if getattr(self, "_reader", None) is not None:
            self._reader.close()
        self._reader = None
        self._reader_chunk = -1

    def get_next_framenumber(self) -> Any:
        """The frame number the next ``get_next_image`` returns (``EOFError`` at the end)."""
        self._require_mode("r", "read frames")
        nxt = self._position + 1
        if nxt >= self._table.frame_count:
            raise EOFError(f"end of store {self._basedir}")
        return self._table.frame_number[nxt].item()

    def get_next_image(self, timeout: Optional[float] = None) -> Tuple[Image, FrameMD]:
        """The frame after the current one, in store order: ``(img, (frame_number, frame_time))``.

        At the end of the store, ``EOFError``; unless ``timeout`` (seconds) is given: then the
        store is refreshed until a writer adds the next frame, or the time runs out.
        """
        self._require_mode("r", "read frames")
        timeout = _seconds(timeout, "timeout")
        nxt = self._position + 1
        if nxt >= self._table.frame_count and timeout:
            deadline = timelib.monotonic() + timeout
            self.refresh()
            while nxt >= self._table.frame_count:
                remaining = deadline - timelib.monotonic()
                if remaining <= 0:
                    break
                timelib.sleep(min(_LIVE_POLL_SECONDS, remaining))
                self.refresh()
        if nxt >= self._table.frame_count:
            raise EOFError(f"end of store {self._basedir}")
        return self._read_frame(nxt)

    def get_image(self, frame_number: Any, exact_only: bool = True, frame_index: Any = None) -> Tuple[Image, FrameMD]:
        """The frame with ``frame_number`` (or the nearest, unless ``exact_only``), or at ``frame_index``."""
        self._require_mode("r", "read frames")
        if frame_index is not None:
            position = as_frame_index(frame_index)
            if position >= self._table.frame_count:
                raise FrameNotFoundError(
                    f"frame_index {position} not found in index of {self._basedir} ({self._table.frame_count} frames)"
                )
            return self._read_frame(position)
        number = as_frame_number(frame_number) if exact_only else as_query_number(frame_number)
        position = self._table.find_number(number) if exact_only else self._table.nearest_number(number)
        if position < 0:
            raise FrameNotFoundError(f"frame #{number} not found in any chunk of {self._basedir}")
        return self._read_frame(position)

    def get_nearest_image(self, frame_time: Any) -> Tuple[Image, FrameMD]:
        """The frame whose time is nearest ``frame_time`` (ties: the first in store order)."""
        self._require_mode("r", "read frames")
        position = self._table.nearest_time(as_query_time(frame_time))
        if position < 0:
            raise FrameNotFoundError(f"store {self._basedir} has no frames")
        return self._read_frame(position)

    def get_frame_metadata(self) -> Dict[str, list]:
        """``{'frame_number': [...], 'frame_time': [...]}`` of every frame, in store order."""
        if self._mode == "w":
            md = self._index_of_written_chunks().get_all_metadata()
            if self._chunk_state != "closed":  # the chunk in progress, as added
                md["frame_number"].extend(self._chunk_frame_numbers)
                md["frame_time"].extend(self._chunk_frame_times)
            return md
        return self._index.get_all_metadata()

    def _index_of_written_chunks(self) -> ImgStoreIndex:
        """While writing: the frames of every chunk but the one in progress (from their index files,
        or recovered from their journals when a failed write left them without one)."""
        unfinished, finished = self._scan_chunks()
        current = self._chunk_n if self._chunk_state != "closed" else None
        index = ImgStoreIndex.new_from_chunks([(n, base) for n, base in finished if n != current])
        recovered = [
            self._abandoned_chunks[n] if n in self._abandoned_chunks else self._recover_chunk(n)
            for n in unfinished
            if n != current
        ]
        return merged_index(index, [self._recovered_arrays(c) for c in recovered if c is not None])

    def _get_chunk_metadata(self, chunk_n: int) -> Dict[str, list]:
        return self._index.get_chunk_metadata(chunk_n)

    def disable_decoding(self) -> None:
        """Return frames as stored, without converting a sensor encoding to colour."""
        self._decode_image = decoder_for(None)

    def convert_frame_time_to_datetime(self, frame_time: float, tz: Any = None) -> datetime.datetime:
        """A frame time as an aware datetime in the store's zone (or ``tz``)."""
        return datetime.datetime.fromtimestamp(frame_time, tz=tz or self._timezone_local)

    # ------------------------------------------------------------------------------------------
    # extra data
    # ------------------------------------------------------------------------------------------
    def _extra_data_paths(self, chunk_n: int, extensions: Tuple[str, ...] = EXTRA_DATA_FILE_EXTENSIONS) -> List[str]:
        """Extra-data files of a chunk: Motif's in the store root take precedence over ours."""
        for ext in _MOTIF_EXTRA_EXTENSIONS:
            path = self._fs.join(self._basedir, chunk_name(chunk_n) + ext)
            if ext in extensions and self._fs.exists(path):
                return [path]
        base = self._chunk_index_base(chunk_n)
        return [base + ext for ext in _OWN_EXTRA_EXTENSIONS if ext in extensions and self._fs.exists(base + ext)]

    def _iter_extra_data_files(self, extensions: Tuple[str, ...] = EXTRA_DATA_FILE_EXTENSIONS) -> Iterator[str]:
        for chunk_n in self._chunk_numbers_on_disk():
            yield from self._extra_data_paths(chunk_n, extensions)

    def find_extra_data_files(self, extensions: Tuple[str, ...] = EXTRA_DATA_FILE_EXTENSIONS) -> List[str]:
        """Paths of every extra-data file, in chunk order."""
        return list(self._iter_extra_data_files(extensions))

    @property
    def has_extra_data(self) -> bool:
        return next(self._iter_extra_data_files(), None) is not None

    def get_extra_data(self, ignore_corrupt_chunks: bool = False) -> Optional[pd.DataFrame]:
        """All extra data as one DataFrame (None when there is none)."""
        frames = []
        for path in self._iter_extra_data_files():
            try:
                df = _read_extra_file(self, path)
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

    def get_extra_data_samplerate(self) -> float:
        """The sample rate of Motif's HDF5 extra data (one dataset only)."""
        for path in self.find_extra_data_files(extensions=(".extra_data.h5",)):
            attrs = motif_extra_data_h5_attrs(path, self._fs)
            datasets = attrs["_datasets"]
            if len(datasets) > 1:
                raise ImgStoreError(f"{path}: multiple sample rates; use motif_extra_data_h5_attrs")
            if len(datasets) == 1 and "samplerate" in attrs.get(datasets[0], {}):
                return attrs[datasets[0]]["samplerate"]
        raise ImgStoreError(f"store {self._basedir}: no sample rate or dataset found in extra data")

    # ------------------------------------------------------------------------------------------
    # maintenance
    # ------------------------------------------------------------------------------------------
    def reindex(self) -> None:
        """Renumber so that the unique frame 0 stays 0 and the frames before it count up to -1.

        The original numbers are kept as ``_frame_number_before_reindex`` in the chunk indexes and
        in the extra data, whose ``frame_number`` is rewritten too.
        """
        self._require_mode("r", "reindex")
        numbers = self._table.frame_number
        zeros = np.flatnonzero(numbers == 0)
        if len(zeros) != 1:
            raise ImgStoreError(f"{len(zeros)} frame_number=0 found (should be 1) in {self._basedir}")
        zero_idx = int(zeros[0])
        log.info("reindexing %s about frame_number=0 at index=%d", self._basedir, zero_idx)
        new_numbers = numbers.copy()
        new_numbers[:zero_idx] = np.arange(-zero_idx, 0)

        for chunk_n in self._index.chunks:
            sel = self._table.chunk_slice(chunk_n)
            base = self._chunk_index_base(chunk_n)
            save_chunk_index(
                base,
                new_numbers[sel],
                self._table.frame_time[sel],
                extra={"_frame_number_before_reindex": numbers[sel]},
            )
            if os.path.exists(base + ".yaml"):
                os.unlink(base + ".yaml")  # the npz now holds the index; a stale yaml must not linger
        for chunk_n in self._chunk_numbers_on_disk():
            for path in self._extra_data_paths(chunk_n, _OWN_EXTRA_EXTENSIONS):
                _reindex_extra_data(path, new_numbers)
        saved = os.path.join(self._basedir, STORE_INDEX_FILENAME)
        if os.path.exists(saved):
            os.unlink(saved)  # it holds the old numbers
        self._close_reader()
        self._set_index(self._build_index_from_disk())
        self.frame_number = math.nan

    @classmethod
    def extract_only_frame(cls, full_path: str, frame_index: int, _smd: Any = None) -> Image:
        """The image at ``frame_index`` of the store at ``full_path`` (its dir or metadata.yaml)."""
        basedir = os.path.dirname(full_path) if os.path.basename(full_path) == STORE_MD_FILENAME else full_path
        with cls(basedir=basedir, mode="r") as store:
            return store.get_image(None, frame_index=frame_index)[0]


def _read_extra_file(store: _ImgStore, path: str) -> Optional[pd.DataFrame]:
    if path.endswith(".extra_data.h5"):
        return motif_extra_data_h5_to_df(store, path)
    if store._fs.dirname(path) == store.filename and path.endswith(".extra_data.json"):
        return motif_extra_data_json_to_df(store, path)
    import pandas as pd

    return pd.DataFrame(read_records(path, fs=store._fs))


def _reindex_extra_data(path: str, new_numbers: np.ndarray) -> None:
    """Rewrite one extra-data file's ``frame_number`` from its ``frame_index``."""
    records = read_records(path)
    for record in records:
        index = record.get("frame_index")
        if not isinstance(index, int) or not 0 <= index < len(new_numbers):
            log.warning("%s: record without a valid frame_index left as it was: %r", path, record)
            continue
        record["_frame_number_before_reindex"] = record.get("frame_number")
        record["frame_number"] = int(new_numbers[index])
    write_file_atomic(path, json.dumps(records).encode("utf-8"))


def _chunk_columns(index: ImgStoreIndex, chunk_n: int) -> Tuple[np.ndarray, np.ndarray]:
    sel = index.table.chunk_slice(chunk_n)
    return index.table.frame_number[sel], index.table.frame_time[sel]


def _seconds(value: Any, name: str) -> Optional[float]:
    """A duration argument: None, or a number of seconds (NaN is refused: it would wait forever)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise FrameArgumentError(f"{name} must be a number of seconds, got {value!r}")
    seconds = float(value)
    if math.isnan(seconds):
        raise ImgStoreError(f"{name} must be a number of seconds, got NaN")
    return seconds


def _remove_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _remove_empty_dir(path: str) -> None:
    try:
        os.rmdir(path)
    except OSError:
        pass


def _creation_error(basedir: str, exc: OSError) -> StoreWriteError:
    """A failure to create a store, naming its directory and the reason (nothing of it is left)."""
    error = StoreWriteError(f"cannot create store {basedir} ({_os_reason(exc, os.path.dirname(basedir) or '.')})")
    error.frame_number, error.lost_frames = None, ()
    return error


def _describe_numbers(numbers: Sequence[Any], most: int = 20) -> str:
    """Frame numbers for a message: ``#5, #6, #7`` (runs of consecutive ones as ``#5-#7``)."""
    runs: List[List[Any]] = []
    for n in numbers:
        if runs and isinstance(n, int) and isinstance(runs[-1][-1], int) and n == runs[-1][-1] + 1:
            runs[-1].append(n)
        else:
            runs.append([n])
    parts = [f"#{r[0]}" if len(r) == 1 else f"#{r[0]}-#{r[-1]}" for r in runs]
    if len(parts) > most:
        parts = [*parts[:most], f"and {len(parts) - most} more runs"]
    return ", ".join(parts)


def _os_reason(exc: OSError, directory: Optional[str] = None) -> str:
    """An OS error in a few words: 'No space left on device' rather than a traceback.

    Some writers report a full disk without an errno (numpy: "12288 requested and 8064
    written"); when the store's disk has no room left, the reason says so.
    """
    reason = exc.strerror or str(exc) or type(exc).__name__
    if exc.errno is None and directory is not None:
        try:
            st = os.statvfs(directory)
        except (OSError, AttributeError):
            return reason
        if st.f_bavail * st.f_frsize < _DISK_FULL_BYTES:
            return f"{os.strerror(errno.ENOSPC)}: {reason}"
    return reason


def _parse_shape(imgshape: Any) -> Tuple[int, ...]:
    try:
        shape = tuple(operator.index(v) for v in imgshape)
    except TypeError:
        raise ImgStoreError(
            f"imgshape must be (height, width) or (height, width, channels), got {imgshape!r}"
        ) from None
    if len(shape) not in (2, 3) or min(shape) < 1:
        raise ImgStoreError(f"imgshape must be (height, width) or (height, width, channels), got {imgshape!r}")
    return shape


def _parse_dtype(imgdtype: Any) -> str:
    try:
        return np.dtype(imgdtype).name
    except TypeError:
        raise ImgStoreError(f"imgdtype must be a numpy dtype, got {imgdtype!r}") from None


def _known_encoding(encoding: str) -> bool:
    return encoding in encoding_to_cv2()


def chunk_files_in(names: Iterable[str], suffixes: Iterable[str]) -> Dict[int, Set[str]]:
    """``{chunk number: the suffixes its files carry}`` from directory entries ``NNNNNN<suffix>``.

    One pass over the names (a week-long video store lists 3,000 files or more).
    """
    wanted = set(suffixes)
    files: Dict[int, Set[str]] = {}
    for name in names:
        stem, dot, rest = name.partition(".")
        if not dot or dot + rest not in wanted:
            continue
        n = parse_chunk_name(stem)
        if n is not None:
            files.setdefault(n, set()).add(dot + rest)
    return files


def _chunk_numbers_in(names: List[str], suffix: str = "") -> List[int]:
    """Chunk numbers from directory entries named ``NNNNNN<suffix>``."""
    numbers = []
    for name in names:
        if suffix and not name.endswith(suffix):
            continue
        n = parse_chunk_name(name[: len(name) - len(suffix)] if suffix else name)
        if n is not None:
            numbers.append(n)
    return sorted(numbers)
