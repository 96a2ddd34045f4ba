"""Several stores read as one synchronized recording: the frames of every camera at each moment.

``MultiStore(["top", "side"])`` opens the stores (or takes stores already open for reading) and
walks a reference clock: the frames of a master camera (``sync="time"``, the default), a common
grid at ``rate`` frames per second (``sync="time", rate=...``), or the master's frame numbers for
hardware-triggered cameras (``sync="number"``). At each step every camera gives the frame nearest
the reference time within ``tolerance`` seconds (or the frame with the same number); a camera
with none gives the declared ``fill``: ``None``, a black frame, or the last frame it had (hold).

Lookups use each store's frame table (sorted numpy columns): O(log n) per camera and step, no scan
of the recording. Frames are read with each store's own reader, which keeps its chunk open, so
stepping in order decodes on instead of seeking.
"""

from __future__ import annotations

import dataclasses
import datetime
import importlib
import math
import numbers
import os
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np

from .errors import FrameNotFoundError, ImgStoreError
from .index.frametable import as_frame_number, as_query_time, median_frame_interval
from .mosaic import mosaic_of
from .store.companions import COMPANIONS_KEY, companion_paths
from .store.factory import new_for_filename, open_for_reading

__all__ = ["COMPANIONS_KEY", "FILLS", "CameraFrame", "MultiStore", "Step", "companion_paths"]

#: the most steps a grid (``rate``) may have: 10 days at 60 steps/s, 400 MB of times
MAX_GRID_STEPS = 50_000_000
#: what a camera without a frame within the tolerance gives
FILLS = ("none", "black", "hold")
#: what happened to one camera at one step
MATCHED, HELD, MISSING = "matched", "held", "missing"


@dataclasses.dataclass(frozen=True)
class CameraFrame:
    """One camera at one step: which of its frames (if any) stands for the reference time."""

    camera: str
    #: ``'matched'`` (within the tolerance), ``'held'`` (an earlier frame, kept by ``fill='hold'``)
    #: or ``'missing'`` (none: the image is ``None`` or black)
    status: str
    frame_number: Optional[int]
    frame_time: float
    #: the frame's position in its own store (-1 when missing)
    frame_index: int
    #: ``frame_time`` minus the step's reference time, seconds (NaN when missing)
    offset: float


@dataclasses.dataclass(frozen=True)
class Step:
    """The frames of every camera at one moment of the reference clock."""

    index: int
    #: the reference time (seconds since the epoch) and, with a master camera, its frame number
    time: float
    frame_number: Optional[int]
    frames: Tuple[CameraFrame, ...]
    images: Tuple[Optional[np.ndarray], ...]

    @property
    def missing(self) -> List[str]:
        """Names of the cameras without a frame within the tolerance at this step."""
        return [f.camera for f in self.frames if f.status != MATCHED]


class MultiStore:
    """Stores (or their paths) read as one synchronized sequence of steps.

    ``sync``: ``'time'`` or ``'number'``. ``master``: the camera (name or position) whose frames
    are the steps (default the first); with ``rate`` (time sync only) the steps are a grid at that
    many per second over the span of all cameras instead. ``tolerance``: the largest distance in
    seconds between a frame and the reference time (default half the reference's median frame
    interval). ``fill``: ``'none'`` (the image is None), ``'black'`` (zeros, in the camera's own
    shape and dtype) or ``'hold'`` (the camera's latest earlier frame; black before its first).
    ``names``: one per store (default the stores' directory names).
    """

    def __init__(
        self,
        stores: Sequence[Any],
        sync: str = "time",
        master: Union[int, str] = 0,
        rate: Optional[float] = None,
        tolerance: Optional[float] = None,
        fill: str = "none",
        names: Optional[Sequence[str]] = None,
    ) -> None:
        if isinstance(stores, (str, bytes, os.PathLike)):
            raise ImgStoreError(f"MultiStore takes a list of stores or paths, got the one path {os.fspath(stores)!r}")
        if not stores:
            raise ImgStoreError("MultiStore needs at least one store")
        if sync not in ("time", "number"):
            raise ImgStoreError(f"sync must be 'time' or 'number', got {sync!r}")
        if fill not in FILLS:
            raise ImgStoreError(f"fill must be one of {', '.join(FILLS)}, got {fill!r}")
        if rate is not None and (not _is_number(rate) or sync != "time" or not 0 < rate < math.inf):
            raise ImgStoreError(f"rate must be a positive number of steps per second, with sync='time' (got {rate!r})")
        self._owned: List[Any] = []
        try:
            self._setup(stores, sync, master, rate, tolerance, fill, names)
        except BaseException:
            self.close()  # the stores opened here, before what was wrong was found
            raise

    def _setup(self, stores: Sequence[Any], sync: str, master: Union[int, str], rate: Optional[float],
               tolerance: Optional[float], fill: str, names: Optional[Sequence[str]]) -> None:  # fmt: skip
        self.stores: List[Any] = []
        for store in stores:
            self.stores.append(self._open(store))
        self.names: List[str] = list(names) if names is not None else _names(self.stores)
        if len(self.names) != len(self.stores) or len(set(self.names)) != len(self.names):
            raise ImgStoreError(f"names must be unique, one per store: got {self.names!r}")
        self.sync, self.fill, self.rate = sync, fill, rate
        self.master = self._camera_position(master)
        self._tables = [store.view.table for store in self.stores]
        self._check_overlap()
        self._reference_times, self._reference_numbers = self._reference()
        self.tolerance = self._tolerance(tolerance)

    @classmethod
    def linked(cls, master: Any, **kwargs: Any) -> MultiStore:
        """The store at ``master`` (a path or an open store) with the companions its metadata lists.

        The master comes first and is the reference camera; ``kwargs`` are ``MultiStore``'s.
        """
        store = master if hasattr(master, "user_metadata") else None
        paths = companion_paths(store if store is not None else _metadata_of(master))
        if not paths:
            name = getattr(master, "filename", master)
            raise ImgStoreError(f"{os.fspath(name)}: its metadata lists no companion stores ({COMPANIONS_KEY})")
        return cls([master, *paths], **kwargs)

    # -- opening and closing ---------------------------------------------------------------------
    def _open(self, store_or_path: Any) -> Any:
        store, owned = open_for_reading(store_or_path, "MultiStore")
        if owned:
            self._owned.append(store)
        return store

    def close(self) -> None:
        """Close the stores this opened from paths (stores given open stay open)."""
        for store in self._owned:
            store.close()

    def __enter__(self) -> MultiStore:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def refresh(self) -> int:
        """Take in frames written since (stores being recorded); returns how many steps are new."""
        before = len(self)
        for store in self.stores:
            store.refresh()
        self._tables = [store.view.table for store in self.stores]
        self._reference_times, self._reference_numbers = self._reference()
        return len(self) - before

    # -- the reference clock ---------------------------------------------------------------------
    def _camera_position(self, camera: Union[int, str]) -> int:
        if isinstance(camera, str):
            if camera not in self.names:
                raise ImgStoreError(f"no camera named {camera!r} (cameras: {', '.join(self.names)})")
            return self.names.index(camera)
        if isinstance(camera, bool) or not isinstance(camera, (int, np.integer)) or not 0 <= camera < len(self.stores):
            raise ImgStoreError(f"master must be a camera name or a position 0..{len(self.stores) - 1}, got {camera!r}")
        return int(camera)

    def _time_ranges(self) -> List[Tuple[float, float]]:
        return [table.time_range() for table in self._tables]

    def _check_overlap(self) -> None:
        ranges = self._time_ranges()
        for name, (lo, _) in zip(self.names, ranges):
            if math.isnan(lo):
                raise ImgStoreError(f"MultiStore: camera {name} has no frame with a time")
        if self.sync == "time" and max(lo for lo, _ in ranges) > min(hi for _, hi in ranges):
            spans = "; ".join(f"{n}: {_when(lo)} to {_when(hi)}" for n, (lo, hi) in zip(self.names, ranges))
            raise ImgStoreError(f"MultiStore: the cameras' recordings do not overlap in time ({spans})")

    def _reference(self) -> Tuple[np.ndarray, Optional[np.ndarray]]:
        if self.rate is not None:
            ranges = self._time_ranges()
            start, end = min(lo for lo, _ in ranges), max(hi for _, hi in ranges)
            steps = math.floor((end - start) * float(self.rate) + 1e-9) + 1
            if steps > MAX_GRID_STEPS:
                raise ImgStoreError(
                    f"MultiStore: a grid at {self.rate:g} steps/s over the cameras' span, {_when(start)} to "
                    f"{_when(end)}, would have {steps:,} steps (at most {MAX_GRID_STEPS:,}): a frame time far "
                    "from the others (a clock not set?) or a rate too high"
                )
            return start + np.arange(steps) / float(self.rate), None
        table = self._tables[self.master]
        return table.frame_time, table.frame_number

    def _tolerance(self, tolerance: Optional[float]) -> float:
        if tolerance is not None:
            if not _is_number(tolerance) or not tolerance > 0:
                raise ImgStoreError(f"tolerance must be a positive number of seconds, got {tolerance!r}")
            return float(tolerance)
        if self.rate is not None:
            return 0.5 / self.rate
        # half the reference's frame interval; a reference with one frame time has none: then the
        # longest of the other cameras' (a single frame matches whatever is that near)
        intervals = [median_frame_interval(self._reference_times)]
        if math.isnan(intervals[0]):
            intervals = [median_frame_interval(table.frame_time) for table in self._tables]
        known = [i for i in intervals if not math.isnan(i)]
        return max(known) / 2 if known else math.inf

    def __len__(self) -> int:
        return len(self._reference_times)

    # -- matching (no pixels) --------------------------------------------------------------------
    def match(self, step: int) -> Tuple[float, Optional[int], Tuple[CameraFrame, ...]]:
        """The reference time and number of ``step``, and which frame each camera gives for it."""
        step = self._step_position(step)
        ref_time = float(self._reference_times[step])
        ref_number = None if self._reference_numbers is None else int(self._reference_numbers[step])
        frames = []
        for camera in range(len(self.stores)):
            positions, matched = self._positions(camera, np.array([step]))
            frames.append(self._frame(camera, int(positions[0]), bool(matched[0]), ref_time))
        return ref_time, ref_number, tuple(frames)

    def match_all(self) -> Dict[str, np.ndarray]:
        """Every step at once: ``{camera name: store position of its frame at each step}``.

        -1 where the camera has no frame (or, with ``fill='hold'``, the held frame's position):
        the same answers as ``match``, from one binary search per camera over all steps, for
        reports and exports of whole recordings.
        """
        steps = np.arange(len(self))
        return {name: self._positions(camera, steps)[0] for camera, name in enumerate(self.names)}

    def _positions(self, camera: int, steps: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """The store position of the camera's frame at each of ``steps`` (-1: none, or the held one
        with ``fill='hold'``), and whether each was matched (as opposed to held or missing)."""
        table = self._tables[camera]
        ref = np.asarray(self._reference_times[steps], dtype=np.float64)
        if camera == self.master and self.rate is None:
            positions = steps.astype(np.int64)
        elif self.sync == "number":
            positions = table.find_numbers(self._reference_numbers[steps])
        else:
            positions = table.nearest_times(ref)
            found = positions >= 0
            times = np.asarray(table.frame_time, dtype=np.float64)
            far = np.zeros(len(ref), bool)
            far[found] = ~(np.abs(times[positions[found]] - ref[found]) <= self.tolerance)
            positions[far] = -1
        matched = positions >= 0
        if self.fill == "hold":
            positions[~matched] = table.latest_at_or_before(ref[~matched])
        return positions, matched

    def _frame(self, camera: int, position: int, matched: bool, ref_time: float) -> CameraFrame:
        if position < 0:
            return CameraFrame(self.names[camera], MISSING, None, math.nan, -1, math.nan)
        table = self._tables[camera]
        number, time = table.frame_number[position].item(), float(table.frame_time[position])
        status = MATCHED if matched else HELD
        return CameraFrame(self.names[camera], status, number, time, position, time - ref_time)

    # -- steps ----------------------------------------------------------------------------------
    def _step_position(self, step: Any) -> int:
        if isinstance(step, bool) or not isinstance(step, (int, np.integer)):
            raise ImgStoreError(f"a step is a whole number, got {step!r}")
        n = len(self)
        position = int(step) + n if step < 0 else int(step)
        if not 0 <= position < n:
            raise IndexError(f"step {step} out of range: this MultiStore has {n} steps")
        return position

    def __getitem__(self, step: int) -> Step:
        ref_time, ref_number, frames = self.match(step)
        images = tuple(self._image(c, f) for c, f in enumerate(frames))
        return Step(self._step_position(step), ref_time, ref_number, frames, images)

    def __iter__(self) -> Iterator[Step]:
        for step in range(len(self)):
            yield self[step]

    def _image(self, camera: int, frame: CameraFrame) -> Optional[np.ndarray]:
        store = self.stores[camera]
        if frame.frame_index >= 0:
            return store.get_image(None, frame_index=frame.frame_index)[0]
        if self.fill == "none":
            return None
        return np.zeros(store.image_shape, dtype=store.view.metadata.imgdtype)

    def step_at_time(self, frame_time: Any) -> Step:
        """The step whose reference time is nearest ``frame_time``."""
        return self[self.step_index_at_time(frame_time)]

    def step_index_at_time(self, frame_time: Any) -> int:
        t = as_query_time(frame_time)
        if self.rate is not None:
            start = float(self._reference_times[0])
            offset = min(max((t - start) * float(self.rate), 0.0), float(len(self) - 1))  # (infinities too)
            return round(offset)
        position = self._tables[self.master].nearest_time(t)
        if position < 0:
            raise FrameNotFoundError(f"camera {self.names[self.master]} has no frame with a time")
        return position

    def step_at_frame_number(self, frame_number: int) -> Step:
        """The step of the master camera's frame ``frame_number``."""
        return self[self.step_index_at_frame_number(frame_number)]

    def step_index_at_frame_number(self, frame_number: int) -> int:
        if self.rate is not None:
            raise ImgStoreError("steps on a grid have no master frame numbers: use step_at_time")
        position = self._tables[self.master].find_number(as_frame_number(frame_number))
        if position < 0:
            raise FrameNotFoundError(f"frame #{frame_number} not found in camera {self.names[self.master]}")
        return position

    def to_dask(self, frames_per_task: Optional[int] = None) -> Dict[str, Any]:
        """``{camera name: lazy dask array (steps, h, w[, 3])}``: each camera's frame at every step.

        Built on ``imgstore.dask.to_dask`` of each store, indexed by ``match_all``; a camera
        without a frame at a step (``fill`` 'none' or 'black') gives zeros there, since an array
        cannot hold None. Needs ``imgstore-ng[dask]``.
        """
        from .dask import to_dask  # dask is optional: imported only when asked for

        arrays: Dict[str, Any] = {}
        for store, (name, positions) in zip(self.stores, self.match_all().items()):
            frames = to_dask(store, frames_per_task=frames_per_task)  # says what to install when dask is missing
            da = importlib.import_module("dask.array")
            taken = frames[np.maximum(positions, 0)]
            missing = positions < 0
            if missing.any():
                mask = da.from_array(missing.reshape((-1,) + (1,) * (taken.ndim - 1)), chunks=-1)
                taken = da.where(mask, np.zeros((), taken.dtype), taken)
            arrays[name] = taken
        return arrays

    # -- pictures -------------------------------------------------------------------------------
    def mosaic(self, step: Union[int, Step], layout: Optional[Tuple[int, int]] = None) -> np.ndarray:
        """One BGR uint8 image of every camera's frame at ``step``, tiled ``(rows, columns)``.

        Each tile is as large as the largest camera; smaller frames are centred, 16-bit frames
        scaled to 8 bits, grey ones made colour; a missing camera's tile is black.
        """
        if not isinstance(step, Step):
            step = self[step]
        return mosaic_of(step.images, [s.image_shape for s in self.stores], layout)


def _metadata_of(path: Any) -> Any:
    """A closed read store at ``path``: its user metadata and directory, for ``companion_paths``."""
    store = new_for_filename(path)
    store.close()
    return store


def _names(stores: Sequence[Any]) -> List[str]:
    names = [os.path.basename(os.fspath(s.filename).rstrip("/\\")) or f"camera{i}" for i, s in enumerate(stores)]
    if len(set(names)) != len(names):  # the same directory name twice: number them
        names = [f"{i}:{name}" for i, name in enumerate(names)]
    return names


def _when(t: float) -> str:
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).isoformat(timespec="milliseconds")


def _is_number(value: Any) -> bool:
    """A real number (numpy's too), not a boolean."""
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))
