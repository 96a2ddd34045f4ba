"""What S3 answers that fsspec's own calls drop: a listing that starts after a name, and the size
of a file stated with every range of it sent.

``io.fs.RemoteFileSystem`` uses these for a store in an S3 bucket (through s3fs's client, never
a client of our own): a sealed store then opens without listing its directory whole, which S3
does 1,000 names per request (``store.seal``), and each chunk file read is checked against the
size the seal gives it at no cost, since S3 says how large the whole file is in every ranged
answer (``Content-Range: bytes 0-99/4096``).
"""

from __future__ import annotations

import errno
import re
from typing import Any, List, NamedTuple, Optional, Tuple

from ..errors import StoreChangedError

__all__ = ["ListedEntry", "checked_range", "get_range", "is_s3", "list_after"]

_CONTENT_RANGE = re.compile(r"bytes \d+-\d+/(\d+)$")


class ListedEntry(NamedTuple):
    """One name of a listing: a file (with its size) or a folder (a common prefix)."""

    name: str
    is_dir: bool
    size: Optional[int]


def is_s3(fs: Any) -> bool:
    """Whether ``fs`` (an fsspec file system) is s3fs's, whose client these functions call."""
    protocols = fs.protocol if isinstance(fs.protocol, (tuple, list)) else (fs.protocol,)
    return "s3" in protocols and hasattr(fs, "_call_s3") and hasattr(fs, "split_path")


def list_after(fs: Any, directory: str, after: str, limit: int) -> Tuple[List[ListedEntry], bool]:
    """The names in ``directory`` that sort after ``after`` (at most ``limit``, in S3's order:
    their UTF-8 bytes), and whether more follow; one ListObjectsV2 request, never cached."""
    bucket, key, _ = fs.split_path(directory)
    prefix = key.strip("/") + "/" if key.strip("/") else ""
    answer = fs.call_s3(
        "list_objects_v2", Bucket=bucket, Prefix=prefix, Delimiter="/", StartAfter=prefix + after, MaxKeys=limit
    )
    folders, files = answer.get("CommonPrefixes", []), answer.get("Contents", [])
    entries = [ListedEntry(p["Prefix"][len(prefix) :].rstrip("/"), True, None) for p in folders]
    entries += [ListedEntry(c["Key"][len(prefix) :], False, int(c["Size"])) for c in files]
    entries.sort(key=lambda e: e.name.encode("utf-8"))
    return entries, bool(answer.get("IsTruncated"))


def get_range(fs: Any, path: str, start: int, end: int) -> Tuple[bytes, Optional[int]]:
    """Bytes ``start:end`` of the file at ``path`` (fewer at its end) in one GET, and the size
    of the whole file as the answer states it (None when it does not).

    A range that starts past the file's end is ``OSError(EINVAL)`` (S3's InvalidRange), a file
    that is not there ``FileNotFoundError``, as s3fs raises them.
    """
    from fsspec.asyn import sync

    return sync(fs.loop, _get_range, fs, path, start, end)


def checked_range(fs: Any, path: str, start: int, end: int, expected: int) -> bytes:
    """``get_range``, for a file that must hold ``expected`` bytes: ``StoreChangedError`` when it
    is missing or the answer states another size (no request of its own: S3 states it anyway)."""
    try:
        data, size = get_range(fs, path, start, end)
    except FileNotFoundError:
        raise StoreChangedError.of(path, "is missing") from None
    except OSError as exc:
        if exc.errno == errno.EINVAL and start < expected:  # InvalidRange: the file ends before ``start``
            raise StoreChangedError.of(path, f"ends before byte {start:,} ({expected:,} bytes when sealed)") from None
        raise
    if size is not None and size != expected:
        raise StoreChangedError.of(path, f"has {size:,} bytes, {expected:,} when sealed")
    return data


async def _get_range(fs: Any, path: str, start: int, end: int) -> Tuple[bytes, Optional[int]]:
    if end <= start:
        raise OSError(errno.EINVAL, f"empty range {start}-{end}", path)
    bucket, key, version = fs.split_path(path)
    extra = {"VersionId": version} if version else {}
    answer = await fs._call_s3("get_object", Bucket=bucket, Key=key, Range=f"bytes={start}-{end - 1}", **extra)
    try:
        data = await answer["Body"].read()
    finally:
        answer["Body"].close()
    stated = _CONTENT_RANGE.match(answer.get("ContentRange") or "")
    if stated:
        return data, int(stated.group(1))
    return data, len(data) if start == 0 and len(data) > end - start else None  # the whole file, unasked
