"""Finishing a store whose writer died, so that every program (upstream imgstore too) reads it.

Opening such a store already recovers its frames in memory (see ``durability.recovery``); repairing writes
what the writer would have written on close: the index of each unfinished chunk, the closing
bracket of its extra data, and no lock file; it removes the temporary files of index and metadata
writes the writer was killed in. Nothing that holds frames is deleted or rewritten.

A store that lost its ``metadata.yaml`` (every chunk and index still there) gets a new one, built
from the chunks (see ``durability.rebuild``); what had to be guessed is logged and listed in the report.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from typing import List, Optional

from ..constants import STORE_LOCK_FILENAME, STORE_MD_FILENAME
from ..errors import ImgStoreError, StoreLockedError
from ..index.chunkfile import find_chunk_index
from ..index.storeindex import ImgStoreIndex
from ..io.extra import encode_record, read_records
from ..io.fs import is_url
from ..io.metadata import write_file_atomic
from ..io.paths import parse_chunk_name
from ..store.factory import new_for_filename
from ..store.layout import ChunkLayout
from ..store.loader import IndexLoader
from ..store.seal import write_seal
from .commit import commit_chunk
from .journal import journal_path
from .lock import describe_owner, read_owner, writer_state
from .rebuild import lost_metadata, rebuild_metadata, store_dir

log = logging.getLogger(__name__)


@dataclass
class RepairReport:
    """What ``repair_store`` did to a store."""

    path: str
    #: chunks whose index was written from their journal
    chunks_indexed: List[int] = field(default_factory=list)
    #: frames those chunks hold (readable now by every program)
    frames_recovered: int = 0
    #: frames their journals listed whose data never reached the disk whole
    frames_lost: int = 0
    #: extra-data files whose JSON array was closed
    extra_data_closed: List[str] = field(default_factory=list)
    #: journals left over by a writer that died after writing the chunk's index
    stale_journals_removed: int = 0
    #: whether a stale lock file was removed
    lock_removed: bool = False
    #: temporary files of index or metadata writes the writer was killed in, removed
    temporary_files_removed: List[str] = field(default_factory=list)
    #: whether metadata.yaml was lost and has been rebuilt from the chunks
    metadata_rebuilt: bool = False
    #: what the rebuilt metadata.yaml had to guess, and from what
    guessed: List[str] = field(default_factory=list)
    #: whether the sealed index was written (after repairing anything)
    sealed: bool = False

    @property
    def changed(self) -> bool:
        return bool(
            self.chunks_indexed
            or self.extra_data_closed
            or self.stale_journals_removed
            or self.lock_removed
            or self.temporary_files_removed
            or self.metadata_rebuilt
        )

    def __str__(self) -> str:
        if not self.changed:
            return f"{self.path}: nothing to repair"
        parts = []
        if self.metadata_rebuilt:
            guessed = f" (guessed: {'; '.join(self.guessed)})" if self.guessed else ""
            parts.append(f"rebuilt the lost {STORE_MD_FILENAME} from the chunks{guessed}")
        if self.chunks_indexed:
            chunks = ", ".join(map(str, self.chunks_indexed))
            parts.append(f"indexed {self.frames_recovered} recovered frames in chunk(s) {chunks}")
            if self.frames_lost:
                parts.append(f"{self.frames_lost} journaled frames were not on disk whole and are lost")
        if self.extra_data_closed:
            parts.append(f"closed {len(self.extra_data_closed)} extra-data file(s)")
        if self.stale_journals_removed:
            parts.append(f"removed {self.stale_journals_removed} journal(s) of finished chunks")
        if self.lock_removed:
            parts.append("removed the stale lock file")
        if self.temporary_files_removed:
            parts.append(f"removed {len(self.temporary_files_removed)} temporary file(s) of killed writes")
        if self.sealed:
            parts.append("sealed its index")
        return f"{self.path}: " + "; ".join(parts)


def repair_store(path: str) -> RepairReport:
    """Write the indexes a dead writer left unwritten, close its extra data and remove its lock.

    A store whose ``metadata.yaml`` was lost gets a new one, rebuilt from its chunks (the report
    lists what had to be guessed). Refuses (``StoreLockedError``) while a writer is still alive.
    Safe to run on any store: one that needs nothing is left untouched.
    """
    if is_url(path):
        raise ImgStoreError(f"{path}: stores at a URL are read-only; repair a local copy and upload it")
    basedir = store_dir(path)
    rebuilt: Optional[List[str]] = None
    if lost_metadata(basedir):
        _refuse_live_writer(basedir)
        rebuilt = rebuild_metadata(basedir)
    # an empty index: the store's own recovery report (which advises repairing) is not wanted here
    with new_for_filename(path, index=ImgStoreIndex()) as store:
        view = store.view
        layout = view.layout
        basedir = layout.basedir
        lock = os.path.join(basedir, STORE_LOCK_FILENAME)
        _refuse_live_writer(basedir)
        report = RepairReport(basedir)
        if rebuilt is not None:
            report.metadata_rebuilt, report.guessed = True, rebuilt
        report.temporary_files_removed = _remove_killed_writes(basedir)
        codec = view.source.codec
        loader = IndexLoader(layout, codec, view.metadata)
        for chunk in loader.recover():
            # what the writer would have kept beside the frames (a video chunk's packet table)
            notes = codec.index_notes(layout.chunk_path(chunk.chunk_n)) if len(chunk.frame_number) else {}
            commit_chunk(
                layout.index_base(chunk.chunk_n),
                chunk.frame_number,
                chunk.frame_time,
                view.metadata.to_dict(),
                notes=notes,
            )
            report.chunks_indexed.append(chunk.chunk_n)
            report.frames_recovered += len(chunk.frame_number)
            report.frames_lost += chunk.lost
        for chunk_n in layout.chunk_numbers():
            base = layout.index_base(chunk_n)
            if os.path.exists(journal_path(base)) and find_chunk_index(base) is not None:
                os.unlink(journal_path(base))  # killed between writing the index and removing the journal
                report.stale_journals_removed += 1
            extra = base + ".extra.json"
            if os.path.exists(extra) and _close_extra_data(extra):
                report.extra_data_closed.append(extra)
        if os.path.exists(lock):
            os.unlink(lock)
            report.lock_removed = True
        if report.changed:
            _seal(layout, report)
    log.info("%s", report)
    return report


def _seal(layout: ChunkLayout, report: RepairReport) -> None:
    """Seal the store repair finished (as its writer would have on close); a failure is only logged."""
    try:
        write_seal(layout)
        report.sealed = True
    except (OSError, ImgStoreError) as exc:
        log.warning("%s: repaired, but its index was not sealed (%s)", layout.basedir, exc)


def _refuse_live_writer(basedir: str) -> None:
    lock = os.path.join(basedir, STORE_LOCK_FILENAME)
    if writer_state(lock) == "alive":
        raise StoreLockedError(
            f"{basedir} is still being written ({describe_owner(read_owner(lock))}); repair it once "
            "its writer has stopped"
        )


# -- leftovers of killed writes ------------------------------------------------------------------
#: ``[.]<store file>.<hex>.tmp``: an atomic write (temporary file, then rename) killed before its rename
_KILLED_WRITE = re.compile(
    r"^\.?(?:metadata\.yaml|\d{6}\.(?:npz|yaml)|index\.(?:npz|yaml)|(?:\d{6}|index)\.extra(?:_data)?\.json)"
    r"\.[0-9a-f]{6,32}\.tmp$"
)


def _remove_killed_writes(basedir: str) -> List[str]:
    """Remove the temporary files of index, extra-data and metadata writes a killed writer left."""
    removed = []
    folders = [basedir] + [
        os.path.join(basedir, name)
        for name in sorted(os.listdir(basedir))
        if parse_chunk_name(name) is not None and os.path.isdir(os.path.join(basedir, name))
    ]
    for folder in folders:
        for name in sorted(os.listdir(folder)):
            path = os.path.join(folder, name)
            if _KILLED_WRITE.match(name) and os.path.isfile(path) and not os.path.islink(path):
                os.unlink(path)
                removed.append(path)
    if removed:
        log.info("%s: removed %d temporary file(s) of killed writes", basedir, len(removed))
    return removed


def _close_extra_data(path: str) -> bool:
    """Rewrite an extra-data file a writer left without its closing ``]``; True if it was one."""
    with open(path, "rb") as f:
        text = f.read().rstrip()
    if not text or text.endswith(b"]"):
        return False
    records = read_records(path, warn=False)
    write_file_atomic(path, ("[" + ",\n".join(encode_record(r) for r in records) + "]").encode())
    return True
