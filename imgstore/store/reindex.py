"""``reindex``: renumbering a store's frames about its unique frame 0, in its chunk indexes and extra data."""

from __future__ import annotations

import logging
import os

import numpy as np

from ..constants import STORE_INDEX_FILENAME
from ..errors import ImgStoreError
from ..index.chunkfile import save_chunk_index
from .extradata import renumber_extra_data
from .seal import remove_seal, write_seal
from .view import StoreView

log = logging.getLogger(__name__)


def reindex_view(view: StoreView) -> None:
    """Renumber so that the unique frame 0 stays 0 and the frames before it count up to -1.

    Each chunk's index is rewritten (as npz, keeping the old numbers as
    ``_frame_number_before_reindex``), and so is our own extra data; a saved ``.index.sqlite``
    holding the old numbers is removed. The store must be reopened (or its index reloaded) to
    read the new numbers.
    """
    table, basedir = view.table, view.basedir
    numbers = table.frame_number
    zeros = np.flatnonzero(numbers == 0)
    if len(zeros) != 1:
        raise ImgStoreError(f"{len(zeros)} frame_number=0 found (should be 1) in {basedir}")
    zero_idx = int(zeros[0])
    log.info("reindexing %s about frame_number=0 at index=%d", basedir, zero_idx)
    new_numbers = numbers.copy()
    new_numbers[:zero_idx] = np.arange(-zero_idx, 0)
    sealed = remove_seal(basedir)  # first: a seal of the old numbers must never outlive them

    for chunk_n in view.index.chunks:
        sel = table.chunk_slice(chunk_n)
        base = view.layout.index_base(chunk_n)
        save_chunk_index(
            base, new_numbers[sel], table.frame_time[sel], extra={"_frame_number_before_reindex": numbers[sel]}
        )
        if os.path.exists(base + ".yaml"):
            os.unlink(base + ".yaml")  # the npz now holds the index; a stale yaml must not linger
    renumber_extra_data(view.layout, new_numbers)
    saved = os.path.join(basedir, STORE_INDEX_FILENAME)
    if os.path.exists(saved):
        os.unlink(saved)  # it holds the old numbers
    if sealed:
        write_seal(view.layout)
