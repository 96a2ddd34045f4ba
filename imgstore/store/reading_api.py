"""Upstream's reading API of a store: frames by position, number and time, live refresh, extra data.

A mixin of the store facade (``store.base._ImgStore``): the methods here work on the store's
``StoreReader`` (``_read_side()``) and its view, and keep upstream's ``frame_number`` and
``frame_time`` attributes current.
"""

from __future__ import annotations

import datetime
import math
import numbers
import os
import time as timelib
from typing import TYPE_CHECKING, Any, Dict, Iterator, List, Optional, Tuple, Union

import numpy as np

from ..constants import EXTRA_DATA_FILE_EXTENSIONS, STORE_INDEX_FILENAME, STORE_MD_FILENAME
from ..errors import FrameArgumentError, FrameNotFoundError, ImgStoreError
from ..index.frametable import as_frame_index, as_frame_number, as_query_number, as_query_time
from ..index.storeindex import ImgStoreIndex
from . import extradata
from .companions import companion_paths
from .reader import Frame, StoreReader
from .reindex import reindex_view
from .writer import StoreWriter

if TYPE_CHECKING:
    import pandas as pd

    from ..multi import MultiStore

Image = np.ndarray
FrameMD = Tuple[Any, float]

#: what ``frames(by=...)`` selects frames by
FRAME_KEYS = ("index", "number", "time")
#: how often ``get_next_image(timeout=...)`` looks for new frames of a store being written
_LIVE_POLL_SECONDS = 0.05


class ReadingAPI:
    """The reading half of upstream's store API (mixed into the store facade)."""

    _basedir: str
    _closed: bool
    _reader: Optional[StoreReader]
    _side: Union[StoreWriter, StoreReader]
    _created: Tuple[datetime.datetime, Any]
    _chunk_n_and_chunk_paths: Optional[List[Tuple[int, str]]]
    _index: ImgStoreIndex
    frame_number: Any
    frame_time: float

    def _read_side(self, action: str) -> StoreReader:
        if self._reader is None:
            state = "closed" if self._closed else "open for writing"
            raise ImgStoreError(f"cannot {action}: store {self._basedir} is {state}")
        return self._reader

    def _read(self, reader: StoreReader, position: int) -> Frame:
        img, (number, time) = reader.read(position)
        self.frame_number, self.frame_time = number, time
        return img, (number, time)

    def refresh(self) -> int:
        """Take in the frames a writer added since the store was opened; returns how many are new.

        For reading a store while it is being recorded (live analysis): chunks finished since the
        last look are loaded, and the chunk in progress is re-read from its journal. Frames already
        seen keep their frame index, so the read position is kept.
        """
        reader = self._read_side("refresh")
        added = reader.refresh()
        if self._chunk_n_and_chunk_paths is not None:
            self._chunk_n_and_chunk_paths = reader.loader.chunk_paths()
        return added

    def save_index(self, path: Optional[str] = None) -> None:
        """Write the frame index to ``.index.sqlite`` (or ``path``) in the schema upstream reads."""
        reader = self._read_side("save the index (use close(save_index=True) when writing)")
        reader.view.index.to_file(path or os.path.join(self._basedir, STORE_INDEX_FILENAME))

    def get_next_framenumber(self) -> Any:
        """The frame number the next ``get_next_image`` returns (``EOFError`` at the end)."""
        reader = self._read_side("read frames")
        nxt = reader.position + 1
        if nxt >= reader.frame_count:
            raise EOFError(f"end of store {self._basedir}")
        return reader.view.table.frame_number[nxt].item()

    def get_next_image(self, timeout: Optional[float] = None) -> Tuple[Image, FrameMD]:
        """The frame after the current one, in store order: ``(img, (frame_number, frame_time))``.

        At the end of the store, ``EOFError``; unless ``timeout`` (seconds) is given: then the
        store is refreshed until a writer adds the next frame, or the time runs out.
        """
        reader = self._read_side("read frames")
        timeout = _seconds(timeout, "timeout")
        nxt = reader.position + 1
        if nxt >= reader.frame_count and timeout:
            deadline = timelib.monotonic() + timeout
            self.refresh()
            while nxt >= reader.frame_count:
                remaining = deadline - timelib.monotonic()
                if remaining <= 0:
                    break
                timelib.sleep(min(_LIVE_POLL_SECONDS, remaining))
                self.refresh()
        if nxt >= reader.frame_count:
            raise EOFError(f"end of store {self._basedir}")
        return self._read(reader, nxt)

    def get_image(self, frame_number: Any, exact_only: bool = True, frame_index: Any = None) -> Tuple[Image, FrameMD]:
        """The frame with ``frame_number`` (or the nearest, unless ``exact_only``), or at ``frame_index``."""
        reader = self._read_side("read frames")
        table = reader.view.table
        if frame_index is not None:
            position = as_frame_index(frame_index)
            if position >= table.frame_count:
                raise FrameNotFoundError(
                    f"frame_index {position} not found in index of {self._basedir} ({table.frame_count} frames)"
                )
            return self._read(reader, position)
        number = as_frame_number(frame_number) if exact_only else as_query_number(frame_number)
        position = table.find_number(number) if exact_only else table.nearest_number(number)
        if position < 0:
            raise FrameNotFoundError(f"frame #{number} not found in any chunk of {self._basedir}")
        return self._read(reader, position)

    def get_nearest_image(self, frame_time: Any) -> Tuple[Image, FrameMD]:
        """The frame whose time is nearest ``frame_time`` (ties: the first in store order)."""
        reader = self._read_side("read frames")
        position = reader.view.table.nearest_time(as_query_time(frame_time))
        if position < 0:
            raise FrameNotFoundError(f"store {self._basedir} has no frames")
        return self._read(reader, position)

    def __iter__(self) -> Iterator[Tuple[Image, FrameMD]]:
        """Every frame in store order: ``for img, (frame_number, frame_time) in store``."""
        return self.frames()

    def frames(
        self, start: Any = None, stop: Any = None, step: int = 1, by: str = "index"
    ) -> Iterator[Tuple[Image, FrameMD]]:
        """The frames from ``start`` up to (not including) ``stop``, every ``step``-th, in store order,
        as ``(img, (frame_number, frame_time))``.

        ``by``: ``'index'`` (positions in the store; negative ones count from the end),
        ``'number'`` (frame numbers) or ``'time'`` (seconds since the epoch, or aware datetimes).
        None is no bound. The frames are chosen when the generator starts; consecutive ones are
        decoded on, not sought.
        """
        if by not in FRAME_KEYS:
            raise FrameArgumentError(f"by must be one of {', '.join(FRAME_KEYS)}, got {by!r}")
        if isinstance(step, bool) or not isinstance(step, numbers.Integral) or step < 1:
            raise FrameArgumentError(f"step must be a whole number of frames, 1 or more, got {step!r}")
        bounds = [_frame_bound(value, by, name) for name, value in (("start", start), ("stop", stop))]
        reader = self._read_side("read frames")
        positions = reader.view.table.positions_between(bounds[0], bounds[1], by)[:: int(step)]
        return (self._read(reader, int(position)) for position in positions)

    def get_frame_metadata(self) -> Dict[str, list]:
        """``{'frame_number': [...], 'frame_time': [...]}`` of every frame, in store order."""
        return self._side.frame_metadata()

    def _get_chunk_metadata(self, chunk_n: int) -> Dict[str, list]:
        return self._index.get_chunk_metadata(chunk_n)

    def _iter_chunk_n_and_chunk_paths(self) -> Iterator[Tuple[int, str]]:
        """Upstream's ``(chunk_n, index path without extension)`` of each chunk, ascending.

        Looked up on disk the first time when the store was opened with a given index.
        """
        if self._chunk_n_and_chunk_paths is None:
            layout = self._side.layout
            unfinished, finished = layout.scan()
            found = dict(finished)
            found.update((n, layout.index_base(n)) for n in unfinished)
            self._chunk_n_and_chunk_paths = sorted(found.items())
        yield from sorted(self._chunk_n_and_chunk_paths)

    def disable_decoding(self) -> None:
        """Return frames as stored, without converting a sensor encoding to colour."""
        if self._reader is not None:
            self._reader.use(self._reader.view.with_decoding(False))

    def convert_frame_time_to_datetime(self, frame_time: float, tz: Any = None) -> datetime.datetime:
        """A frame time as an aware datetime in the store's zone (or ``tz``)."""
        return datetime.datetime.fromtimestamp(frame_time, tz=tz or self._created[1])

    # ------------------------------------------------------------------------------------------
    # extra data
    # ------------------------------------------------------------------------------------------
    @property
    def companions(self) -> List[str]:
        """The stores of the other cameras recorded with this one, as its metadata lists them
        (``imgstore_companions``), as paths to open; empty when it lists none."""
        return companion_paths(self)

    def open_group(self, **kwargs: Any) -> MultiStore:
        """This store and its ``companions`` as one synchronized ``imgstore.MultiStore``, this store
        first (the master); ``kwargs`` are MultiStore's. Close the group to close the companions."""
        from ..multi import MultiStore  # the group is built on the store, not the other way round

        return MultiStore.linked(self, **kwargs)

    def find_extra_data_files(self, extensions: Tuple[str, ...] = EXTRA_DATA_FILE_EXTENSIONS) -> List[str]:
        """Paths of every extra-data file, in chunk order."""
        return self._side.layout.extra_data_files(extensions)

    @property
    def has_extra_data(self) -> bool:
        return extradata.has_extra_data(self._side.layout)

    def get_extra_data(self, ignore_corrupt_chunks: bool = False) -> Optional[pd.DataFrame]:
        """All extra data as one DataFrame (None when there is none)."""
        return extradata.read_extra_data(self._side.layout, ignore_corrupt_chunks)

    def get_extra_data_samplerate(self) -> float:
        """The sample rate of Motif's HDF5 extra data (one dataset only)."""
        return extradata.extra_data_samplerate(self._side.layout)

    # ------------------------------------------------------------------------------------------
    # maintenance
    # ------------------------------------------------------------------------------------------
    def reindex(self) -> None:
        """Renumber so that the unique frame 0 stays 0 and the frames before it count up to -1.

        The original numbers are kept as ``_frame_number_before_reindex`` in the chunk indexes and
        in the extra data, whose ``frame_number`` is rewritten too.
        """
        reader = self._read_side("reindex")
        reindex_view(reader.view)
        reader.restart(reader.view.with_index(reader.loader.load()))
        self.frame_number = math.nan

    @classmethod
    def extract_only_frame(cls, full_path: str, frame_index: int, _smd: Any = None) -> Image:
        """The image at ``frame_index`` of the store at ``full_path`` (its dir or metadata.yaml)."""
        basedir = os.path.dirname(full_path) if os.path.basename(full_path) == STORE_MD_FILENAME else full_path
        with cls(basedir=basedir, mode="r") as store:  # type: ignore[call-arg]
            return store.get_image(None, frame_index=frame_index)[0]


def _frame_bound(value: Any, by: str, name: str) -> Any:
    """A bound of ``frames()`` as a number to compare with the store's ``by`` column (None stays None)."""
    if value is None:
        return None
    if by == "time" and isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            raise FrameArgumentError(f"{name} {value} has no time zone: give an aware datetime or epoch seconds")
        return value.timestamp()
    if by == "index":
        number = as_frame_number(value)
        if not isinstance(number, int):
            raise FrameArgumentError(f"{name} must be a whole frame index, got {value!r}")
        return number
    return as_query_time(value) if by == "time" else as_query_number(value)


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
