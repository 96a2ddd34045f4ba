"""Creating a store: the arguments checked, the directory made, the lock taken, ``metadata.yaml`` written.

Either the store exists afterwards with its writer ready, or nothing of it is left behind (a
directory this made is removed again), so that creating it once more can succeed.
"""

from __future__ import annotations

import logging
import operator
import os
import uuid as uuidlib
from typing import Any, Dict, Optional, Tuple

import numpy as np

from .. import codecs
from ..codecs.sensor import decoder_for, encoding_to_cv2
from ..codecs.video import dropped_edges
from ..constants import STORE_LOCK_FILENAME, STORE_MD_FILENAME, STORE_MD_KEY
from ..durability.lock import WriterLock, describe_owner, read_owner, writer_state
from ..errors import ImgStoreError, StoreExistsError, StoreLockedError
from ..io.metadata import StoreMetadata, plain_user_metadata, write_metadata
from ..io.paths import chunk_name
from ..io.timezone import get_local_timezone, utc_now_naive_iso
from .failures import creation_error
from .layout import ChunkLayout
from .writer import StoreWriter

log = logging.getLogger(__name__)


def create_store(
    layout: ChunkLayout,
    store_class: str,
    codec: codecs.ChunkCodec,
    fmt: Any,
    imgshape: Any,
    imgdtype: Any,
    chunksize: Any,
    metadata: Any,
    encoding: Optional[str],
    write_encoding: Optional[str],
    options: Dict[str, Any],
) -> Tuple[StoreWriter, Dict[str, Any]]:
    """A new store at ``layout.basedir`` and its writer; also the user metadata as stored.

    ``codec`` writes ``fmt``; ``encoding`` is the sensor encoding frames are stored in, and
    ``write_encoding`` one frames are converted from to colour before they are written.
    """
    _, color_variant = codecs.split_format(fmt)
    input_shape = parse_shape(imgshape)
    dtype = parse_dtype(imgdtype)
    if chunksize is None:
        chunksize = codec.default_chunksize
    if isinstance(chunksize, bool) or not isinstance(chunksize, (int, np.integer)) or chunksize < 1:
        raise ImgStoreError(f"chunksize must be a positive integer, got {chunksize!r}")
    for name in (encoding, write_encoding):
        if name and not known_encoding(name):
            raise ImgStoreError(f"unsupported store image encoding: {name!r}")

    # 'png+color' with an encoding: convert to colour before writing, store no encoding
    if color_variant and encoding:
        write_encoding, encoding = encoding, None
    write_shape = codec.written_shape(input_shape)
    if tuple(write_shape[:2]) != tuple(input_shape[:2]):
        log.warning(
            "store %s: format '%s' stores even sizes only: frames of %dx%d are stored as %dx%d, "
            "%s of every frame dropped (ffv1/mkv keeps every size)",
            layout.basedir,
            codec.name,
            input_shape[1],
            input_shape[0],
            write_shape[1],
            write_shape[0],
            dropped_edges(input_shape, write_shape),
        )
    encode = decoder_for(None)
    if write_encoding:  # frames are converted to colour before they are written
        encode = decoder_for(write_encoding)
        write_shape = (write_shape[0], write_shape[1], 3)
    codec.check_image_type(write_shape, dtype)
    codec.check_options(write_shape, dtype, options)

    if metadata is not None and not isinstance(metadata, dict):
        raise ImgStoreError(f"metadata must be a dictionary, got {type(metadata).__name__}")
    user_md = dict(metadata or {})
    store_extras = user_md.pop(STORE_MD_KEY, None) or {}
    user_metadata = plain_user_metadata(user_md)
    smd = StoreMetadata(
        class_name=store_class,
        imgshape=tuple(write_shape),
        imgdtype=dtype,
        chunksize=int(chunksize),
        format=codec.name,
        encoding=encoding or None,
        created_utc=utc_now_naive_iso(),
        timezone_local=get_local_timezone(),
        uuid=uuidlib.uuid4().hex,
        extension=layout.extension,
        other=plain_user_metadata(dict(store_extras)),
    )
    lock, made_dir = _take_directory(layout)
    try:
        write_metadata(layout.metadata_path, smd, user_metadata)
        writer = StoreWriter(layout, codec, smd, lock, input_shape, encode, options)
    except BaseException as exc:
        # leave the directory as it was, so that creating the store again can succeed
        # (the metadata file did not exist before: if there is one now, it is this store's)
        _undo_creation(layout, lock, made_dir, wrote_metadata=os.path.exists(layout.metadata_path))
        if isinstance(exc, OSError) and not isinstance(exc, ImgStoreError):
            raise creation_error(layout.basedir, exc) from exc
        raise
    return writer, user_metadata


def _take_directory(layout: ChunkLayout) -> Tuple[WriterLock, bool]:
    """Make the store directory and take its writer's lock; refuse a directory that holds a store or chunks.

    Returns the lock and whether the directory was made here.
    """
    basedir, metadata_path = layout.basedir, layout.metadata_path
    lock_path = os.path.join(basedir, STORE_LOCK_FILENAME)
    if os.path.exists(metadata_path) and writer_state(lock_path) == "alive":
        raise StoreLockedError(
            f"{basedir} is being written by another process ({describe_owner(read_owner(lock_path))}); "
            "refusing to open it for writing"
        )
    if os.path.exists(metadata_path):
        raise StoreExistsError(
            f"{basedir} already holds a store ({STORE_MD_FILENAME}); refusing to overwrite it: choose a new directory"
        )
    made_dir = not os.path.isdir(basedir)
    try:
        os.makedirs(basedir, exist_ok=True)
        # refuses a second writer while the first is alive, even one that started a moment ago
        lock = WriterLock(lock_path)
    except OSError as exc:
        if made_dir:
            _remove_empty_dir(basedir)
        if isinstance(exc, ImgStoreError):  # another writer holds it
            raise
        raise creation_error(basedir, exc) from exc
    try:
        if os.path.exists(metadata_path):
            raise StoreExistsError(f"{basedir} already holds a store ({STORE_MD_FILENAME}): choose a new directory")
        stale = layout.chunk_numbers()
        if stale:
            raise StoreExistsError(
                f"{basedir} already holds chunk data ({chunk_name(stale[0])}...) "
                "but no store metadata: refusing to mix stores, choose a new directory"
            )
    except BaseException:
        _undo_creation(layout, lock, made_dir, wrote_metadata=False)
        raise
    return lock, made_dir


def _undo_creation(layout: ChunkLayout, lock: WriterLock, made_dir: bool, wrote_metadata: bool) -> None:
    """Remove what creating the store made: its metadata, its lock file, its directory."""
    if wrote_metadata:
        _remove_quietly(layout.metadata_path)
    try:
        lock.release(remove=lock.created)
    except OSError as exc:
        log.warning("store %s: closing the lock file failed (%s)", layout.basedir, exc)
    if made_dir:
        _remove_empty_dir(layout.basedir)


def _remove_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _remove_empty_dir(path: str) -> None:
    try:
        os.rmdir(path)
    except OSError:
        pass


def parse_shape(imgshape: Any) -> Tuple[int, ...]:
    """``imgshape`` as a tuple of 2 or 3 positive ints; ``ImgStoreError`` otherwise."""
    try:
        shape = tuple(operator.index(v) for v in imgshape)
    except TypeError:
        raise ImgStoreError(
            f"imgshape must be (height, width) or (height, width, channels), got {imgshape!r}"
        ) from None
    if len(shape) not in (2, 3) or min(shape) < 1:
        raise ImgStoreError(f"imgshape must be (height, width) or (height, width, channels), got {imgshape!r}")
    return shape


def parse_dtype(imgdtype: Any) -> str:
    """The name of a numpy dtype; ``ImgStoreError`` for anything that is not one."""
    try:
        return np.dtype(imgdtype).name
    except TypeError:
        raise ImgStoreError(f"imgdtype must be a numpy dtype, got {imgdtype!r}") from None


def known_encoding(encoding: str) -> bool:
    """Whether ``encoding`` names a sensor encoding frames can be converted from."""
    return encoding in encoding_to_cv2()
