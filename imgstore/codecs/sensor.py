"""Sensor encodings (Bayer mosaics, YUV layouts...) named ``cv_<name>`` and converted to BGR by OpenCV."""

from __future__ import annotations

import functools
import re
from typing import Callable, Dict, Optional

import numpy as np

from .._opencv import cv2

#: OpenCV's names of conversions to BGR, ``COLOR_<codec>2BGR[_<method>]`` (the groups are named
#: as upstream's ``ImageCodecProcessor.CV2_CODEC_RE`` names them; ``method`` keeps its underscore).
#: The encoding name is 'cv_' + codec lower-cased without underscores, plus the method for
#: non-Bayer conversions (Bayer methods such as _VNG/_EA demosaic the same encoding: left out).
CONVERSION_RE = re.compile(r"^COLOR_(?P<codec>[A-Za-z0-9_]+)2BGR($|(?P<method>_[A-Za-z0-9]*))")


@functools.cache
def encoding_to_cv2() -> Dict[str, int]:
    """Each encoding name (``cv_bayerbg``...) and its OpenCV conversion to BGR (loads OpenCV)."""
    codes: Dict[str, int] = {}
    for attr in dir(cv2):
        match = CONVERSION_RE.match(attr)
        if not match:
            continue
        code = "cv_" + match.group("codec").lower().replace("_", "")
        method = match.group("method")
        if method is not None:
            if "bayer" in code:
                continue
            code += method.lower()
        codes[code] = int(getattr(cv2, attr))
    return codes


@functools.cache
def cv2_to_encoding() -> Dict[int, str]:
    """Each OpenCV conversion to BGR and its encoding name."""
    return {enum: code for code, enum in encoding_to_cv2().items()}


# Basler pylon names Bayer patterns by the opposite corner to OpenCV
_PYLON_TO_ENCODING = {
    "BayerBG": "cv_bayerrg",
    "Bayer_BG": "cv_bayerrg",
    "BayerRG": "cv_bayerbg",
    "Bayer_RG": "cv_bayerbg",
    "BayerGB": "cv_bayergr",
    "Bayer_GB": "cv_bayergr",
    "BayerGR": "cv_bayergb",
    "Bayer_GR": "cv_bayergb",
}


def pylon_to_encoding(name: Optional[str]) -> Optional[str]:
    """The encoding for a pylon pixel-format name (None for no encoding)."""
    if not name or name == "None":
        return None
    try:
        return _PYLON_TO_ENCODING[name]
    except KeyError:
        raise ValueError(f"unknown pylon format: {name!r} (known: {', '.join(sorted(_PYLON_TO_ENCODING))})") from None


def decoder_for(encoding: Optional[str]) -> Callable[[np.ndarray], np.ndarray]:
    """A function turning raw frames of ``encoding`` into BGR (identity for no encoding)."""
    if not encoding:
        return _identity
    enum = encoding_to_cv2()[encoding]
    return lambda img: cv2.cvtColor(img, enum)


def _identity(img: np.ndarray) -> np.ndarray:
    return img
