"""The frame index, at upstream's import path ``imgstore.index``.

``ImgStoreIndex`` (every frame's number and time, by chunk) is upstream's class; the modules of
this package hold what it is built from: the frame table (sorted numpy columns answering by
number, index and time), the per-chunk index files, the store's index cache and the loader of a
store at a URL.
"""

from ..constants import FRAME_MD
from .storeindex import ImgStoreIndex

__all__ = ["FRAME_MD", "ImgStoreIndex"]
