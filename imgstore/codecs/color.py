"""Grey/colour conversions shared by the codecs and the public ``util`` module."""

from __future__ import annotations

import numpy as np

from .._opencv import cv2


def is_color(img: np.ndarray) -> bool:
    """True for an ``(h, w, 3)`` image."""
    return img.ndim == 3 and img.shape[-1] == 3


def ensure_color(img: np.ndarray, ensure_copy: bool = False) -> np.ndarray:
    """A BGR image: grey is converted, colour returned as is (copied when ``ensure_copy``)."""
    if is_color(img):
        return img.copy() if ensure_copy else img
    return cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)


def ensure_grayscale(img: np.ndarray, ensure_copy: bool = False) -> np.ndarray:
    """A grey image: BGR is converted, grey returned as is (copied when ``ensure_copy``)."""
    if is_color(img):
        return cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    return img.copy() if ensure_copy else img
