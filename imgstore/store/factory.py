"""The factories: which store class opens a path or writes a format (one table of classes)."""

from __future__ import annotations

import os
from typing import Any, Dict, List, Optional, Tuple, Type

import numpy as np

from .. import codecs
from ..errors import ImgStoreError, IncompatibleStoreError, UnsupportedFormatError
from ..io.paths import parse_store_path
from .base import _ImgStore
from .directory import DirectoryImgStore
from .location import StoreLocation, location_for
from .video import VideoImgStore
from .videofile import VideoFileStore, is_video_file

#: metadata ``class`` -> the class that reads it (Motif's VideoImgStoreFFMPEG is a VideoImgStore)
STORE_CLASSES: Dict[str, Type[_ImgStore]] = {
    "DirectoryImgStore": DirectoryImgStore,
    "VideoImgStore": VideoImgStore,
    "VideoImgStoreFFMPEG": VideoImgStore,
}


def _class_for_metadata(location: StoreLocation) -> Type[_ImgStore]:
    smd, _ = location.read_metadata()
    try:
        return STORE_CLASSES[smd.class_name]
    except KeyError:
        raise IncompatibleStoreError(
            f"{location.metadata_path}: store class {smd.class_name!r} not supported "
            f"(known: {', '.join(STORE_CLASSES)})"
        ) from None


def new_for_filename(path: Any, **kwargs: Any) -> _ImgStore:
    """Open an existing store (its directory or its metadata.yaml) for reading; a plain video file
    (``run.mp4``) opens as a read-only store of one chunk (see ``store.videofile``)."""
    if "basedir" not in kwargs and is_video_file(path, kwargs.get("storage_options")):
        return VideoFileStore(path, **kwargs)  # (which refuses to write)
    kwargs.setdefault("mode", "r")
    basedir, _ = parse_store_path(path, kwargs.pop("basedir", None), for_reading=kwargs["mode"] == "r")
    location = location_for(basedir, kwargs.get("storage_options"))
    # the store is handed the location whose metadata.yaml was just read: it is not read again
    return _class_for_metadata(location)(basedir=location, **kwargs)


def open_for_reading(source: Any, who: str) -> Tuple[_ImgStore, bool]:
    """``source`` as a store to read: a path opened (``True``: the caller closes it), or a store
    already open for reading taken as it is (``False``). ``who`` names the caller in errors."""
    if isinstance(source, (str, os.PathLike)):
        try:
            return new_for_filename(os.fspath(source)), True
        except ImgStoreError as exc:
            raise type(exc)(f"{who}: cannot open {os.fspath(source)}: {exc}") from None
    if getattr(source, "mode", None) != "r":
        raise ImgStoreError(f"{who}: {source!r} is not a store path nor a store open for reading")
    return source, False


def new_for_format(fmt: str, path: Any = None, **kwargs: Any) -> _ImgStore:
    """Create a store writing ``fmt`` at ``path`` (or open one for reading with ``mode='r'``)."""
    kwargs.setdefault("mode", "w")
    if kwargs["mode"] == "r":
        return new_for_filename(path, **kwargs)
    basedir, _ = parse_store_path(path, kwargs.pop("basedir", None), for_reading=False)
    try:
        codec = codecs.get_codec(fmt)
    except UnsupportedFormatError:
        raise UnsupportedFormatError(
            f"store class not found which supports format '{fmt}' (supported here: "
            f"{', '.join(get_supported_formats())})"
        ) from None
    cls = STORE_CLASSES[codec.store_class]
    kwargs.setdefault("imgdtype", np.uint8)
    kwargs["format"] = fmt  # the format named first wins over one in the keywords, as upstream
    return cls(basedir=basedir, **kwargs)


def extract_only_frame(path: Any, frame_index: int) -> np.ndarray:
    """The image at ``frame_index`` of a store, as ``get_image(None, frame_index=...)`` returns it."""
    with new_for_filename(path) as store:
        return store.get_image(None, frame_index=frame_index)[0]


def get_supported_formats(backend: Optional[str] = None) -> List[str]:
    """Every format this install can write (directory formats first), with the video ``backend``."""
    return [fmt for cls in (DirectoryImgStore, VideoImgStore) for fmt in cls.supported_formats(backend)]
