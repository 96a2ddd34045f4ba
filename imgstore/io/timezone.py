"""Time zones and the store's creation time, including the rules for stores that predate them."""

from __future__ import annotations

import datetime
import logging
import os
import re
from typing import Callable, Optional, Tuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import tzlocal

log = logging.getLogger(__name__)

_STAMP_RE = re.compile(r"(20\d{6}_\d{6})")


def get_local_timezone() -> str:
    """The IANA name of this machine's zone ('UTC' when it cannot be determined)."""
    try:
        name = tzlocal.get_localzone_name()
    except Exception as exc:  # tzlocal raises its own error types for broken setups
        log.warning("could not determine the local time zone (%s); using UTC", exc)
        name = None
    return name or "UTC"


def get_local_timezone_zoneinfo() -> ZoneInfo:
    """This machine's zone as a ``ZoneInfo``."""
    return zone_or_none(get_local_timezone()) or ZoneInfo("UTC")


def zone_or_none(name: object) -> Optional[ZoneInfo]:
    """``ZoneInfo(name)``, or None when ``name`` is not a known IANA zone."""
    if not isinstance(name, str) or not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def utc_now_naive_iso() -> str:
    """The current UTC instant as a naive ISO-8601 string (how ``created_utc`` is stored)."""
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None).isoformat()


def parse_created_utc(text: object) -> Optional[datetime.datetime]:
    """Parse a stored ``created_utc`` into an aware UTC datetime; naive values mean UTC."""
    if isinstance(text, datetime.datetime):
        dt = text
    elif isinstance(text, str):
        try:
            dt = datetime.datetime.fromisoformat(text.strip())
        except ValueError:
            return None
    else:
        return None
    if dt.tzinfo is None:
        return dt.replace(tzinfo=datetime.timezone.utc)
    return dt.astimezone(datetime.timezone.utc)


def synthesize_created(
    store_dir: str, metadata_mtime: Callable[[], float], user_tz_name: object
) -> Tuple[datetime.datetime, ZoneInfo]:
    """Creation time of an old store that lacks ``created_utc``.

    The zone is the user-metadata ``timezone`` if valid, else the local zone. The instant comes
    from a ``YYYYmmdd_HHMMSS`` stamp in the directory name (local time in that zone), else from
    the modification time of metadata.yaml (``metadata_mtime``, asked only then).
    """
    tz = zone_or_none(user_tz_name) or get_local_timezone_zoneinfo()
    # the last stamp in the name counts (a name may carry the date of an earlier session first)
    stamps = _STAMP_RE.findall(os.path.basename(os.path.normpath(os.path.abspath(store_dir))))
    if stamps:
        try:
            naive = datetime.datetime.strptime(stamps[-1], "%Y%m%d_%H%M%S")
            return naive.replace(tzinfo=tz).astimezone(datetime.timezone.utc), tz
        except ValueError:
            pass  # e.g. month 13: not a stamp after all
    return datetime.datetime.fromtimestamp(metadata_mtime(), tz=datetime.timezone.utc), tz
