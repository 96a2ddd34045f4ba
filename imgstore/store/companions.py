"""Cameras that know each other: a store's user metadata may list the stores recorded with it.

The list lives under ``COMPANIONS_KEY`` (paths relative to the store's own directory, or absolute,
or URLs); ``store.companions`` reads it and :class:`imgstore.multi.MultiStore` opens the group.
"""

from __future__ import annotations

from typing import Any, List

from ..errors import ImgStoreError

__all__ = ["COMPANIONS_KEY", "companion_paths"]

#: the user-metadata key in which a store lists the stores of the other cameras recorded with it:
#: a list of paths, relative to the store's own directory (or absolute, or URLs)
COMPANIONS_KEY = "imgstore_companions"


def companion_paths(store: Any) -> List[str]:
    """The companion stores a store's user metadata lists (``COMPANIONS_KEY``), as paths to open.

    Relative paths are taken from the store's own directory (where it is, on this disk or at a
    URL); a malformed entry is refused.
    """
    listed = store.user_metadata.get(COMPANIONS_KEY) or []
    if isinstance(listed, str):
        listed = [listed]
    if not isinstance(listed, list) or not all(isinstance(p, str) and p for p in listed):
        raise ImgStoreError(f"{store.filename}: {COMPANIONS_KEY} must be a list of store paths, got {listed!r}")
    location = store.view.location
    return [location.fs.join(location.basedir, path) for path in listed]
