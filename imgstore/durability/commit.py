"""Finishing a chunk: the one way a chunk's frames become its index, whoever finished writing them.

The writer's roll-over, ``insert_chunk``, a write the disk refused and ``repair_store`` all end
a chunk here, in the same order: the index is written (atomically), then the chunk's journal is
removed, then its extra data is closed. A stop between any two steps leaves a chunk that opening
reads whole: before the index, the journal still lists the frames; after it, a stale journal
beside an index is ignored by readers and removed by repair, and extra data without its closing
``]`` is read as it is (repair closes it).
"""

from __future__ import annotations

import logging
import os
from typing import Any, Dict, Optional

import numpy as np

from ..index.chunkfile import save_chunk_index
from ..io.extra import ExtraDataWriter
from .journal import ChunkJournal, journal_path

log = logging.getLogger(__name__)


def commit_chunk(
    index_base: str,
    frame_numbers: Any,
    frame_times: Any,
    store_metadata: Dict[str, Any],
    journal: Optional[ChunkJournal] = None,
    extra_data: Optional[ExtraDataWriter] = None,
    notes: Optional[Dict[str, Any]] = None,
) -> None:
    """Write a chunk's index, remove its journal (``journal``, or the file) and close its extra data.

    ``notes`` are what the codec keeps in the index beside the frames (``ChunkCodec.index_notes``).

    An ``OSError`` writing the index leaves the journal, so nothing is lost; one closing the extra
    data is only logged (its closing ``]`` is missing, which readers accept).
    """
    save_chunk_index(
        index_base,
        np.asarray(frame_numbers),
        np.asarray(frame_times, dtype=np.float64),
        extra={**store_metadata, **(notes or {})},
    )
    close_committed_chunk(index_base, journal, extra_data)


def close_committed_chunk(
    index_base: str, journal: Optional[ChunkJournal] = None, extra_data: Optional[ExtraDataWriter] = None
) -> None:
    """The steps after a chunk's index is on disk: remove its journal, then close its extra data.

    For a caller that wrote the index itself and may still undo it (``insert_chunk``): nothing
    here can be undone, so it comes after. The journal goes first: when removing it fails, the
    chunk's extra-data file is still open and takes the records that follow.
    """
    if journal is not None:
        journal.remove()
    else:
        try:
            os.unlink(journal_path(index_base))
        except FileNotFoundError:  # a chunk its writer left before writing anything has none
            pass
    if extra_data is not None:
        try:
            extra_data.close()
        except OSError as exc:
            log.warning("%s: extra data left unterminated (%s)", extra_data.path, exc)
