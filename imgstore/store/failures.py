"""How a failed write is reported: which frames were not written or lost, and why, in a few words."""

from __future__ import annotations

import errno
import os
from typing import Any, List, Optional, Sequence

from ..errors import StoreWriteError

#: free space below which a failed write without an errno is reported as a full disk
DISK_FULL_BYTES = 1 << 20


def os_reason(exc: OSError, directory: Optional[str] = None) -> str:
    """An OS error in a few words: 'No space left on device' rather than a traceback.

    Some writers report a full disk without an errno (numpy: "12288 requested and 8064
    written"); when the store's disk has no room left, the reason says so.
    """
    reason = exc.strerror or str(exc) or type(exc).__name__
    if exc.errno is None and directory is not None:
        try:
            st = os.statvfs(directory)
        except (OSError, AttributeError):
            return reason
        if st.f_bavail * st.f_frsize < DISK_FULL_BYTES:
            return f"{os.strerror(errno.ENOSPC)}: {reason}"
    return reason


def describe_numbers(numbers: Sequence[Any], most: int = 20) -> str:
    """Frame numbers for a message: ``#5, #6, #7`` (runs of consecutive ones as ``#5-#7``)."""
    runs: List[List[Any]] = []
    for n in numbers:
        if runs and isinstance(n, int) and isinstance(runs[-1][-1], int) and n == runs[-1][-1] + 1:
            runs[-1].append(n)
        else:
            runs.append([n])
    parts = [f"#{r[0]}" if len(r) == 1 else f"#{r[0]}-#{r[-1]}" for r in runs]
    if len(parts) > most:
        parts = [*parts[:most], f"and {len(parts) - most} more runs"]
    return ", ".join(parts)


def write_error(
    basedir: str, problem: str, lost: Sequence[Any], not_written: Optional[str] = None, frame_number: Any = None
) -> StoreWriteError:
    """A ``StoreWriteError`` saying what was not written and naming the frames lost with it."""
    message = f"store {basedir}: {problem}"
    if not_written is not None:
        message += f"; {not_written} was not added"
    if lost:
        message += f"; {len(lost)} frames added before were lost: {describe_numbers(lost)}"
    else:
        message += "; every frame added before is kept"
    error = StoreWriteError(message)
    error.frame_number = frame_number
    error.lost_frames = tuple(lost)
    return error


def creation_error(basedir: str, exc: OSError) -> StoreWriteError:
    """A failure to create a store, naming its directory and the reason (nothing of it is left)."""
    error = StoreWriteError(f"cannot create store {basedir} ({os_reason(exc, os.path.dirname(basedir) or '.')})")
    error.frame_number, error.lost_frames = None, ()
    return error
