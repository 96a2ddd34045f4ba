"""Where a store's chunks and their files are: a folder per chunk, or a video file per chunk.

A layout answers path questions only (where chunk ``n`` keeps its frames, its index, its journal
and its extra data; which chunks the directory holds, finished or not) and makes or removes a
chunk's folder. It knows no pixel format (that is the codec) and keeps no state beyond the store's
location, so the writer, the read view, recovery and repair all ask the same object.
"""

from __future__ import annotations

import copy
import logging
import os
import shutil
from typing import Dict, Iterable, List, Optional, Set, Tuple

from ..constants import EXTRA_DATA_FILE_EXTENSIONS
from ..durability.journal import JOURNAL_EXTENSION, journal_path
from ..index.chunkfile import INDEX_EXTENSIONS
from ..io.fs import Entry
from ..io.paths import chunk_name, parse_chunk_name
from .location import StoreLocation

log = logging.getLogger(__name__)

#: Motif writes a chunk's extra data beside the chunk in the store root; it wins over ours
MOTIF_EXTRA_EXTENSIONS = (".extra_data.h5", ".extra_data.json")
#: our own extra data (and Motif's JSON variant) beside the chunk's index
OWN_EXTRA_EXTENSIONS = (".extra.json", ".extra_data.json")

#: ``(unfinished chunk numbers, (chunk number, index path without extension) of the finished ones)``
ChunkScan = Tuple[List[int], List[Tuple[int, str]]]


class ChunkLayout:
    """The paths of a store's chunks; subclasses fix folder-per-chunk or file-per-chunk."""

    #: whether a chunk that ends with no frames keeps an (empty) chunk file, as upstream's video writer leaves
    keeps_empty_chunk_files = False
    #: the chunk files' extension, recorded in metadata.yaml (file-per-chunk layouts only)
    extension: Optional[str] = None

    def __init__(self, location: StoreLocation) -> None:
        self.location = location
        self.basedir = location.basedir
        self.fs = location.fs

    def at(self, location: StoreLocation) -> ChunkLayout:
        """The same layout for the store at ``location`` (the same store, reached another way)."""
        other = copy.copy(self)
        ChunkLayout.__init__(other, location)
        return other

    @property
    def metadata_path(self) -> str:
        return self.location.metadata_path

    def chunk_path(self, chunk_n: int) -> str:
        """Where the codec keeps chunk ``chunk_n`` (a folder or a file)."""
        raise NotImplementedError

    def index_base(self, chunk_n: int) -> str:
        """Path of the chunk's index without extension (``.npz``/``.yaml`` are appended)."""
        raise NotImplementedError

    def journal_path(self, chunk_n: int) -> str:
        return journal_path(self.index_base(chunk_n))

    def chunk_numbers(self) -> List[int]:
        """Chunk numbers present in the store directory, ascending (indexed or not)."""
        raise NotImplementedError

    def chunks_shown(self, entries: Iterable[Entry]) -> List[int]:
        """The chunks that these entries of the store directory show, finished or being written
        (their frames, index or journal; extra data alone does not make a chunk), ascending."""
        raise NotImplementedError

    def scan(self) -> ChunkScan:
        """The unfinished chunks (a journal but no index yet) and the finished ones."""
        unfinished = self.unfinished_chunks()
        skip = set(unfinished)
        return unfinished, [(n, self.index_base(n)) for n in self.chunk_numbers() if n not in skip]

    def unfinished_chunks(self) -> List[int]:
        """Chunks being written, or whose writer died: a journal but no index file yet.

        Also a chunk the writer had only just made room for (an empty folder) when it died. A
        store at a URL is read as it was uploaded: finished (or repaired) chunks only, which
        spares a request per chunk.
        """
        if not self.location.sees_writers:
            return []
        unfinished = []
        for chunk_n in self.chunk_numbers():
            base = self.index_base(chunk_n)
            indexed = self.location.has_index_file(base)
            if not indexed and (self.fs.exists(journal_path(base)) or self.chunk_is_empty(chunk_n)):
                unfinished.append(chunk_n)
        return unfinished

    def chunk_is_empty(self, chunk_n: int) -> bool:
        """Whether a chunk holds nothing at all (no frames, no index, no journal)."""
        return False

    def prepare(self, chunk_n: int) -> None:
        """Make room for a new chunk before any frame or extra data arrives."""

    def unprepare(self, chunk_n: int) -> None:
        """Undo ``prepare`` for a chunk that could not be started."""

    def remove_chunk_data(self, chunk_n: int) -> None:
        """Delete a chunk's frames."""
        raise NotImplementedError

    def extra_data_paths(self, chunk_n: int, extensions: Tuple[str, ...] = EXTRA_DATA_FILE_EXTENSIONS) -> List[str]:
        """Extra-data files of a chunk: Motif's in the store root take precedence over ours."""
        for ext in MOTIF_EXTRA_EXTENSIONS:
            path = self.fs.join(self.basedir, chunk_name(chunk_n) + ext)
            if ext in extensions and self.fs.exists(path):
                return [path]
        base = self.index_base(chunk_n)
        return [base + ext for ext in OWN_EXTRA_EXTENSIONS if ext in extensions and self.fs.exists(base + ext)]

    def extra_data_files(self, extensions: Tuple[str, ...] = EXTRA_DATA_FILE_EXTENSIONS) -> List[str]:
        """Every extra-data file of the store, in chunk order."""
        return [path for n in self.chunk_numbers() for path in self.extra_data_paths(n, extensions)]

    def is_motif_extra_data(self, path: str) -> bool:
        """Whether an extra-data file is one Motif wrote in the store root (its own columns)."""
        return self.fs.dirname(path) == self.basedir and path.endswith(MOTIF_EXTRA_EXTENSIONS)


class DirectoryLayout(ChunkLayout):
    """``NNNNNN/``: one folder per chunk, holding its frame files, its index and its extra data."""

    def chunk_path(self, chunk_n: int) -> str:
        return self.fs.join(self.basedir, chunk_name(chunk_n))

    def index_base(self, chunk_n: int) -> str:
        return self.fs.join(self.basedir, chunk_name(chunk_n), "index")

    def chunk_numbers(self) -> List[int]:
        return self.chunks_shown(self.fs.listdir(self.basedir))

    def chunks_shown(self, entries: Iterable[Entry]) -> List[int]:
        return chunk_numbers_in([e.name for e in entries if e.is_dir])

    def chunk_is_empty(self, chunk_n: int) -> bool:
        try:
            return not os.listdir(self.chunk_path(chunk_n))
        except OSError:
            return False

    def prepare(self, chunk_n: int) -> None:
        # created at once (as upstream): the folder also holds the chunk's index and extra data
        folder = self.chunk_path(chunk_n)
        try:
            os.mkdir(folder)
        except FileExistsError:
            if os.listdir(folder):  # an empty one is what a failed start of this chunk left
                raise

    def unprepare(self, chunk_n: int) -> None:
        os.rmdir(self.chunk_path(chunk_n))

    def remove_chunk_data(self, chunk_n: int) -> None:
        shutil.rmtree(self.chunk_path(chunk_n), ignore_errors=True)


class VideoLayout(ChunkLayout):
    """``NNNNNN<extension>``: one video file per chunk, its index and extra data beside it in the store root."""

    keeps_empty_chunk_files = True

    def __init__(self, location: StoreLocation, extension: str) -> None:
        super().__init__(location)
        self.extension: str = extension

    def chunk_path(self, chunk_n: int) -> str:
        return self.fs.join(self.basedir, chunk_name(chunk_n) + self.extension)

    def index_base(self, chunk_n: int) -> str:
        return self.fs.join(self.basedir, chunk_name(chunk_n))

    def chunk_files(self) -> Dict[int, Set[str]]:
        """``{chunk number: suffixes of its files}``, from one listing of the store directory.

        A chunk is any chunk-named file: its video, its index, its journal or only its extra data
        (the empty chunk after a full one has no video file, but may hold extra data of the last frame).
        """
        names = (e.name for e in self.fs.listdir(self.basedir) if not e.is_dir)
        suffixes = (self.extension, *INDEX_EXTENSIONS, *EXTRA_DATA_FILE_EXTENSIONS, JOURNAL_EXTENSION)
        return chunk_files_in(names, suffixes)

    def chunk_numbers(self) -> List[int]:
        return sorted(self.chunk_files())

    def chunks_shown(self, entries: Iterable[Entry]) -> List[int]:
        names = (e.name for e in entries if not e.is_dir)
        return sorted(chunk_files_in(names, (self.extension, *INDEX_EXTENSIONS, JOURNAL_EXTENSION)))

    def scan(self) -> ChunkScan:
        # what each chunk holds comes from one listing, not from a stat per file
        unfinished, finished = [], []
        for chunk_n, suffixes in sorted(self.chunk_files().items()):
            indexed = any(extension in suffixes for extension in INDEX_EXTENSIONS)
            if JOURNAL_EXTENSION in suffixes and not indexed:
                if self.location.sees_writers:
                    unfinished.append(chunk_n)
                else:
                    log.warning(
                        "skipping chunk %d of %s: unfinished (repair the store before uploading it)",
                        chunk_n,
                        self.basedir,
                    )
            elif self.extension in suffixes:
                finished.append((chunk_n, self.index_base(chunk_n)))
            elif indexed:
                self._warn_if_video_missing(chunk_n)
        return unfinished, finished

    def _warn_if_video_missing(self, chunk_n: int) -> None:
        """A chunk without its video is skipped; say so when its index lists frames."""
        if self.location.index_lists_frames(self.index_base(chunk_n)):
            log.warning(
                "skipping chunk %d of %s: its index lists frames but %s is missing",
                chunk_n,
                self.basedir,
                os.path.basename(self.chunk_path(chunk_n)),
            )
        else:
            log.debug("skipping chunk %d of %s: no video file", chunk_n, self.basedir)

    def remove_chunk_data(self, chunk_n: int) -> None:
        path = self.chunk_path(chunk_n)
        if os.path.exists(path):
            os.unlink(path)


def chunk_files_in(names: Iterable[str], suffixes: Iterable[str]) -> Dict[int, Set[str]]:
    """``{chunk number: the suffixes its files carry}`` from directory entries ``NNNNNN<suffix>``.

    One pass over the names (a week-long video store lists 3,000 files or more).
    """
    wanted = set(suffixes)
    files: Dict[int, Set[str]] = {}
    for name in names:
        stem, dot, rest = name.partition(".")
        if not dot or dot + rest not in wanted:
            continue
        n = parse_chunk_name(stem)
        if n is not None:
            files.setdefault(n, set()).add(dot + rest)
    return files


def chunk_numbers_in(names: List[str]) -> List[int]:
    """Chunk numbers from directory entries named ``NNNNNN``."""
    return sorted(n for n in map(parse_chunk_name, names) if n is not None)
