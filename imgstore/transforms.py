"""Frame transforms that compose: crop, resize, rotate, flip, grey, a colour map and a number/time overlay.

A :class:`Pipeline` applies its transforms in order to each frame and says the shape its frames
come out in before any frame is seen (so that a store can be created for them), refusing what
cannot apply (a crop outside the frame) with the frame size in the message. ``imgstore-save``
and ``imgstore-export`` build one from their ``--crop``, ``--resize``, ``--rotate``, ``--flip``,
``--grey``, ``--colormap`` and ``--overlay`` options, in the order given, and a store written
through one lists them in its metadata (``TRANSFORMS_KEY``).
"""

from __future__ import annotations

import dataclasses
import datetime
import math
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ._opencv import cv2
from .errors import ImgStoreError
from .mosaic import as_8bit

__all__ = [
    "TRANSFORMS_KEY",
    "ColorMap",
    "Crop",
    "Flip",
    "Grey",
    "Overlay",
    "Pipeline",
    "Resize",
    "Rotate",
    "Transform",
    "parse_transform",
]

#: the user-metadata key listing the transforms a store's frames went through, in order
TRANSFORMS_KEY = "imgstore_transforms"

Shape = Tuple[int, ...]


class Transform:
    """One step of a pipeline: ``shape`` of its output for an input shape, and the frame itself."""

    def shape(self, shape: Shape) -> Shape:
        return shape

    def __call__(self, img: np.ndarray, frame_number: Any = None, frame_time: float = math.nan) -> np.ndarray:
        raise NotImplementedError

    def describe(self) -> str:
        """The transform as its command-line option would give it (recorded in metadata)."""
        raise NotImplementedError


@dataclasses.dataclass(frozen=True)
class Crop(Transform):
    """The ``width`` x ``height`` region whose top left corner is at ``x``, ``y``."""

    x: int
    y: int
    width: int
    height: int

    def shape(self, shape: Shape) -> Shape:
        h, w = shape[:2]
        if (
            min(self.x, self.y) < 0
            or self.width < 1
            or self.height < 1
            or self.x + self.width > w
            or (self.y + self.height > h)
        ):
            raise ImgStoreError(f"crop {self.describe_value()} is outside the {w}x{h} frame")
        return (self.height, self.width, *shape[2:])

    def __call__(self, img: np.ndarray, frame_number: Any = None, frame_time: float = math.nan) -> np.ndarray:
        return np.ascontiguousarray(img[self.y : self.y + self.height, self.x : self.x + self.width])

    def describe_value(self) -> str:
        return f"{self.x},{self.y},{self.width},{self.height}"

    def describe(self) -> str:
        return f"crop {self.describe_value()}"


@dataclasses.dataclass(frozen=True)
class Resize(Transform):
    """To ``width`` x ``height`` pixels (area averaging when shrinking, bilinear when enlarging)."""

    width: int
    height: int

    def shape(self, shape: Shape) -> Shape:
        if self.width < 1 or self.height < 1:
            raise ImgStoreError(f"resize {self.width}x{self.height}: the size must be at least 1x1")
        return (self.height, self.width, *shape[2:])

    def __call__(self, img: np.ndarray, frame_number: Any = None, frame_time: float = math.nan) -> np.ndarray:
        h, w = img.shape[:2]
        shrinking = self.width * self.height < w * h
        interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
        out = cv2.resize(img, (self.width, self.height), interpolation=interpolation)
        return out.reshape(self.shape(img.shape))  # a one-channel frame keeps its channel axis

    def describe(self) -> str:
        return f"resize {self.width}x{self.height}"


@dataclasses.dataclass(frozen=True)
class Rotate(Transform):
    """By ``degrees`` clockwise: 90, 180 or 270."""

    degrees: int

    def __post_init__(self) -> None:
        if self.degrees not in (90, 180, 270):
            raise ImgStoreError(f"rotate {self.degrees}: only by 90, 180 or 270 degrees")

    def shape(self, shape: Shape) -> Shape:
        return (shape[1], shape[0], *shape[2:]) if self.degrees != 180 else shape

    def __call__(self, img: np.ndarray, frame_number: Any = None, frame_time: float = math.nan) -> np.ndarray:
        return np.ascontiguousarray(np.rot90(img, k=-(self.degrees // 90), axes=(0, 1)))

    def describe(self) -> str:
        return f"rotate {self.degrees}"


@dataclasses.dataclass(frozen=True)
class Flip(Transform):
    """Mirror left-right (``'h'``) or upside down (``'v'``)."""

    axis: str

    def __post_init__(self) -> None:
        if self.axis not in ("h", "v"):
            raise ImgStoreError(f"flip {self.axis}: h (left-right) or v (upside down)")

    def __call__(self, img: np.ndarray, frame_number: Any = None, frame_time: float = math.nan) -> np.ndarray:
        return np.ascontiguousarray(img[:, ::-1] if self.axis == "h" else img[::-1])

    def describe(self) -> str:
        return f"flip {self.axis}"


@dataclasses.dataclass(frozen=True)
class Grey(Transform):
    """Colour (BGR) frames as grey; grey frames as they are."""

    def shape(self, shape: Shape) -> Shape:
        return tuple(shape[:2])

    def __call__(self, img: np.ndarray, frame_number: Any = None, frame_time: float = math.nan) -> np.ndarray:
        if img.ndim == 3 and img.shape[2] == 3:
            return cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
        return img.reshape(img.shape[:2])

    def describe(self) -> str:
        return "grey"


@dataclasses.dataclass(frozen=True)
class ColorMap(Transform):
    """A grey frame (any depth) as 8-bit colour through an OpenCV colour map (``'viridis'``, ``'jet'``...).

    Values from ``low`` to ``high`` span the map (default: the dtype's whole range), so that
    16-bit frames of a few hundred levels can be stretched over it.
    """

    name: str = "viridis"
    low: Optional[float] = None
    high: Optional[float] = None

    def __post_init__(self) -> None:
        if _colormap_code(self.name) is None:
            names = ", ".join(sorted(_colormap_names()))
            raise ImgStoreError(f"colormap {self.name!r}: not one of {names}")
        if self.low is not None and self.high is not None and not self.low < self.high:
            raise ImgStoreError(f"colormap range {self.low}..{self.high}: low must be below high")

    def shape(self, shape: Shape) -> Shape:
        if len(shape) == 3 and shape[2] != 1:
            raise ImgStoreError("colormap: frames must be grey (add --grey before it)")
        return (shape[0], shape[1], 3)

    def __call__(self, img: np.ndarray, frame_number: Any = None, frame_time: float = math.nan) -> np.ndarray:
        grey = img.reshape(img.shape[:2])
        if self.low is None and self.high is None:
            levels = as_8bit(grey)
        else:
            low = self.low if self.low is not None else 0.0
            high = self.high if self.high is not None else float(np.iinfo(grey.dtype).max)
            levels = np.clip((grey.astype(np.float64) - low) * (255.0 / (high - low)) + 0.5, 0, 255).astype(np.uint8)
        return cv2.applyColorMap(levels, _colormap_code(self.name))

    def describe(self) -> str:
        bounds = "" if self.low is None and self.high is None else f":{_num(self.low)}:{_num(self.high)}"
        return f"colormap {self.name}{bounds}"


@dataclasses.dataclass(frozen=True)
class Overlay(Transform):
    """The frame number and time (in ``tz``, default UTC) drawn at the top left, on a dark band."""

    tz: Any = datetime.timezone.utc

    def __call__(self, img: np.ndarray, frame_number: Any = None, frame_time: float = math.nan) -> np.ndarray:
        out = img.copy()
        when = (
            datetime.datetime.fromtimestamp(frame_time, self.tz).isoformat(sep=" ", timespec="milliseconds")
            if math.isfinite(frame_time)
            else "time ?"
        )
        text = f"#{frame_number}  {when}"
        scale = max(0.35, min(1.5, img.shape[1] / 1000.0))
        (tw, _), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        scale = max(0.2, min(scale, scale * (img.shape[1] - 6) / max(tw, 1)))  # fits narrow frames
        (_, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        band = min(out.shape[0], th + base + 6)
        out[:band] = out[:band] // 3
        # the text is drawn on an 8-bit mask, then laid on the frame (whatever its depth) in white
        mask = np.zeros(out.shape[:2], np.uint8)
        cv2.putText(mask, text, (3, band - base - 3), cv2.FONT_HERSHEY_SIMPLEX, scale, 255, 1, cv2.LINE_AA)
        white = np.iinfo(out.dtype).max if out.dtype.kind in "ui" else 1.0
        alpha = (mask.astype(np.float64) / 255.0).reshape(mask.shape + (1,) * (out.ndim - 2))
        drawn = out * (1.0 - alpha) + white * alpha
        return np.rint(drawn).astype(out.dtype) if out.dtype.kind in "ui" else drawn.astype(out.dtype)

    def describe(self) -> str:
        return "overlay"


class Pipeline:
    """Transforms applied in order; ``shape(input)`` checks them all against a frame size first."""

    def __init__(self, transforms: Sequence[Transform] = ()) -> None:
        self.transforms: List[Transform] = list(transforms)

    def __bool__(self) -> bool:
        return bool(self.transforms)

    def shape(self, shape: Shape) -> Shape:
        for transform in self.transforms:
            shape = transform.shape(tuple(shape))
        return tuple(shape)

    def __call__(self, img: np.ndarray, frame_number: Any = None, frame_time: float = math.nan) -> np.ndarray:
        for transform in self.transforms:
            img = transform(img, frame_number, frame_time)
        return img

    def describe(self) -> List[str]:
        return [t.describe() for t in self.transforms]

    def recorded_in(self, metadata: Optional[Dict[str, Any]]) -> Dict[str, Any]:
        """User metadata with these transforms added to the list of those its frames went through."""
        out = dict(metadata or {})
        if self.transforms:
            out[TRANSFORMS_KEY] = [*list(out.get(TRANSFORMS_KEY) or []), *self.describe()]
        return out


def parse_transform(name: str, value: str, tz: Any = datetime.timezone.utc) -> Transform:
    """A transform from its command-line option (``crop`` and ``'10,20,300,200'``, ``resize`` and
    ``'320x240'`` or ``'0.5'``...)."""
    try:
        if name == "crop":
            x, y, w, h = (int(v) for v in value.split(","))
            return Crop(x, y, w, h)
        if name == "resize":
            if "x" in value.lower():
                w, h = (int(v) for v in value.lower().split("x"))
                return Resize(w, h)
            return _Scale(float(value))
        if name == "rotate":
            return Rotate(int(value))
        if name == "flip":
            return Flip(value)
        if name == "grey":
            return Grey()
        if name == "colormap":
            parts = value.split(":")
            if len(parts) not in (1, 3):
                raise ValueError(value)
            bounds = (float(parts[1]), float(parts[2])) if len(parts) == 3 else (None, None)
            return ColorMap(parts[0], *bounds)
        if name == "overlay":
            return Overlay(tz)
    except ImgStoreError:
        raise
    except ValueError:
        raise ImgStoreError(f"{name} {value!r}: {_FORMS[name]}") from None
    raise ImgStoreError(f"no transform named {name!r}")


_FORMS = {
    "crop": "give X,Y,WIDTH,HEIGHT in pixels, e.g. 10,20,300,200",
    "resize": "give WIDTHxHEIGHT (320x240) or a scale (0.5)",
    "rotate": "give 90, 180 or 270",
    "flip": "give h or v",
    "colormap": "give a name (viridis) or NAME:LOW:HIGH (viridis:0:4095)",
}


@dataclasses.dataclass(frozen=True)
class _Scale(Transform):
    """Resize by a factor (the output size worked out from the first frame's)."""

    factor: float

    def _size(self, shape: Shape) -> Resize:
        if not (math.isfinite(self.factor) and self.factor > 0):
            raise ImgStoreError(f"resize {self.factor}: the scale must be a positive number")
        return Resize(max(1, round(shape[1] * self.factor)), max(1, round(shape[0] * self.factor)))

    def shape(self, shape: Shape) -> Shape:
        return self._size(shape).shape(shape)

    def __call__(self, img: np.ndarray, frame_number: Any = None, frame_time: float = math.nan) -> np.ndarray:
        return self._size(img.shape)(img)

    def describe(self) -> str:
        return f"resize {_num(self.factor)}"


def _num(value: Optional[float]) -> str:
    return "" if value is None else f"{value:g}"


def _colormap_names() -> List[str]:
    return [n[len("COLORMAP_") :].lower() for n in dir(cv2) if n.startswith("COLORMAP_")]


def _colormap_code(name: str) -> Optional[int]:
    return getattr(cv2, f"COLORMAP_{name.upper()}", None) if isinstance(name, str) else None
