"""Deterministic camera-like frames for the benchmarks (numpy only: both interpreters import it).

A static arena (smooth illumination, mottled texture at three scales, dark outside a bright
elliptic rim), a few bright elongated blobs moving along smooth Lissajous paths (a few pixels per
frame) and uniform +-2 sensor noise drawn afresh for every frame: what a lab camera filming
animals sees, so that compressors and H.264 get realistic work. Colour frames tint the same scene
per channel. Everything is seeded: every run, and both libraries, see the same frames.
"""

from __future__ import annotations

from typing import Tuple

import numpy as np


def _smooth(rng: np.random.Generator, h: int, w: int, cell: int) -> np.ndarray:
    """Uniform noise on a grid of ``cell``-pixel cells, bilinearly interpolated to h x w."""
    grid = rng.random((h // cell + 2, w // cell + 2), dtype=np.float32)
    y, x = np.arange(h, dtype=np.float32) / cell, np.arange(w, dtype=np.float32) / cell
    y0, x0 = y.astype(np.intp), x.astype(np.intp)
    fy, fx = (y - y0)[:, None], (x - x0)[None, :]
    top = grid[y0][:, x0] * (1 - fx) + grid[y0][:, x0 + 1] * fx
    bottom = grid[y0 + 1][:, x0] * (1 - fx) + grid[y0 + 1][:, x0 + 1] * fx
    return top * (1 - fy) + bottom * fy


class SyntheticCamera:
    """Frames of ``shape`` ((h, w) grey or (h, w, 3) colour, uint8); ``frame(i)`` is always the same."""

    def __init__(self, shape: Tuple[int, ...], seed: int = 0, animals: int = 5) -> None:
        self.shape = tuple(shape)
        h, w = self.shape[:2]
        self.h, self.w, self.seed = h, w, seed
        rng = np.random.default_rng(seed)
        bg = 70 + 50 * _smooth(rng, h, w, max(h // 3, 2)) + 30 * _smooth(rng, h, w, max(h // 40, 2))
        bg += 20 * _smooth(rng, h, w, 2)
        yy, xx = np.ogrid[0:h, 0:w]
        r = np.hypot((yy - h / 2) / (h / 2), (xx - w / 2) / (w / 2))
        bg *= np.where(r < 0.92, 1.0, 0.45)
        bg[np.abs(r - 0.92) < 0.012] = 215
        self.background = np.clip(bg, 0, 255).astype(np.int16)
        sigma = max(h / 70, 1.5)
        self.half = half = int(3 * sigma)
        d = np.arange(-half, half + 1, dtype=np.float32)
        self.blob = (110 * np.exp(-(d[:, None] ** 2 + (d[None, :] / 1.8) ** 2) / (2 * sigma**2))).astype(np.int16)
        # per animal: path amplitude (y, x; fraction of the frame), frequency (cycles/frame), phase
        self.paths = rng.uniform([0.2, 0.2, 0.002, 0.002, 0], [0.35, 0.35, 0.008, 0.008, 6.3], (animals, 5))
        self.tint = np.array([0.85, 1.0, 1.1], dtype=np.float32)  # BGR

    def grey(self, i: int) -> np.ndarray:
        h, w, half = self.h, self.w, self.half
        img = self.background.copy()
        for ay, ax, fy, fx, phase in self.paths:
            cy = int(h / 2 + ay * h * np.sin(2 * np.pi * fy * i + phase))
            cx = int(w / 2 + ax * w * np.cos(2 * np.pi * fx * i + 1.7 * phase))
            y0, y1, x0, x1 = max(cy - half, 0), min(cy + half + 1, h), max(cx - half, 0), min(cx + half + 1, w)
            img[y0:y1, x0:x1] += self.blob[y0 - cy + half : y1 - cy + half, x0 - cx + half : x1 - cx + half]
        img += np.random.default_rng([self.seed, i]).integers(-2, 3, (h, w), dtype=np.int8)
        return np.clip(img, 0, 255).astype(np.uint8)

    def frame(self, i: int) -> np.ndarray:
        grey = self.grey(i)
        if len(self.shape) == 2:
            return grey
        return np.clip(grey[:, :, None] * self.tint, 0, 255).astype(np.uint8)

    def frames(self, n: int) -> np.ndarray:
        """The first ``n`` frames as one array."""
        out = np.empty((n, *self.shape), dtype=np.uint8)
        for i in range(n):
            out[i] = self.frame(i)
        return out
