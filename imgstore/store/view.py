"""The read view: a store opened for reading, as plain data, and the one place chunk readers are opened.

A ``StoreView`` is what a store *is* once opened: its metadata, its frame table, where its chunks
are and how to decode them. It is frozen (a live ``refresh`` makes a new one) and pickles as
data, so Dask tasks, the tools, aligners and multi-camera readers are built on its public
methods instead of on a store object's private state. Its ``source`` (a ``ChunkSource``) is the
small part a task that reads frames needs: it carries no frame table.
"""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any, Dict, List, Mapping, NamedTuple, Optional, Tuple

import numpy as np

from .. import codecs
from ..codecs.base import ChunkReader
from ..codecs.sensor import decoder_for
from ..errors import FrameReadError
from ..index.frametable import FrameTable
from ..index.sealedfile import SealedChunk
from ..index.storeindex import ImgStoreIndex
from ..io.metadata import StoreMetadata
from .layout import ChunkLayout
from .location import StoreLocation


@dataclasses.dataclass(frozen=True)
class ChunkSource:
    """How to read a store's chunk files without opening the store: where, which format, which pixels."""

    location: StoreLocation
    #: the store class that reads the format (``VideoImgStore`` or ``DirectoryImgStore``)
    store_class: str
    format: str
    #: the video library that decodes chunks (None: the format's only one)
    backend: Optional[str]
    #: shape and dtype of frames as stored in the chunk files
    stored_shape: Tuple[int, ...]
    dtype: str
    #: sensor encoding converted to colour on reading; None when frames are returned as stored
    encoding: Optional[str]

    def __post_init__(self) -> None:
        # what every frame read checks and applies, worked out once (a frozen dataclass: set directly)
        object.__setattr__(self, "_shape", tuple(self.stored_shape))
        object.__setattr__(self, "_decode", decoder_for(self.encoding))

    def __reduce__(self) -> Tuple[Any, ...]:
        """Pickled as its fields: the conversion function is made again where it is unpickled."""
        return type(self), tuple(getattr(self, f.name) for f in dataclasses.fields(self))

    @property
    def frame_shape(self) -> Tuple[int, ...]:
        """Shape of one frame as read (colour when a sensor encoding is decoded)."""
        if self.encoding:
            return (self.stored_shape[0], self.stored_shape[1], 3)
        return tuple(self.stored_shape)

    @property
    def codec(self) -> codecs.ChunkCodec:
        return codecs.get_reader_codec(self.format, self.store_class, backend=self.backend)

    def open_reader(
        self, chunk_path: str, frame_count: int, index_base: Optional[str] = None, sealed: Optional[SealedChunk] = None
    ) -> ChunkReader:
        """A reader of one chunk file that its index says holds ``frame_count`` frames (``index_base``:
        where its index file is, for what the codec keeps there; ``sealed``: what the store's seal
        says of its files, checked as they are read when the store opened from its seal alone)."""
        return self.location.open_reader(
            self.codec, chunk_path, self.stored_shape, self.dtype, frame_count, index_base=index_base, sealed=sealed
        )

    def read(self, reader: ChunkReader, chunk_path: str, frame_idx: int, chunk_n: Optional[int] = None) -> np.ndarray:
        """Frame ``frame_idx`` of an open chunk, checked to be one of this store's frames, then decoded."""
        img = reader.read(frame_idx)
        if img.shape != self._shape or img.dtype != self.dtype:  # a hostile or foreign file
            where = f"frame {frame_idx}" if chunk_n is None else f"frame {frame_idx} of chunk {chunk_n}"
            raise FrameReadError(
                f"{chunk_path}: {where} is a {img.dtype} image of shape {img.shape}, not one of "
                f"this store's frames ({self.dtype}, {self._shape})"
            )
        return self._decode(img)

    def keyframes(self, chunk_path: str) -> Optional[List[int]]:
        """Positions in a chunk where reading can start without decoding earlier frames.

        None when every frame can (image formats) or when finding out would cost too much (a
        chunk at a URL would be fetched whole).
        """
        if not self.location.finds_keyframes:
            return None
        return self.codec.keyframe_positions(chunk_path)


class ChunkSpan(NamedTuple):
    """A non-empty chunk: its number, its file and where its frames lie in the store (``start:stop``)."""

    chunk_n: int
    path: str
    start: int
    stop: int
    #: its index file without extension (codecs may keep notes there: a video chunk's packet table)
    index_base: Optional[str] = None
    #: what the store's seal says of its files (``StoreView.sealed``)
    sealed: Optional[SealedChunk] = None


@dataclasses.dataclass(frozen=True)
class StoreView:
    """A store opened for reading: metadata, frame table, chunk locations, codec and decode setting."""

    source: ChunkSource
    layout: ChunkLayout
    metadata: StoreMetadata
    user_metadata: Dict[str, Any]
    index: ImgStoreIndex
    #: the creation instant (aware, UTC) and the store's time zone
    created: Tuple[datetime.datetime, Any]
    #: when the store opened from its seal alone (at S3: ``store.seal.open_from_seal``), what the
    #: seal says of each chunk's files; their readers check it (a chunk changed since is an error)
    sealed: Mapping[int, SealedChunk] = dataclasses.field(default_factory=dict)

    @property
    def basedir(self) -> str:
        return self.layout.basedir

    @property
    def location(self) -> StoreLocation:
        return self.layout.location

    @property
    def table(self) -> FrameTable:
        """Every frame's number, time and chunk, as sorted numpy columns."""
        return self.index.table

    @property
    def frame_count(self) -> int:
        return self.index.table.frame_count

    @property
    def decoding(self) -> bool:
        """Whether a sensor encoding is converted to colour on reading."""
        return self.source.encoding is not None

    def portable(self) -> StoreView:
        """The same view, its paths valid in any process (a local store's directory made absolute)."""
        location = self.location.portable()
        return dataclasses.replace(
            self, layout=self.layout.at(location), source=dataclasses.replace(self.source, location=location)
        )

    def with_index(self, index: ImgStoreIndex) -> StoreView:
        """The same store with another frame index (after a live refresh or a reindex)."""
        return dataclasses.replace(self, index=index)

    def with_decoding(self, decoding: bool) -> StoreView:
        """The same store, returning frames converted to colour (or as stored)."""
        encoding = self.metadata.encoding if decoding else None
        return dataclasses.replace(self, source=dataclasses.replace(self.source, encoding=encoding))

    def chunk_path(self, chunk_n: int) -> str:
        return self.layout.chunk_path(chunk_n)

    def open_chunk(self, chunk_n: int) -> ChunkReader:
        """A reader of chunk ``chunk_n``, told how many frames the index lists for it."""
        frames = self.index.table.chunk_slice(chunk_n)
        return self.source.open_reader(
            self.layout.chunk_path(chunk_n),
            frames.stop - frames.start,
            index_base=self.layout.index_base(chunk_n),
            sealed=self.sealed.get(chunk_n),
        )

    def chunk_spans(self) -> List[ChunkSpan]:
        """The non-empty chunks in store order, with where their frames lie."""
        table = self.index.table
        spans = []
        for chunk_n, start, stop in zip(table.chunk_ids, table.chunk_starts[:-1], table.chunk_starts[1:]):
            if stop > start:
                n = int(chunk_n)
                path, base = self.layout.chunk_path(n), self.layout.index_base(n)
                spans.append(ChunkSpan(n, path, int(start), int(stop), base, self.sealed.get(n)))
        return spans

    def frame_metadata(self) -> Dict[str, np.ndarray]:
        """``{'frame_number': int64 array, 'frame_time': float64 array}`` of every frame, in store order (copies)."""
        table = self.index.table
        return {"frame_number": table.frame_number.copy(), "frame_time": table.frame_time.copy()}
