"""The chunk-codec protocol: what a chunk format implements so that the store never knows a codec.

A codec describes one format (capabilities as attributes) and opens writers and readers for one
chunk at a time. ``chunk_path`` is where the store keeps the chunk: a folder for
``DirectoryImgStore`` formats, a file (with the codec's extension) for ``VideoImgStore`` formats.
"""

from __future__ import annotations

import abc
import os
import shutil
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from ..errors import StoreWriteError, UnsupportedFormatError
from ..io.durable import fsync_path

Shape = Tuple[int, ...]


class ChunkWriter(abc.ABC):
    """Writes the frames of one chunk, in order."""

    #: the first failed write; after it nothing more may reach the file (see ``_fail``)
    _failure: Optional[StoreWriteError] = None

    def _fail(self, what: str, exc: BaseException) -> StoreWriteError:
        """Record that writing ``what`` failed with ``exc``; the error to raise.

        A file that lost some bytes must not take any more: frames written after a lost one
        would take its place, since recovery counts a chunk's frames from its start.
        """
        if self._failure is None:
            self._failure = write_error(what, exc)
        return self._failure

    def _refuse_after_failure(self) -> None:
        """Raise if an earlier write failed (the file is closed to further frames)."""
        if self._failure is not None:
            raise StoreWriteError(f"{self._failure}; nothing more is written to it")

    @abc.abstractmethod
    def write(self, img: np.ndarray) -> None:
        """Append one frame (already in the store's shape and dtype)."""

    def flush(self) -> None:  # noqa: B027 - optional hook: writers that queue nothing have nothing to flush
        """Return once every frame handed over so far has reached the file system.

        Frames an encoder holds back to compress better (a video lookahead) are exempt: they
        reach the file as later frames push them out, or on ``close``.
        """

    @abc.abstractmethod
    def sync(self) -> None:
        """Ask the operating system to put on the disk what ``flush`` handed to it (fsync)."""

    @abc.abstractmethod
    def close(self) -> None:
        """Finish the chunk so that every written frame is on disk."""


def sync_file(path: Any) -> None:
    """``fsync`` a chunk file written by path, once it exists (an encoder may not have written a
    byte yet); file objects, as the in-memory probes use, need none."""
    if isinstance(path, str) and os.path.exists(path):
        fsync_path(path)


def write_error(path: Any, exc: BaseException) -> StoreWriteError:
    """``exc``, raised while writing ``path``, as a ``StoreWriteError`` naming the file and the reason."""
    reason = getattr(exc, "strerror", None) or str(exc).strip() or type(exc).__name__
    return StoreWriteError(f"{path} could not be written ({reason})")


class ChunkReader(abc.ABC):
    """Reads frames of one chunk by their position within it."""

    @abc.abstractmethod
    def read(self, frame_idx: int) -> np.ndarray:
        """The frame at ``frame_idx`` (0-based within the chunk), as stored (before sensor decoding)."""

    def close(self) -> None:  # noqa: B027 - optional hook: readers holding nothing open need no close
        """Release files or decoders held open."""


class ChunkCodec(abc.ABC):
    """One chunk format: its capabilities and how to open a chunk for writing or reading."""

    #: format name as written in metadata.yaml
    name: str = ""
    #: the store class whose layout this format uses
    store_class: str = ""
    #: True when frames read back bit-exact
    lossless: bool = True
    #: file extension of a chunk (video formats), e.g. '.mp4'; None for folder formats
    extension: Optional[str] = None
    #: dtypes the format holds exactly (None: any numeric dtype)
    dtypes: Optional[Tuple[str, ...]] = ("uint8",)
    #: channel counts accepted besides 2-D grey (None: any shape)
    channels: Optional[Tuple[int, ...]] = (3,)
    #: '<name>+color' exists: sensor-encoded frames are converted to colour before writing
    color_variant: bool = False
    #: frames per chunk when the user gives none
    default_chunksize: int = 200
    #: pip package the format needs, for the error message when it is missing
    requires: Optional[str] = None
    #: True when writing or reading the format takes OpenCV (which may lack its system libraries)
    needs_opencv: bool = False

    def available(self) -> bool:
        """Whether this install can write and read the format (optional packages present)."""
        return True

    def as_stored(self, img: np.ndarray) -> np.ndarray:
        """``img`` as the format holds it: what a read gives back, but for lossy compression.

        The same image unless the format converts it (``pgm`` keeps colour frames as grey).
        """
        return img

    def written_shape(self, imgshape: Shape) -> Shape:
        """The shape frames have once stored (video formats truncate to even sizes)."""
        return tuple(imgshape)

    def check_image_type(self, imgshape: Shape, imgdtype: str) -> None:
        """Refuse, before anything is written, a shape or dtype this format cannot hold exactly."""
        if self.dtypes is not None and imgdtype not in self.dtypes:
            raise UnsupportedFormatError(
                f"format '{self.name}' cannot hold {imgdtype} images exactly (it holds {', '.join(self.dtypes)})"
            )
        if np.dtype(imgdtype).kind not in "uifb":
            raise UnsupportedFormatError(f"format '{self.name}': imgdtype must be numeric, got {imgdtype}")
        if self.channels is not None and len(imgshape) == 3 and imgshape[2] not in self.channels:
            kinds = "grey (h, w)" + "".join(f" or (h, w, {c})" for c in self.channels)
            raise UnsupportedFormatError(f"format '{self.name}' holds {kinds} images, not shape {tuple(imgshape)}")

    def check_options(self, imgshape: Shape, imgdtype: str, options: Mapping[str, Any]) -> None:
        """Refuse, before anything is written, encoder settings this format does not have."""
        given = sorted(k for k, v in options.items() if v is not None)
        if given:
            raise UnsupportedFormatError(f"format '{self.name}' has no encoder settings (got {', '.join(given)})")

    @abc.abstractmethod
    def open_writer(
        self, chunk_path: str, imgshape: Shape, imgdtype: str, options: Optional[Mapping[str, Any]] = None
    ) -> ChunkWriter:
        """Start writing a new chunk at ``chunk_path`` for frames of ``imgshape``/``imgdtype``."""

    def count_frames(self, chunk_path: str) -> Optional[int]:
        """Frames in an existing chunk file, or None when the codec cannot tell cheaply."""
        return None

    #: whether the codec's readers take ``notes``: what ``index_notes`` kept in the chunk's index file
    reads_index_notes: bool = False

    def index_notes(self, chunk_path: str) -> Dict[str, np.ndarray]:
        """What to keep in a finished chunk's index file beside its frames (arrays upstream never
        reads), for this codec's readers: e.g. where each frame's bytes are. Nothing by default."""
        return {}

    @abc.abstractmethod
    def open_reader(
        self, chunk_path: str, imgshape: Shape, imgdtype: str, frame_count: Optional[int] = None
    ) -> ChunkReader:
        """Open an existing chunk for reading; frames come back in ``imgshape`` (grey or colour).

        ``frame_count`` is how many frames the chunk's index lists: a chunk file holding fewer
        was cut short, and a reader must not hand out frames it cannot place for sure.
        """

    def can_copy_frames(self, source: str, frame_idxs: Sequence[int], frame_count: int) -> bool:
        """Whether ``copy_frames`` can copy frames ``frame_idxs`` of chunk ``source`` (of this format,
        ``frame_count`` frames) without decoding them. Here: a video chunk all of whose frames are
        kept; formats that can copy parts of a chunk say more."""
        return list(frame_idxs) == list(range(frame_count)) and os.path.isfile(source)

    def copy_frames(self, source: str, frame_idxs: Sequence[int], target: str) -> None:
        """Write frames ``frame_idxs`` of chunk ``source`` as a new chunk at ``target`` by copying their
        encoded data (``can_copy_frames`` said it can). A failure leaves nothing at ``target``."""
        try:
            shutil.copyfile(source, target)
        except BaseException:
            self.remove_copied_frames(target, len(frame_idxs))
            raise

    def remove_copied_frames(self, target: str, count: int) -> None:
        """Remove the ``count`` frames ``copy_frames`` wrote at ``target`` (none there is fine)."""
        try:
            os.unlink(target)
        except FileNotFoundError:
            pass

    def keyframe_positions(self, chunk_path: str) -> Optional[List[int]]:
        """Positions in a chunk where reading can start without decoding earlier frames.

        None: at every frame (each frame is a file of its own), or unknown.
        """
        return None

    def open_remote_reader(
        self, chunk_url: str, imgshape: Shape, imgdtype: str, frame_count: Optional[int], fs: Any
    ) -> ChunkReader:
        """Open a chunk of a store at a URL (``fs``: an ``imgstore.io.fs.RemoteFileSystem``).

        A format read from a URL says how: folder formats fetch each frame file whole
        (``ImageFolderCodec``), video formats read through a file object. Others cannot.
        """
        raise UnsupportedFormatError(f"format '{self.name}' cannot be read from a URL ({chunk_url})")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"
