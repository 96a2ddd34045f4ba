"""Read and write metadata.yaml: the ``__store`` block as a small dataclass, the rest as user metadata."""

from __future__ import annotations

import copy
import dataclasses
import datetime
import os
import uuid
from typing import Any, Dict, Optional, Tuple

import numpy as np
import yaml

from ._fs import LOCAL, LocalFileSystem
from .constants import STORE_MD_KEY, STORE_VERSION
from .errors import IncompatibleStoreError, MetadataError, StoreNotFoundError

_REQUIRED_KEYS = ("class", "version", "imgshape", "imgdtype", "chunksize", "format")


@dataclasses.dataclass
class StoreMetadata:
    """The ``__store`` block of metadata.yaml.

    ``other`` keeps keys this library does not interpret (so re-writing never drops them).
    """

    class_name: str
    imgshape: Tuple[int, ...]
    imgdtype: str
    chunksize: int
    format: str
    encoding: Optional[str] = None
    version: int = STORE_VERSION
    created_utc: Optional[str] = None
    timezone_local: Optional[str] = None
    uuid: Optional[str] = None
    extension: Optional[str] = None
    other: Dict[str, Any] = dataclasses.field(default_factory=dict)

    def to_dict(self) -> Dict[str, Any]:
        """The block as written to metadata.yaml (keys absent when unset, as upstream)."""
        out = dict(self.other)
        out.update(
            {
                "class": self.class_name,
                "version": self.version,
                "imgshape": list(self.imgshape),
                "imgdtype": self.imgdtype,
                "chunksize": self.chunksize,
                "format": self.format,
                "encoding": self.encoding,
            }
        )
        for key in ("created_utc", "timezone_local", "uuid", "extension"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        return out

    @classmethod
    def from_dict(cls, smd: Dict[str, Any], path: str) -> StoreMetadata:
        """Validate a raw ``__store`` mapping read from ``path``."""
        missing = [k for k in _REQUIRED_KEYS if k not in smd]
        if missing:
            raise MetadataError(f"{path}: '{STORE_MD_KEY}' lacks required key(s) {', '.join(missing)}")
        if smd["version"] != STORE_VERSION:
            raise IncompatibleStoreError(
                f"{path}: incompatible store version {smd['version']!r} (this library reads version {STORE_VERSION})"
            )
        known = set(_REQUIRED_KEYS) | {"encoding", "created_utc", "timezone_local", "uuid", "extension"}
        return cls(
            class_name=_expect(smd, "class", str, path),
            version=STORE_VERSION,
            imgshape=_parse_imgshape(smd["imgshape"], path),
            imgdtype=_parse_dtype(smd["imgdtype"], path),
            chunksize=_parse_chunksize(smd["chunksize"], path),
            format=_expect(smd, "format", str, path),
            encoding=_parse_encoding(smd.get("encoding"), path),
            created_utc=smd.get("created_utc"),
            timezone_local=smd.get("timezone_local"),
            uuid=smd.get("uuid"),
            extension=smd.get("extension"),
            other={k: v for k, v in smd.items() if k not in known},
        )


def _expect(smd: Dict[str, Any], key: str, kind: type, path: str) -> Any:
    value = smd[key]
    if not isinstance(value, kind):
        raise MetadataError(f"{path}: '{STORE_MD_KEY}.{key}' must be a {kind.__name__}, got {value!r}")
    return value


def _parse_imgshape(value: Any, path: str) -> Tuple[int, ...]:
    ok = isinstance(value, (list, tuple)) and len(value) in (2, 3)
    ok = ok and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value)
    if not ok:
        raise MetadataError(f"{path}: imgshape must be [height, width] or [height, width, channels], got {value!r}")
    return tuple(value)


def _parse_dtype(value: Any, path: str) -> str:
    try:
        dtype = np.dtype(value) if isinstance(value, str) else None
    except (TypeError, ValueError):
        dtype = None
    if dtype is None or dtype.kind not in "uifb":
        raise MetadataError(f"{path}: imgdtype must name a numeric numpy dtype, got {value!r}")
    return dtype.name


def _parse_encoding(value: Any, path: str) -> Optional[str]:
    if value is not None and not isinstance(value, str):
        raise MetadataError(f"{path}: '{STORE_MD_KEY}.encoding' must be a string or empty, got {value!r}")
    return value or None


def _parse_chunksize(value: Any, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise MetadataError(f"{path}: chunksize must be a positive integer, got {value!r}")
    return value


def read_metadata(metadata_path: str, fs: LocalFileSystem = LOCAL) -> Tuple[StoreMetadata, Dict[str, Any]]:
    """Parse metadata.yaml with safe YAML only; returns the store block and the user metadata."""
    raw = load_yaml_mapping(metadata_path, fs)
    smd = raw.pop(STORE_MD_KEY, None)
    if not isinstance(smd, dict):
        raise MetadataError(f"{metadata_path}: no '{STORE_MD_KEY}' mapping: not imgstore metadata")
    return StoreMetadata.from_dict(smd, metadata_path), raw


def load_yaml_mapping(path: str, fs: LocalFileSystem = LOCAL) -> Dict[str, Any]:
    """Load a YAML file that must hold a mapping; never constructs Python objects."""
    try:
        data = yaml.safe_load(fs.read_bytes(path))
    except FileNotFoundError:
        raise StoreNotFoundError(f"{path} does not exist: not an imgstore") from None
    except OSError as exc:
        raise StoreNotFoundError(f"{path} cannot be read: {exc}") from None
    except yaml.constructor.ConstructorError as exc:
        raise MetadataError(
            f"{path}: refusing YAML with a non-standard tag (safe loading only): {exc.problem}"
        ) from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise MetadataError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise MetadataError(f"{path}: expected a YAML mapping, got {type(data).__name__}")
    if _expanded_size(data, {}) > MAX_METADATA_NODES:
        raise MetadataError(
            f"{path}: YAML aliases expand to more than {MAX_METADATA_NODES} values (an 'alias bomb'); refusing it"
        )
    return data


#: values metadata may hold once YAML aliases are expanded: far beyond any real metadata, far
#: below what would exhaust memory when a script copies it or writes it out as JSON
MAX_METADATA_NODES = 1_000_000


def _expanded_size(value: Any, sizes: Dict[int, int]) -> int:
    """How many values ``value`` holds with every alias expanded, counting each shared node once."""
    if not isinstance(value, (dict, list)):
        return 1
    key = id(value)
    if key not in sizes:
        sizes[key] = MAX_METADATA_NODES + 1  # a cycle (a self-referencing alias) counts as too big
        items = value.values() if isinstance(value, dict) else value
        sizes[key] = min(MAX_METADATA_NODES + 1, 1 + sum(_expanded_size(v, sizes) for v in items))
    return sizes[key]


def plain_user_metadata(metadata: Any) -> Dict[str, Any]:
    """A deep copy of user metadata with numpy values turned into plain YAML-safe values."""
    if not isinstance(metadata, dict):
        raise MetadataError(f"metadata must be a dictionary, got {type(metadata).__name__}")
    return {key: _plain(value, str(key)) for key, value in copy.deepcopy(metadata).items()}


def _plain(value: Any, where: str) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist(), where)
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (str, bool, int, float, bytes, datetime.date)):
        return value
    raise MetadataError(f"metadata value {where} of type {type(value).__name__} cannot be stored in metadata.yaml")


def write_metadata(metadata_path: str, store_md: StoreMetadata, user_metadata: Dict[str, Any]) -> None:
    """Write metadata.yaml atomically (temporary file, fsync, rename)."""
    document = dict(user_metadata)
    document[STORE_MD_KEY] = store_md.to_dict()
    text = yaml.safe_dump(document)  # ASCII with escapes: readable whatever the reader's locale
    write_file_atomic(metadata_path, text.encode("ascii"))


def write_file_atomic(path: str, data: bytes) -> None:
    """Replace ``path`` with ``data`` so that readers see the old or the new file, never a torn one."""
    directory, name = os.path.split(path)
    # not mkstemp: its 0600 mode would make the store unreadable to the lab's other users
    tmp = os.path.join(directory, f".{name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "xb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
