"""``VideoImgStore``: one video file per chunk, ``NNNNNN<extension>``, with its index beside it."""

from __future__ import annotations

import logging
import os
import shutil
from typing import Any, Dict, List, Optional, Set, Tuple

import numpy as np

from .. import codecs
from ..codecs.video import stored_shape
from ..constants import EXTRA_DATA_FILE_EXTENSIONS
from ..durability.journal import JOURNAL_EXTENSION
from ..errors import ChunkIndexError, ImgStoreError, StoreWriteError
from ..index.chunkfile import (
    INDEX_EXTENSIONS,
    find_chunk_index,
    load_chunk_index,
    remove_chunk_index,
    save_chunk_index,
    validate_chunk_arrays,
)
from ..io.paths import chunk_name
from .base import _ImgStore, chunk_files_in

log = logging.getLogger(__name__)

#: arguments upstream's video stores accepted; frame-exact seeking makes them unnecessary
_IGNORED_ARGUMENTS = ("seek", "gpu_id", "videosize")
#: encoder settings a user may give when creating a store (see ``codecs.video.ENCODER_SETTINGS``)
ENCODER_SETTING_NAMES = ("crf", "preset", "gop", "bframes", "quality", "pix_fmt", "threads")
#: what the base store takes
_STORE_ARGUMENTS = {
    "basedir",
    "mode",
    "imgshape",
    "imgdtype",
    "chunksize",
    "metadata",
    "encoding",
    "write_encode_encoding",
    "format",
    "index",
    "storage_options",
}


class VideoImgStore(_ImgStore):
    """A store whose chunks are video files (also reads Motif's ``VideoImgStoreFFMPEG`` stores).

    ``backend`` picks the library that encodes and decodes chunks: ``'av'`` (PyAV, the default)
    or ``'opencv'`` (as upstream). Encoder settings (``crf``, ``preset``, ``gop``, ``bframes``,
    ``quality``, ``pix_fmt``, ``threads``) apply when writing, where the format has them.
    """

    _readable_classes = ("VideoImgStore", "VideoImgStoreFFMPEG")
    #: upstream's class attribute, kept for scripts that read it (the format's codec decides)
    _DEFAULT_CHUNKSIZE = 10000

    def __init__(self, backend: str = codecs.DEFAULT_BACKEND, **kwargs: Any) -> None:
        for name in _IGNORED_ARGUMENTS:
            kwargs.pop(name, None)
        self._backend = codecs.check_backend(backend)
        settings = {name: kwargs.pop(name, None) for name in ENCODER_SETTING_NAMES}
        unknown = sorted(set(kwargs) - _STORE_ARGUMENTS)
        if unknown:
            raise TypeError(
                f"VideoImgStore got unexpected argument(s) {', '.join(unknown)} "
                f"(encoder settings are {', '.join(ENCODER_SETTING_NAMES)})"
            )
        super().__init__(writer_options=settings, **kwargs)
        if self._mode == "r":
            self._correct_odd_shape()

    @classmethod
    def _codec_for(cls, fmt: object, backend: str = codecs.DEFAULT_BACKEND) -> codecs.ChunkCodec:
        return codecs.get_codec(fmt, store_class=cls.__name__, backend=backend)

    def _writer_codec(self, fmt: object) -> codecs.ChunkCodec:
        return self._codec_for(fmt, self._backend)

    def _reader_codec(self, fmt: object) -> codecs.ChunkCodec:
        return codecs.get_reader_codec(fmt, type(self).__name__, backend=self._backend)

    def _correct_odd_shape(self) -> None:
        """Stores written before sizes were truncated to even record the odd size they asked for.

        As upstream, only formats that were always written at even sizes are corrected: ours that
        need even sizes (not ``ffv1/mkv``, which keeps any size), and the H.264/NVENC formats of
        Motif's ``VideoImgStoreFFMPEG``.
        """
        fmt = self._smd.format
        ours = codecs.is_known_format(fmt, type(self).__name__)
        motif_even = self._smd.class_name == "VideoImgStoreFFMPEG" and ("264" in fmt or "nvenc-" in fmt)
        if not (ours or motif_even):
            return
        even = stored_shape(fmt, self._smd.imgshape)
        if even != tuple(self._smd.imgshape):
            log.warning(
                "%s: imgshape %s corrected to the even size such videos are written at, %s",
                self.full_path,
                tuple(self._smd.imgshape),
                even,
            )
            self._smd.imgshape = even
            self._input_shape = even

    @property
    def _extension(self) -> str:
        """The chunk files' extension: from metadata, else Motif's defaults (.avi for mjpeg, .mp4)."""
        if self._smd.extension:
            return self._smd.extension
        return ".avi" if self._smd.format == "mjpeg" else ".mp4"

    def _chunk_extension_for_write(self) -> Optional[str]:
        return self._codec.extension

    def _chunk_path(self, chunk_n: int) -> str:
        return self._fs.join(self._basedir, chunk_name(chunk_n) + self._extension)

    def _chunk_index_base(self, chunk_n: int) -> str:
        return self._fs.join(self._basedir, chunk_name(chunk_n))

    def _chunk_files(self) -> Dict[int, Set[str]]:
        """``{chunk number: suffixes of its files}``, from one listing of the store directory.

        A chunk is any chunk-named file: its video, its index, its journal, or only its extra data
        (the empty chunk after a full one has no video file, but may hold extra data of the last frame).
        """
        names = (e.name for e in self._fs.listdir(self._basedir) if not e.is_dir)
        suffixes = (self._extension, *INDEX_EXTENSIONS, *EXTRA_DATA_FILE_EXTENSIONS, JOURNAL_EXTENSION)
        return chunk_files_in(names, suffixes)

    def _chunk_numbers_on_disk(self) -> List[int]:
        return sorted(self._chunk_files())

    def _scan_chunks(self) -> Tuple[List[int], List[Tuple[int, str]]]:
        # what each chunk holds comes from one listing, not from a stat per file
        unfinished, finished = [], []
        for chunk_n, suffixes in sorted(self._chunk_files().items()):
            indexed = any(extension in suffixes for extension in INDEX_EXTENSIONS)
            if JOURNAL_EXTENSION in suffixes and not indexed:
                if self._fs.remote:  # a store at a URL is read as uploaded: finished chunks only
                    log.warning(
                        "skipping chunk %d of %s: unfinished (repair the store before uploading it)",
                        chunk_n,
                        self._basedir,
                    )
                else:
                    unfinished.append(chunk_n)
            elif self._extension in suffixes:
                finished.append((chunk_n, self._chunk_index_base(chunk_n)))
            elif indexed:
                self._warn_if_video_missing(chunk_n)
        return unfinished, finished

    def _warn_if_video_missing(self, chunk_n: int) -> None:
        """A chunk without its video is skipped; say so when its index lists frames."""
        base = self._chunk_index_base(chunk_n)
        if self._fs.remote:
            log.debug("skipping chunk %d of %s: no video file", chunk_n, self._basedir)
        elif find_chunk_index(base) and _has_frames(base):
            log.warning(
                "skipping chunk %d of %s: its index lists frames but %s is missing",
                chunk_n,
                self._basedir,
                os.path.basename(self._chunk_path(chunk_n)),
            )

    def _write_empty_chunk(self, chunk_n: int) -> None:
        # an empty video file, as upstream's writer leaves for a chunk it opened but gave no frame:
        # upstream finds a chunk's extra data only beside its video file
        self._codec.open_writer(
            self._chunk_path(chunk_n), self._smd.imgshape, self._smd.imgdtype, self._writer_options
        ).close()

    def _remove_chunk_data(self, chunk_n: int) -> None:
        path = self._chunk_path(chunk_n)
        if os.path.exists(path):
            os.unlink(path)

    def insert_chunk(self, video_path: str, frame_numbers: Any, frame_times: Any, move: bool = True) -> None:
        """Add an already-encoded video file as the next chunk, with its frames' numbers and times."""
        self._require_mode("w", "insert a chunk")
        if not str(video_path).endswith(self._extension):
            raise ImgStoreError(f"insert_chunk: {video_path} must be a {self._extension} file for this store")
        numbers, times = validate_chunk_arrays(np.asarray(frame_numbers), np.asarray(frame_times), str(video_path))
        if numbers.dtype.kind != "i":
            raise ImgStoreError(f"insert_chunk: frame_numbers for {video_path} must be whole numbers")
        count = self._codec.count_frames(str(video_path))
        if count is not None and count != len(numbers):
            raise ImgStoreError(
                f"insert_chunk: {video_path} holds {count} frames but {len(numbers)} frame numbers were given"
            )
        if self._chunk_state == "open" and self._chunk_frame_numbers:  # frames were added: finish that chunk first
            self._chunk_state = "full"
        self._make_room(f"the chunk {video_path}")
        chunk_n = self._chunk_n
        target, base = self._chunk_path(chunk_n), self._chunk_index_base(chunk_n)
        try:
            (shutil.move if move else shutil.copy)(video_path, target)
            save_chunk_index(base, numbers, times, extra=self._smd.to_dict())
        except OSError as exc:
            self._undo_insert(video_path, target, base, move)
            raise StoreWriteError(
                f"store {self._basedir}: cannot insert {video_path} as chunk {chunk_n} ({exc.strerror or exc}); "
                "the store is as it was"
            ) from exc
        self._journal.remove()  # the chunk is complete: its index holds every frame
        try:
            self._extra_writer.close()
        except OSError as exc:  # only the closing ']' is missing: readers accept that
            log.warning("store %s: extra data of chunk %d left unterminated (%s)", self._basedir, chunk_n, exc)
        self._chunk_state = "closed"  # as upstream, no empty chunk follows an inserted one
        if len(numbers):
            self._count_written(numbers.tolist(), times.tolist())

    @staticmethod
    def _undo_insert(source: str, target: str, index_base: str, moved: bool) -> None:
        """Leave no trace of a chunk that could not be inserted; a moved file goes back where it was."""
        try:
            if moved and os.path.exists(target) and not os.path.exists(source):
                shutil.move(target, source)
            elif os.path.exists(target):
                os.unlink(target)
            remove_chunk_index(index_base)
        except OSError as exc:
            log.warning("could not undo the insertion of %s: %s", source, exc)


def _has_frames(index_base: str) -> bool:
    """Whether a chunk index lists any frame (an unreadable index counts as listing some)."""
    try:
        return len(load_chunk_index(index_base)[0]) > 0
    except ChunkIndexError:
        return True
