"""When a plain video's first frame was taken: frame times of a video opened as a store start there.

In order of trust: the time the caller gives (``start_time=``); the container's ``creation_time``
tag, which cameras and most muxers write; a date and time in the file's name, as archives name
their files (``CAMHDA301-20161113T000000Z.mov``; the pattern can be changed); last, the time
the file was last modified (on this disk, or as the server says).
"""

from __future__ import annotations

import datetime
import logging
import os
import re
from typing import Any, Callable, Optional, Pattern, Union

from ..errors import ImgStoreError

log = logging.getLogger(__name__)

__all__ = ["NAME_TIME_PATTERN", "video_start_time"]

#: a date and time in a file name: ``20161113T000000Z``, ``2016-11-13T00-00-00``, ``20161113_000000.250``.
#: Groups: Y m d H M S, optional f (a fraction of a second) and z (``Z`` or ``+HH:MM``; no zone: local time)
NAME_TIME_PATTERN = (
    r"(?P<Y>\d{4})-?(?P<m>\d{2})-?(?P<d>\d{2})[T_ -]?(?P<H>\d{2})[:-]?(?P<M>\d{2})[:-]?(?P<S>\d{2})"
    r"(?P<f>\.\d{1,9})?(?P<z>Z|[+-]\d{2}:?\d{2})?"
)
_NAME_GROUPS = ("Y", "m", "d", "H", "M", "S")


def video_start_time(
    container: Any,
    path: str,
    given: Optional[Any] = None,
    name_pattern: Union[str, Pattern[str], None] = NAME_TIME_PATTERN,
    modified: Optional[Callable[[], float]] = None,
    name: Optional[str] = None,
) -> float:
    """The first frame's time (seconds since the epoch) of the video ``path``, open as ``container``.

    ``given`` (seconds, or a ``datetime``; naive is local time) wins; then the creation tag; then
    ``name_pattern`` in the file's name (``name``; by default the last part of ``path``; None:
    names are not looked at); then ``modified()`` (the file's modification time; local files by
    default).
    """
    if given is not None:
        return _epoch(given, path)
    tagged = _creation_tag(container, path)
    if tagged is not None:
        return tagged
    named = time_in_name(name or path, name_pattern) if name_pattern is not None else None
    if named is not None:
        return named
    return modified() if modified is not None else os.stat(path).st_mtime


def _epoch(value: Any, path: str) -> float:
    if isinstance(value, datetime.datetime):
        return value.timestamp()  # a naive one is in this machine's time zone, as everywhere in the tools
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise ImgStoreError(f"{path}: start_time {value!r} is neither seconds since the epoch nor a datetime") from None
    if seconds != seconds or seconds in (float("inf"), float("-inf")):
        raise ImgStoreError(f"{path}: start_time {value!r} is not a time")
    return seconds


def _creation_tag(container: Any, path: str) -> Optional[float]:
    """The container's ``creation_time`` tag, None when it has none or says "unknown" (1970, 1904)."""
    tag = (container.metadata or {}).get("creation_time")
    if not tag:
        return None
    try:
        created = datetime.datetime.fromisoformat(tag.replace("Z", "+00:00"))
    except ValueError:
        log.debug("%s: unreadable creation_time %r", path, tag)
        return None
    if created.tzinfo is None:
        created = created.replace(tzinfo=datetime.timezone.utc)
    return created.timestamp() if created.year > 1970 else None


def time_in_name(path: str, pattern: Union[str, Pattern[str]] = NAME_TIME_PATTERN) -> Optional[float]:
    """The last date and time ``pattern`` finds in the file's name (see ``NAME_TIME_PATTERN``), or None.

    A pattern without the groups Y m d H M S is refused (``ImgStoreError``): it could not give a time.
    """
    regex = re.compile(pattern) if isinstance(pattern, str) else pattern
    missing = [group for group in _NAME_GROUPS if group not in regex.groupindex]
    if missing:
        raise ImgStoreError(f"start time pattern {regex.pattern!r} lacks the group(s) {', '.join(missing)}")
    name = path.rstrip("/").rsplit("/", 1)[-1]
    matches = list(regex.finditer(name))
    for match in reversed(matches):  # the last stamp in a name is the file's own (not its folder's run)
        found = match.groupdict()
        try:
            when = datetime.datetime(*(int(found[group]) for group in _NAME_GROUPS))
        except ValueError:  # 20161399T... is no date
            continue
        fraction = found.get("f")
        if fraction:
            when += datetime.timedelta(seconds=float(fraction))
        when = when.replace(tzinfo=_zone(found.get("z")))
        log.info("%s: frame times start at %s, the time in its name", path, when.isoformat())
        return when.timestamp()
    return None


def _zone(text: Optional[str]) -> Optional[datetime.tzinfo]:
    """``Z`` or ``+HH:MM`` as a time zone; None (this machine's local time) without one."""
    if not text:
        return None
    if text == "Z":
        return datetime.timezone.utc
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    return datetime.timezone(sign * datetime.timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
