"""Per-chunk frame index files (``index.npz`` / ``index.yaml``): safe loading and atomic saving."""

from __future__ import annotations

import ast
import io
import logging
import lzma
import math
import os
import re
import struct
import zipfile
import zlib
from typing import BinaryIO, Callable, Dict, Mapping, Optional, Tuple, Union

import numpy as np

from ..constants import FRAME_MD
from ..errors import ChunkIndexError
from ..io.fs import open_regular, read_regular
from ..io.metadata import parse_yaml, write_file_atomic

try:  # ISA-L's CRC-32 (the same values) is 3-4x faster than zlib's: a week's index files hold 240 MB
    from isal.isal_zlib import crc32
except ImportError:  # not installed on this platform
    from zlib import crc32

log = logging.getLogger(__name__)

INDEX_EXTENSIONS = (".npz", ".yaml")

ChunkArrays = Tuple[np.ndarray, np.ndarray]


def find_chunk_index(path_without_extension: str) -> Optional[str]:
    """The existing index file for a chunk (npz preferred over yaml, as upstream), or None."""
    for extension in INDEX_EXTENSIONS:
        path = path_without_extension + extension
        if os.path.exists(path):
            return path
    return None


def load_chunk_index(path_without_extension: str) -> ChunkArrays:
    """Load ``(frame_number, frame_time)`` of one chunk; ``ChunkIndexError`` says what is wrong."""
    path = find_chunk_index(path_without_extension)
    if path is None:
        raise ChunkIndexError(f"missing index {path_without_extension}{{{','.join(INDEX_EXTENSIONS)}}}")
    try:
        data = read_regular(path, _limit(path), writable=True)  # arrays are views of it, writable as np.load's
    except FileNotFoundError:
        raise ChunkIndexError(f"missing index {path}") from None
    except OSError as exc:
        raise ChunkIndexError(f"{path}: cannot read index ({exc.strerror or exc})") from None
    return parse_chunk_index(data, path)


def parse_chunk_index(data: Union[bytes, bytearray], path: str) -> ChunkArrays:
    """``(frame_number, frame_time)`` from the bytes of an index file (``path`` names it and says which kind)."""
    if len(data) > _limit(path):
        raise ChunkIndexError(f"{path}: {len(data)} bytes, more than the {_limit(path)} an index may hold")
    if path.endswith(".npz"):
        fast = npz_frame_arrays(memoryview(data))
        raw = dict(zip(FRAME_MD, fast)) if fast is not None else _npz_arrays(data, path)
    else:
        raw = _parse_yaml(data, path)
    return validate_chunk_arrays(raw.get("frame_number"), raw.get("frame_time"), path)


#: the largest ``index.npz`` read: 16 million frames in one chunk, far more than any chunk holds
MAX_INDEX_BYTES = 1 << 28
#: the largest ``index.yaml`` read (upstream's old index format, about 40 bytes a frame): safe YAML
#: is parsed at about 1 MB a second
MAX_YAML_INDEX_BYTES = 1 << 23


def _limit(path: str) -> int:
    return MAX_INDEX_BYTES if path.endswith(".npz") else MAX_YAML_INDEX_BYTES


# -- reading npz files that np.savez did not write plainly ----------------------------------------
# np.load would allocate whatever an array's header declares (10**12 entries: MemoryError), and lets
# errors of its own through (NotImplementedError for an unknown zip version, tokenize.TokenError
# for a damaged header). So the two arrays are read here, each size checked before anything is
# allocated, with Python's zipfile and a strict reading of numpy's header, never unpickling.

#: numpy's own bound on an array header (``max_header_size``): a header is a short dict literal
_NPY_MAX_HEADER = 10_000
#: what a damaged or hostile npz can make zipfile, zlib, the header parser or numpy raise
_NPZ_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    NotImplementedError,  # an unknown compression method or zip version
    RuntimeError,  # an encrypted member; RecursionError in the header parser
    EOFError,
    OSError,
    zlib.error,
    lzma.LZMAError,
    ValueError,
    SyntaxError,
    TypeError,
    KeyError,
    IndexError,
    OverflowError,
    struct.error,
)


#: the prefix of the arrays codecs keep in a chunk's index file (``ChunkCodec.index_notes``)
NOTES_PREFIX = "imgstore_"


def index_notes(data: bytes, path: str) -> Dict[str, object]:
    """The codec's notes (arrays named ``NOTES_PREFIX...``) of an npz index file's bytes, never unpickling."""
    return _npz_arrays(data, path, lambda key: key.startswith(NOTES_PREFIX))


def _npz_arrays(data: bytes, path: str, wanted: Callable[[str], bool] = FRAME_MD.__contains__) -> Dict[str, object]:
    """The ``wanted`` arrays (default: the frame arrays) of an npz file's bytes, member by member, never unpickling."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = {info.filename: info for info in archive.infolist()}
            names = {info[:-4]: info for info in members if info.endswith(".npy") and wanted(info[:-4])}
            return {key: _member_array(archive, members[name], path) for key, name in names.items() if name in members}
    except ChunkIndexError:
        raise
    except _NPZ_ERRORS as exc:
        raise ChunkIndexError(f"{path}: truncated or corrupt index ({type(exc).__name__}: {exc})") from None


def _member_array(archive: zipfile.ZipFile, info: zipfile.ZipInfo, path: str) -> np.ndarray:
    """One ``.npy`` member as an array: its header read strictly, its declared size checked first."""
    where = f"{path}: {info.filename}"
    if info.file_size > MAX_INDEX_BYTES:
        raise ChunkIndexError(f"{where} declares {info.file_size} bytes, more than an index may hold")
    with archive.open(info) as member:
        dtype, shape, fortran, header_size = _npy_header(member, where)
        count = math.prod(shape)
        nbytes = count * dtype.itemsize
        if nbytes > info.file_size - header_size:
            raise ChunkIndexError(
                f"{where} declares {count} values of {dtype} ({nbytes} bytes) but holds "
                f"{max(0, info.file_size - header_size)} bytes"
            )
        raw = member.read(nbytes)
    if len(raw) != nbytes:
        raise ChunkIndexError(f"{where} is truncated")
    return np.frombuffer(bytearray(raw), dtype=dtype, count=count).reshape(shape, order="F" if fortran else "C")


def _npy_header(member: BinaryIO, where: str) -> Tuple[np.dtype, Tuple[int, ...], bool, int]:
    """``(dtype, shape, fortran_order, header size)`` of an npy stream; ``ChunkIndexError`` if it is not one."""
    lead = member.read(8)
    if len(lead) < 8 or lead[:6] != _NPY_MAGIC or lead[6] not in (1, 2, 3):
        raise ChunkIndexError(f"{where} is not a numpy array")
    width = 2 if lead[6] == 1 else 4
    length = int.from_bytes(member.read(width), "little")
    if length > _NPY_MAX_HEADER:
        raise ChunkIndexError(f"{where}: array header of {length} bytes, more than numpy itself reads")
    text = member.read(length).decode("utf-8" if lead[6] == 3 else "latin1")
    # Python 2's numpy wrote long integers ('(3L,)'): numpy still reads them, so do we
    header = ast.literal_eval(_PY2_LONG.sub(r"\1", text))
    if not isinstance(header, dict) or set(header) != {"descr", "fortran_order", "shape"}:
        raise ChunkIndexError(f"{where}: not a numpy array header")
    dtype = np.lib.format.descr_to_dtype(header["descr"])
    shape = header["shape"]
    ok = isinstance(shape, tuple) and all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape)
    if not ok or not isinstance(header["fortran_order"], bool):
        raise ChunkIndexError(f"{where}: not a numpy array header")
    if dtype.hasobject:
        raise ChunkIndexError(f"{where}: unsafe index array: it holds Python objects (a pickle); refusing to load it")
    return dtype, shape, header["fortran_order"], 8 + width + length


_PY2_LONG = re.compile(r"(\d+)L\b")


# -- reading npz files without np.load -----------------------------------------------------------
# np.load costs about 1 ms per chunk index (zipfile, a member object per array, the header parsed
# by ast); a week-long recording has 1,500 of them. Chunk indexes are written by np.savez, which
# stores members uncompressed, so a chunk's two arrays are taken straight from the file's bytes,
# after the zip CRC is checked. Only little-endian int64 numbers and float64 times in numpy's own
# header layout are read this way; anything else (and any file that does not check out) goes to
# _npz_arrays, which checks every size and says what is wrong.

_ZIP_END = struct.Struct("<4s4H2IH")  # end of central directory record
_ZIP_ENTRY = struct.Struct("<4s6H3I5H2I")  # central directory entry
_ZIP_LOCAL = struct.Struct("<4s5H3I2H")  # local file header
_ZIP_NO_VALUE = 0xFFFFFFFF  # the real value is in a zip64 extra field
#: numpy's header of a 1-D array, exactly as np.save writes it
_NPY_HEADER = re.compile(rb"\{'descr': '(<i8|<f8)', 'fortran_order': (?:True|False), 'shape': \((\d+),\), \} *\n")
_NPY_MAGIC = b"\x93NUMPY"
#: the dtypes read directly: anything else is converted by validate_chunk_arrays after _npz_arrays
_DIRECT_DTYPES = {"frame_number": b"<i8", "frame_time": b"<f8"}


class ReadBuffer:
    """A buffer reused to read one file after another (no fresh memory for every chunk index)."""

    def __init__(self) -> None:
        self._data = bytearray(0)

    def read(self, path: str) -> Optional[memoryview]:
        """The whole file, in this buffer (valid until the next read); None when too large to be an index."""
        with open_regular(path) as f:  # a FIFO or a device is refused, never waited on
            size = os.fstat(f.fileno()).st_size
            if size > MAX_INDEX_BYTES:
                return None
            if len(self._data) < size:
                self._data = bytearray(size)  # a new one: arrays may still be views of the old
            view = memoryview(self._data)[:size]
            if f.readinto(view) != size:
                return None
            return view


def read_npz_frame_arrays(path: str, buffer: Optional[ReadBuffer] = None) -> Optional[ChunkArrays]:
    """``(frame_number, frame_time)`` of a plain np.savez index, read directly; None: use ``load_chunk_index``.

    The arrays are views of ``buffer`` (valid until its next read), or of memory of their own.
    """
    try:
        data = (buffer or ReadBuffer()).read(path)
    except OSError:
        return None  # load_chunk_index says what is wrong
    return None if data is None else npz_frame_arrays(data)


def npz_frame_arrays(data: memoryview) -> Optional[ChunkArrays]:
    """``(frame_number, frame_time)`` (int64, float64) from an npz file's bytes, as views of them.

    None when the file is not a plain np.savez of those two arrays (compressed, other dtypes,
    a damaged or unusual zip): ``_npz_arrays`` must read it.
    """
    members = _zip_members(data)
    if members is None or set(members) != set(FRAME_MD):
        return None
    arrays = [_stored_npy(data, key, *members[key]) for key in FRAME_MD]
    if arrays[0] is None or arrays[1] is None or len(arrays[0]) != len(arrays[1]):
        return None
    return arrays[0], arrays[1]


def _zip_members(data: memoryview) -> Optional[Dict[str, Tuple[int, int, int, bytes]]]:
    """``{array name: (crc, size, local header offset, file name)}`` of the frame arrays stored plainly."""
    end = len(data) - _ZIP_END.size  # where the end record is, unless a comment follows it
    if end < 0:
        return None
    if bytes(data[end : end + 4]) != b"PK\x05\x06":
        tail_at = max(0, len(data) - 65557)  # a comment is at most 64 kB
        end = bytes(data[tail_at:]).rfind(b"PK\x05\x06")
        if end < 0:
            return None
        end += tail_at
        if end + _ZIP_END.size > len(data):
            return None
    _, disk, cd_disk, _, entries, cd_size, cd_offset, _ = _ZIP_END.unpack_from(data, end)
    if disk or cd_disk or cd_offset + cd_size > end:
        return None
    directory = bytes(data[cd_offset:end])  # a few hundred bytes: parsed faster as bytes
    members = {}
    pos = 0
    for _ in range(entries):
        if pos + _ZIP_ENTRY.size > len(directory):
            return None
        entry = _ZIP_ENTRY.unpack_from(directory, pos)
        if entry[0] != b"PK\x01\x02":
            return None
        flags, method, crc, packed, size, name_len, extra_len, comment_len, offset = (
            entry[3], entry[4], entry[7], entry[8], entry[9], entry[10], entry[11], entry[12], entry[16]
        )  # fmt: skip
        name = directory[pos + _ZIP_ENTRY.size : pos + _ZIP_ENTRY.size + name_len]
        pos += _ZIP_ENTRY.size + name_len + extra_len + comment_len
        key = name[:-4].decode("ascii", "replace") if name.endswith(b".npy") else ""
        if key in FRAME_MD:
            if method != 0 or flags & 1 or packed != size or _ZIP_NO_VALUE in (size, offset) or key in members:
                return None  # compressed, encrypted, zip64-sized or twice: _npz_arrays handles these
            members[key] = (crc, size, offset, name)
    return members


def _stored_npy(data: memoryview, key: str, crc: int, size: int, offset: int, name: bytes) -> Optional[np.ndarray]:
    """The 1-D array of one stored member, if of the dtype read directly and intact."""
    if offset + _ZIP_LOCAL.size > len(data):
        return None
    local = _ZIP_LOCAL.unpack_from(data, offset)
    start = offset + _ZIP_LOCAL.size + local[9] + local[10]
    if local[0] != b"PK\x03\x04" or bytes(data[offset + _ZIP_LOCAL.size : offset + _ZIP_LOCAL.size + local[9]]) != name:
        return None
    member = data[start : start + size]
    if len(member) != size or size < 12 or bytes(member[:6]) != _NPY_MAGIC or crc32(member) != crc:
        return None
    header_at = {1: 10, 2: 12, 3: 12}.get(member[6])
    if header_at is None:
        return None
    header_end = header_at + int.from_bytes(member[8:header_at], "little")
    match = _NPY_HEADER.fullmatch(bytes(member[header_at:header_end]))
    if match is None or match.group(1) != _DIRECT_DTYPES[key]:
        return None
    count = int(match.group(2))
    if header_end + count * 8 != size:
        return None
    return np.frombuffer(data, dtype=match.group(1).decode("ascii"), count=count, offset=start + header_end)


def _parse_yaml(data: Union[bytes, bytearray], path: str) -> Dict[str, object]:
    # each frame takes at least two values' worth of text ('- 1' lines): no more can be spelled out
    bound = MAX_YAML_INDEX_BYTES // 2
    raw = parse_yaml(bytes(data), path, ChunkIndexError, bound, bound)
    if not isinstance(raw, dict):
        raise ChunkIndexError(f"{path}: expected a mapping with {' and '.join(FRAME_MD)}")
    return raw


def validate_chunk_arrays(frame_number: object, frame_time: object, path: str) -> ChunkArrays:
    """Check and normalise one chunk's arrays: 1-D, numeric, equal length; integral numbers become int64."""
    if frame_number is None or frame_time is None:
        raise ChunkIndexError(f"{path}: index lacks {'frame_number' if frame_number is None else 'frame_time'}")
    try:
        numbers = np.asarray(frame_number)
        raw_times = np.asarray(frame_time)
        if raw_times.dtype.kind in "cmMSUV":
            raise ChunkIndexError(f"{path}: frame_time must be real numbers, got dtype {raw_times.dtype}")
        times = raw_times.astype(np.float64, copy=False)
    except (TypeError, ValueError) as exc:
        raise ChunkIndexError(f"{path}: index arrays are not numeric ({exc})") from None
    if numbers.ndim != 1 or times.ndim != 1:
        raise ChunkIndexError(f"{path}: index arrays must be one-dimensional")
    if len(numbers) != len(times):
        raise ChunkIndexError(f"{path}: frame_number has {len(numbers)} entries but frame_time has {len(times)}")
    if numbers.dtype.kind not in "iubf" and len(numbers):  # (an empty list of anything is an empty index)
        raise ChunkIndexError(f"{path}: frame_number must be numeric, got dtype {numbers.dtype}")
    if numbers.dtype.kind not in "f" or len(numbers) == 0:
        numbers = np.zeros(0, np.int64) if len(numbers) == 0 else numbers.astype(np.int64, copy=False)
    elif np.all(np.isfinite(numbers)) and np.all(numbers == np.round(numbers)):
        numbers = numbers.astype(np.int64)
    return numbers, times


def save_chunk_index(
    path_without_extension: str,
    frame_number: np.ndarray,
    frame_time: np.ndarray,
    extra: Optional[Mapping[str, object]] = None,
) -> str:
    """Write ``<path>.npz`` atomically with the frame arrays plus ``extra`` entries.

    Entries of ``extra`` that numpy could only store pickled (None, nested objects) are left out,
    so that every reader can load the file with ``allow_pickle=False``.
    """
    numbers = np.asarray(frame_number)
    arrays: Dict[str, np.ndarray] = {
        "frame_number": numbers.astype(np.int64) if numbers.dtype.kind in "iub" or not len(numbers) else numbers,
        "frame_time": np.asarray(frame_time, dtype=np.float64),
    }
    for key, value in (extra or {}).items():
        if key in arrays or value is None:
            continue
        try:
            arr = np.asarray(value)
        except (TypeError, ValueError):
            continue
        if arr.dtype != object:
            arrays[key] = arr
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    path = path_without_extension + ".npz"
    write_file_atomic(path, buffer.getvalue())
    return path


def remove_chunk_index(path_without_extension: str) -> Optional[str]:
    """Delete a chunk's index file(s); returns the path removed, if any."""
    removed = None
    for extension in INDEX_EXTENSIONS:
        path = path_without_extension + extension
        if os.path.exists(path):
            os.unlink(path)
            removed = path
    return removed
