"""The format registry: one table from format name to codec; everything else is derived from it.

Adding a chunk format = one module with a ``ChunkCodec`` subclass + one line in ``_CODECS``.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Tuple

from .._opencv import OpenCVUnavailable, opencv_problem
from ..errors import MissingDependencyError, UnsupportedFormatError
from .base import ChunkCodec, ChunkReader, ChunkWriter
from .bpk import BloscpackCodec
from .images import NpyCodec, OpenCVImageCodec
from .mjpeg import MjpegVideoCodec
from .png import PNGCodec
from .video import (
    ANY_READABLE,
    AV1_MKV,
    AVC1_MP4,
    ENCODER_SETTING_NAMES,
    FFV1_MKV,
    H264_MKV,
    HEVC_MP4,
    MJPEG_AVI,
    stored_shape,
)
from .video_av import PyAVVideoCodec
from .video_cv import OpenCVVideoCodec

__all__ = [
    "COLOR_SUFFIX",
    "DEFAULT_BACKEND",
    "ENCODER_SETTING_NAMES",
    "check_backend",
    "chunk_file_extension",
    "ChunkCodec",
    "ChunkReader",
    "ChunkWriter",
    "formats_for",
    "get_codec",
    "get_reader_codec",
    "shape_as_written",
    "split_format",
]

COLOR_SUFFIX = "+color"

_CODECS: Dict[str, ChunkCodec] = {
    codec.name: codec
    for codec in (
        NpyCodec(),
        PNGCodec(),
        OpenCVImageCodec("jpg", lossless=False),
        OpenCVImageCodec("tif", lossless=True, dtypes=("uint8", "uint16")),
        OpenCVImageCodec("bmp", lossless=True),
        OpenCVImageCodec("ppm", lossless=True, force="color"),
        OpenCVImageCodec("pgm", lossless=True, force="grey"),
        BloscpackCodec(),
        MjpegVideoCodec(MJPEG_AVI),
        PyAVVideoCodec(AVC1_MP4),
        PyAVVideoCodec(H264_MKV),
        PyAVVideoCodec(FFV1_MKV),
        PyAVVideoCodec(HEVC_MP4),
        PyAVVideoCodec(AV1_MKV),
    )
}

#: other names a format is known by (upstream's spellings)
_ALIASES: Dict[str, str] = {"mjpeg": "mjpeg/avi"}

DEFAULT_BACKEND = "av"

#: video formats by backend other than the default (the default's are in ``_CODECS``)
_VIDEO_BACKENDS: Dict[str, Dict[str, ChunkCodec]] = {
    "opencv": {codec.name: codec for codec in (OpenCVVideoCodec(f) for f in (MJPEG_AVI, AVC1_MP4, H264_MKV))},
}

#: per backend, reads video chunks of formats no registry entry names (Motif's 'libx264'...)
_VIDEO_STORE = "VideoImgStore"
_ANY_VIDEO: Dict[str, ChunkCodec] = {
    DEFAULT_BACKEND: PyAVVideoCodec(ANY_READABLE, writable=False),
    "opencv": OpenCVVideoCodec(ANY_READABLE, writable=False),
}


def split_format(fmt: str) -> Tuple[str, bool]:
    """``'png+color'`` -> ``('png', True)``; aliases resolved to the registry name."""
    base, color = (fmt[: -len(COLOR_SUFFIX)], True) if fmt.endswith(COLOR_SUFFIX) else (fmt, False)
    return _ALIASES.get(base, base), color


def _lookup(fmt: object, store_class: str) -> Optional[ChunkCodec]:
    """The registry's codec for a format name (``+color`` and aliases understood), or None."""
    if not isinstance(fmt, str):
        return None
    base, color = split_format(fmt)
    codec = _CODECS.get(base)
    if codec is None or (color and not codec.color_variant) or (store_class and codec.store_class != store_class):
        return None
    return codec


def is_known_format(fmt: object, store_class: str) -> bool:
    """True for a format name in the registry (whether or not this install can write it)."""
    return _lookup(fmt, store_class) is not None


#: Motif's ``VideoImgStoreFFMPEG`` formats that were always written at even sizes (H.264, NVENC)
def _motif_even_sized(format_name: str) -> bool:
    return "264" in format_name or "nvenc-" in format_name


def shape_as_written(store_class: str, format_name: str, imgshape: Tuple[int, ...]) -> Tuple[int, ...]:
    """The shape frames of a video store really have, from the ``imgshape`` its metadata records.

    Stores written before sizes were truncated to even record the odd size they asked for. As
    upstream, only formats always written at even sizes are corrected: ours that need even sizes
    (not ``ffv1/mkv``, which keeps any size), and the H.264/NVENC formats of Motif's
    ``VideoImgStoreFFMPEG`` (``store_class`` is the metadata's class name).
    """
    ours = is_known_format(format_name, _VIDEO_STORE)
    if not (ours or (store_class == "VideoImgStoreFFMPEG" and _motif_even_sized(format_name))):
        return tuple(imgshape)
    return stored_shape(format_name, imgshape)


def chunk_file_extension(fmt: str, recorded: Optional[str]) -> str:
    """The extension of a video store's chunk files: as its metadata records it, else Motif's
    defaults (``.avi`` for mjpeg, ``.mp4`` for everything else)."""
    if recorded:
        return recorded
    return ".avi" if fmt == "mjpeg" else ".mp4"


def needs_opencv(fmt: object) -> bool:
    """True for a known format that cannot be written or read without OpenCV."""
    codec = _lookup(fmt, "")
    return codec is not None and codec.needs_opencv


def check_backend(backend: str) -> str:
    """A valid video backend name ('av' or 'opencv')."""
    if backend != DEFAULT_BACKEND and backend not in _VIDEO_BACKENDS:
        raise UnsupportedFormatError(
            f"unknown video backend {backend!r} (choose from {', '.join([DEFAULT_BACKEND, *_VIDEO_BACKENDS])})"
        )
    return backend


def _for_backend(codec: ChunkCodec, fmt: str, backend: Optional[str]) -> ChunkCodec:
    """The codec of the same format in another video backend."""
    if not backend or backend == DEFAULT_BACKEND or codec.store_class != _VIDEO_STORE:
        return codec
    other = _VIDEO_BACKENDS[check_backend(backend)].get(codec.name)
    if other is None:
        raise UnsupportedFormatError(f"format '{fmt}' cannot be written with the {backend} backend")
    return other


def get_codec(fmt: object, store_class: str = "", backend: Optional[str] = None) -> ChunkCodec:
    """The codec for a format name (with optional ``+color``), checked to be usable here.

    ``UnsupportedFormatError`` for an unknown format (or one of another store class);
    ``MissingDependencyError`` when the format needs a package that is not installed.
    """
    if not isinstance(fmt, str):
        raise UnsupportedFormatError(f"format must be a string, got {fmt!r}")
    codec = _lookup(fmt, store_class)
    if codec is None:
        allowed = ", ".join(formats_for(store_class) if store_class else all_formats())
        where = f" for {store_class}" if store_class else ""
        supported = f"supported here: {allowed}" if allowed else f"this version has no {store_class} formats"
        raise UnsupportedFormatError(f"unknown format '{fmt}'{where} ({supported})")
    codec = _for_backend(codec, fmt, backend)
    problem = opencv_problem() if codec.needs_opencv else None
    if problem is not None:
        raise OpenCVUnavailable(f"format '{fmt}': {problem}")
    if not codec.available():
        if codec.requires:
            raise MissingDependencyError(
                f"format '{fmt}' needs the {codec.requires} package: pip install {codec.requires}"
            )
        hint = f" with the {backend} backend (the default backend, '{DEFAULT_BACKEND}', may)" if backend else ""
        raise UnsupportedFormatError(f"format '{fmt}' cannot be written by this install{hint}")
    return codec


def get_reader_codec(fmt: object, store_class: str, backend: Optional[str] = None) -> ChunkCodec:
    """The codec that reads a store of ``fmt``.

    Reading needs no encoder, so video formats are not probed for writing here: a video store
    whose format this install cannot write, or whose format this library does not write at all
    (Motif's 'libx264', NVENC names...), is read by whatever FFmpeg decodes.
    """
    codec = _lookup(fmt, store_class)
    if store_class == _VIDEO_STORE and isinstance(fmt, str):
        backend = check_backend(backend or DEFAULT_BACKEND)
        if codec is not None and backend != DEFAULT_BACKEND:
            codec = _VIDEO_BACKENDS[backend].get(codec.name)
        return codec or _ANY_VIDEO[backend]
    return get_codec(fmt, store_class, backend)  # image formats: a missing package must still be said


def formats_for(store_class: str, backend: Optional[str] = None) -> List[str]:
    """Formats this install can write for a store class, ``+color`` variants included."""
    if backend:
        check_backend(backend)
    names: List[str] = []
    for name, codec in _CODECS.items():
        if codec.store_class != store_class:
            continue
        try:
            codec = _for_backend(codec, name, backend)
        except UnsupportedFormatError:
            continue
        if (not codec.needs_opencv or opencv_problem() is None) and codec.available():
            names.append(name)
            if codec.color_variant:
                names.append(name + COLOR_SUFFIX)
    return names


def all_formats(backend: Optional[str] = None) -> List[str]:
    """Every format this install can write, directory formats first."""
    classes = list(dict.fromkeys(codec.store_class for codec in _CODECS.values()))
    return [fmt for cls in classes for fmt in formats_for(cls, backend)]
