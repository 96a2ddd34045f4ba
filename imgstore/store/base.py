"""The store facade: upstream's API over a writer (mode ``'w'``) or a reader and its view (mode ``'r'``).

A store open for writing holds a ``StoreWriter``; one open for reading holds a ``StoreReader``
over a ``StoreView``. Either is the store's *side*: what both modes report (frame count, number
and time range, chunks, frame metadata) comes from it, so nothing here dispatches on the mode.
Subclasses say only where chunks live (their layout), which codec reads and writes a format,
and what upstream's class of the same name accepts.
"""

from __future__ import annotations

import datetime
import math
import os
import sqlite3
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from .. import codecs
from ..constants import FRAME_MD, STORE_INDEX_FILENAME, STORE_VERSION
from ..errors import ImgStoreError, StoreWriteError
from ..index.frametable import as_frame_time, as_stored_frame_number
from ..index.storeindex import ImgStoreIndex
from .create import create_store
from .failures import os_reason
from .layout import ChunkLayout
from .loader import IndexLoader
from .location import StoreLocation, location_for
from .opening import StoreKind, open_view, store_created
from .reader import StoreReader
from .reading_api import ReadingAPI
from .view import StoreView
from .writer import StoreWriter


class _ImgStore(ReadingAPI):
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
        location = location_for(basedir, storage_options)
        if mode == "w" and not location.writable:
            raise ImgStoreError(
                f"{location.basedir}: stores at a URL are read-only; record into a local directory and upload it"
            )
        self._basedir = location.basedir
        self._mode = mode
        self._closed = False
        #: number and time of the frame read or added last (NaN before the first), as upstream exposes them
        self.frame_number: Any = math.nan
        self.frame_time: float = math.nan
        #: upstream's (chunk number, index path without extension) of every chunk found when the
        #: store was opened for reading; None when writing, or when opened with a given index
        #: until ``_iter_chunk_n_and_chunk_paths`` looks
        self._chunk_n_and_chunk_paths: Optional[List[Tuple[int, str]]] = None
        self._writer: Optional[StoreWriter] = None
        self._reader: Optional[StoreReader] = None
        if mode == "w":
            self._open_for_writing(location, imgshape, imgdtype, chunksize, metadata, encoding,
                                   write_encode_encoding, format, dict(writer_options or {}))  # fmt: skip
        else:
            self._open_for_reading(location, index)

    def _open_for_writing(
        self, location: StoreLocation, imgshape: Any, imgdtype: Any, chunksize: Any, metadata: Any,
        encoding: Optional[str], write_encoding: Optional[str], fmt: Any, options: Dict[str, Any],
    ) -> None:  # fmt: skip
        if imgshape is None or fmt is None or imgdtype is None:
            raise ImgStoreError("imgshape, imgdtype and format must be given to write a store")
        codec = self._writer_codec(fmt)
        layout = self._layout(location, codec.extension)  # recorded in metadata.yaml by file layouts
        self._writer, self._user_metadata = create_store(
            layout, type(self).__name__, codec, fmt, imgshape, imgdtype, chunksize, metadata,
            encoding, write_encoding, options,
        )  # fmt: skip
        self._metadata, self._codec = self._writer.metadata, codec
        self._created = store_created(self._metadata, self._user_metadata, layout)
        self._side: Union[StoreWriter, StoreReader] = self._writer

    def _open_for_reading(self, location: StoreLocation, index: Optional[ImgStoreIndex]) -> None:
        view, loader = open_view(self._kind(), location, index)
        self._reader = self._side = StoreReader(view, loader)
        self._metadata, self._user_metadata, self._created = view.metadata, view.user_metadata, view.created
        self._codec = view.source.codec
        if index is None:
            self._chunk_n_and_chunk_paths = loader.chunk_paths()

    # ------------------------------------------------------------------------------------------
    # what a subclass says: layout, codecs, the classes it reads
    # ------------------------------------------------------------------------------------------
    @classmethod
    def _layout(cls, location: StoreLocation, extension: Optional[str]) -> ChunkLayout:
        """The layout of this class's stores (``extension``: of chunk files, from the codec or metadata)."""
        raise NotImplementedError

    @classmethod
    def _codec_for(cls, fmt: object) -> codecs.ChunkCodec:
        return codecs.get_codec(fmt, store_class=cls.__name__)

    def _writer_codec(self, fmt: object) -> codecs.ChunkCodec:
        """The codec that writes ``fmt`` for this store."""
        return self._codec_for(fmt)

    def _reader_codec(self, fmt: object) -> codecs.ChunkCodec:
        """The codec that reads a store of ``fmt``."""
        return codecs.get_reader_codec(fmt, type(self).__name__)

    def _kind(self) -> StoreKind:
        """What opening a store of this class needs to know."""
        return StoreKind(
            type(self).__name__,
            self._readable_classes,
            lambda location, smd: self._layout(location, smd.extension),
            self._reader_codec,
            backend=None,
        )

    # ------------------------------------------------------------------------------------------
    # properties
    # ------------------------------------------------------------------------------------------
    @property
    def view(self) -> StoreView:
        """What this store is, as data (metadata, frame table, chunks, decoding): stores open for reading only.

        Picklable and frozen: Dask, the tools and multi-camera readers are built on it.
        """
        if self._reader is None:
            raise AttributeError(f"store {self._basedir} is open for writing: it has no read view")
        return self._reader.view

    @property
    def filename(self) -> str:
        """The store directory."""
        return self._basedir

    @property
    def full_path(self) -> str:
        """Path of the store's metadata.yaml."""
        return self._side.layout.metadata_path

    @property
    def mode(self) -> str:
        return self._mode

    @property
    def user_metadata(self) -> Dict[str, Any]:
        """Every top-level key of metadata.yaml except ``__store``."""
        return self._user_metadata

    @property
    def uuid(self) -> Optional[str]:
        return self._metadata.uuid

    @property
    def created(self) -> Tuple[datetime.datetime, Any]:
        """``(creation instant as an aware UTC datetime, the store's time zone)``."""
        return self._created

    @property
    def image_shape(self) -> Tuple[int, ...]:
        """Shape of the images reads return (colour when the store has a sensor encoding)."""
        shape = tuple(self._metadata.imgshape)
        if self._metadata.encoding:
            return shape[0], shape[1], 3
        return shape

    @property
    def lossless(self) -> bool:
        """Whether the format stores pixels exactly (after the conversion it may need: ``pgm`` is grey)."""
        return self._codec.lossless

    @property
    def frame_count(self) -> int:
        return self._side.frame_count

    def __len__(self) -> int:
        return self.frame_count

    @property
    def frame_min(self) -> float:
        return self._side.frame_min

    @property
    def frame_max(self) -> float:
        return self._side.frame_max

    @property
    def frame_time_min(self) -> float:
        """Time of the earliest frame (0.0 for an empty store, as upstream's index gives)."""
        return self._side.frame_time_min

    @property
    def frame_time_max(self) -> float:
        """Time of the latest frame (0.0 for an empty store)."""
        return self._side.frame_time_max

    @property
    def duration(self) -> float:
        """Seconds from the first to the last frame time (0 for an empty store)."""
        span = self.frame_time_max - self.frame_time_min
        return 0.0 if math.isnan(span) else span

    @property
    def chunks(self) -> List[int]:
        """Reading: the non-empty chunks. Writing: the chunks completed so far."""
        return self._side.chunks

    @property
    def _chunk_n(self) -> int:
        """Upstream's current chunk: the one being written, or the chunk of the frame read last."""
        return self._side.chunk_n

    @property
    def _index(self) -> ImgStoreIndex:
        """Upstream's frame index of a store open for reading."""
        if self._reader is None:
            raise AttributeError(f"store {self._basedir} is open for writing: it has no index yet")
        return self._reader.view.index

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
            f"<{type(self).__name__} {self._basedir!r} mode={self._mode!r} format={self._metadata.format!r} "
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
        if self._reader is None:
            raise ImgStoreError(
                f"cannot pickle store {self._basedir}: it is open for writing; close it and pickle "
                "a store opened for reading (imgstore.new_for_filename)"
            )
        view = self._reader.view
        options: Dict[str, Any] = {}
        if view.source.backend is not None:
            options["backend"] = view.source.backend
        if view.location.storage_options:
            options["storage_options"] = view.location.storage_options
        return type(self)._reopen_unpickled, (view.location.absolute(), options, view.decoding)

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
    # writing (see store.writer for what happens when the disk fails)
    # ------------------------------------------------------------------------------------------
    def _write_side(self, action: str) -> StoreWriter:
        # a read store stays readable after close(), which only releases open files (as upstream)
        if self._closed and self._writer is not None:
            raise ImgStoreError(f"cannot {action}: store {self._basedir} is closed")
        if self._writer is None:
            raise ImgStoreError(f"cannot {action}: store {self._basedir} is open for reading")
        return self._writer

    def _wrote(self, writer: StoreWriter) -> None:
        """The last frame kept becomes the current one (after a write, or frames lost to one)."""
        self.frame_number, self.frame_time = writer.stats.last_number, writer.stats.last_time

    def add_image(self, img: np.ndarray, frame_number: Any, frame_time: Any) -> None:
        """Append one frame with its camera frame number and time (seconds since the epoch).

        Either the frame is kept, or this raises (and the store is as before the call, but for
        frames lost to a failing disk, which the error names: ``StoreWriteError.lost_frames``).
        """
        writer = self._write_side("add images")
        number = as_stored_frame_number(frame_number)
        time = as_frame_time(frame_time) if frame_time is not None else math.nan
        try:
            writer.add_image(img, number, time)
        finally:
            self._wrote(writer)

    def add_extra_data(self, **data: Any) -> None:
        """Record extra values (sensor readings, events...) tagged with the last frame added."""
        writer = self._write_side("add extra data")
        if data:
            try:
                writer.add_extra_data(data)
            finally:
                self._wrote(writer)

    def insert_chunk(self, video_path: str, frame_numbers: Any, frame_times: Any, move: bool = True) -> None:
        raise ImgStoreError(f"{type(self).__name__} does not support insert_chunk")

    def copy_frames_from(
        self, source: _ImgStore, positions: Sequence[int], extra_records: Sequence[Dict[str, Any]] = ()
    ) -> bool:
        """Add the frames at ``positions`` of ``source`` (all of one of its chunks, in order) as this
        store's next chunk by copying their encoded data, with their numbers and times and the given
        extra-data records. For edits that must not re-encode: False, with nothing done, when the
        stores' formats differ or the format cannot copy those frames (add them with ``add_image``)."""
        writer = self._write_side("copy frames")
        view = source.view
        ours, theirs = writer.metadata, view.metadata
        if (ours.format, ours.imgshape, ours.imgdtype, ours.encoding) != (
            theirs.format, theirs.imgshape, theirs.imgdtype, theirs.encoding
        ):  # fmt: skip
            return False
        table = view.table
        places = [table.locate(int(p)) for p in positions]
        chunk_n = places[0][0] if places else -1
        if not places or any(c != chunk_n for c, _ in places):
            raise ImgStoreError("copy_frames_from: give positions of one chunk of the source")
        if not view.location.has_index_file(view.layout.index_base(chunk_n)):
            return False  # a chunk still being written (or whose writer died) is read, not copied
        chunk = table.chunk_slice(chunk_n)
        chosen = np.asarray(positions, dtype=np.int64)
        try:
            return writer.copy_chunk(
                view.layout.chunk_path(chunk_n),
                [i for _, i in places],
                chunk.stop - chunk.start,
                table.frame_number[chosen],
                table.frame_time[chosen],
                extra_records,
            )
        finally:
            self._wrote(writer)

    def flush(self) -> None:
        """Make the frames added so far durable, even against a power cut, without closing the store.

        Frames still being encoded are written first; then each file of the store written since
        (frames, journal, extra data, folders) is synced to the disk. A killed writer never
        loses frames added before its last ``flush()``, except those a video encoder holds back
        to compress better (see the crash-safety page). A failure raises ``StoreWriteError``
        naming the frames lost, if any.
        """
        writer = self._write_side("flush")
        try:
            writer.flush()
        finally:
            self._wrote(writer)

    def empty(self) -> None:
        """Delete every frame written so far and start again from chunk 0 (metadata is kept)."""
        writer = self._write_side("empty the store")
        writer.empty()
        self._wrote(writer)

    def close(self, save_index: bool = False) -> None:
        """Finish writing (indexes, extra data, lock) or release readers. Safe to call twice.

        When writing, a failure raises ``StoreWriteError``: what was written stays readable
        (recovered from the journals when the store is opened) and the lock file stays, so that
        ``imgstore.repair_store`` can finish the store once the disk has room.
        """
        if self._closed:
            return
        self._closed = True
        if self._writer is not None:
            try:
                self._writer.close()
            finally:
                self._wrote(self._writer)
            if save_index:
                self._save_index_after_writing(self._writer)
        elif self._reader is not None:
            self._reader.close()
            if save_index:
                self.save_index()

    def _save_index_after_writing(self, writer: StoreWriter) -> None:
        path = os.path.join(self._basedir, STORE_INDEX_FILENAME)
        try:
            IndexLoader(writer.layout, writer.codec, writer.metadata).load().to_file(path)
        except (OSError, sqlite3.Error) as exc:
            reason = os_reason(exc, self._basedir) if isinstance(exc, OSError) else str(exc)
            raise StoreWriteError(
                f"store {self._basedir}: cannot write {STORE_INDEX_FILENAME} ({reason}); "
                "the store is complete without it"
            ) from exc

    def __enter__(self) -> _ImgStore:
        return self

    def __exit__(self, exc_type: Any, exc_val: Any, exc_tb: Any) -> None:
        self.close()
