"""``DirectoryImgStore``: one folder per chunk, one image file per frame."""

from __future__ import annotations

import os
import shutil
from typing import Any, List

from ..io.paths import chunk_name
from .base import _chunk_numbers_in, _ImgStore

#: arguments upstream accepted and ignored here (its '+color' formats set the write encoding)
_IGNORED_ARGUMENTS = ("videosize", "seek", "gpu_id", "write_encode_encoding")


class DirectoryImgStore(_ImgStore):
    """A store whose chunks are folders ``NNNNNN/`` of image files (npy, png, jpg...)."""

    _readable_classes = ("DirectoryImgStore",)
    #: upstream's class attribute, kept for scripts that read it (the format's codec decides)
    _DEFAULT_CHUNKSIZE = 200

    def __init__(self, **kwargs: Any) -> None:
        for name in _IGNORED_ARGUMENTS:
            kwargs.pop(name, None)
        super().__init__(**kwargs)

    def _chunk_path(self, chunk_n: int) -> str:
        return self._fs.join(self._basedir, chunk_name(chunk_n))

    def _chunk_index_base(self, chunk_n: int) -> str:
        return self._fs.join(self._basedir, chunk_name(chunk_n), "index")

    def _chunk_numbers_on_disk(self) -> List[int]:
        return _chunk_numbers_in([e.name for e in self._fs.listdir(self._basedir) if e.is_dir])

    def _chunk_is_empty(self, chunk_n: int) -> bool:
        try:
            return not os.listdir(self._chunk_path(chunk_n))
        except OSError:
            return False

    def _prepare_chunk(self, chunk_n: int) -> None:
        # created at once (as upstream): the folder also holds the chunk's index and extra data
        folder = self._chunk_path(chunk_n)
        try:
            os.mkdir(folder)
        except FileExistsError:
            if os.listdir(folder):  # an empty one is what a failed start of this chunk left
                raise

    def _unprepare_chunk(self, chunk_n: int) -> None:
        os.rmdir(self._chunk_path(chunk_n))

    def _remove_chunk_data(self, chunk_n: int) -> None:
        shutil.rmtree(self._chunk_path(chunk_n), ignore_errors=True)
