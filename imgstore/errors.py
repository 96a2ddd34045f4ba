"""Exception hierarchy.

Every error derives from ``ValueError`` (what upstream raised for almost everything), and
where a more specific builtin fits we derive from it too, so ``except ValueError``,
``except FileNotFoundError`` or ``except ImportError`` in existing scripts keep working.
"""

from typing import Any, Tuple

__all__ = [
    "ChunkIndexError",
    "ExtraDataError",
    "FrameArgumentError",
    "FrameNotFoundError",
    "FrameReadError",
    "RangeRequestsError",
    "ImageDtypeError",
    "ImageShapeError",
    "ImgStoreError",
    "IncompatibleStoreError",
    "IndexFileError",
    "MetadataError",
    "MissingDependencyError",
    "StoreChangedError",
    "StoreExistsError",
    "StoreLockedError",
    "StoreNotFoundError",
    "StoreWriteError",
    "UnsupportedFormatError",
]


class ImgStoreError(ValueError):
    """Base class of every error this library raises on purpose."""


class StoreNotFoundError(ImgStoreError, FileNotFoundError):
    """The path holds no store (no metadata.yaml)."""


class StoreExistsError(ImgStoreError, FileExistsError):
    """Opening for writing a directory that already holds a store."""


class StoreLockedError(StoreExistsError):
    """Another process, still alive, is writing the store."""


class StoreWriteError(ImgStoreError, OSError):
    """Writing a frame or an index failed (disk full, read-only disk...).

    ``frame_number`` is the frame the failed call did not add (None when the call was not
    ``add_image``); ``lost_frames`` the numbers of frames added earlier that did not reach the
    disk whole. Every other frame added stays readable.
    """

    frame_number: Any = None
    lost_frames: Tuple[Any, ...] = ()


class MetadataError(ImgStoreError):
    """metadata.yaml is unreadable, not safe YAML, or lacks required keys."""


class IncompatibleStoreError(MetadataError):
    """The store's class or version is not one this library reads."""


class UnsupportedFormatError(ImgStoreError):
    """A chunk format that no codec (or no installed codec) handles."""


class MissingDependencyError(ImgStoreError, ImportError):
    """A format needs an optional package that is not installed."""


class ChunkIndexError(ImgStoreError, OSError):
    """A chunk's index file is missing, truncated or inconsistent."""


class IndexFileError(ImgStoreError, OSError):
    """A saved ``.index.sqlite`` is unreadable or of an unknown version."""


class FrameNotFoundError(ImgStoreError, LookupError):
    """No frame with that number, index or time."""


class RangeRequestsError(ImgStoreError, OSError):
    """A server that does not answer HTTP range requests was asked for part of a file too large to send whole."""


class FrameReadError(ImgStoreError, OSError):
    """A frame's data is missing, corrupt or unsafe to load."""


class StoreChangedError(FrameReadError):
    """A file of a store opened from its sealed index is missing, or not the size it was sealed
    with: the store changed since it was sealed (its frames are not read from such a file)."""

    @classmethod
    def of(cls, path: str, found: str) -> "StoreChangedError":
        """The error for the file at ``path``, of which ``found`` says what is wrong ('is missing')."""
        return cls(
            f"{path} {found}: it changed since the store was sealed (reseal the store, or remove its "
            "imgstore-sealed-index)"
        )


class ImageShapeError(ImgStoreError):
    """``add_image`` got an image whose shape differs from the store's."""


class ImageDtypeError(ImgStoreError, TypeError):
    """``add_image`` got values the store's dtype cannot hold."""


class FrameArgumentError(ImgStoreError, TypeError):
    """A frame number, index or time that is not a number."""


class ExtraDataError(ImgStoreError, TypeError):
    """Extra data that cannot be written as JSON, or an unreadable extra-data file."""
