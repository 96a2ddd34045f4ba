"""File names and metadata keys of the imgstore on-disk format (kept at upstream's import path)."""

from subprocess import DEVNULL

__all__ = [
    "DEVNULL",
    "EXTRA_DATA_FILE_EXTENSIONS",
    "FRAME_MD",
    "STORE_INDEX_FILENAME",
    "STORE_LOCK_FILENAME",
    "STORE_MD_FILENAME",
    "STORE_MD_KEY",
]

#: Top-level key of metadata.yaml that holds the store's own metadata.
STORE_MD_KEY = "__store"
#: The file that makes a directory a store.
STORE_MD_FILENAME = "metadata.yaml"
#: Present while a writer has the store open.
STORE_LOCK_FILENAME = ".lock"
#: Optional saved frame index (sqlite).
STORE_INDEX_FILENAME = ".index.sqlite"

#: Extra-data file endings: ours and upstream's, then Motif's.
EXTRA_DATA_FILE_EXTENSIONS = (".extra.json", ".extra_data.json", ".extra_data.h5")

#: The per-frame metadata kept in every chunk index.
FRAME_MD = ("frame_number", "frame_time")

#: The only store format version there is.
STORE_VERSION = 2
