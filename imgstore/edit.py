"""Editing recordings: trim, split and join stores, keeping every frame's number, time, metadata and extra data.

Each edit writes a new store from frames of existing ones, in the source's format and settings.
Frames are copied without decoding wherever the format allows (``store.copy_frames_from``):
frame files of image-folder stores, whole chunks of video stores; only frames of a video chunk
that is cut are decoded and encoded again. The new store keeps the frames' numbers and times,
the source's user metadata and creation time and zone, and the extra-data records written with
the kept frames (with ``frame_index`` counted in the new store); a piece that starts at the
source's first frame also keeps the records written before it. Motif's extra-data files are
carried by ``edit_motif``, once the frames are written. The new store is written under
``DEST.partial`` and renamed to ``DEST`` only when complete: an interrupted edit leaves no store
at ``DEST``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import logging
import math
import numbers
import os
import shutil
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from . import codecs
from .edit_motif import carry_motif_extra_data, find_motif_extra_data
from .errors import ImgStoreError
from .index.frametable import median_frame_interval
from .io.metadata import read_metadata, write_metadata
from .store.extradata import OwnRecords, own_records
from .store.factory import new_for_filename, new_for_format, open_for_reading
from .store.seal import remove_seal
from .store.sealing import seal_store
from .transforms import Pipeline

__all__ = ["EditReport", "describe_time", "join", "select_positions", "split", "trim", "write_store"]

_log = logging.getLogger(__name__)

#: what a selection bound counts: positions in the store, frame numbers, or frame times
SELECT_BY = ("index", "number", "time")
#: suffix of a destination being written
PARTIAL_SUFFIX = ".partial"
#: the shortest piece ``split`` makes, and the most pieces
MIN_PIECE_SECONDS = 0.001
MAX_PIECES = 100_000
#: how far apart two frame times may be and still count as the same instant (epoch seconds as
#: doubles resolve about 0.2 microseconds)
_TIME_PRECISION = 1e-6

Progress = Optional[Callable[[int], None]]


@dataclasses.dataclass
class EditReport:
    """What an edit wrote: the new store, its frames, and how many were copied or encoded again."""

    path: str
    frames: int = 0
    #: frames whose encoded data was copied (no decoding)
    copied: int = 0
    #: frames decoded and encoded again (the cut ends of video chunks, or formats that cannot copy)
    reencoded: int = 0
    #: our own extra-data records written
    extra_records: int = 0
    #: rows of Motif's extra-data files written (JSON rows and HDF5 samples)
    motif_rows: int = 0
    #: for joins: ``(end of one source, start of the next)`` in epoch seconds, where time jumps ahead
    gaps: List[Tuple[float, float]] = dataclasses.field(default_factory=list)


def select_positions(store: Any, start: Any = None, end: Any = None, by: str = "number") -> np.ndarray:
    """Positions of the frames of ``store`` from ``start`` to ``end`` (both included; None: open),
    counted by ``by``: ``'index'``, ``'number'`` or ``'time'`` (epoch seconds or aware datetimes)."""
    if by not in SELECT_BY:
        raise ImgStoreError(f"by must be one of {', '.join(SELECT_BY)}, got {by!r}")
    low, high = (_bound(v, by, name, store) for name, v in (("start", start), ("end", end)))
    if low is not None and high is not None and low > high:
        raise ImgStoreError(f"{store.filename}: end {end} is before start {start}")
    table = store.view.table
    if by == "index":  # negative positions count from the end, as Python's do
        low, high = (v + table.frame_count if v is not None and v < 0 else v for v in (low, high))
    values = {"index": np.arange(table.frame_count), "number": table.frame_number, "time": table.frame_time}[by]
    keep = np.ones(table.frame_count, bool)
    with np.errstate(invalid="ignore"):  # NaN times are in no range
        if low is not None:
            keep &= values >= low
        if high is not None:
            keep &= values <= high
    return np.flatnonzero(keep)


def trim(source: Any, dest: str, start: Any = None, end: Any = None, by: str = "number",
         progress: Progress = None, copy: bool = True, transform: Optional[Pipeline] = None) -> EditReport:  # fmt: skip
    """A new store at ``dest`` holding the frames of ``source`` (a path or a read store) from
    ``start`` to ``end``, both included (see ``select_positions``). ``copy=False`` encodes every
    frame again instead of copying what can be copied; ``transform`` (an
    ``imgstore.transforms.Pipeline``) changes every frame on the way (crop, resize...)."""
    with _Opened(source) as store:
        positions = select_positions(store, start, end, by)
        if not len(positions):
            raise ImgStoreError(f"{store.filename}: no frames from {start} to {end} (by {by})")
        return write_store(dest, [(store, positions)], progress, copy, transform)


def split(source: Any, dest_dir: str, seconds: Optional[float] = None, frames: Optional[int] = None,
          progress: Progress = None) -> List[EditReport]:  # fmt: skip
    """``source`` cut into stores of ``frames`` frames, or of ``seconds`` of recording (from the first
    frame's time), named ``<dest_dir>/<source name>.NNN``."""
    if (seconds is None) == (frames is None):
        raise ImgStoreError("split: give either seconds or frames")
    if frames is not None and (isinstance(frames, bool) or not isinstance(frames, numbers.Integral) or frames < 1):
        raise ImgStoreError(f"split: frames must be a whole number, 1 or more, got {frames!r}")
    if seconds is not None and not (isinstance(seconds, numbers.Real) and MIN_PIECE_SECONDS <= seconds < math.inf):
        raise ImgStoreError(f"split: seconds must be a number of at least {MIN_PIECE_SECONDS} s, got {seconds!r}")
    with _Opened(source) as store:
        table = store.view.table
        if not table.frame_count:
            raise ImgStoreError(f"{store.filename}: no frames to split")
        if frames is not None:
            piece = np.arange(table.frame_count) // frames
        else:
            times = np.asarray(table.frame_time, dtype=np.float64)
            if not np.isfinite(times).all():
                raise ImgStoreError(f"{store.filename}: frames without a time cannot be split by time")
            # a frame on a boundary (to the times' precision) opens the next piece
            piece = np.floor((times - times.min() + _TIME_PRECISION) / float(seconds)).astype(np.int64)
        if int(piece.max()) >= MAX_PIECES:
            count = int(piece.max()) + 1
            raise ImgStoreError(f"{store.filename}: {seconds} s pieces would be {count:,} (at most {MAX_PIECES:,})")
        name = os.path.basename(os.path.normpath(os.fspath(store.filename)))
        width = max(3, len(str(int(piece.max()))))
        targets = {int(p): os.path.join(dest_dir, f"{name}.{int(p):0{width}d}") for p in np.unique(piece)}
        for target in targets.values():
            _refuse_existing(target)
        return [write_store(target, [(store, np.flatnonzero(piece == p))], progress) for p, target in targets.items()]


def join(sources: Sequence[Any], dest: str, allow_overlap: bool = False, progress: Progress = None) -> EditReport:
    """One store at ``dest`` from ``sources`` (paths or read stores), one after another in time order.

    Sources whose times overlap, or go back, are refused unless ``allow_overlap``; gaps between
    them are reported (``EditReport.gaps``). Their format, frame shape and dtype must agree.
    """
    if not sources:
        raise ImgStoreError("join: no stores given")
    opened = [_Opened(s) for s in sources]
    try:
        stores = [o.store for o in opened]
        first = stores[0].view.metadata
        for store in stores[1:]:
            md = store.view.metadata
            if (md.imgshape, md.imgdtype) != (first.imgshape, first.imgdtype):
                raise ImgStoreError(
                    f"join: {store.filename} holds {_kind(md)} frames, {stores[0].filename} {_kind(first)}: "
                    "resize one first"
                )
            if (md.format, md.encoding) != (first.format, first.encoding):
                raise ImgStoreError(
                    f"join: {store.filename} is {_format(md)}, {stores[0].filename} {_format(first)}: "
                    "convert one first (imgstore-save --format)"
                )
        ranges = [s.view.table.time_range() for s in stores]
        order = sorted(range(len(stores)), key=lambda i: (ranges[i][0], i))
        gaps = []
        for a, b in zip(order, order[1:]):
            (_, end_a), (start_b, _) = ranges[a], ranges[b]
            if start_b <= end_a and not allow_overlap:
                raise ImgStoreError(
                    f"join: {stores[b].filename} starts at {describe_time(start_b)}, before "
                    f"{stores[a].filename} ends at {describe_time(end_a)} (allow_overlap=True joins them anyway)"
                )
            step = median_frame_interval(stores[a].view.table.frame_time)
            if start_b - end_a > 2 * (0.0 if math.isnan(step) else step):
                gaps.append((end_a, start_b))
        parts = [(stores[i], np.arange(stores[i].frame_count)) for i in order]
        report = write_store(dest, parts, progress)
        report.gaps = gaps
        return report
    finally:
        for o in opened:
            o.close()


def write_store(
    dest: str,
    parts: Sequence[Tuple[Any, np.ndarray]],
    progress: Progress = None,
    copy: bool = True,
    transform: Optional[Pipeline] = None,
) -> EditReport:
    """A new store at ``dest`` of the frames at the given positions of each store, in that order,
    in the first store's format; see the module's description (``copy=False``: nothing copied,
    every frame decoded and encoded again). ``transform``: an ``imgstore.transforms.Pipeline``
    every frame goes through (nothing is copied then); the new store's metadata lists it."""
    dest = os.path.normpath(os.fspath(dest))  # 'out/' is the store 'out'
    _refuse_existing(dest)
    partial = dest + PARTIAL_SUFFIX
    if os.path.exists(partial):
        raise ImgStoreError(f"{partial}: an unfinished edit is there; remove it first")
    for store, _ in parts:
        _refuse_inside(dest, store)
    motif = find_motif_extra_data(parts)
    first = parts[0][0]
    md = first.view.metadata
    try:  # (asks about this format only: listing every writable one probes every encoder)
        codecs.get_codec(md.format, store_class=md.class_name)
    except ImgStoreError:
        raise ImgStoreError(
            f"{first.filename}: its frames ({md.format}) are not in a format stores are written in; "
            "make a store of it first (imgstore-save --source ... --format ...)"
        ) from None
    report = EditReport(dest)
    transform = transform or Pipeline()
    try:
        shape = transform.shape(tuple(first.image_shape))
    except ImgStoreError as exc:
        raise ImgStoreError(f"{first.filename}: {exc}") from None
    try:
        metadata = transform.recorded_in(first.user_metadata)
        encoding = None if transform else md.encoding  # transformed frames are the decoded colour ones
        target = new_for_format(md.format, path=partial, imgshape=shape if transform else md.imgshape,
                                imgdtype=md.imgdtype, chunksize=md.chunksize, metadata=metadata,
                                encoding=encoding)  # fmt: skip
        try:
            for store, positions in parts:
                chosen = np.asarray(positions, dtype=np.int64)
                records = own_records(store.view.layout)
                if (chosen == 0).any():  # it starts where the recording did: it takes what came before
                    _add_before_first_frame(target, records, report)
                if copy and not transform:
                    _copy_frames(store, chosen, target, records, report, progress, encoding)
                else:
                    with _raw_frames(store, encoding) as frames:
                        _reencode(frames, chosen, target, records, report, progress, transform)
        except BaseException:
            _close_abandoned(target)  # what was interrupted or failed is raised, not a failure to finish
            raise
        target.close()
        report.motif_rows = carry_motif_extra_data(parts, motif, partial)
        _keep_creation(partial, md)
        os.replace(partial, dest)
    except BaseException:
        _remove(partial)
        raise
    return report


def _remove(partial: str) -> None:
    """Delete an abandoned destination, even when Ctrl-C is pressed again meanwhile."""
    while True:
        try:
            shutil.rmtree(partial, ignore_errors=True)
            return
        except KeyboardInterrupt:  # the first one is being raised already: finish cleaning up first
            continue


def _refuse_inside(dest: str, store: Any) -> None:
    """A destination inside a source store would become one of its chunks' neighbours (or a chunk)."""
    if store.view.location.contains(dest):
        raise ImgStoreError(f"{dest}: inside the store {store.filename} it is made from; choose a place outside it")


def _add_before_first_frame(target: Any, records: OwnRecords, report: EditReport) -> None:
    """The records a source had before its first frame, added to ``target`` before that frame: as
    the source's writer did, tagged with the frame ``target`` holds last (none, at its start)."""
    _add_records(target, records.before_first_frame, report)


def _add_records(target: Any, records: Sequence[Dict[str, Any]], report: EditReport) -> None:
    """Add extra-data ``records`` to ``target`` as its writer takes them: tagged anew with its own
    frame (the source's frame keys dropped)."""
    for record in records:
        target.add_extra_data(**{k: v for k, v in record.items() if k not in _FRAME_KEYS})
        report.extra_records += 1


def _copy_frames(store: Any, positions: np.ndarray, target: Any, records: OwnRecords, report: EditReport,
                 progress: Progress, encoding: Optional[str]) -> None:  # fmt: skip
    """Add ``store``'s frames at ``positions`` to ``target`` with their extra-data ``records``:
    chunk by chunk, copied where possible (``encoding``: the target's sensor encoding, in which
    frames encoded again are read)."""
    table = store.view.table
    chunk_of = np.searchsorted(table.chunk_starts, positions, side="right") - 1
    with _raw_frames(store, encoding) as frames:

        def copied(piece: np.ndarray) -> bool:
            return len(piece) > 0 and _copy(store, piece, target, records, report, progress)

        def reencode(piece: np.ndarray) -> None:
            _reencode(frames, piece, target, records, report, progress)

        def run_copied_between_keyframes(run: np.ndarray) -> None:
            # a run of a video chunk: the part between keyframes decodes on its own; the frames
            # before the first keyframe, and after the last if the run cannot end where it ends,
            # are encoded again
            first_key, last_key = _keyframes_within(store, run) if len(run) > 1 else (None, None)
            if first_key is None:
                reencode(run)
                return
            reencode(run[run < first_key])
            rest = run[run >= first_key]
            if copied(rest):
                return
            if copied(rest[rest < last_key]):
                reencode(rest[rest >= last_key])
            else:
                reencode(rest)

        for group in np.split(positions, np.flatnonzero(np.diff(chunk_of)) + 1):
            if not len(group) or copied(group):  # the whole group, when its format copies it
                continue
            for run in np.split(group, np.flatnonzero(np.diff(group) != 1) + 1):  # (every N-th frame...)
                if len(run) in (1, len(group)) or not copied(run):
                    run_copied_between_keyframes(run)


def _keyframes_within(store: Any, group: np.ndarray) -> Tuple[Optional[int], Optional[int]]:
    """The positions of the first and the last keyframe within a run of one chunk's frames
    (None, None: none, the run is not contiguous, or the chunk's keyframes are unknown)."""
    if int(group[-1]) - int(group[0]) != len(group) - 1:
        return None, None
    chunk_n, first_idx = store.view.table.locate(int(group[0]))
    start = int(group[0]) - first_idx  # the chunk's first position
    keyframes = store.view.source.keyframes(store.view.layout.chunk_path(chunk_n)) or []
    inside = [start + k for k in keyframes if group[0] <= start + k <= group[-1]]
    return (inside[0], inside[-1]) if inside else (None, None)


def _copy(store: Any, positions: np.ndarray, target: Any, records: OwnRecords, report: EditReport,
          progress: Progress) -> bool:  # fmt: skip
    """Copy the frames at ``positions`` (of one chunk) into ``target`` as a chunk; False when they cannot be."""
    first_new = report.frames
    by_position = records.by_position
    kept = [
        dict(r, frame_index=first_new + k) for k, p in enumerate(positions.tolist()) for r in by_position.get(p, ())
    ]
    if not target.copy_frames_from(store, positions.tolist(), kept):
        return False
    report.copied += len(positions)
    report.extra_records += len(kept)
    report.frames += len(positions)
    if progress is not None:
        progress(len(positions))
    return True


@contextlib.contextmanager
def _raw_frames(store: Any, encoding: Optional[str]) -> Iterator[Any]:
    """``store``, or, for a target that keeps a sensor encoding, the same store opened again to
    read its frames as stored (raw, not converted to colour)."""
    if not encoding:
        yield store
        return
    raw = new_for_filename(store.view.location.absolute())
    try:
        raw.disable_decoding()
        yield raw
    finally:
        raw.close()


def _reencode(store: Any, positions: np.ndarray, target: Any, records: OwnRecords, report: EditReport,
              progress: Progress, transform: Optional[Pipeline] = None) -> None:  # fmt: skip
    """Decode the frames at ``positions`` (through ``transform``, if any) and add them to ``target``
    with their extra-data records."""
    for position in positions.tolist():
        img, (number, when) = store.get_image(None, frame_index=position)
        target.add_image(transform(img, number, when) if transform else img, number, when)
        _add_records(target, records.by_position.get(position, ()), report)
        report.reencoded += 1
        report.frames += 1
        if progress is not None:
            progress(1)


#: the keys the store itself sets in every extra-data record
_FRAME_KEYS = ("frame_number", "frame_time", "frame_index")


def _close_abandoned(target: Any) -> None:
    """Release a destination that is about to be deleted; its own failures to finish are only logged."""
    try:
        target.close()
    except Exception as exc:
        _log.debug("%s: closing an abandoned edit: %s", target.filename, exc)


def _keep_creation(path: str, source: Any) -> None:
    """The new store was recorded when its source was: its creation time and zone are the source's
    (and its writer's sealed index, which fits only the metadata it wrote, is sealed again)."""
    metadata_path = os.path.join(path, "metadata.yaml")
    smd, user = read_metadata(metadata_path)
    smd = dataclasses.replace(smd, created_utc=source.created_utc, timezone_local=source.timezone_local)
    write_metadata(metadata_path, smd, user)
    try:
        seal_store(path)
    except (OSError, ImgStoreError) as exc:  # unsealed, it still opens from its chunk indexes
        remove_seal(path)
        _log.warning("%s: its index was not sealed (%s); it opens from its chunk indexes", path, exc)


def _refuse_existing(dest: str) -> None:
    if os.path.exists(dest):
        raise ImgStoreError(f"{dest}: already exists; choose a new destination")


def _bound(value: Any, by: str, name: str, store: Any) -> Optional[float]:
    if value is None:
        return None
    if isinstance(value, datetime.datetime):
        if by != "time" or value.tzinfo is None:
            raise ImgStoreError(f"{store.filename}: {name} {value} must be an aware datetime, with by='time'")
        return value.timestamp()
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or math.isnan(value):
        raise ImgStoreError(f"{store.filename}: {name} must be a number, got {value!r}")
    return float(value)


def _format(md: Any) -> str:
    return md.format + (f" ({md.encoding})" if md.encoding else "")


def _kind(md: Any) -> str:
    return f"{'x'.join(str(v) for v in md.imgshape)} {md.imgdtype}"


def describe_time(t: float) -> str:
    """Epoch seconds as an ISO time in UTC, to the millisecond (for messages and reports)."""
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).isoformat(timespec="milliseconds")


class _Opened:
    """A store given as a path, opened for reading (and closed after); a store given open, as it is."""

    def __init__(self, source: Any) -> None:
        self.store, self._owned = open_for_reading(source, "edit")

    def __enter__(self) -> Any:
        return self.store

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def close(self) -> None:
        if self._owned:
            self.store.close()
