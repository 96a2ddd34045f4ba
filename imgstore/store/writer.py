"""The writer: what a store open for writing does with each frame, chunk and failure.

The rule: a call that raises leaves the store as if it had not been made, and no frame that
``add_image`` accepted is lost without an error saying so. Arguments are checked before anything
is written. When a write fails (a full or failing disk), the chunk being written is abandoned at
once: what its files hold whole, up to its journal, is what it keeps; the error names the frame
not written and every frame accepted earlier that did not make it (frames still being encoded,
or written by encoder threads); recording goes on in a new chunk. A full chunk is finished when
the next call needs room (or on flush and close), so that a failure there is reported by a call
whose own data was not written. Every chunk ends through ``durability.commit``: roll-over and
chunks a failed write damaged through ``commit_chunk``; an inserted chunk writes its index within
what it can still undo, then ``close_committed_chunk``.
"""

from __future__ import annotations

import logging
import os
import shutil
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .. import codecs
from ..durability.commit import close_committed_chunk, commit_chunk
from ..durability.journal import ChunkJournal
from ..durability.lock import WriterLock
from ..durability.recovery import RecoveredChunk, merged_index, recover_layout_chunk, recovered_arrays
from ..errors import ImageDtypeError, ImageShapeError, ImgStoreError, StoreWriteError
from ..index.chunkfile import remove_chunk_index, save_chunk_index, validate_chunk_arrays
from ..index.storeindex import ImgStoreIndex
from ..io.durable import fsync_path
from ..io.extra import ExtraDataWriter, encode_record
from ..io.metadata import StoreMetadata
from .failures import os_reason, write_error
from .layout import ChunkLayout
from .seal import remove_seal, seal_quietly
from .stats import RunningStats

log = logging.getLogger(__name__)


class StoreWriter:
    """Writes frames, extra data and inserted chunks into a new store, chunk after chunk.

    Owns the store's lock, the chunk being written (its codec writer, journal and extra-data
    file), the roll-over to the next chunk, the running statistics and what happens when the
    disk fails. The chunk being written is 'open' (taking frames), 'full' (finished before
    anything else is written) or 'closed' (finished, abandoned or inserted: the next write opens
    a new chunk).
    """

    def __init__(
        self,
        layout: ChunkLayout,
        codec: codecs.ChunkCodec,
        metadata: StoreMetadata,
        lock: WriterLock,
        input_shape: Tuple[int, ...],
        encode: Callable[[np.ndarray], np.ndarray],
        options: Dict[str, Any],
    ) -> None:
        self.layout = layout
        self.codec = codec
        self.metadata = metadata
        self.basedir = layout.basedir
        self._lock = lock
        self._input_shape = input_shape
        self._encode = encode
        self._options = options
        self.closed = False
        remove_seal(self.basedir)  # the chunks are about to change: a seal of them would be stale
        self._start()

    # -- what the store reports while writing ---------------------------------------------------
    @property
    def chunk_n(self) -> int:
        """The chunk being written (or the last one, when it is closed)."""
        return self._chunk_n

    @property
    def frame_count(self) -> int:
        return self.stats.count

    @property
    def frame_min(self) -> float:
        return self.stats.number_min

    @property
    def frame_max(self) -> float:
        return self.stats.number_max

    @property
    def frame_time_min(self) -> float:
        """Time of the first frame (0.0 before any, as upstream's index gives for an empty store)."""
        return self.stats.time_first if self.stats.count else 0.0

    @property
    def frame_time_max(self) -> float:
        return self.stats.time_last if self.stats.count else 0.0

    @property
    def chunks(self) -> List[int]:
        """The chunks completed so far."""
        return list(range(self._chunk_n + (self._chunk_state != "open")))

    def frame_metadata(self) -> Dict[str, list]:
        """``{'frame_number': [...], 'frame_time': [...]}`` of every frame kept so far, in order."""
        md = self._index_of_written_chunks().get_all_metadata()
        if self._chunk_state != "closed":  # the chunk in progress, as added
            md["frame_number"].extend(self._numbers)
            md["frame_time"].extend(self._times)
        return md

    def _index_of_written_chunks(self) -> ImgStoreIndex:
        """The frames of every chunk but the one in progress (from their index files, or recovered
        from their journals when a failed write left them without one)."""
        unfinished, finished = self.layout.scan()
        current = self._chunk_n if self._chunk_state != "closed" else None
        index = ImgStoreIndex.new_from_chunks([(n, base) for n, base in finished if n != current])
        recovered = [
            self._abandoned[n] if n in self._abandoned else self._recover(n) for n in unfinished if n != current
        ]
        return merged_index(index, [recovered_arrays(self.layout, c) for c in recovered if c is not None])

    # -- writing ---------------------------------------------------------------------------------
    def add_image(self, img: Any, number: Any, time: float) -> None:
        """Append one frame (already checked to be a frame number and time)."""
        img = self._encode(self._check_image(img))
        shape = self.metadata.imgshape
        if img.shape[:2] != shape[:2]:  # formats that need even sizes keep the top-left part
            img = img[: shape[0], : shape[1]]
        self._make_room(f"frame #{number}", number)
        try:
            if self._writer is None:
                self._writer = self.codec.open_writer(
                    self.layout.chunk_path(self._chunk_n), shape, self.metadata.imgdtype, self._options
                )
            self._writer.write(img)
            self._journal.append(number, time)
        except OSError as exc:
            raise self._write_failed(exc, f"write frame #{number}", f"frame #{number}", number) from exc
        self._numbers.append(number)
        self._times.append(time)
        self.stats.add((number,), (time,))
        if len(self._numbers) >= self.metadata.chunksize:
            self._chunk_state = "full"

    def _check_image(self, img: Any) -> np.ndarray:
        """The image as an array of the store's dtype; refuses other shapes and lossy casts."""
        arr = np.asarray(img)
        if arr.shape != tuple(self._input_shape):
            raise ImageShapeError(
                f"image of shape {arr.shape} does not fit store {self.basedir} (shape {tuple(self._input_shape)})"
            )
        dtype = np.dtype(self.metadata.imgdtype)
        if arr.dtype == dtype:
            return arr
        if arr.dtype.kind not in "uifb":
            raise ImageDtypeError(f"image dtype {arr.dtype} is not numeric (store {self.basedir} holds {dtype})")
        with np.errstate(invalid="ignore", over="ignore"):
            cast = arr.astype(dtype)
        if not np.array_equal(cast, arr):
            raise ImageDtypeError(
                f"image values do not fit the store's dtype {dtype} without loss (got {arr.dtype}, "
                f"range {arr.min()}..{arr.max()}); convert them first (store {self.basedir})"
            )
        return cast

    def add_extra_data(self, data: Dict[str, Any]) -> None:
        """Record extra values tagged with the last frame added."""
        record = dict(data)
        record["frame_time"] = self.stats.last_time
        record["frame_number"] = self.stats.last_number
        record["frame_index"] = self.stats.count - 1
        text = encode_record(record)
        self._make_room("the extra data")
        try:
            self._extra.append(text)
        except OSError as exc:
            raise self._write_failed(exc, f"write extra data to {self._extra.path}", "the extra data") from exc

    def insert_chunk(self, video_path: str, frame_numbers: Any, frame_times: Any, move: bool) -> None:
        """Add an already-encoded chunk file as the next chunk, with its frames' numbers and times."""
        numbers, times = validate_chunk_arrays(np.asarray(frame_numbers), np.asarray(frame_times), str(video_path))
        if numbers.dtype.kind != "i":
            raise ImgStoreError(f"insert_chunk: frame_numbers for {video_path} must be whole numbers")
        count = self.codec.count_frames(str(video_path))
        if count is not None and count != len(numbers):
            raise ImgStoreError(
                f"insert_chunk: {video_path} holds {count} frames but {len(numbers)} frame numbers were given"
            )

        def put(target: str) -> None:
            (shutil.move if move else shutil.copy)(video_path, target)

        def undo(target: str) -> None:
            _undo_insert(video_path, target, move)

        self._place_chunk(f"insert {video_path}", put, undo, numbers, times, ())

    def copy_chunk(
        self,
        source: str,
        frame_idxs: Sequence[int],
        frame_count: int,
        frame_numbers: Any,
        frame_times: Any,
        extra_records: Sequence[Dict[str, Any]] = (),
    ) -> bool:
        """Add frames ``frame_idxs`` of another store's chunk ``source`` (of this store's format,
        ``frame_count`` frames) as the next chunk, copying their encoded data; their numbers, times
        and extra-data records are given. False, with nothing done, when the codec cannot copy them."""
        numbers, times = validate_chunk_arrays(np.asarray(frame_numbers), np.asarray(frame_times), str(source))
        if len(numbers) != len(frame_idxs):
            raise ImgStoreError(f"copy_chunk: {len(frame_idxs)} frames of {source} but {len(numbers)} numbers")
        if not os.path.exists(source) or not self.codec.can_copy_frames(source, frame_idxs, frame_count):
            return False  # (a chunk at a URL is read, not copied)

        def put(target: str) -> None:
            self.codec.copy_frames(source, frame_idxs, target)

        def undo(target: str) -> None:
            self.codec.remove_copied_frames(target, len(frame_idxs))

        self._place_chunk(f"copy the frames of {source}", put, undo, numbers, times, extra_records)
        return True

    def _place_chunk(
        self,
        what: str,
        put: Callable[[str], None],
        undo: Callable[[str], None],
        numbers: np.ndarray,
        times: np.ndarray,
        extra_records: Sequence[Dict[str, Any]],
    ) -> None:
        """Make the next chunk's files with ``put(chunk path)``, then its index and extra data
        (``undo`` removes what ``put`` made when a later step fails)."""
        if self._chunk_state == "open" and self._numbers:  # frames were added: finish that chunk first
            self._chunk_state = "full"
        self._make_room(f"the chunk {what}")
        chunk_n = self._chunk_n
        target, base = self.layout.chunk_path(chunk_n), self.layout.index_base(chunk_n)
        try:  # only what can be undone: the chunk's files, its index and its extra data
            put(target)
            save_chunk_index(base, numbers, times, extra=self.metadata.to_dict())
            for record in extra_records:
                self._extra.append(encode_record(record))
        except OSError as exc:
            try:
                undo(target)
                remove_chunk_index(base)
                self._extra.discard()
            except OSError as again:
                log.warning("store %s: could not undo chunk %d (%s)", self.basedir, chunk_n, again)
            raise StoreWriteError(
                f"store {self.basedir}: cannot {what} as chunk {chunk_n} ({exc.strerror or exc}); "
                "the store is as it was"
            ) from exc
        close_committed_chunk(base, self._journal, self._extra)  # the rest of commit_chunk
        self._chunk_state = "closed"  # as upstream, no empty chunk follows an inserted one
        if len(numbers):
            self.stats.add(numbers.tolist(), times.tolist())

    def flush(self) -> None:
        """Make the frames added so far durable, even against a power cut (see the store's ``flush``)."""
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
            for path in (self._extra.path,) if self._extra.started else ():
                fsync_path(path)
            for folder in dict.fromkeys((os.path.dirname(self.layout.chunk_path(self._chunk_n)), self.basedir)):
                fsync_path(folder)
        except OSError as exc:
            raise self._write_failed(exc, "flush the frames added") from exc

    def empty(self) -> None:
        """Delete every frame written so far and start again from chunk 0 (metadata is kept)."""
        if self._writer is not None:
            self._abandon_chunk()  # its frames are deleted below: whatever the writer holds goes too
        self._extra.discard()
        self._journal.remove()
        for chunk_n in self.layout.chunk_numbers():
            self.layout.remove_chunk_data(chunk_n)
            base = self.layout.index_base(chunk_n)
            remove_chunk_index(base)
            for path in [*self.layout.extra_data_paths(chunk_n), self.layout.journal_path(chunk_n)]:
                if os.path.exists(path):
                    os.unlink(path)
        self._start()

    def close(self) -> None:
        """Finish the chunk being written and those failed writes damaged, then let go of the lock.

        A store whose frame count fills its last chunk ends, as upstream's, with an empty chunk
        (an index, and for video stores an empty video file) that holds any extra data added
        after the last frame. On failure the lock file stays: it tells readers the store was not
        finished, and ``repair_store`` finishes it once the disk has room.
        """
        if self.closed:
            return
        self.closed = True
        try:
            if self._chunk_state == "full":
                self._make_room("the store's last (empty) chunk")
            if self._chunk_state == "open":
                try:
                    self._finish_chunk()
                except OSError as exc:
                    raise self._write_failed(exc, "finish the chunk") from exc
            self._finish_abandoned_chunks()
            seal_quietly(self.layout)
        except BaseException:
            self.release_lock(remove=False)
            raise
        self.release_lock(remove=True)

    def release_lock(self, remove: bool) -> None:
        """Let go of the writer's lock; a failure to close its file loses nothing, so it is only logged."""
        try:
            self._lock.release(remove=remove)
        except OSError as exc:
            log.warning("store %s: closing the lock file failed (%s)", self.basedir, exc)

    # -- chunks ----------------------------------------------------------------------------------
    def _start(self) -> None:
        """Start from nothing: no frame, chunk 0."""
        #: chunks a failed write damaged, with what recovery found in them (their index is written on close)
        self._abandoned: Dict[int, Optional[RecoveredChunk]] = {}
        self.stats = RunningStats()
        self._open_chunk(0)

    def _open_chunk(self, chunk_n: int) -> None:
        """Start chunk ``chunk_n``: its folder (for folder layouts) and its journal, or nothing at all."""
        self.layout.prepare(chunk_n)
        journal = self.layout.journal_path(chunk_n)
        try:
            # each frame's number and time, durable as soon as the frame is written (see durability.journal)
            self._journal = ChunkJournal(journal)
        except BaseException:
            for undo in (lambda: os.unlink(journal), lambda: self.layout.unprepare(chunk_n)):
                try:
                    undo()
                except OSError:
                    pass
            raise
        self._chunk_n = chunk_n
        self._writer: Optional[codecs.ChunkWriter] = None  # opened with the chunk's first frame
        self._numbers: List[Any] = []
        self._times: List[float] = []
        self._extra = ExtraDataWriter(self.layout.index_base(chunk_n) + ".extra.json")
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
            reason = os_reason(exc, self.basedir)
            problem = f"cannot start chunk {self._chunk_n + 1} ({reason})"
            raise write_error(self.basedir, problem, (), not_written, frame_number) from exc

    def _finish_chunk(self) -> None:
        """Close the chunk's codec writer, then commit the chunk.

        A failure abandons the chunk (see ``_write_failed``): its frames stay readable from the
        journal and its files, and ``repair_store`` writes the index once the disk has room.
        """
        if self._writer is not None:
            writer, self._writer = self._writer, None
            writer.close()
        if not self._numbers and self.layout.keeps_empty_chunk_files:
            # an empty chunk file, as upstream's writer leaves for a chunk it opened but gave no
            # frame: upstream finds a chunk's extra data only beside its chunk file
            shape, dtype = self.metadata.imgshape, self.metadata.imgdtype
            self.codec.open_writer(self.layout.chunk_path(self._chunk_n), shape, dtype, self._options).close()
        self._commit(self._numbers, self._times)

    def _commit(self, numbers: Any, times: Any) -> None:
        notes = self.codec.index_notes(self.layout.chunk_path(self._chunk_n)) if len(numbers) else {}
        commit_chunk(
            self.layout.index_base(self._chunk_n),
            numbers,
            times,
            self.metadata.to_dict(),
            journal=self._journal,
            extra_data=self._extra,
            notes=notes,
        )
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
        reason = os_reason(exc, self.basedir) if isinstance(exc, OSError) else str(exc)
        return write_error(
            self.basedir, f"chunk {chunk_n}: cannot {action} ({reason})", lost, not_written, frame_number
        )

    def _abandon_chunk(self) -> List[Any]:
        """Leave the chunk being written as a dead writer would; the frames it was given but lost.

        Its journal tells recovery (now, and when the store is opened or closed) what it holds.
        """
        chunk_n = self._chunk_n
        if self._writer is not None:
            try:
                self._writer.close()
            except Exception as exc:
                log.debug("closing the damaged chunk %d of %s: %s", chunk_n, self.basedir, exc)
            self._writer = None
        for close in (self._journal.close, self._extra.abandon):
            try:
                close()
            except OSError as exc:  # what reached the disk is what recovery finds
                log.debug("closing a file of the damaged chunk %d of %s: %s", chunk_n, self.basedir, exc)
        self._chunk_state = "closed"
        recovered = self._abandoned[chunk_n] = self._recover(chunk_n)
        kept = 0 if recovered is None else len(recovered.frame_number)
        lost = self._numbers[kept:]
        del self._numbers[kept:]
        del self._times[kept:]
        if lost:
            self._recount()
        return lost

    def _recover(self, chunk_n: int) -> Optional[RecoveredChunk]:
        shape, dtype = self.metadata.imgshape, self.metadata.imgdtype
        return recover_layout_chunk(self.layout, self.codec, shape, dtype, chunk_n)

    def _recount(self) -> None:
        """The running statistics from the frames really kept (after frames were lost)."""
        md = self.frame_metadata()
        self.stats = RunningStats()
        if md["frame_number"]:
            self.stats.add(md["frame_number"], md["frame_time"])

    def _finish_abandoned_chunks(self) -> None:
        """Commit each chunk a failed write damaged, with the frames it holds whole."""
        for chunk_n, chunk in list(self._abandoned.items()):
            if chunk is None:
                del self._abandoned[chunk_n]
                continue
            try:
                commit_chunk(
                    self.layout.index_base(chunk_n), chunk.frame_number, chunk.frame_time, self.metadata.to_dict()
                )
            except OSError as exc:
                problem = (
                    f"cannot write the index of chunk {chunk_n}, damaged by a failed write "
                    f"({os_reason(exc, self.basedir)}); its frames are recovered from its journal when the store "
                    "is opened, and imgstore.repair_store() writes its index once the disk has room"
                )
                raise write_error(self.basedir, problem, ()) from exc
            del self._abandoned[chunk_n]
            log.warning(
                "store %s: chunk %d, damaged by a failed write, holds %d frames",
                self.basedir,
                chunk_n,
                len(chunk.frame_number),
            )


def _undo_insert(source: str, target: str, moved: bool) -> None:
    """Leave no trace of a chunk file that could not be inserted; a moved file goes back where it was."""
    if moved and os.path.exists(target) and not os.path.exists(source):
        shutil.move(target, source)
    elif os.path.exists(target):
        os.unlink(target)
