"""The base store: modes, metadata, chunk roll-over, the frame index and the reading API.

Subclasses fix the on-disk layout of chunks (a folder per chunk, or a file per chunk); the chunk
format itself is a codec from the registry, so nothing here knows how pixels are encoded.
"""

from __future__ import annotations

import datetime
import json
import logging
import math
import operator
import os
import uuid as uuidlib
from typing import TYPE_CHECKING, Any, Dict, Iterator, List, Optional, Tuple

import numpy as np

from . import codecs
from ._chunkindex import remove_chunk_index, save_chunk_index
from ._extra import (
    ExtraDataWriter,
    encode_record,
    motif_extra_data_h5_attrs,
    motif_extra_data_h5_to_df,
    motif_extra_data_json_to_df,
    read_records,
)
from ._frameindex import as_frame_index, as_frame_number, as_frame_time, as_query_time
from ._metadata import StoreMetadata, plain_user_metadata, read_metadata, write_file_atomic, write_metadata
from ._paths import chunk_name, parse_chunk_name
from ._sensor import ENCODING_TO_CV2, decoder_for
from ._timezone import (
    get_local_timezone,
    get_local_timezone_zoneinfo,
    parse_created_utc,
    synthesize_created,
    utc_now_naive_iso,
    zone_or_none,
)
from .constants import (
    EXTRA_DATA_FILE_EXTENSIONS,
    FRAME_MD,
    STORE_INDEX_FILENAME,
    STORE_LOCK_FILENAME,
    STORE_MD_FILENAME,
    STORE_MD_KEY,
    STORE_VERSION,
)
from .errors import (
    ExtraDataError,
    FrameNotFoundError,
    ImageDtypeError,
    ImageShapeError,
    ImgStoreError,
    IncompatibleStoreError,
    StoreExistsError,
)
from .index import ImgStoreIndex

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

Image = np.ndarray
FrameMD = Tuple[Any, float]

_MOTIF_EXTRA_EXTENSIONS = (".extra_data.h5", ".extra_data.json")
_OWN_EXTRA_EXTENSIONS = (".extra.json", ".extra_data.json")


class _ImgStore:
    """Everything a store does, whatever its chunk layout and format."""

    _version = STORE_VERSION
    _supported_modes = "wr"
    #: class names in metadata.yaml this class reads
    _readable_classes: Tuple[str, ...] = ()

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
        format: Optional[str] = None,
        index: Optional[ImgStoreIndex] = None,
        writer_options: Optional[Dict[str, Any]] = None,
    ) -> None:
        if mode not in ("r", "w") or mode not in self._supported_modes:
            raise ImgStoreError(f"mode {mode!r} not supported (use 'r' to read or 'w' to write)")
        if not basedir:
            raise ImgStoreError("basedir must name the store directory")
        self._basedir = os.fspath(basedir)
        self._mode = mode
        self._closed = False
        self._user_metadata: Dict[str, Any] = {}
        self._decode_image = decoder_for(None)
        self._encode_image = decoder_for(None)
        self._writer_options: Dict[str, Any] = dict(writer_options or {})

        # what was last read or written, as upstream exposes it
        self.frame_number: Any = math.nan
        self.frame_time: float = math.nan

        if mode == "w":
            self._init_write(imgshape, imgdtype, chunksize, metadata, encoding, format)
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

    def _indexed_chunks(self) -> List[Tuple[int, str]]:
        """``(chunk_n, index path without extension)`` of the chunks whose frames can be read."""
        return [(n, self._chunk_index_base(n)) for n in self._chunk_numbers_on_disk()]

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

    def _init_write(self, imgshape: Any, imgdtype: Any, chunksize: Any, metadata: Any, encoding: Any, fmt: Any) -> None:
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
        if encoding and not _known_encoding(encoding):
            raise ImgStoreError(f"unsupported store image encoding: {encoding!r}")

        # 'png+color' with an encoding: convert to colour before writing, store no encoding
        write_shape = self._codec.written_shape(input_shape)
        if color_variant and encoding:
            self._encode_image = decoder_for(encoding)
            write_shape = (write_shape[0], write_shape[1], 3)
            encoding = None
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
        if os.path.exists(metadata_path):
            raise StoreExistsError(
                f"{self._basedir} already holds a store ({STORE_MD_FILENAME}); "
                "refusing to overwrite it: choose a new directory"
            )
        os.makedirs(self._basedir, exist_ok=True)
        stale = self._chunk_numbers_on_disk()
        if stale:
            raise StoreExistsError(
                f"{self._basedir} already holds chunk data ({chunk_name(stale[0])}...) "
                "but no store metadata: refusing to mix stores, choose a new directory"
            )
        open(os.path.join(self._basedir, STORE_LOCK_FILENAME), "a").close()
        write_metadata(metadata_path, self._smd, self._user_metadata)
        self._reset_write_state()

    def _chunk_extension_for_write(self) -> Optional[str]:
        """The ``extension`` metadata key (video stores only)."""
        return None

    def _init_read(self, index: Optional[ImgStoreIndex]) -> None:
        smd, user_md = read_metadata(self.full_path)
        self._readability_check(smd.class_name, smd.version)
        self._smd = smd
        self._user_metadata = user_md
        self._codec = self._reader_codec(smd.format)
        self._input_shape = smd.imgshape
        self._setup_from_metadata()
        self._decode_image = decoder_for(smd.encoding)

        if index is None:
            index = ImgStoreIndex.new_from_chunks(self._indexed_chunks())
        elif not isinstance(index, ImgStoreIndex):
            raise TypeError(f"index must be an ImgStoreIndex, got {type(index).__name__}")
        self._set_index(index)

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
            created, synthesized_tz = synthesize_created(self._basedir, self.full_path, user_tz)
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
        return os.path.join(self._basedir, STORE_MD_FILENAME)

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
        return self._index.frame_time_min if self._mode == "r" else self._written_t0

    @property
    def frame_time_max(self) -> float:
        return self._index.frame_time_max if self._mode == "r" else self._written_tn

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
        return list(range(self._chunk_n))

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
    # writing
    # ------------------------------------------------------------------------------------------
    def _reset_write_state(self) -> None:
        self._frame_n = 0
        self._chunk_n = 0
        self._written_min = self._written_max = math.nan
        self._written_t0 = self._written_tn = math.nan
        self.frame_number = math.nan
        self.frame_time = math.nan
        self._start_chunk(0)

    def _prepare_chunk(self, chunk_n: int) -> None:
        """Layout hook: make room for a new chunk before any frame or extra data arrives."""

    def _start_chunk(self, chunk_n: int) -> None:
        self._chunk_n = chunk_n
        self._prepare_chunk(chunk_n)
        self._writer: Optional[codecs.ChunkWriter] = None  # opened with the chunk's first frame
        self._chunk_frame_numbers: List[Any] = []
        self._chunk_frame_times: List[float] = []
        self._extra_writer = ExtraDataWriter(self._chunk_index_base(chunk_n) + ".extra.json")

    def _finish_chunk(self) -> None:
        """Close the chunk's writer, then write its index and close its extra data."""
        self._close_writer()
        save_chunk_index(
            self._chunk_index_base(self._chunk_n),
            np.asarray(self._chunk_frame_numbers),
            np.asarray(self._chunk_frame_times, dtype=np.float64),
            extra=self._smd.to_dict(),
        )
        self._extra_writer.close()

    def _require_mode(self, mode: str, action: str) -> None:
        # a read store stays readable after close(), which only releases open files (as upstream)
        if self._closed and self._mode == "w":
            raise ImgStoreError(f"cannot {action}: store {self._basedir} is closed")
        if self._mode != mode:
            opened = "reading" if self._mode == "r" else "writing"
            raise ImgStoreError(f"cannot {action}: store {self._basedir} is open for {opened}")

    def add_image(self, img: Image, frame_number: Any, frame_time: Any) -> None:
        """Append one frame with its camera frame number and time (seconds since the epoch)."""
        self._require_mode("w", "add images")
        number = as_frame_number(frame_number)
        if not isinstance(number, int):
            raise ImgStoreError(f"frame_number must be a whole number, got {frame_number!r}")
        time = as_frame_time(frame_time) if frame_time is not None else math.nan
        img = self._encode_image(self._check_image(img))
        if img.shape[:2] != self._smd.imgshape[:2]:  # formats that need even sizes keep the top-left part
            img = img[: self._smd.imgshape[0], : self._smd.imgshape[1]]
        if self._writer is None:
            self._writer = self._codec.open_writer(
                self._chunk_path(self._chunk_n), self._smd.imgshape, self._smd.imgdtype, self._writer_options
            )
        self._writer.write(img)

        self._chunk_frame_numbers.append(number)
        self._chunk_frame_times.append(time)
        self._written_min = float(np.nanmin((number, self._written_min)))
        self._written_max = float(np.nanmax((number, self._written_max)))
        if self._frame_n == 0:
            self._written_t0 = time
        self._written_tn = time
        self.frame_number = number
        self.frame_time = time
        self._frame_n += 1
        if len(self._chunk_frame_numbers) == self._smd.chunksize:
            self._finish_chunk()
            self._start_chunk(self._chunk_n + 1)

    def _close_writer(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

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
        self._extra_writer.append(encode_record(record))

    def insert_chunk(self, video_path: str, frame_numbers: Any, frame_times: Any, move: bool = True) -> None:
        raise ImgStoreError(f"{type(self).__name__} does not support insert_chunk")

    def empty(self) -> None:
        """Delete every frame written so far and start again from chunk 0 (metadata is kept)."""
        self._require_mode("w", "empty the store")
        self._close_writer()
        self._extra_writer.discard()
        for chunk_n in self._chunk_numbers_on_disk():
            self._remove_chunk_data(chunk_n)
            remove_chunk_index(self._chunk_index_base(chunk_n))
            for path in self._extra_data_paths(chunk_n):
                os.unlink(path)
        saved_index = os.path.join(self._basedir, STORE_INDEX_FILENAME)
        if os.path.exists(saved_index):
            os.unlink(saved_index)
        self._reset_write_state()

    def close(self, save_index: bool = False) -> None:
        """Finish writing (indexes, extra data, lock) or release readers. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        if self._mode == "w":
            self._finish_chunk()
            lock = os.path.join(self._basedir, STORE_LOCK_FILENAME)
            try:
                os.remove(lock)
            except FileNotFoundError:
                pass
            except OSError as exc:
                log.warning("could not remove lock file %s: %s", lock, exc)
            if save_index:
                self._build_index_from_disk().to_file(os.path.join(self._basedir, STORE_INDEX_FILENAME))
        else:
            self._close_reader()
            if save_index:
                self.save_index()

    def __enter__(self) -> _ImgStore:
        return self

    def __exit__(self, exc_type: Any, exc_val: Any, exc_tb: Any) -> None:
        self.close()

    def _build_index_from_disk(self) -> ImgStoreIndex:
        return ImgStoreIndex.new_from_chunks(self._indexed_chunks())

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
            self._reader = self._codec.open_reader(
                self._chunk_path(chunk_n), self._smd.imgshape, self._smd.imgdtype, frames.stop - frames.start
            )
            self._reader_chunk = chunk_n
        img = self._decode_image(self._reader.read(frame_idx))
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

    def get_next_image(self) -> Tuple[Image, FrameMD]:
        """The frame after the current one, in store order: ``(img, (frame_number, frame_time))``."""
        self._require_mode("r", "read frames")
        nxt = self._position + 1
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
        number = as_frame_number(frame_number)
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
        if self._mode == "w":  # finished chunks from disk, plus the chunk in progress
            done = ImgStoreIndex.new_from_chunks([(n, self._chunk_index_base(n)) for n in range(self._chunk_n)])
            md = done.get_all_metadata()
            md["frame_number"].extend(self._chunk_frame_numbers)
            md["frame_time"].extend(self._chunk_frame_times)
            return md
        return self._index.get_all_metadata()

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
            path = os.path.join(self._basedir, chunk_name(chunk_n) + ext)
            if ext in extensions and os.path.exists(path):
                return [path]
        base = self._chunk_index_base(chunk_n)
        return [base + ext for ext in _OWN_EXTRA_EXTENSIONS if ext in extensions and os.path.exists(base + ext)]

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
            attrs = motif_extra_data_h5_attrs(path)
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
    if os.path.dirname(path) == store.filename and path.endswith(".extra_data.json"):
        return motif_extra_data_json_to_df(store, path)
    import pandas as pd

    return pd.DataFrame(read_records(path))


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
    return encoding in ENCODING_TO_CV2


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
