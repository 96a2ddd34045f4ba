"""OpenCV windows sized to the screen, at upstream's import path ``imgstore.ui``.

``new_window`` makes a named OpenCV window no larger than a fraction of the screen and
returns a small ``Window`` handle. The screen size comes from the X server on Linux and
the BSDs (the connection ``imgstore.apps._x11`` makes for the viewer), from
``system_profiler`` on macOS and from ``GetSystemMetrics`` on Windows; it is asked once per
process. Importing ``imgstore`` does not import this module.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import re
import subprocess
import sys
import weakref
from typing import Any, Optional, Sequence, Tuple

import cv2

from .apps._x11 import DisplayError, MapReminder, XDisplay, is_x11_platform, opencv_uses_qt

__all__ = ["Window", "fit_window", "get_and_parse_screen_resolution", "get_screen_resolution", "new_window"]

_log = logging.getLogger(__name__)

_IS_MAC = sys.platform == "darwin"
#: seconds a screen-size helper program (``system_profiler``, ``xrandr``) may take
PROBE_TIMEOUT_S = 10.0
_MAC_RESOLUTION = re.compile(r"Resolution:\s*(\d+)\s*x\s*(\d+)")
_XRANDR_CURRENT = re.compile(r"^\s*(\d+)x(\d+)\S*\s.*\*")


class Window:
    """A window made by ``new_window``: its name, its size, and OpenCV's calls for it.

    ``str(window)`` is the window's name, so the handle can stand in for the name in
    ``cv2.imshow(str(window), img)``.
    """

    def __init__(self, name: str, flags: int, size: Optional[Tuple[int, int]], sizing: str) -> None:
        self.name = name
        self.flags = flags
        self._size = size
        self._sizing = sizing  # 'WxH', 'auto' (the window takes the image's size) or 'unknown'
        self._resized_after_show = False
        self._reminder: Optional[MapReminder] = None
        self._release_display: Optional[weakref.finalize] = None

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"<Window {self.name!r} size={self._sizing} flags={self.flags:#b}>"

    @property
    def size(self) -> Optional[Tuple[int, int]]:
        """The ``(width, height)`` the window was given, or None (autosized or unsized)."""
        return self._size

    def imshow(self, *args: Any, **kwargs: Any) -> None:
        """``cv2.imshow(winname, mat)``; ``imshow(mat)`` alone shows ``mat`` in this window."""
        if len(args) == 1 and not kwargs and not isinstance(args[0], str):
            args = (self.name, args[0])
        cv2.imshow(*args, **kwargs)
        # macOS sizes a window only once it has shown an image
        if _IS_MAC and self._size is not None and not self._resized_after_show:
            cv2.resizeWindow(self.name, *self._size)
            self._resized_after_show = True

    def waitKey(self, *args: Any, **kwargs: Any) -> int:
        """``cv2.waitKey(delay)``: run the GUI event loop, return the key pressed or -1."""
        key = cv2.waitKey(*args, **kwargs)
        if self._reminder is not None:
            self._reminder.tick()
        return key

    def destroy(self) -> None:
        """Close the window (``cv2.destroyWindow``)."""
        if self._reminder is not None:
            self._reminder.stop()
        if self._release_display is not None:
            self._release_display()
        try:
            cv2.destroyWindow(self.name)
        except cv2.error:
            pass

    def _remind_mapped(self, xdisplay: XDisplay) -> None:
        """Keep ``xdisplay`` to tell Qt, in the window's first seconds, that it is mapped."""
        self._reminder = MapReminder(xdisplay)
        self._release_display = weakref.finalize(self, xdisplay.close)


# ----------------------------------------------------------------------------------------------
# the screen
# ----------------------------------------------------------------------------------------------
def _x11_screen() -> Optional[Tuple[int, int]]:
    """The X screen's size, from the X server itself, else from ``xrandr``'s current mode."""
    xdisplay = XDisplay.open()  # DisplayError: no $DISPLAY, or it does not open
    if xdisplay is not None:
        with xdisplay:
            return xdisplay.screen_size()
    out = subprocess.run(["xrandr"], capture_output=True, text=True, timeout=PROBE_TIMEOUT_S, check=True).stdout
    for line in out.splitlines():
        m = _XRANDR_CURRENT.match(line)
        if m:
            return int(m.group(1)), int(m.group(2))
    return None


def _mac_screen() -> Optional[Tuple[int, int]]:
    out = subprocess.run(
        ["system_profiler", "SPDisplaysDataType"], capture_output=True, text=True, timeout=PROBE_TIMEOUT_S, check=True
    ).stdout
    m = _MAC_RESOLUTION.search(out)
    return (int(m.group(1)), int(m.group(2))) if m else None


def _windows_screen() -> Optional[Tuple[int, int]]:
    import ctypes

    metrics = ctypes.windll.user32.GetSystemMetrics  # type: ignore[attr-defined]
    return int(metrics(0)), int(metrics(1))  # SM_CXSCREEN, SM_CYSCREEN


@functools.cache
def get_screen_resolution() -> str:
    """The screen size in pixels as ``'WIDTHxHEIGHT'``, or ``''`` when it cannot be found.

    Asked once per process; later calls return the same answer (``get_screen_resolution.cache_clear()``
    asks again). Without a display (``$DISPLAY`` unset or dead) the answer is ``''``.
    """
    if _IS_MAC:
        probe = _mac_screen
    elif sys.platform == "win32":
        probe = _windows_screen
    else:
        probe = _x11_screen
    try:
        size = probe()
    except (DisplayError, OSError, subprocess.SubprocessError, ValueError, AttributeError) as exc:
        _log.warning("could not detect the screen resolution: %s", exc)
        return ""
    if not size or min(size) <= 0:
        _log.warning("could not detect the screen resolution")
        return ""
    return f"{size[0]}x{size[1]}"


def get_and_parse_screen_resolution(scale: float = 1.0, default: Sequence[float] = (1024, 768)) -> Tuple[int, int]:
    """The screen's ``(width, height)`` times ``scale``, as whole pixels; ``default`` when unknown."""
    width, height = default
    text = get_screen_resolution()
    if text:
        try:
            width, height = (float(part) for part in text.split("x"))
        except ValueError:
            _log.warning("could not parse the screen resolution %r", text)
    else:
        _log.debug("screen resolution unknown: using %sx%s", width, height)
    return int(float(scale) * width), int(float(scale) * height)


# ----------------------------------------------------------------------------------------------
# windows
# ----------------------------------------------------------------------------------------------
def _open_display_for_window(name: str) -> Optional[XDisplay]:
    """A connection to the X display the window will be on, checked before OpenCV opens it.

    OpenCV's Qt backend aborts the whole process when the display does not open; this raises
    ``cv2.error`` instead, as OpenCV's GTK backend does. None off X11 (or under Wayland with a
    GTK build), or without libX11.
    """
    if not is_x11_platform() or (os.environ.get("WAYLAND_DISPLAY") and not opencv_uses_qt()):
        return None
    try:
        return XDisplay.open()
    except DisplayError as exc:
        raise cv2.error(f"cannot open window {name!r}: {exc}") from None


def fit_window(size: Tuple[float, float], screen: Tuple[int, int], fraction: float = 1.0) -> Tuple[int, int]:
    """``size`` (w, h), shrunk keeping its aspect ratio to at most ``fraction`` of ``screen``."""
    w, h = size
    sw, sh = screen[0] * fraction, screen[1] * fraction
    factor = min(1.0, sw / w, sh / h)
    return max(1, int(w * factor)), max(1, int(h * factor))


def _window_size(size: Tuple[float, float], screen_relative_size: float) -> Optional[Tuple[int, int]]:
    """The size to give a window asked to be ``size`` (None: leave it as OpenCV makes it)."""
    w, h = (float(v) for v in size[:2])
    if math.isnan(w) or math.isnan(h) or w <= 0 or h <= 0:
        return None
    screen = get_and_parse_screen_resolution(scale=screen_relative_size, default=(1024, 768))
    if math.isinf(w) or math.isinf(h):
        return screen
    return fit_window((w, h), screen, fraction=1.0)


def new_window(
    name: str,
    size: Optional[Tuple[float, float]] = None,
    expanded_ui: bool = True,
    shape: Optional[Sequence[int]] = None,
    screen_relative_size: float = 0.75,
) -> Window:
    """Open the OpenCV window ``name`` and return a ``Window`` for it.

    With a ``size`` (width, height) or an image ``shape`` (height, width, ...) the window is
    resizable and sized to that, shrunk keeping its aspect ratio to fit ``screen_relative_size``
    of the screen; an infinite size fills that fraction of the screen, and a zero or NaN size
    leaves the window at OpenCV's size. Without either, the window takes the size of the image
    it shows and cannot be resized. ``expanded_ui`` adds OpenCV's toolbar and status bar (Qt).
    Raises ``cv2.error`` when there is no display to open the window on.
    """
    if shape is not None:
        size = (shape[1], shape[0])
    flags = cv2.WINDOW_GUI_EXPANDED if expanded_ui else cv2.WINDOW_GUI_NORMAL
    flags |= cv2.WINDOW_AUTOSIZE if size is None else cv2.WINDOW_NORMAL

    xdisplay = _open_display_for_window(name)
    try:
        cv2.namedWindow(name, flags)
        fitted = None
        if size is None:
            sizing = "auto"
        else:
            fitted = _window_size(size, screen_relative_size)
            sizing = "unknown" if fitted is None else f"{fitted[0]}x{fitted[1]}"
        if fitted is not None:
            cv2.resizeWindow(name, *fitted)
    except BaseException:
        if xdisplay is not None:
            xdisplay.close()
        raise

    window = Window(name, flags, fitted, sizing)
    if xdisplay is not None:
        if opencv_uses_qt():
            window._remind_mapped(xdisplay)
        else:
            xdisplay.close()
    _log.debug("opened %r", window)
    return window
