"""Rebuilding a lost ``metadata.yaml`` from a store's chunks (used by ``repair_store``).

Upstream and this library copy the store block of ``metadata.yaml`` into every chunk index
(``imgshape``, ``format``, ``chunksize``, ``uuid``...): what is found there is taken as it is.
The rest comes from the chunks themselves: the format from the chunk files, the shape and dtype
from the first frame, the chunk size from the first full chunk, the creation time from the first
frame's time. Each of those is a guess: logged as a warning and listed in the repair report.
"""

from __future__ import annotations

import datetime
import logging
import os
import uuid as uuidlib
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

from ..constants import FRAME_MD, STORE_MD_FILENAME, STORE_VERSION
from ..errors import ImgStoreError, StoreNotFoundError
from ..index.chunkfile import find_chunk_index, load_chunk_index
from ..io.metadata import StoreMetadata, write_metadata
from ..io.paths import parse_chunk_name
from ..io.timezone import get_local_timezone

log = logging.getLogger(__name__)


def store_dir(path: str) -> str:
    """The store folder named by ``path`` (the folder itself, or its metadata.yaml)."""
    path = os.fspath(path)
    return (os.path.dirname(path) or ".") if os.path.basename(path) == STORE_MD_FILENAME else path


#: frame file extension -> directory store format
_IMAGE_FORMATS = {
    ".npy": "npy", ".png": "png", ".jpg": "jpg", ".jpeg": "jpg", ".tif": "tif", ".tiff": "tif",
    ".bmp": "bmp", ".ppm": "ppm", ".pgm": "pgm", ".bpk": "bpk",
}  # fmt: skip
#: (container extension, FFmpeg codec) -> video store format
_VIDEO_FORMATS = {
    (".avi", "mjpeg"): "mjpeg/avi", (".mp4", "h264"): "avc1/mp4", (".mkv", "h264"): "h264/mkv",
    (".mkv", "ffv1"): "ffv1/mkv", (".mp4", "hevc"): "hevc/mp4", (".mkv", "av1"): "av1/mkv",
}  # fmt: skip
_VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".mov")
_INDEX_EXTENSIONS = (".npz", ".yaml")
#: frame times before this are not clock times (Motif counts seconds from 0): no creation time in them
_CLOCK_TIMES_FROM = datetime.datetime(2000, 1, 1, tzinfo=datetime.timezone.utc).timestamp()


@dataclass
class _Chunks:
    """What a store folder without metadata holds: its layout and, per chunk, its files."""

    store_class: str
    #: chunk number -> (index base path or None, frame or video files)
    chunks: Dict[int, Tuple[Optional[str], List[str]]]


def _find_chunks(basedir: str) -> Optional[_Chunks]:
    """The chunks of a folder: directory-store chunk folders or video-store chunk files; None if none."""
    try:
        names = sorted(os.listdir(basedir))
    except OSError:
        return None
    folders: Dict[int, Tuple[Optional[str], List[str]]] = {}
    videos: Dict[int, Tuple[Optional[str], List[str]]] = {}
    for name in names:
        path = os.path.join(basedir, name)
        stem, ext = os.path.splitext(name)
        if parse_chunk_name(name) is not None and os.path.isdir(path):
            files = sorted(f for f in os.listdir(path) if os.path.splitext(f)[1].lower() in _IMAGE_FORMATS)
            base = os.path.join(path, "index")
            if files or find_chunk_index(base):
                folders[int(name)] = (base if find_chunk_index(base) else None, [os.path.join(path, f) for f in files])
        elif parse_chunk_name(stem) is not None and ext.lower() in _VIDEO_EXTENSIONS + _INDEX_EXTENSIONS:
            base = os.path.join(basedir, stem)
            index, files = videos.get(int(stem), (None, []))
            if ext.lower() in _VIDEO_EXTENSIONS:
                files = [*files, path]
            else:
                index = base
            videos[int(stem)] = (index, files)
    if folders and not videos:
        return _Chunks("DirectoryImgStore", folders)
    if videos and not folders:
        return _Chunks("VideoImgStore", videos)
    return None  # nothing, or both kinds: not a store this can rebuild


def lost_metadata(path: str) -> bool:
    """Whether ``path`` is a store folder that lost its ``metadata.yaml`` (its chunks are there)."""
    basedir = store_dir(path)
    if os.path.isfile(os.path.join(basedir, STORE_MD_FILENAME)) or not os.path.isdir(basedir):
        return False
    found = _find_chunks(basedir)
    return found is not None and any(index or files for index, files in found.chunks.values())


def _recorded_block(index_base: str) -> Dict[str, Any]:
    """The store block a writer copied into a chunk index (upstream and this library do), safely read."""
    path = find_chunk_index(index_base)
    if path is None:
        return {}
    out: Dict[str, Any] = {}
    try:
        if path.endswith(".npz"):
            with np.load(path, allow_pickle=False) as npz:
                for key in npz.files:
                    if key in FRAME_MD:
                        continue
                    try:
                        out[key] = _plain(npz[key])
                    except ValueError:  # an object array (None, nested): numpy would have to unpickle it
                        continue
        else:
            import yaml

            with open(path, "rb") as f:
                raw = yaml.safe_load(f)
            if isinstance(raw, dict):
                out = {k: v for k, v in raw.items() if k not in FRAME_MD}
    except (OSError, ValueError, EOFError) as exc:
        log.warning("%s: store metadata in this index unreadable (%s)", path, exc)
        return {}
    return out


def _plain(arr: np.ndarray) -> Any:
    value = arr.tolist()
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _first_frame(chunks: _Chunks, fmt: str) -> np.ndarray:
    """The first frame of the store, as the files hold it."""
    for _, (_, files) in sorted(chunks.chunks.items()):
        for path in files:
            if chunks.store_class == "VideoImgStore":
                frame = _first_video_frame(path)
                if frame is not None:
                    return frame
                continue
            if fmt == "npy":
                return np.load(path, mmap_mode="r", allow_pickle=False)
            if fmt == "bpk":
                import bloscpack

                return bloscpack.unpack_ndarray_from_file(path)
            from .._opencv import cv2

            img = cv2.imread(path, cv2.IMREAD_UNCHANGED)
            if img is not None:
                return img
    raise ImgStoreError("no chunk holds a readable frame: the image shape cannot be rebuilt")


def _video_codec(path: str) -> Optional[str]:
    import av

    try:
        with av.open(path) as container:
            return container.streams.video[0].codec_context.name if container.streams.video else None
    except (av.FFmpegError, OSError):
        return None


def _first_video_frame(path: str) -> Optional[np.ndarray]:
    """The first frame of a video chunk: grey planes stay grey (and 16-bit), the rest BGR."""
    import av

    try:
        with av.open(path) as container:
            for frame in container.decode(video=0):
                name = frame.format.name
                if name.startswith("gray"):
                    return frame.to_ndarray(format="gray16le" if "16" in name else "gray")
                deep = any(tag in name for tag in ("16", "48"))
                return frame.to_ndarray(format="bgr48le" if deep else "bgr24")
    except (av.FFmpegError, OSError):
        return None
    return None


def _chunk_sizes(chunks: _Chunks) -> List[int]:
    """Frames listed by each chunk index, in chunk order (chunks without a readable index left out)."""
    sizes = []
    for _, (index, _) in sorted(chunks.chunks.items()):
        if index is not None:
            try:
                sizes.append(len(load_chunk_index(index)[0]))
            except ImgStoreError:
                continue
    return sizes


def _first_frame_time(chunks: _Chunks) -> Optional[float]:
    for _, (index, _) in sorted(chunks.chunks.items()):
        if index is None:
            continue
        try:
            times = load_chunk_index(index)[1]
        except ImgStoreError:
            continue
        if len(times) and np.isfinite(times[0]):
            return float(times[0])
    return None


def rebuild_metadata(path: str) -> List[str]:
    """Write a new ``metadata.yaml`` for a store that lost it; returns what had to be guessed.

    What the writer recorded in the chunk indexes is taken as it is (class, format, shape, dtype,
    chunk size, uuid, creation time and zone, as far as they are there). The rest comes from the
    chunks: the format from the chunk files, the shape and dtype from the first frame, the chunk
    size from the first full chunk index, the creation time from the first frame's time. Each of
    those is a guess, logged as a warning and returned. User metadata cannot be rebuilt.
    """
    basedir = store_dir(path)
    found = _find_chunks(basedir)
    if found is None or os.path.exists(os.path.join(basedir, STORE_MD_FILENAME)):
        raise StoreNotFoundError(f"{basedir}: no chunks without a {STORE_MD_FILENAME}: nothing to rebuild")
    recorded: Dict[str, Any] = {}
    for _, (index, _) in sorted(found.chunks.items()):
        if index is not None:
            recorded = _recorded_block(index)
            if recorded:
                break
    guesses: List[str] = []

    def guess(text: str) -> None:
        guesses.append(text)
        log.warning("%s: rebuilding %s: %s", basedir, STORE_MD_FILENAME, text)

    video = found.store_class == "VideoImgStore"
    fmt = recorded.get("format")
    first_file = next((files[0] for _, (_, files) in sorted(found.chunks.items()) if files), None)
    if not isinstance(fmt, str) or not fmt:
        fmt = _format_from_file(first_file, video)
        guess(f"format '{fmt}' (from the chunk files)")
    shape, dtype = recorded.get("imgshape"), recorded.get("imgdtype")
    if not _valid_shape(shape) or not isinstance(dtype, str):
        frame = np.asarray(_first_frame(found, fmt))
        if video and frame.ndim == 3 and _channels_equal(frame):
            frame = frame[:, :, 0]  # colour video of grey frames (how upstream writes grey)
        shape, dtype = list(frame.shape), frame.dtype.name
        kind = "grey" if frame.ndim == 2 else "colour"
        guess(f"image shape {tuple(shape)} {kind} and dtype {dtype} (from the first frame)")
    chunksize = recorded.get("chunksize")
    if not isinstance(chunksize, int) or isinstance(chunksize, bool) or chunksize < 1:
        chunksize = _guess_chunksize(found, video, guess)
    created, zone = recorded.get("created_utc"), recorded.get("timezone_local")
    if not isinstance(created, str):
        created = _guess_created(found, guess)
        if not isinstance(zone, str):
            zone = get_local_timezone()
            guess(f"time zone {zone} (this computer's)")
    uuid = recorded.get("uuid")
    if not isinstance(uuid, str) or not uuid:
        uuid = uuidlib.uuid4().hex
        guess("a new uuid (the chunk indexes record none)")
    extension = recorded.get("extension")
    if video and not isinstance(extension, str):
        extension = os.path.splitext(first_file)[1] if first_file else ".mp4"
    class_name = recorded.get("class") if recorded.get("class") in (found.store_class, "VideoImgStoreFFMPEG") else None
    encoding = recorded.get("encoding")
    smd = StoreMetadata(
        class_name=class_name or found.store_class,
        imgshape=tuple(int(n) for n in shape),
        imgdtype=str(dtype),
        chunksize=int(chunksize),
        format=fmt,
        encoding=encoding if isinstance(encoding, str) and encoding else None,
        version=STORE_VERSION,
        created_utc=created,
        timezone_local=zone if isinstance(zone, str) else None,
        uuid=uuid,
        extension=extension if video else None,
    )
    guess("user metadata: none (it lived only in the lost file)")
    write_metadata(os.path.join(basedir, STORE_MD_FILENAME), smd, {})
    return guesses


def _valid_shape(shape: Any) -> bool:
    return isinstance(shape, list) and len(shape) in (2, 3) and all(isinstance(n, int) and n > 0 for n in shape)


def _channels_equal(frame: np.ndarray) -> bool:
    """Whether a decoded colour frame is grey (all channels within the rounding of a YUV conversion)."""
    a, b, c = (frame[:, :, k].astype(np.int32) for k in range(3))
    return bool(np.abs(a - b).max() <= 2 and np.abs(a - c).max() <= 2)


def _format_from_file(path: Optional[str], video: bool) -> str:
    if path is None:
        raise ImgStoreError("no chunk holds a frame file: the format cannot be rebuilt")
    ext = os.path.splitext(path)[1].lower()
    if not video:
        return _IMAGE_FORMATS[ext]
    codec = _video_codec(path)
    if codec is None:
        raise ImgStoreError(f"{path}: not a video FFmpeg reads: the format cannot be rebuilt")
    # a pairing this library does not write: named by the codec, read by whatever FFmpeg decodes
    return _VIDEO_FORMATS.get((ext, codec), codec)


def _guess_chunksize(found: _Chunks, video: bool, guess: Callable[[str], None]) -> int:
    sizes = _chunk_sizes(found)
    nonempty = [n for n in sizes if n]
    if len(nonempty) >= 2 or (nonempty and len(sizes) > len(nonempty)):
        guess(f"chunk size {nonempty[0]} (the frames of the first full chunk)")
        return nonempty[0]
    default = 10000 if video else 200
    size = max(default, nonempty[0] if nonempty else 1)
    guess(f"chunk size {size} (one chunk only, of {nonempty[0] if nonempty else 0} frames: the default)")
    return size


def _guess_created(found: _Chunks, guess: Callable[[str], None]) -> str:
    first = _first_frame_time(found)
    if first is not None and first >= _CLOCK_TIMES_FROM:
        stamp = datetime.datetime.fromtimestamp(first, datetime.timezone.utc)
        guess(f"created {stamp.isoformat(timespec='seconds')} (the first frame's time)")
    else:
        paths = [p for _, files in found.chunks.values() for p in files]
        paths += [find_chunk_index(index) for index, _ in found.chunks.values() if index and find_chunk_index(index)]
        mtime = min((os.path.getmtime(p) for p in paths), default=datetime.datetime.now().timestamp())
        stamp = datetime.datetime.fromtimestamp(mtime, datetime.timezone.utc)
        guess(f"created {stamp.isoformat(timespec='seconds')} (the oldest chunk file: frame times are no clock times)")
    return stamp.replace(tzinfo=None).isoformat()
