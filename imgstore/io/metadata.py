"""Read and write metadata.yaml: the ``__store`` block as a small dataclass, the rest as user metadata."""

from __future__ import annotations

import copy
import dataclasses
import datetime
import os
import re
import uuid
from typing import Any, Dict, Iterator, List, Optional, Tuple, Type

import numpy as np
import yaml

from ..constants import STORE_MD_KEY, STORE_VERSION
from ..errors import ImgStoreError, IncompatibleStoreError, MetadataError, StoreNotFoundError
from .fs import LOCAL, LocalFileSystem, RefusedFileError

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
        imgshape = _parse_imgshape(smd["imgshape"], path)
        imgdtype = _parse_dtype(smd["imgdtype"], path)
        check_frame_size(imgshape, imgdtype, path)
        encoding = _parse_encoding(smd.get("encoding"), path)
        _check_encoding(encoding, imgshape, imgdtype, path)
        return cls(
            class_name=_expect(smd, "class", str, path),
            version=STORE_VERSION,
            imgshape=imgshape,
            imgdtype=imgdtype,
            chunksize=_parse_chunksize(smd["chunksize"], path),
            format=_expect(smd, "format", str, path),
            encoding=encoding,
            created_utc=smd.get("created_utc"),
            timezone_local=smd.get("timezone_local"),
            uuid=smd.get("uuid"),
            extension=_parse_extension(smd.get("extension"), path),
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


#: the most bytes one frame may take (20 times the largest camera sensor's frame): a larger
#: ``imgshape`` is refused, so that nothing ever allocates a frame of a size metadata made up
MAX_FRAME_BYTES = 1 << 31


def check_frame_size(imgshape: Tuple[int, ...], imgdtype: str, path: str) -> None:
    """``MetadataError`` when one frame of ``imgshape`` and ``imgdtype`` takes more than ``MAX_FRAME_BYTES``."""
    nbytes = np.dtype(imgdtype).itemsize
    for side in imgshape:
        nbytes *= int(side)
    if nbytes > MAX_FRAME_BYTES:
        raise MetadataError(
            f"{path}: imgshape {list(imgshape)} of {imgdtype} makes frames of {nbytes} bytes, "
            f"more than the {MAX_FRAME_BYTES} a frame may take"
        )


#: a video store's chunk extension: a dot and a few letters or digits, so that a chunk's path is
#: always its number and this suffix, in the store directory (never ``/../`` or a path of its own)
_EXTENSION = re.compile(r"\.[A-Za-z0-9_+-]{1,16}")


def _parse_extension(value: Any, path: str) -> Optional[str]:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not _EXTENSION.fullmatch(value):
        raise MetadataError(
            f"{path}: '{STORE_MD_KEY}.extension' must be a file extension such as '.mp4' "
            f"(a dot and up to 16 letters or digits), got {value!r}"
        )
    return value


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


def _check_encoding(encoding: Optional[str], imgshape: Tuple[int, ...], imgdtype: str, path: str) -> None:
    """``MetadataError`` when the sensor encoding cannot convert frames of this shape and dtype to colour.

    Tried on a small frame of the same channels, dtype and sizes modulo 12 (what OpenCV's
    conversions require: even sizes, rows in thirds for planar YUV), so that opening such a store
    says what is wrong instead of every frame failing with an OpenCV error.
    """
    from .._opencv import cv2
    from ..codecs.sensor import decoder_for, encoding_to_cv2

    if not encoding or encoding not in encoding_to_cv2():  # unknown encodings: the store says so
        return
    small = tuple(n if n <= 24 else 12 + n % 12 for n in imgshape[:2]) + tuple(imgshape[2:])
    try:
        decoder_for(encoding)(np.zeros(small, dtype=imgdtype))
    except cv2.error as exc:
        reason = str(exc).strip().splitlines()[-1]
        raise MetadataError(
            f"{path}: encoding {encoding!r} cannot convert frames of shape {list(imgshape)} and dtype {imgdtype} "
            f"to colour ({reason})"
        ) from None


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
    """Load a YAML file that must hold a mapping; never constructs Python objects.

    Bounded, so that opening a store takes at most about a second whatever its metadata holds:
    a file over ``MAX_METADATA_BYTES``, more than ``MAX_METADATA_VALUES`` values, values nested
    deeper than ``MAX_METADATA_DEPTH`` or aliases expanding to more than ``MAX_METADATA_NODES``
    values raise ``MetadataError``.
    """
    try:
        text = fs.read_bytes(path, limit=MAX_METADATA_BYTES)
    except FileNotFoundError:
        raise StoreNotFoundError(f"{path} does not exist: not an imgstore") from None
    except RefusedFileError as exc:
        raise MetadataError(f"{path}: {exc.strerror}; refusing to read it as metadata") from None
    except OSError as exc:
        raise StoreNotFoundError(f"{path} cannot be read: {exc}") from None
    data = parse_yaml(text, path, MetadataError, MAX_METADATA_VALUES, MAX_METADATA_NODES)
    if not isinstance(data, dict):
        raise MetadataError(f"{path}: expected a YAML mapping, got {type(data).__name__}")
    return data


#: the largest metadata.yaml read, in bytes (real metadata takes a few kilobytes)
MAX_METADATA_BYTES = 1 << 20
#: values (keys, scalars, lists and mappings) metadata.yaml may spell out: safe YAML is parsed at
#: about 15,000 values a second, so this bounds opening a store to a second or two
MAX_METADATA_VALUES = 20_000
#: values metadata may hold once YAML aliases are expanded: far beyond any real metadata, far
#: below what would exhaust memory when a script copies it or writes it out as JSON
MAX_METADATA_NODES = 1_000_000
#: lists and mappings nested in one another, at most: real metadata nests a few levels; code
#: that walks metadata recursively (copying it, writing it out) must never run out of stack
MAX_METADATA_DEPTH = 100


class _TooBig(Exception):
    """A YAML document over the limits: parsing stops there."""


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader, stopped as soon as the document spells out too many values or nests too deeply."""

    def __init__(self, stream: bytes, max_values: int) -> None:
        super().__init__(stream)
        self._values_left = max_values
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        self._values_left -= 1
        if self._values_left < 0:
            raise _TooBig("more values than a file of its kind holds")
        self._depth += 1
        try:
            if self._depth > MAX_METADATA_DEPTH:
                raise _TooBig(f"YAML nested more than {MAX_METADATA_DEPTH} levels deep")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def parse_yaml(text: bytes, path: str, error: Type[ImgStoreError], max_values: int, max_expanded: int) -> Any:
    """Safe YAML, bounded in values spelled out, nesting and alias expansion; ``error`` (naming ``path``)
    says what is wrong."""
    loader = None
    try:
        loader = _BoundedLoader(text, max_values)  # decodes the text: may raise already
        data = loader.get_single_data()
    except yaml.constructor.ConstructorError as exc:
        raise error(f"{path}: refusing YAML with a non-standard tag (safe loading only): {exc.problem}") from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise error(f"{path}: not valid YAML: {exc}") from None
    except _TooBig as exc:
        if str(exc).startswith("more values"):
            raise error(f"{path}: more than {max_values} values; refusing it") from None
        raise error(f"{path}: {exc}; refusing it") from None
    finally:
        if loader is not None:
            loader.dispose()
    problem = _structure_problem(data, max_expanded)
    if problem:
        raise error(f"{path}: {problem}; refusing it")
    return data


def _children(value: Any) -> Iterator[Any]:
    """A list's items; a mapping's keys and values (each key is a value of the document too)."""
    if isinstance(value, dict):
        return iter([part for item in value.items() for part in item])
    return iter(value)


def _structure_problem(root: Any, max_values: int, loaded: bool = True) -> str:
    """Why a YAML document (``loaded`` from a file, or about to be written) is too big ('' when it
    is not), found without recursion.

    Counts the values it holds with every alias expanded (a node shared by aliases counts each
    time it is referred to, its size computed once), and how deeply lists and mappings nest.
    """
    if not isinstance(root, (dict, list)):
        return ""
    too_many = f"more than {max_values} values"
    if loaded:
        too_many += " once YAML aliases are expanded (an 'alias bomb')"
    sizes: Dict[int, int] = {}
    # one entry per open list or mapping: [node, its remaining children, values counted so far]
    stack: List[List[Any]] = [[root, _children(root), 1]]
    open_ids = {id(root)}
    while stack:
        top = stack[-1]
        for child in top[1]:
            if not isinstance(child, (dict, list)):
                top[2] += 1
                continue
            key = id(child)
            if key in sizes:
                top[2] += sizes[key]
            elif key in open_ids:  # a self-referencing alias: endless once expanded
                return too_many
            elif len(stack) >= MAX_METADATA_DEPTH:
                return f"YAML nested more than {MAX_METADATA_DEPTH} levels deep"
            else:
                open_ids.add(key)
                stack.append([child, _children(child), 1])
                break
            if top[2] > max_values:
                return too_many
        else:
            stack.pop()
            open_ids.discard(id(top[0]))
            sizes[id(top[0])] = top[2]
            if stack:
                stack[-1][2] += top[2]
                if stack[-1][2] > max_values:
                    return too_many
    return ""


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
    """Write metadata.yaml atomically (temporary file, fsync, rename).

    Metadata that readers would refuse (see ``load_yaml_mapping``) is refused before anything is
    written: ``MetadataError``.
    """
    document = dict(user_metadata)
    document[STORE_MD_KEY] = store_md.to_dict()
    check_frame_size(store_md.imgshape, store_md.imgdtype, metadata_path)
    problem = _structure_problem(document, MAX_METADATA_VALUES, loaded=False)
    if problem:
        raise MetadataError(f"{metadata_path}: metadata would not be read back: {problem}")
    text = yaml.safe_dump(document)  # ASCII with escapes: readable whatever the reader's locale
    if len(text) > MAX_METADATA_BYTES:
        raise MetadataError(
            f"{metadata_path}: metadata of {len(text)} bytes is more than the {MAX_METADATA_BYTES} readers accept; "
            "keep large data in extra data or in a file beside the store"
        )
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
