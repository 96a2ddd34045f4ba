"""``seal_store``: sealing a finished store on request (``imgstore-info --seal``), before it is uploaded.

Kept apart from ``store.seal`` (which opening a store uses) because it opens the store itself.
"""

from __future__ import annotations

import os

from ..constants import STORE_LOCK_FILENAME
from ..durability.lock import writer_state
from ..errors import ImgStoreError, StoreLockedError
from ..index.storeindex import ImgStoreIndex
from .factory import new_for_filename
from .location import location_for
from .seal import SealReport, write_seal

__all__ = ["seal_store"]


def seal_store(path: str) -> SealReport:
    """Write the sealed index of the finished store at ``path`` (replacing any), so that it opens
    from a URL in three requests. Refuses a store being written, one with unfinished chunks
    (``repair_store`` finishes them) and one whose chunk indexes cannot all be read."""
    if not location_for(path).writable:
        raise ImgStoreError(f"{path}: stores at a URL are read-only; seal a local copy before uploading it")
    with new_for_filename(path, index=ImgStoreIndex()) as store:
        layout = store.view.layout
    basedir = layout.basedir
    if writer_state(os.path.join(basedir, STORE_LOCK_FILENAME)) != "none":
        raise StoreLockedError(f"{basedir} has a writer's lock file: close the store, or repair it, before sealing")
    return write_seal(layout)
