"""Image-folder chunk formats: one file per frame, ``<chunk>/%06d.<format>``.

``npy`` keeps arrays as they are; the others go through OpenCV's image codecs.
"""

from __future__ import annotations

import collections
import concurrent.futures
import io
import logging
import math
import os
import re
import shutil
import tokenize
from typing import Any, Callable, Deque, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from .._opencv import cv2
from ..errors import FrameReadError, StoreWriteError
from ..io.durable import fsync_path
from ..io.fs import is_regular_file, open_regular
from ..io.metadata import MAX_FRAME_BYTES
from .base import ChunkCodec, ChunkReader, ChunkWriter, Shape, write_error
from .color import ensure_color, ensure_grayscale
from .remote import RemoteFolderReader, frame_file_limit

SaveFn = Callable[[str, np.ndarray], None]
LoadFn = Callable[[str], np.ndarray]

log = logging.getLogger(__name__)


def frame_filename(frame_idx: int, extension: str) -> str:
    """File name of the frame at ``frame_idx`` within its chunk folder."""
    return f"{frame_idx:06d}.{extension}"


def encode_threads() -> int:
    """Threads that encode (or decode) frame files beside the caller: one per core, at most 4; none on one core."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return 0 if cores < 2 else min(cores, 4)


class ImageFolderWriter(ChunkWriter):
    """Writes each frame to its own file in a new chunk folder.

    With ``threads``, frames are encoded and written by that many threads (OpenCV's encoders
    run without the GIL), so compressing formats use every core. Each frame's file name is fixed
    when it is handed over, so the order never depends on which thread finishes first; at most
    ``2 * threads`` frames are in flight (see ``OrderedPool``), each a private copy of the
    caller's image (which may be reused at once). A frame that could not be written raises
    ``StoreWriteError`` naming its file at a later ``write``, or at ``close``, which returns once
    every file is written.
    """

    def __init__(self, folder: str, extension: str, save: SaveFn, threads: int = 0) -> None:
        self._folder = folder  # the store creates the chunk folder
        self._extension = extension
        self._save = save
        self._count = 0
        self._pool = OrderedPool(threads, "imgstore-encode") if threads else None
        self._unsynced: List[str] = []  # frame files written since the last sync

    def write(self, img: np.ndarray) -> None:
        path = os.path.join(self._folder, frame_filename(self._count, self._extension))
        if self._pool is None:
            _save_or_raise(self._save, path, img)
        else:
            for _ in self._pool.finished():  # raises the error of a frame that failed
                pass
            self._pool.submit(_save_or_raise, self._save, path, np.array(img), True)
        self._unsynced.append(path)
        self._count += 1

    def flush(self) -> None:
        """Return once every frame handed over is in its file; raise the first error, if any."""
        if self._pool is not None:
            for _ in self._pool.drain():
                pass

    def sync(self) -> None:
        """fsync each frame file written since the last call, and the chunk folder that lists them."""
        for path in self._unsynced:
            fsync_path(path)
        if self._unsynced:
            fsync_path(self._folder)
        self._unsynced = []

    def close(self) -> None:
        """Return once every frame is in its file; raise the first error, if any."""
        if self._pool is not None:
            self._pool.close()


class OrderedPool:
    """Calls run on threads, their results handed back in the order the calls were made.

    At most ``2 * threads`` calls are in flight, counted from the oldest unfinished one: a call
    stalled on one thread holds the next ones back. So a writer killed at any moment leaves at
    most that many frames unwritten after its last whole one (recovery keeps frames up to the
    first missing one, so frames written past a gap would be lost anyway). A call's error is
    raised when its turn comes. Calls handed over are carried out even if the program ends
    without ``close`` (the executor's threads finish their queue at exit).
    """

    def __init__(self, threads: int, name: str) -> None:
        self._executor = concurrent.futures.ThreadPoolExecutor(threads, name)
        self._window = 2 * threads
        self._pending: Deque[concurrent.futures.Future] = collections.deque()  # oldest first

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        """Hand over one call; take the results ``finished`` gives first, so that there is room."""
        self._pending.append(self._executor.submit(fn, *args))

    def finished(self) -> Iterator[Any]:
        """Results of the oldest calls that are done, and, while the window is full, of the oldest
        after waiting for it: everything ``submit`` needs taken first."""
        pending = self._pending
        while pending and (pending[0].done() or len(pending) >= self._window):
            yield pending.popleft().result()

    def drain(self) -> Iterator[Any]:
        """The results of every call handed over, in order, waiting for each."""
        while self._pending:
            yield self._pending.popleft().result()

    def close(self, take: Optional[Callable[[Any], None]] = None) -> None:
        """Hand every remaining result to ``take``, then stop the threads once every call has run
        (also when a result or ``take`` raised: that error is raised after)."""
        try:
            for result in self.drain():
                if take is not None:
                    take(result)
        finally:
            self._executor.shutdown(wait=True)

    def discard(self) -> None:
        """Drop every call not yet started and every result (after a failed write), then stop."""
        self._pending.clear()
        self._executor.shutdown(wait=True, cancel_futures=True)


def _save_or_raise(save: SaveFn, path: str, img: np.ndarray, atomic: bool = False) -> None:
    """Write one frame file; any failure becomes a ``StoreWriteError`` naming the file.

    ``atomic`` (frames written on encoder threads, whose numbers are journaled before their files
    are done): the frame is written under a hidden name and renamed when complete, so a frame
    file that exists is whole. A writer killed mid-frame then leaves no truncated image that a
    decoder would still half-read (libjpeg does). Frames written before ``add_image`` returns
    need no rename: the journal lists them only once they are whole.
    """
    folder, name = os.path.split(path)
    # the hidden name keeps the extension: OpenCV picks the encoder by it
    partial = os.path.join(folder, "." + name) if atomic else path
    try:
        save(partial, img)
        if atomic:
            os.replace(partial, path)
    except (OSError, cv2.error) as exc:
        try:  # a cut-off frame file must not stay behind, where recovery or a reader might find it
            os.unlink(partial)
        except OSError:
            pass
        if isinstance(exc, StoreWriteError):
            raise
        raise write_error(f"frame file {path}", exc) from exc


class ImageFolderReader(ChunkReader):
    """Reads frame files of one chunk folder.

    With ``threads``, reading frame after frame decodes the next few ahead on that many threads
    (at most ``threads + 1`` frames ahead, never past ``frame_count``), so decoding a compressed
    format uses every core; any other pattern of reads decodes on the caller's thread. A frame
    decoded ahead that failed raises its error only when it is asked for.
    """

    def __init__(
        self, folder: str, extension: str, load: LoadFn, threads: int = 0, frame_count: Optional[int] = None
    ) -> None:
        self._folder = folder
        self._extension = extension
        self._load = load
        self._ahead = _DecodeAhead(self._read_now, threads, frame_count) if threads else None

    def read(self, frame_idx: int) -> np.ndarray:
        if self._ahead is not None:
            return self._ahead.read(frame_idx)
        return self._read_now(frame_idx)

    def _read_now(self, frame_idx: int) -> np.ndarray:
        path = os.path.join(self._folder, frame_filename(frame_idx, self._extension))
        try:
            return self._load(path)
        except FrameReadError:
            if not os.path.lexists(path):  # looked at only on failure: a stat per frame costs
                raise FrameReadError(f"frame file {path} is missing") from None
            raise

    def close(self) -> None:
        if self._ahead is not None:
            self._ahead.close()


class _DecodeAhead:
    """Decodes the frames after the one asked for while the caller uses it (sequential reads only)."""

    def __init__(self, read: Callable[[int], np.ndarray], threads: int, frame_count: Optional[int]) -> None:
        self._read = read
        self._pool = concurrent.futures.ThreadPoolExecutor(threads, thread_name_prefix="imgstore-decode")
        self._depth = threads + 1
        self._stop = frame_count
        self._pending: Dict[int, concurrent.futures.Future] = {}
        self._last = -2

    def read(self, frame_idx: int) -> np.ndarray:
        sequential = frame_idx == self._last + 1
        self._last = frame_idx
        future = self._pending.pop(frame_idx, None)
        if not sequential:
            self._drop()
        if sequential:  # keep the next frames decoding
            stop = frame_idx + 1 + self._depth
            for i in range(frame_idx + 1, stop if self._stop is None else min(stop, self._stop)):
                if i not in self._pending:
                    self._pending[i] = self._pool.submit(self._read, i)
        return future.result() if future is not None else self._read(frame_idx)

    def _drop(self) -> None:
        for future in self._pending.values():
            future.cancel()
        self._pending.clear()

    def close(self) -> None:
        self._drop()
        self._pool.shutdown(wait=True)


class ImageFolderCodec(ChunkCodec):
    """Base of the one-file-per-frame formats; subclasses provide ``save`` and ``load``."""

    store_class = "DirectoryImgStore"
    default_chunksize = 200

    #: encode and decode frames on a thread pool (formats whose codec is slow enough to gain from it)
    threaded = False

    def open_writer(
        self, chunk_path: str, imgshape: Shape, imgdtype: str, options: Optional[Mapping[str, Any]] = None
    ) -> ChunkWriter:
        threads = encode_threads() if self.threaded else 0
        return ImageFolderWriter(chunk_path, self.name, self.saver(imgshape, imgdtype), threads)

    def open_reader(
        self, chunk_path: str, imgshape: Shape, imgdtype: str, frame_count: Optional[int] = None
    ) -> ChunkReader:
        threads = encode_threads() if self.threaded else 0
        return ImageFolderReader(chunk_path, self.name, self.loader(imgshape, imgdtype), threads, frame_count)

    def open_remote_reader(
        self, chunk_url: str, imgshape: Shape, imgdtype: str, frame_count: Optional[int], fs: Any
    ) -> ChunkReader:
        """Each frame file is fetched whole, then read by the format's own loader (see ``remote``)."""
        load = self.loader(imgshape, imgdtype)
        return RemoteFolderReader(
            chunk_url,
            load,
            lambda frame_idx: frame_filename(frame_idx, self.name),
            frame_file_limit(imgshape, imgdtype),
            fs,
        )

    def can_copy_frames(self, source: str, frame_idxs: Sequence[int], frame_count: int) -> bool:
        """Any frames: each frame is a file of its own."""
        return os.path.isdir(source)

    def copy_frames(self, source: str, frame_idxs: Sequence[int], target: str) -> None:
        """Copy the frame files into the folder ``target``, numbered from 0."""
        try:
            for new_idx, frame_idx in enumerate(frame_idxs):
                shutil.copyfile(
                    os.path.join(source, frame_filename(int(frame_idx), self.name)),
                    os.path.join(target, frame_filename(new_idx, self.name)),
                )
        except BaseException:
            self.remove_copied_frames(target, len(frame_idxs))
            raise

    def remove_copied_frames(self, target: str, count: int) -> None:
        for frame_idx in range(count):
            path = os.path.join(target, frame_filename(frame_idx, self.name))
            if os.path.exists(path):
                os.unlink(path)

    def saver(self, imgshape: Shape, imgdtype: str) -> SaveFn:
        raise NotImplementedError

    def loader(self, imgshape: Shape, imgdtype: str) -> LoadFn:
        raise NotImplementedError


class NpyCodec(ImageFolderCodec):
    """Raw numpy arrays (``.npy``): any numeric dtype and shape, lossless, fastest."""

    name = "npy"
    dtypes = None
    channels = None

    def saver(self, imgshape: Shape, imgdtype: str) -> SaveFn:
        def save(path: str, img: np.ndarray) -> None:
            with open(path, "wb") as f:
                np.save(f, img, allow_pickle=False)

        return save

    def loader(self, imgshape: Shape, imgdtype: str) -> LoadFn:
        return load_npy


#: numpy's header of a numeric array as np.save writes it: dtype, order, shape
_NPY_HEADER = re.compile(
    rb"\{'descr': '([<>|=]?[biuf][1248])', 'fortran_order': (True|False), 'shape': \(((?:\d+, )*\d*,?)\), \} *\n"
)
_NPY_MAGIC = b"\x93NUMPY"
#: np.save pads its header to 64 bytes; a frame's header fits in the first 256
_NPY_HEAD_BYTES = 256


def load_npy(path: str) -> np.ndarray:
    """Load an ``.npy`` frame without ever unpickling; errors name the file.

    A frame as np.save writes it (numeric dtype, numpy's header layout) is read with one system
    call into the array's own memory; anything else goes through np.load(allow_pickle=False),
    once its header is known to declare no more than the file holds. Only a regular file of at
    most a frame's largest size is read (a FIFO would hang the reader, a device feed it forever).
    """
    try:
        with open_regular(path) as f:
            size = os.fstat(f.fileno()).st_size
            if size > MAX_FRAME_BYTES + _NPY_MAX_HEADER:
                raise FrameReadError(f"frame file {path} holds {size} bytes, more than any frame takes")
            data = np.empty(size, dtype=np.uint8)
            complete = f.readinto(data) == size
    except OSError as exc:
        raise FrameReadError(f"frame file {path} is unreadable ({exc.strerror or exc})") from None
    img = _parse_npy(data) if complete else None
    return img if img is not None else _np_load(path, data if complete else None)


def _parse_npy(data: np.ndarray) -> Optional[np.ndarray]:
    """The array in an npy file's bytes, or None when its header is not the simple numeric kind."""
    head = data[:_NPY_HEAD_BYTES].tobytes()
    if len(head) < 16 or head[:6] != _NPY_MAGIC or head[6] not in (1, 2, 3):
        return None
    header_at = 10 if head[6] == 1 else 12
    header_end = header_at + int.from_bytes(head[8:header_at], "little")
    match = _NPY_HEADER.fullmatch(head[header_at:header_end])
    if match is None:
        return None  # also a header longer than what was looked at
    dtype = np.dtype(match.group(1).decode("ascii"))
    shape = tuple(int(v) for v in match.group(3).decode("ascii").replace(",", " ").split())
    if header_end % dtype.alignment or len(data) - header_end != dtype.itemsize * math.prod(shape):
        return None
    flat = data[header_end:].view(dtype)
    return flat.reshape(shape, order="F" if match.group(2) == b"True" else "C")


#: numpy's own bound on an array header (``max_header_size``)
_NPY_MAX_HEADER = 10_000
#: what numpy's header parser raises for a damaged header (tokenize.TokenError from its fallback
#: for Python 2 headers, SyntaxError or RecursionError from ast)
_NPY_HEADER_ERRORS = (ValueError, SyntaxError, tokenize.TokenError, RecursionError, TypeError, KeyError, OverflowError)


def _np_load(path: str, data: Optional[np.ndarray]) -> np.ndarray:
    if data is None:
        raise FrameReadError(f"frame file {path} is unreadable (it changed while being read)")
    stream = io.BytesIO(data)
    try:
        version = np.lib.format.read_magic(stream)
        if version not in ((1, 0), (2, 0)):  # 3.0 only adds UTF-8 field names: never a frame
            raise ValueError(f"npy format version {version}")
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _, dtype = read_header(stream)
    except _NPY_HEADER_ERRORS as exc:
        raise FrameReadError(f"frame file {path} is not a readable npy array ({type(exc).__name__}: {exc})") from None
    if dtype.hasobject:
        raise FrameReadError(f"frame file {path} holds pickled objects; refusing to load it")
    if math.prod(shape) * dtype.itemsize > len(data) - stream.tell():  # checked before numpy allocates it
        raise FrameReadError(f"frame file {path} declares a {dtype} array of shape {shape}, which it does not hold")
    stream.seek(0)
    try:
        img = np.load(stream, allow_pickle=False)
    except ValueError as exc:
        raise FrameReadError(
            f"frame file {path} holds pickled objects or is corrupt; refusing to load it ({exc})"
        ) from None
    except (OSError, EOFError) as exc:
        raise FrameReadError(f"frame file {path} is unreadable ({exc})") from None
    if not isinstance(img, np.ndarray) or img.dtype.kind not in "uifb":
        raise FrameReadError(f"frame file {path} does not hold a numeric image array")
    return img


class OpenCVImageCodec(ImageFolderCodec):
    """An image file format written with ``cv2.imwrite`` and read with ``cv2.imread``.

    ``force`` is ``'color'`` or ``'grey'`` for formats that only hold one kind (ppm, pgm): frames
    are converted when written, as upstream converts them (grey to three equal channels; colour
    to grey by OpenCV's BGR-to-grey weights, which loses the colour), and come back in the
    store's own shape when read.
    """

    color_variant = True
    threaded = True
    needs_opencv = True

    def __init__(
        self,
        name: str,
        lossless: bool,
        dtypes: Tuple[str, ...] = ("uint8",),
        force: Optional[str] = None,
        write_params: Tuple[int, ...] = (),
    ) -> None:
        self.name = name
        self.lossless = lossless
        self.dtypes = dtypes
        self.color_variant = force is None
        self._force = force
        self._params = list(write_params)

    def check_image_type(self, imgshape: Shape, imgdtype: str) -> None:
        super().check_image_type(imgshape, imgdtype)
        if self._force == "grey" and len(imgshape) == 3:
            log.warning(
                "format '%s' holds grey images only: colour frames of shape %s are stored grey "
                "(read back as three equal channels)",
                self.name,
                tuple(imgshape),
            )

    def as_stored(self, img: np.ndarray) -> np.ndarray:
        if self._force is None:
            return img
        stored = self._converter()(img)
        return stored if stored.ndim == img.ndim else (ensure_color if img.ndim == 3 else ensure_grayscale)(stored)

    def _converter(self) -> Callable[[np.ndarray], np.ndarray]:
        """What frames go through before ``imwrite``: to colour (ppm), to grey (pgm), or nothing."""
        return {"color": ensure_color, "grey": ensure_grayscale}.get(self._force, lambda img: img)

    def saver(self, imgshape: Shape, imgdtype: str) -> SaveFn:
        convert = self._converter()
        params = self._params
        extension = "." + self.name

        def save(path: str, img: np.ndarray) -> None:
            # encoded in memory, written by us: OpenCV's own writers (bmp, ppm, pgm) ignore a
            # failing write and report success for a cut-off file
            ok, data = cv2.imencode(extension, convert(img), params)
            if not ok:
                raise StoreWriteError(f"OpenCV could not encode frame file {path}")
            with open(path, "wb") as f:
                f.write(data.data)

        return save

    def loader(self, imgshape: Shape, imgdtype: str) -> LoadFn:
        color = len(imgshape) == 3 and imgshape[2] == 3
        # ANYDEPTH keeps 16-bit pixels (upstream dropped them to 8 bits: a documented deviation)
        flags = cv2.IMREAD_ANYDEPTH | (cv2.IMREAD_COLOR if color else cv2.IMREAD_GRAYSCALE)

        def load(path: str) -> np.ndarray:
            if not is_regular_file(path):  # OpenCV would wait on a FIFO for ever
                raise FrameReadError(f"frame file {path} is not a regular file")
            try:
                img = cv2.imread(path, flags)
            except cv2.error as exc:  # a header declaring more pixels than OpenCV reads: an assertion
                raise FrameReadError(f"frame file {path} is corrupt ({str(exc).strip().splitlines()[-1]})") from None
            if img is None:
                raise FrameReadError(f"frame file {path} is corrupt or not a {self.name} image")
            return img

        return load
