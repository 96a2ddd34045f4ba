"""Finishing a store whose writer died, so that every program (upstream imgstore too) reads it.

Opening such a store already recovers its frames in memory (see ``_recovery``); repairing writes
what the writer would have written on close: the index of each unfinished chunk, the closing
bracket of its extra data, and no lock file. Nothing that holds frames is deleted or rewritten.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import List

from ._chunkindex import find_chunk_index
from ._extra import encode_record, read_records
from ._factory import new_for_filename
from ._fs import is_url
from ._journal import journal_path
from ._lock import describe_owner, read_owner, writer_state
from ._metadata import write_file_atomic
from ._recovery import write_recovered_index
from .constants import STORE_LOCK_FILENAME
from .errors import ImgStoreError, StoreLockedError
from .index import ImgStoreIndex

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

    @property
    def changed(self) -> bool:
        return bool(self.chunks_indexed or self.extra_data_closed or self.stale_journals_removed or self.lock_removed)

    def __str__(self) -> str:
        if not self.changed:
            return f"{self.path}: nothing to repair"
        parts = []
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
        return f"{self.path}: " + "; ".join(parts)


def repair_store(path: str) -> RepairReport:
    """Write the indexes a dead writer left unwritten, close its extra data and remove its lock.

    Refuses (``StoreLockedError``) while a writer is still alive. Safe to run on any store:
    one that needs nothing is left untouched.
    """
    if is_url(path):
        raise ImgStoreError(f"{path}: stores at a URL are read-only; repair a local copy and upload it")
    # an empty index: the store's own recovery report (which advises repairing) is not wanted here
    with new_for_filename(path, index=ImgStoreIndex()) as store:
        basedir = store._basedir
        lock = os.path.join(basedir, STORE_LOCK_FILENAME)
        if writer_state(lock) == "alive":
            raise StoreLockedError(
                f"{basedir} is still being written ({describe_owner(read_owner(lock))}); repair it once "
                "its writer has stopped"
            )
        report = RepairReport(basedir)
        for chunk in store._recover_unfinished():
            write_recovered_index(store._chunk_index_base(chunk.chunk_n), chunk, store._smd.to_dict())
            report.chunks_indexed.append(chunk.chunk_n)
            report.frames_recovered += len(chunk.frame_number)
            report.frames_lost += chunk.lost
        for chunk_n in store._chunk_numbers_on_disk():
            base = store._chunk_index_base(chunk_n)
            if os.path.exists(journal_path(base)) and find_chunk_index(base) is not None:
                os.unlink(journal_path(base))  # killed between writing the index and removing the journal
                report.stale_journals_removed += 1
            extra = base + ".extra.json"
            if os.path.exists(extra) and _close_extra_data(extra):
                report.extra_data_closed.append(extra)
        if os.path.exists(lock):
            os.unlink(lock)
            report.lock_removed = True
    log.info("%s", report)
    return report


def _close_extra_data(path: str) -> bool:
    """Rewrite an extra-data file a writer left without its closing ``]``; True if it was one."""
    with open(path, "rb") as f:
        text = f.read().rstrip()
    if not text or text.endswith(b"]"):
        return False
    records = read_records(path, warn=False)
    write_file_atomic(path, ("[" + ",\n".join(encode_record(r) for r in records) + "]").encode())
    return True
