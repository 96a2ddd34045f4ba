"""Public helpers kept at upstream's import path ``imgstore.util``."""

from __future__ import annotations

from typing import Optional
from zoneinfo import ZoneInfo  # noqa: F401 - upstream's module exposes the class under this name

import numpy as np

from ._opencv import cv2
from .codecs import sensor as _sensor
from .codecs.color import ensure_color, ensure_grayscale
from .io.extra import (
    JsonCustomEncoder,
    motif_extra_data_json_to_df,
    motif_get_parse_true_fps,
    motif_get_recording_timezone,
)
from .io.motif_h5 import motif_extra_data_h5_attrs, motif_extra_data_h5_to_df
from .io.timezone import get_local_timezone, get_local_timezone_zoneinfo

__all__ = [
    "FourCC",
    "ImageCodecProcessor",
    "JsonCustomEncoder",
    "ensure_color",
    "ensure_grayscale",
    "get_local_timezone",
    "get_local_timezone_zoneinfo",
    "motif_extra_data_h5_attrs",
    "motif_extra_data_h5_to_df",
    "motif_extra_data_json_to_df",
    "motif_get_parse_true_fps",
    "motif_get_recording_timezone",
]


def FourCC(c1: str, c2: str, c3: str, c4: str) -> int:
    """``FourCC('M', 'J', 'P', 'G')`` -> the integer code OpenCV's video writer takes
    (``cv2.VideoWriter_fourcc``'s, computed without loading OpenCV)."""
    return sum((ord(c) & 0xFF) << (8 * i) for i, c in enumerate((c1, c2, c3, c4)))


class ImageCodecProcessor:
    """Converts frames of a sensor encoding (Bayer, YUV...) to OpenCV's BGR.

    Encodings are named ``cv_<opencv source name>``, e.g. ``cv_bayerbg``; ``autoconvert`` is the
    conversion for the default encoding (identity when none is set).
    """

    #: matches OpenCV's ``COLOR_<codec>2BGR[_<method>]`` constant names
    CV2_CODEC_RE = _sensor.CONVERSION_RE

    def __init__(self) -> None:
        self._default_code: Optional[str] = None
        self._default_enum: Optional[int] = None
        self.autoconvert = _sensor.decoder_for(None)

    def __repr__(self) -> str:
        return f"<ImageCodecProcessor({self._default_code})>"

    @classmethod
    def from_pylon_format(cls, s: Optional[str]) -> ImageCodecProcessor:
        """A processor for a Basler pylon pixel format name such as ``'BayerRG'``."""
        obj = cls()
        obj.set_default_code(_sensor.pylon_to_encoding(s))
        return obj

    @classmethod
    def from_cv2_enum(cls, e: int) -> ImageCodecProcessor:
        """A processor for an OpenCV ``COLOR_*2BGR`` constant."""
        obj = cls()
        obj.set_default_code(obj.cv2_enum_to_code(e))
        return obj

    @property
    def encoding(self) -> str:
        """The default encoding, '' when none."""
        return self._default_code or ""

    def set_default_code(self, code: Optional[str]) -> None:
        """Set (or with a false value, clear) the encoding ``autoconvert`` decodes."""
        if not code:
            self._default_code = self._default_enum = None
        else:
            if not self.check_code(code):
                raise ValueError(f"unknown image encoding: {code!r}")
            self._default_code = code
            self._default_enum = _sensor.encoding_to_cv2()[code]
        self.autoconvert = _sensor.decoder_for(self._default_code)

    @staticmethod
    def check_code(code: str) -> bool:
        """True when ``code`` is an encoding OpenCV can convert to BGR."""
        return code in _sensor.encoding_to_cv2()

    @staticmethod
    def cv2_enum_to_code(enum: int) -> str:
        """The encoding name of an OpenCV conversion constant."""
        try:
            return _sensor.cv2_to_encoding()[int(enum)]
        except KeyError:
            raise ValueError(f"OpenCV conversion {enum!r} is not a known *2BGR conversion") from None

    def convert_to_bgr(
        self, img: np.ndarray, code: Optional[str] = None, method_enum: Optional[int] = None
    ) -> np.ndarray:
        """Convert ``img`` of ``code`` (default: the processor's encoding) to BGR."""
        code = code or self._default_code
        if method_enum is None:
            if code is None:
                raise ValueError("encoding must be specified")
            if not self.check_code(code):
                raise ValueError(f"unknown image encoding: {code!r}")
            method_enum = _sensor.encoding_to_cv2()[code]
        return cv2.cvtColor(img, method_enum)
