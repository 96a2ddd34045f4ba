"""Cameras that know each other: a store's user metadata may list the stores recorded with it.

The list lives under ``COMPANIONS_KEY`` (paths relative to the store's own directory, or absolute,
or URLs); ``store.companions`` reads it and :class:`imgstore.multi.MultiStore` opens the group.
"""

from __future__ import annotations

import os
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
    paths = [location.resolve(path) for path in listed]
    own = location.absolute()
    for listed_path, path in zip(listed, paths):
        if _same_place(path, own):
            raise ImgStoreError(f"{store.filename}: {COMPANIONS_KEY} lists the store itself ({listed_path!r})")
    return paths


def _same_place(path: str, other: str) -> bool:
    """Whether two store paths (or URLs) lead to the same directory, as far as their text tells."""
    return os.path.normpath(os.path.abspath(path) if os.path.exists(path) else path) == os.path.normpath(other)
