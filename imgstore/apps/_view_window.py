"""The viewer's OpenCV window: opened at the canvas size (shrunk to fit the screen), on our own X connection.

Apart from the player and the status bar because it is the only part that needs a display.
"""

from __future__ import annotations

import re
from typing import Optional, Tuple

import cv2
import numpy as np

from ..ui import fit_window
from ._cli import ToolError
from ._x11 import DisplayError, MapReminder, XDisplay, is_x11_platform

WINDOW_NAME = "imgstore-view"
#: the window is made no larger than this fraction of the screen (upstream's 75 %)
SCREEN_FRACTION = 0.75
DEFAULT_SCREEN = (1024, 768)


def open_display(path: str) -> Optional[XDisplay]:
    """Our own connection to the X display (None off X11 or without libX11: OpenCV finds out itself).

    Checks that the display opens before OpenCV tries: Qt would abort the whole process otherwise.
    """
    if not is_x11_platform():
        return None
    try:
        return XDisplay.open()
    except DisplayError as exc:
        raise ToolError(f"cannot show {path}: {exc}") from None


def _cv2_message(exc: Exception) -> str:
    """An OpenCV error in one line."""
    msg = getattr(exc, "err", None) or str(exc)
    lines = [line.strip() for line in str(msg).splitlines() if line.strip()]
    return lines[-1] if lines else type(exc).__name__


NO_GUI_HINT = (
    "this OpenCV has no windows (opencv-python-headless?): "
    "pip uninstall -y opencv-python-headless && pip install opencv-python"
)


def opencv_has_gui() -> bool:
    """Whether this OpenCV build can open windows (``opencv-python-headless`` cannot)."""
    match = re.search(r"^\s*GUI:\s*(\S+)", cv2.getBuildInformation(), re.MULTILINE)
    return match is None or match.group(1).upper() != "NONE"


class Window:
    """The OpenCV window: created at the canvas size (shrunk to fit the screen).

    With OpenCV's Qt backend on X11 the window is told again that it is mapped, after its first
    frame and twice more in its first seconds: Qt 5's xcb plugin sometimes loses a new window's
    MapNotify event, and then never copies a frame to the screen (see :mod:`imgstore.apps._x11`).
    """

    def __init__(self, title: str, canvas_size: Tuple[int, int], xdisplay: Optional[XDisplay]) -> None:
        self.name = WINDOW_NAME
        self._xdisplay = xdisplay
        if not opencv_has_gui():
            raise ToolError(f"cannot show {title}: {NO_GUI_HINT}")
        try:
            cv2.namedWindow(self.name, cv2.WINDOW_NORMAL | cv2.WINDOW_KEEPRATIO | cv2.WINDOW_GUI_NORMAL)
        except cv2.error as exc:
            raise ToolError(f"cannot show {title}: cannot open a window: {_cv2_message(exc)}") from None
        self.open = True
        self._reminder = MapReminder(xdisplay)
        try:
            cv2.setWindowTitle(self.name, title)
        except cv2.error:
            pass
        screen = xdisplay.screen_size() if xdisplay is not None else DEFAULT_SCREEN
        w, h = fit_window(canvas_size, screen, SCREEN_FRACTION)
        cv2.resizeWindow(self.name, w, h)

    def show(self, canvas: np.ndarray) -> None:
        cv2.imshow(self.name, canvas)

    def wait_key(self, ms: int) -> int:
        key = cv2.waitKeyEx(max(1, int(ms)))
        self._reminder.tick()
        return key

    def closed_by_user(self) -> bool:
        try:
            return cv2.getWindowProperty(self.name, cv2.WND_PROP_VISIBLE) < 1
        except cv2.error:
            return True

    def close(self) -> None:
        if self.open:
            self.open = False
            try:
                cv2.destroyWindow(self.name)
                cv2.waitKey(1)
            except cv2.error:
                pass
        self._reminder.stop()
        if self._xdisplay is not None:
            self._xdisplay.close()
            self._xdisplay = None
