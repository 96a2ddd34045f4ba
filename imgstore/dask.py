"""Stores as lazy Dask arrays (and xarray DataArrays), computed where the frames are needed.

``to_dask(store)`` is an array of shape ``(frame_count, h, w[, 3])`` whose axis 0 is the frame
index. Each task of its graph holds only plain values (chunk file paths, frame ranges, the store's
format, shape and dtype): it opens the chunk files it reads, reads its frames in order and closes
them, so graphs pickle and run on any scheduler, ``dask.distributed`` included. Frame numbers and
times are ``frame_metadata(store)`` (numpy arrays along axis 0) and the coordinates of
``to_xarray(store)``.

Scattered frames: ``to_dask(store, frames=[...])`` is an array of just those frames, in the order
given, whose tasks read only them: each task holds the requested frames of one chunk that follow
one another in the list in increasing order (at most ``frames_per_task`` of them), and each frame
costs at most the GOP it is decoded from (at a URL, with our chunks' packet tables, one range
request of that GOP's bytes). Indexing the whole array instead (``to_dask(store)[[5, 900]]``)
computes every task the frames lie in, as Dask does for any array: use ``frames=``.

Task boundaries: one task per store chunk by default. With ``frames_per_task``, tasks hold about
that many frames and may span chunks; in video stores each boundary moves to the nearest keyframe
(or chunk start), so that no task decodes frames only to throw them away. Keyframe positions come
from demuxing each chunk that a boundary falls inside, once, without decoding (a small part of the
cost of decoding it; the same demux a reader does on first access, cached per process).

dask (and xarray, for ``to_xarray``) are optional: ``pip install 'imgstore-ng[dask]'``.
"""

from __future__ import annotations

import bisect
import contextlib
import dataclasses
import logging
from typing import TYPE_CHECKING, Any, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from .errors import ImgStoreError, MissingDependencyError
from .index.sealedfile import SealedChunk
from .store.factory import new_for_filename
from .store.view import ChunkSource, ChunkSpan, StoreView

if TYPE_CHECKING:
    import dask.array
    import xarray

__all__ = ["frame_metadata", "to_dask", "to_xarray"]

log = logging.getLogger(__name__)

#: xarray dimension names of an array of grey / colour frames
GREY_DIMS = ("frame", "y", "x")
COLOR_DIMS = ("frame", "y", "x", "channel")
#: colour frames are stored (and read) in OpenCV's order
CHANNELS = ("blue", "green", "red")
#: tasks whose frames take more memory than this get a warning (a worker holds a task's frames at once)
LARGE_TASK_BYTES = 1 << 30


# ------------------------------------------------------------------------------------------------
# what a task reads: plain, picklable values
# ------------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class ChunkRun:
    """Frames ``start`` to ``stop`` (exclusive, positions within the chunk) of one chunk file."""

    path: str
    #: how many frames the chunk's index lists (readers refuse frames a cut file cannot place)
    chunk_frames: int
    start: int
    stop: int
    #: its index file without extension: a video chunk's packet table spares the reader a demux
    #: pass (and at a URL, all but its frames' GOPs)
    index_base: Optional[str] = None
    #: what the store's seal says of its files, when the store opened from its seal alone (S3):
    #: the reader checks them (``StoreView.sealed``)
    sealed: Optional[SealedChunk] = None


@dataclasses.dataclass(frozen=True)
class ReadFrames:
    """One task: consecutive frames of a store, possibly across chunks, as one numpy array.

    Calling it opens each chunk file, reads its frames in order (sequential decoding, no seek
    after the first frame) and closes it again, whatever happens.
    """

    source: ChunkSource
    runs: Tuple[ChunkRun, ...]

    @property
    def frame_count(self) -> int:
        return sum(run.stop - run.start for run in self.runs)

    def __call__(self) -> np.ndarray:
        source = self.source
        out = np.empty((self.frame_count, *source.frame_shape), dtype=source.dtype)
        filled = 0
        for run in self.runs:
            reader = source.open_reader(run.path, run.chunk_frames, index_base=run.index_base, sealed=run.sealed)
            try:
                for frame_idx in range(run.start, run.stop):
                    out[filled] = source.read(reader, run.path, frame_idx)
                    filled += 1
            finally:
                reader.close()
        return out


@dataclasses.dataclass(frozen=True)
class ReadPicked:
    """One task of a selection: chosen frames of one chunk file (positions within it, increasing).

    Each frame costs at most its GOP: the reader decodes on to a later frame of the same GOP and
    seeks to the keyframe before any other.
    """

    source: ChunkSource
    run: ChunkRun  # the chunk; ``start``/``stop`` are the first and one past the last position read
    positions: Tuple[int, ...]

    @property
    def frame_count(self) -> int:
        return len(self.positions)

    def __call__(self) -> np.ndarray:
        source, run = self.source, self.run
        out = np.empty((len(self.positions), *source.frame_shape), dtype=source.dtype)
        reader = source.open_reader(run.path, run.chunk_frames, index_base=run.index_base, sealed=run.sealed)
        try:
            for k, frame_idx in enumerate(self.positions):
                out[k] = source.read(reader, run.path, frame_idx)
        finally:
            reader.close()
        return out


# ------------------------------------------------------------------------------------------------
# public functions
# ------------------------------------------------------------------------------------------------
def to_dask(
    store_or_path: Any, frames_per_task: Optional[int] = None, frames: Optional[Sequence[int]] = None
) -> dask.array.Array:
    """A lazy array ``(frame_count, h, w[, 3])`` of a store's frames, in store order, in its dtype.

    ``store_or_path`` is a store opened for reading or a path ``new_for_filename`` opens (and
    that is closed again). One task per store chunk, or with ``frames_per_task`` about that many
    frames per task, aligned to keyframes in video stores. Axis 0 is the frame index:
    ``frame_metadata`` gives the frame numbers and times along it.

    With ``frames`` (frame indexes, as along axis 0; negative ones count from the end), the array
    ``(len(frames), h, w[, 3])`` holds just those frames in that order, and its tasks read only
    them: the requested frames of one chunk that follow one another in increasing order share a
    task (at most ``frames_per_task`` of them), each costing at most the GOP it is decoded from.
    """
    da = _import_dask_array()
    from dask.base import tokenize
    from dask.highlevelgraph import HighLevelGraph

    with _opened(store_or_path) as store:
        view = store.view.portable()
        source = view.source
        if frames is None:
            tasks: Sequence[Any] = _plan_tasks(view, _check_frames_per_task(frames_per_task))
        else:
            tasks = _plan_picks(view, _check_frames(frames, view.frame_count), _check_frames_per_task(frames_per_task))
    ndim = 1 + len(source.frame_shape)
    if not tasks:
        return da.from_array(np.empty((0, *source.frame_shape), dtype=source.dtype), chunks=-1)
    _warn_if_large(source, tasks)
    name = "imgstore-frames-" + tokenize(source, tasks)
    trailing = (0,) * (ndim - 1)
    layer = {(name, i, *trailing): (task,) for i, task in enumerate(tasks)}
    graph = HighLevelGraph.from_collections(name, layer, dependencies=())
    chunks = (tuple(task.frame_count for task in tasks), *((n,) for n in source.frame_shape))
    meta = np.empty((0,) * ndim, dtype=source.dtype)
    return da.Array(graph, name, chunks, meta=meta)


def frame_metadata(store_or_path: Any) -> Dict[str, np.ndarray]:
    """``{'frame_number': int64 array, 'frame_time': float64 array}`` along axis 0 of ``to_dask``.

    The same values as ``store.get_frame_metadata()``, as numpy arrays (times are seconds since
    the epoch, UTC; NaN for a frame without a time).
    """
    with _opened(store_or_path) as store:
        return store.view.frame_metadata()


def to_xarray(
    store_or_path: Any, frames_per_task: Optional[int] = None, frames: Optional[Sequence[int]] = None
) -> xarray.DataArray:
    """The lazy frames as an ``xarray.DataArray`` with the frame numbers and times as coordinates.

    ``frames_per_task`` and ``frames`` (just those frame indexes, in that order) as ``to_dask``.
    Dimensions ``('frame', 'y', 'x')``, plus ``'channel'`` (``blue, green, red``) for colour;
    coordinates ``frame_number`` and ``frame_time`` along ``frame``
    (``.set_xindex('frame_number')`` makes ``.sel(frame_number=...)`` work). Needs xarray.
    """
    try:
        import xarray as xr
    except ImportError as exc:
        raise MissingDependencyError(
            f"imgstore.dask.to_xarray needs the xarray package: pip install xarray ({exc})"
        ) from None
    with _opened(store_or_path) as store:
        array = to_dask(store, frames_per_task=frames_per_task, frames=frames)
        md = frame_metadata(store)
        if frames is not None:
            picked = _check_frames(frames, store.view.frame_count)
            md = {key: values[picked] for key, values in md.items()}
        attrs = {"store": store.view.location.absolute(), "format": store.view.metadata.format}
    color = array.ndim == 4
    coords: Dict[str, Any] = {"frame_number": ("frame", md["frame_number"]), "frame_time": ("frame", md["frame_time"])}
    if color:
        coords["channel"] = list(CHANNELS)
    return xr.DataArray(array, dims=COLOR_DIMS if color else GREY_DIMS, coords=coords, name="frames", attrs=attrs)


# ------------------------------------------------------------------------------------------------
# planning
# ------------------------------------------------------------------------------------------------
def _warn_if_large(source: ChunkSource, tasks: Sequence[Any]) -> None:
    frames = max(task.frame_count for task in tasks)
    nbytes = frames * int(np.prod(source.frame_shape)) * np.dtype(source.dtype).itemsize
    if nbytes > LARGE_TASK_BYTES:
        log.warning(
            "%s: tasks of up to %d frames (%.1f GB each in memory); pass frames_per_task for smaller ones",
            source.location.absolute(),
            frames,
            nbytes / 1e9,
        )


def _import_dask_array() -> Any:
    try:
        import dask.array as da
    except ImportError as exc:
        raise MissingDependencyError(
            f"imgstore.dask needs the dask package: pip install 'imgstore-ng[dask]' ({exc})"
        ) from None
    return da


@contextlib.contextmanager
def _opened(store_or_path: Any) -> Iterator[Any]:
    """The store itself (left open), or the store at a path (closed afterwards)."""
    if hasattr(store_or_path, "mode") and hasattr(store_or_path, "filename"):  # a store (else: a path)
        if store_or_path.mode != "r":
            raise ImgStoreError(f"store {store_or_path.filename} is open for writing: close it and open it for reading")
        yield store_or_path
        return

    store = new_for_filename(store_or_path)
    try:
        yield store
    finally:
        store.close()


def _check_frames_per_task(frames_per_task: Any) -> Optional[int]:
    if frames_per_task is None:
        return None
    if isinstance(frames_per_task, bool) or not isinstance(frames_per_task, (int, np.integer)) or frames_per_task < 1:
        raise ImgStoreError(f"frames_per_task must be a positive integer or None, got {frames_per_task!r}")
    return int(frames_per_task)


def _check_frames(frames: Any, frame_count: int) -> np.ndarray:
    """``frames`` as int64 frame indexes in ``0:frame_count`` (negative ones counted from the end)."""
    try:
        picked = np.asarray(frames)
    except (TypeError, ValueError):
        picked = np.asarray(frames, dtype=object)
    if picked.ndim != 1 or (len(picked) and picked.dtype.kind not in "iu"):
        raise ImgStoreError(f"frames must be a sequence of frame indexes (integers), got {frames!r}")
    if picked.dtype.kind == "u" and len(picked) and picked.max() >= frame_count:  # (before it wraps in int64)
        raise ImgStoreError(f"frames: index {int(picked.max())} is outside the store's {frame_count} frames")
    picked = picked.astype(np.int64)
    outside = picked[(picked < -frame_count) | (picked >= frame_count)]
    if len(outside):
        raise ImgStoreError(f"frames: index {int(outside[0])} is outside the store's {frame_count} frames")
    return np.where(picked < 0, picked + frame_count, picked)


def _plan_picks(view: StoreView, picked: np.ndarray, frames_per_task: Optional[int]) -> List[ReadPicked]:
    """Tasks of requested frames: those of one chunk that follow one another in increasing order."""
    spans = view.chunk_spans()
    starts = [c.start for c in spans]
    groups: List[Tuple[ChunkSpan, List[int]]] = []
    room = frames_per_task or len(picked)
    for i in picked.tolist():
        span = spans[bisect.bisect_right(starts, i) - 1]
        at = i - span.start
        if groups:
            last_span, positions = groups[-1]
            if last_span is span and at > positions[-1] and len(positions) < room:
                positions.append(at)
                continue
        groups.append((span, [at]))
    return [
        ReadPicked(
            view.source,
            ChunkRun(span.path, span.stop - span.start, positions[0], positions[-1] + 1, span.index_base, span.sealed),
            tuple(positions),
        )
        for span, positions in groups
    ]


def _plan_tasks(view: StoreView, frames_per_task: Optional[int]) -> List[ReadFrames]:
    spans = view.chunk_spans()
    if not spans:
        return []
    total = spans[-1].stop
    if frames_per_task is None:
        boundaries = [c.start for c in spans] + [total]
    else:
        boundaries = _task_boundaries(spans, frames_per_task, view.source)
    starts = [c.start for c in spans]
    return [ReadFrames(view.source, _runs(spans, starts, lo, hi)) for lo, hi in zip(boundaries[:-1], boundaries[1:])]


def _task_boundaries(chunks: Sequence[ChunkSpan], frames_per_task: int, source: ChunkSource) -> List[int]:
    """Task starts (and the end) near multiples of ``frames_per_task``, moved to places reading can start.

    Reading can start without wasted work at any frame of an image store, and at chunk starts and
    keyframes of a video store. Each nominal boundary moves to the nearest such place (the earlier
    one on a tie); boundaries that meet merge, so a task never holds less than a GOP.
    """
    total = chunks[-1].stop
    starts = [c.start for c in chunks]
    keyframe_cache: Dict[int, Optional[List[int]]] = {}
    boundaries = {0, total}
    for nominal in range(frames_per_task, total, frames_per_task):
        pos = bisect.bisect_right(starts, nominal) - 1
        chunk = chunks[pos]
        if nominal == chunk.start:
            boundaries.add(nominal)
            continue
        if pos not in keyframe_cache:
            keyframe_cache[pos] = source.keyframes(chunk.path)
        keyframes = keyframe_cache[pos]
        if keyframes is None:  # any frame can start a read, or the chunk cannot tell: a fixed number of frames
            boundaries.add(nominal)
            continue
        candidates = [chunk.start + k for k in keyframes if k < chunk.stop - chunk.start] + [chunk.stop]
        boundaries.add(_nearest(candidates, nominal))
    return sorted(boundaries)


def _nearest(sorted_values: Sequence[int], value: int) -> int:
    """The value nearest ``value`` (the smaller one on a tie)."""
    i = bisect.bisect_left(sorted_values, value)
    below = sorted_values[i - 1] if i > 0 else None
    above = sorted_values[i] if i < len(sorted_values) else None
    if above is None or (below is not None and value - below <= above - value):
        return below
    return above


def _runs(chunks: Sequence[ChunkSpan], starts: Sequence[int], lo: int, hi: int) -> Tuple[ChunkRun, ...]:
    """The runs of chunk frames that store positions ``lo`` to ``hi`` (exclusive) cover."""
    runs = []
    for chunk in chunks[bisect.bisect_right(starts, lo) - 1 :]:
        if chunk.start >= hi:
            break
        start, stop = max(lo, chunk.start), min(hi, chunk.stop)
        if stop > start:
            first, count = start - chunk.start, chunk.stop - chunk.start
            runs.append(ChunkRun(chunk.path, count, first, first + stop - start, chunk.index_base, chunk.sealed))
    return tuple(runs)
