"""The format registry: one table from format name to codec; everything else is derived from it.

Adding a chunk format = one module with a ``ChunkCodec`` subclass + one line in ``_CODECS``.
"""

from __future__ import annotations

from typing import Dict, List, Tuple

from ..errors import MissingDependencyError, UnsupportedFormatError
from .base import ChunkCodec, ChunkReader, ChunkWriter
from .bpk import BloscpackCodec
from .images import NpyCodec, OpenCVImageCodec

__all__ = [
    "COLOR_SUFFIX",
    "ChunkCodec",
    "ChunkReader",
    "ChunkWriter",
    "formats_for",
    "get_codec",
    "split_format",
]

COLOR_SUFFIX = "+color"

_CODECS: Dict[str, ChunkCodec] = {
    codec.name: codec
    for codec in (
        NpyCodec(),
        OpenCVImageCodec("png", lossless=True, dtypes=("uint8", "uint16")),
        OpenCVImageCodec("jpg", lossless=False),
        OpenCVImageCodec("tif", lossless=True, dtypes=("uint8", "uint16")),
        OpenCVImageCodec("bmp", lossless=True),
        OpenCVImageCodec("ppm", lossless=True, force="color"),
        OpenCVImageCodec("pgm", lossless=True, force="grey"),
        BloscpackCodec(),
    )
}

#: other names a format is known by (upstream's and Motif's spellings)
_ALIASES: Dict[str, str] = {}


def split_format(fmt: str) -> Tuple[str, bool]:
    """``'png+color'`` -> ``('png', True)``; aliases resolved to the registry name."""
    base, color = (fmt[: -len(COLOR_SUFFIX)], True) if fmt.endswith(COLOR_SUFFIX) else (fmt, False)
    return _ALIASES.get(base, base), color


def get_codec(fmt: object, store_class: str = "") -> ChunkCodec:
    """The codec for a format name (with optional ``+color``), checked to be usable here.

    ``UnsupportedFormatError`` for an unknown format (or one of another store class);
    ``MissingDependencyError`` when the format needs a package that is not installed.
    """
    if not isinstance(fmt, str):
        raise UnsupportedFormatError(f"format must be a string, got {fmt!r}")
    base, color = split_format(fmt)
    codec = _CODECS.get(base)
    if codec is None or (color and not codec.color_variant) or (store_class and codec.store_class != store_class):
        allowed = ", ".join(formats_for(store_class) if store_class else all_formats())
        where = f" for {store_class}" if store_class else ""
        supported = f"supported here: {allowed}" if allowed else f"this version has no {store_class} formats"
        raise UnsupportedFormatError(f"unknown format '{fmt}'{where} ({supported})")
    if not codec.available():
        raise MissingDependencyError(f"format '{fmt}' needs the {codec.requires} package: pip install {codec.requires}")
    return codec


def formats_for(store_class: str) -> List[str]:
    """Formats this install can write for a store class, ``+color`` variants included."""
    names: List[str] = []
    for name, codec in _CODECS.items():
        if codec.store_class == store_class and codec.available():
            names.append(name)
            if codec.color_variant:
                names.append(name + COLOR_SUFFIX)
    return names


def all_formats() -> List[str]:
    """Every format this install can write, directory formats first."""
    classes = list(dict.fromkeys(codec.store_class for codec in _CODECS.values()))
    return [fmt for cls in classes for fmt in formats_for(cls)]


def is_alias(fmt: str) -> bool:
    """True for an alternative spelling (accepted, but not listed among the supported formats)."""
    return split_format(fmt)[0] != fmt.removesuffix(COLOR_SUFFIX)
