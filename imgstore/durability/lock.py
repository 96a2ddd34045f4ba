"""The writer's lock on a store: one writer at a time, and a way to tell a live writer from a dead one.

The lock file (``.lock``, as upstream names it) holds an advisory ``flock`` for as long as the
writer lives; the kernel drops it when the process dies, however it dies. The file also records
who wrote it, so a reader can report a writer that died without closing the store (a stale lock).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import stat
import time
from typing import Any, Dict, Optional

from ..errors import StoreLockedError
from ..io.fs import READ_FLAGS, open_regular

try:
    import fcntl
except ImportError:  # Windows: no flock; the lock file alone then marks an unfinished store
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)


class WriterLock:
    """Held by the process writing a store, from creating it until ``close``."""

    def __init__(self, path: str) -> None:
        self.path = path
        #: whether this writer created the lock file (a refused writer must not delete another's)
        self.created = True
        try:
            self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            self.created = False
            self._fd = os.open(path, os.O_RDWR)
        try:
            if fcntl is not None:
                try:
                    fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    self.created = False
                    owner = describe_owner(read_owner(path))
                    raise StoreLockedError(
                        f"{os.path.dirname(path) or '.'} is being written by another process ({owner}); "
                        "refusing to open it for writing"
                    ) from None
            owner = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()}
            os.ftruncate(self._fd, 0)
            os.write(self._fd, json.dumps(owner).encode())
        except BaseException:
            os.close(self._fd)
            self._fd = -1
            if self.created:  # a lock file this writer made but could not fill in (a full disk): none is left
                try:
                    os.remove(path)
                except OSError:
                    pass
            raise

    def release(self, remove: bool = True) -> None:
        """Delete the lock file (a cleanly closed store has none) and drop the lock."""
        if self._fd < 0:
            return
        if remove:
            try:
                os.remove(self.path)
            except FileNotFoundError:
                pass
            except OSError as exc:
                log.warning("could not remove lock file %s: %s", self.path, exc)
        fd, self._fd = self._fd, -1  # closed even when close() reports an error (as the kernel does)
        os.close(fd)


def read_owner(path: str) -> Optional[Dict[str, Any]]:
    """Who took the lock (pid, host, start time), or None when the file says nothing usable."""
    try:  # a FIFO or a device in its place is refused, never waited on or read without end
        with open_regular(path) as f:
            owner = json.loads(f.read(4096) or b"null")
    except (OSError, ValueError, RecursionError):
        return None
    return owner if isinstance(owner, dict) else None


def describe_owner(owner: Optional[Dict[str, Any]]) -> str:
    if not owner:
        return "unknown process"
    started = owner.get("started")
    since = ""
    if isinstance(started, (int, float)):
        since = time.strftime(" since %Y-%m-%d %H:%M:%S", time.localtime(started))
    return f"pid {owner.get('pid', '?')} on {owner.get('host', '?')}{since}"


def writer_state(path: str) -> str:
    """``'none'`` (no lock file), ``'alive'`` (a writer holds it) or ``'stale'`` (its writer died).

    Never blocks and never takes the lock for longer than the test itself.
    """
    try:
        fd = os.open(path, READ_FLAGS)  # without waiting: a FIFO in its place must not hang the reader
    except FileNotFoundError:
        return "none"
    except OSError:
        return "stale"
    try:
        if fcntl is None or not stat.S_ISREG(os.fstat(fd).st_mode):  # a FIFO or device: no writer's lock
            return "stale"
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return "alive"
        fcntl.flock(fd, fcntl.LOCK_UN)
        return "stale"
    finally:
        os.close(fd)
