"""Putting a store's own files on the disk (``fsync``), without syncing the whole machine.

``os.sync()`` would flush every file system of the machine: slow with unrelated disk traffic,
and more than a store needs. Here each file a writer wrote, and the folders that list them, are
synced one by one.
"""

from __future__ import annotations

import os

__all__ = ["fsync_path"]


def fsync_path(path: str) -> None:
    """Ask the operating system to put ``path`` (a file, or a folder and its entries) on the disk.

    A folder cannot be synced on Windows; there the call does nothing for one.
    """
    if os.name == "nt" and os.path.isdir(path):
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
