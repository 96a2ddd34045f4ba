"""OpenCV, imported on first use.

``import imgstore`` does not load OpenCV: it costs a tenth of a second, and opencv-python needs
system libraries (libGL and others) that a bare machine or a slim container lacks. Stores whose
formats do not need OpenCV (npy, bpk and the PyAV video formats) then work without them; the
first use of OpenCV raises one error that names what to install.

Use ``from ._opencv import cv2`` and call ``cv2.<name>`` as usual.
"""

from __future__ import annotations

import importlib
import sys
import threading
from types import ModuleType
from typing import Any, Optional

from .errors import MissingDependencyError

#: shared libraries opencv-python loads, and the Debian/Ubuntu packages that provide them
SYSTEM_LIBRARIES = {
    "libGL.so.1": "libgl1",
    "libgthread-2.0.so.0": "libglib2.0-0",
    "libglib-2.0.so.0": "libglib2.0-0",
    "libSM.so.6": "libsm6",
    "libICE.so.6": "libice6",
    "libXext.so.6": "libxext6",
}


class OpenCVUnavailable(MissingDependencyError):
    """OpenCV cannot be imported here; the message says what to install."""


def describe_import_error(exc: ImportError) -> str:
    """Why ``import cv2`` failed, as one message naming the package to install."""
    text = str(exc)
    for library, package in SYSTEM_LIBRARIES.items():
        if library in text:
            return (
                f"OpenCV (opencv-python) cannot load {library}, a system library it needs: "
                f"`apt-get install {package}` (Debian/Ubuntu; the README lists every system package the tests "
                "use), or on a machine without a display swap in OpenCV's headless build: `pip uninstall -y "
                f"opencv-python && pip install opencv-python-headless`; the error was: {text}"
            )
    return f"OpenCV cannot be imported (pip install opencv-python): {text}"


class _NeverRaised(Exception):
    """Stands for ``cv2.error`` while OpenCV is not loaded (so that no OpenCV call has raised it)."""


class _LazyOpenCV:
    """Stands for the ``cv2`` module; imports it when an attribute is first asked for."""

    def __init__(self) -> None:
        self._module: Optional[ModuleType] = None
        self._problem: Optional[str] = None  # why the import failed (tried once: it fails the same way again)
        self._lock = threading.Lock()

    def _load(self) -> ModuleType:
        with self._lock:
            if self._module is None and self._problem is None:
                try:
                    self._module = importlib.import_module("cv2")
                except ImportError as exc:
                    self._problem = describe_import_error(exc)
            if self._module is None:
                raise OpenCVUnavailable(self._problem)
            return self._module

    def __getattr__(self, name: str) -> Any:
        if name == "error" and self._module is None and (self._problem is not None or "cv2" not in sys.modules):
            # ``except cv2.error`` beside other errors (a frame file that cannot be written) must
            # not load OpenCV, nor fail without it: until OpenCV is loaded, nothing raises its error
            return _NeverRaised
        module = self._module if self._module is not None else self._load()
        return getattr(module, name)

    def __dir__(self) -> list:
        return dir(self._load())


#: the ``cv2`` module, loaded on first attribute access
cv2: Any = _LazyOpenCV()


def mark_unavailable(problem: str) -> None:
    """Treat OpenCV as missing for ``problem`` (the test set-up does, when ``cv2`` cannot load and a
    stand-in takes its name)."""
    with cv2._lock:
        cv2._module, cv2._problem = None, problem


def opencv_problem() -> Optional[str]:
    """Why OpenCV cannot be used here (what to install), or None when it loads."""
    try:
        cv2._load()
    except OpenCVUnavailable as exc:
        return str(exc)
    return None
