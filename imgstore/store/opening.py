"""Opening a store for reading: its metadata read and checked once, its view and index loader built.

``metadata.yaml`` is read once (one request for a store at a URL); the creation time and zone are
taken from it, or synthesized for old stores that have none.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
from typing import Any, Callable, Dict, Optional, Tuple

from .. import codecs
from ..constants import STORE_VERSION
from ..errors import ImgStoreError, IncompatibleStoreError
from ..index.storeindex import ImgStoreIndex
from ..io.metadata import StoreMetadata
from ..io.timezone import get_local_timezone_zoneinfo, parse_created_utc, synthesize_created, zone_or_none
from .create import known_encoding
from .layout import ChunkLayout
from .loader import IndexLoader
from .location import StoreLocation
from .view import ChunkSource, StoreView

log = logging.getLogger(__name__)


def _recorded_shape(smd: StoreMetadata) -> Tuple[int, ...]:
    return tuple(smd.imgshape)


@dataclasses.dataclass(frozen=True)
class StoreKind:
    """What a store class brings to opening a store: the classes it reads, its layout, its codec."""

    name: str
    #: the class names in metadata.yaml it reads
    readable_classes: Tuple[str, ...]
    layout: Callable[[StoreLocation, StoreMetadata], ChunkLayout]
    reader_codec: Callable[[str], codecs.ChunkCodec]
    backend: Optional[str]
    #: the shape frames really have, from what the metadata records (see ``codecs.shape_as_written``)
    frame_shape: Callable[[StoreMetadata], Tuple[int, ...]] = _recorded_shape


def open_view(
    kind: StoreKind, location: StoreLocation, index: Optional[ImgStoreIndex]
) -> Tuple[StoreView, IndexLoader]:
    """The view of the store at ``location`` and the loader of its index.

    The index is loaded from the chunks (recovering unfinished ones, and saying so) unless one
    is given.
    """
    metadata_path = location.metadata_path
    location.require_store()
    smd, user_md = location.read_metadata()
    _check_readable(kind, smd, metadata_path)
    try:
        codec = kind.reader_codec(smd.format)
    except ImgStoreError as exc:  # an unknown format, or one whose package is missing: say which store
        raise type(exc)(f"{metadata_path}: {exc}") from None
    shape = kind.frame_shape(smd)
    if shape != tuple(smd.imgshape):
        log.warning(
            "%s: imgshape %s corrected to the even size such videos are written at, %s",
            metadata_path,
            tuple(smd.imgshape),
            shape,
        )
        smd.imgshape = shape
    layout = kind.layout(location, smd)
    created = store_created(smd, user_md, layout)
    loader = IndexLoader(layout, codec, smd)
    if index is None:
        index = loader.load(report=True)
    elif not isinstance(index, ImgStoreIndex):
        raise TypeError(f"index must be an ImgStoreIndex, got {type(index).__name__}")
    source = ChunkSource(
        location=location,
        store_class=kind.name,
        format=smd.format,
        backend=kind.backend,
        stored_shape=tuple(int(n) for n in smd.imgshape),
        dtype=smd.imgdtype,
        encoding=smd.encoding,
    )
    return StoreView(source, layout, smd, user_md, index, created, sealed=loader.sealed), loader


def _check_readable(kind: StoreKind, smd: StoreMetadata, metadata_path: str) -> None:
    if smd.class_name not in kind.readable_classes:
        raise IncompatibleStoreError(
            f"{metadata_path}: incompatible store, can_read:{sorted(kind.readable_classes)!r} opened:{smd.class_name!r}"
        )
    if smd.version != STORE_VERSION:
        raise IncompatibleStoreError(f"{metadata_path}: incompatible store version {smd.version!r}")


def store_created(
    smd: StoreMetadata, user_metadata: Dict[str, Any], layout: ChunkLayout
) -> Tuple[datetime.datetime, Any]:
    """``(creation instant as an aware UTC datetime, the store's time zone)``, from its metadata.

    A store without a creation time gets one synthesized (from the metadata file's time); a
    store without a known zone keeps its instant, with the user metadata's zone or the local one.
    """
    path = layout.metadata_path
    if smd.encoding and not known_encoding(smd.encoding):
        raise ImgStoreError(f"{path}: unknown image encoding {smd.encoding!r}")
    created = parse_created_utc(smd.created_utc)
    tz = zone_or_none(smd.timezone_local)
    user_tz = user_metadata.get("timezone")
    if created is None:
        if smd.created_utc is not None:
            log.warning("%s: unreadable created_utc %r; synthesizing it", path, smd.created_utc)
        else:
            log.info("%s: old store without creation time; synthesizing it", path)
        created, synthesized_tz = synthesize_created(layout.basedir, lambda: layout.fs.modified(path), user_tz)
        tz = tz or synthesized_tz
    elif tz is None:  # keep the stored instant; only the zone is missing or unknown
        if smd.timezone_local is not None:
            log.warning("%s: unknown timezone_local %r", path, smd.timezone_local)
        tz = zone_or_none(user_tz) or get_local_timezone_zoneinfo()
    return created, tz
