"""``StoreAligner``: iterate several stores (e.g. cameras of one rig) frame number by frame number."""

from __future__ import annotations

import functools
import logging
from typing import Any, Iterator, List, Optional

import numpy as np

from .errors import FrameNotFoundError, ImgStoreError

__all__ = ["StoreAligner"]

log = logging.getLogger(__name__)


class StoreAligner:
    """Aligns stores of the same image shape on their frame numbers.

    Policies for a frame number that a store lacks: ``drop`` it everywhere (only numbers common
    to all stores), hold the store's previous image (``zoh``), or give a ``black`` image.
    """

    MISSING_POLICY_DROP = "drop"
    MISSING_POLICY_HOLD = "zoh"
    MISSING_POLICY_BLACK = "black"

    def __init__(self, *stores: Any) -> None:
        shapes = {tuple(s.image_shape) for s in stores}
        if len(shapes) != 1:
            raise ImgStoreError(f"stores to align must have one image shape, got {sorted(shapes)}")
        self._stores = stores
        self._store_shape = shapes.pop()
        self._fns: np.ndarray = np.zeros(0, dtype=np.int64)
        self._missing_policy: Optional[str] = None

    def extract_common_frames(self, policy: str) -> np.ndarray:
        """Choose the missing-frame policy; returns the frame numbers ``iter_imgs`` will yield."""
        if policy not in (self.MISSING_POLICY_DROP, self.MISSING_POLICY_HOLD, self.MISSING_POLICY_BLACK):
            raise ImgStoreError(f"unknown missing-frame policy {policy!r} (use 'drop', 'zoh' or 'black')")
        numbers = [np.asarray(s.get_frame_metadata()["frame_number"]) for s in self._stores]
        if policy == self.MISSING_POLICY_DROP:
            self._fns = functools.reduce(np.intersect1d, numbers)
        else:
            self._fns = np.unique(np.concatenate(numbers))
        self._missing_policy = policy
        return self._fns

    def iter_imgs(self, return_times: bool = False) -> Iterator[tuple]:
        """Yield ``(frame_number, [img per store])`` (plus times when ``return_times``)."""
        if self._missing_policy is None:
            raise ImgStoreError("call extract_common_frames(policy) before iter_imgs()")
        blacks = [np.zeros(self._store_shape, dtype=_store_dtype(s)) for s in self._stores]
        last: List[np.ndarray] = list(blacks)
        for fn in self._fns:
            imgs: List[np.ndarray] = []
            times: List[float] = []
            for i, store in enumerate(self._stores):
                try:
                    img, (_, t) = store.get_image(frame_number=fn, exact_only=True)
                except FrameNotFoundError:
                    log.debug("store %d lacks frame %s", i, fn)
                    times.append(np.nan)
                    if self._missing_policy == self.MISSING_POLICY_HOLD:
                        imgs.append(last[i])
                    elif self._missing_policy == self.MISSING_POLICY_BLACK:
                        imgs.append(blacks[i])
                    continue
                last[i] = img
                imgs.append(img)
                times.append(t)
            if len(imgs) != len(self._stores):
                continue
            yield (fn, imgs, times) if return_times else (fn, imgs)


def _store_dtype(store: Any) -> np.dtype:
    """The dtype of a store's frames (uint8 for an object that is not one of our read stores)."""
    view = getattr(store, "view", None)
    return np.dtype(view.metadata.imgdtype) if view is not None else np.dtype(np.uint8)
