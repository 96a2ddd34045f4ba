"""The few X11 calls ``imgstore-view`` makes itself, through libX11 and ctypes (no extra package).

OpenCV's window says nothing about the X display, so the viewer asks X directly:

- whether ``$DISPLAY`` opens at all (Qt aborts the process when it does not) and the screen size;
- :meth:`XDisplay.announce_mapped`: tell the viewer's window, once more, that it is mapped.
  opencv-python's bundled Qt 5 xcb plugin sometimes never dispatches the MapNotify event of a new
  window: the X server sends it (an X protocol trace shows it arrive), Qt's own event log never
  shows it. Under Xvfb (no window manager) that happened to about one start in ten of a bare
  ``namedWindow``/``imshow``/``waitKey`` loop. Qt counts a window as exposed only after a
  MapNotify (``QXcbWindow::isExposed`` returns its ``m_mapped``), so it then never copies a frame
  to the screen, Expose events or not, and the window stays black for good. A MapNotify sent
  again, to the window's creator only, sets that right; when Qt had seen the first one, it only
  repaints.

Everything here is optional: without libX11, :meth:`XDisplay.open` returns None and the viewer
goes on without these calls.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import os
import sys
import time
from typing import Callable, Iterator, List, Optional, Tuple

_log = logging.getLogger(__name__)

#: windows looked at, at most, when searching the window tree (a desktop has a few hundred)
MAX_WINDOWS = 5000

_Window = ctypes.c_ulong
_Atom = ctypes.c_ulong
_ERROR_HANDLER = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)
_MAP_NOTIFY = 19
_IS_VIEWABLE = 2


class _XWindowAttributes(ctypes.Structure):
    _fields_ = [
        ("x", ctypes.c_int),
        ("y", ctypes.c_int),
        ("width", ctypes.c_int),
        ("height", ctypes.c_int),
        ("border_width", ctypes.c_int),
        ("depth", ctypes.c_int),
        ("visual", ctypes.c_void_p),
        ("root", _Window),
        ("window_class", ctypes.c_int),
        ("bit_gravity", ctypes.c_int),
        ("win_gravity", ctypes.c_int),
        ("backing_store", ctypes.c_int),
        ("backing_planes", ctypes.c_ulong),
        ("backing_pixel", ctypes.c_ulong),
        ("save_under", ctypes.c_int),
        ("colormap", ctypes.c_ulong),
        ("map_installed", ctypes.c_int),
        ("map_state", ctypes.c_int),
        ("all_event_masks", ctypes.c_long),
        ("your_event_mask", ctypes.c_long),
        ("do_not_propagate_mask", ctypes.c_long),
        ("override_redirect", ctypes.c_int),
        ("screen", ctypes.c_void_p),
    ]


class _XMapEvent(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("serial", ctypes.c_ulong),
        ("send_event", ctypes.c_int),
        ("display", ctypes.c_void_p),
        ("event", _Window),
        ("window", _Window),
        ("override_redirect", ctypes.c_int),
    ]


class _XEvent(ctypes.Union):
    """Xlib's XEvent: any event, padded to 24 longs."""

    _fields_ = [("xmap", _XMapEvent), ("pad", ctypes.c_long * 24)]


def is_x11_platform() -> bool:
    """Whether windows on this platform go through an X server (Linux and the BSDs)."""
    return not (sys.platform in ("win32", "darwin") or sys.platform.startswith("cygwin"))


def _load_xlib() -> Optional[ctypes.CDLL]:
    name = ctypes.util.find_library("X11")
    if not name:
        return None
    try:
        xlib = ctypes.CDLL(name)
    except OSError:
        return None
    xlib.XOpenDisplay.restype = ctypes.c_void_p
    xlib.XOpenDisplay.argtypes = [ctypes.c_char_p]
    for fn in (xlib.XDefaultScreen, xlib.XCloseDisplay, xlib.XFlush):
        fn.argtypes = [ctypes.c_void_p]
    for fn in (xlib.XDisplayWidth, xlib.XDisplayHeight):
        fn.argtypes = [ctypes.c_void_p, ctypes.c_int]
    xlib.XDefaultRootWindow.restype = _Window
    xlib.XDefaultRootWindow.argtypes = [ctypes.c_void_p]
    xlib.XInternAtom.restype = _Atom
    xlib.XInternAtom.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
    xlib.XQueryTree.argtypes = [
        ctypes.c_void_p,
        _Window,
        ctypes.POINTER(_Window),
        ctypes.POINTER(_Window),
        ctypes.POINTER(ctypes.POINTER(_Window)),
        ctypes.POINTER(ctypes.c_uint),
    ]
    xlib.XGetWindowProperty.argtypes = [
        ctypes.c_void_p,
        _Window,
        _Atom,
        ctypes.c_long,
        ctypes.c_long,
        ctypes.c_int,
        _Atom,
        ctypes.POINTER(_Atom),
        ctypes.POINTER(ctypes.c_int),
        ctypes.POINTER(ctypes.c_ulong),
        ctypes.POINTER(ctypes.c_ulong),
        ctypes.POINTER(ctypes.c_void_p),
    ]
    xlib.XFree.argtypes = [ctypes.c_void_p]
    xlib.XGetWindowAttributes.argtypes = [ctypes.c_void_p, _Window, ctypes.POINTER(_XWindowAttributes)]
    xlib.XSendEvent.argtypes = [ctypes.c_void_p, _Window, ctypes.c_int, ctypes.c_long, ctypes.POINTER(_XEvent)]
    xlib.XSync.argtypes = [ctypes.c_void_p, ctypes.c_int]
    xlib.XSetErrorHandler.restype = ctypes.c_void_p
    xlib.XSetErrorHandler.argtypes = [ctypes.c_void_p]
    return xlib


class DisplayError(Exception):
    """``$DISPLAY`` is unset or does not open."""


class XDisplay:
    """A connection of our own to the X display named by ``$DISPLAY`` (a context manager)."""

    def __init__(self, xlib: ctypes.CDLL, dpy: int) -> None:
        self._xlib = xlib
        self._dpy = dpy

    @classmethod
    def open(cls) -> Optional[XDisplay]:
        """The display, or None when libX11 is not there. Raises :class:`DisplayError` when it does not open."""
        display = os.environ.get("DISPLAY", "")
        if not display:
            raise DisplayError("no display (DISPLAY is not set)")
        xlib = _load_xlib()
        if xlib is None:
            return None
        dpy = xlib.XOpenDisplay(display.encode())
        if not dpy:
            raise DisplayError(f"cannot open display {display!r}")
        return cls(xlib, dpy)

    def close(self) -> None:
        if self._dpy:
            self._xlib.XCloseDisplay(self._dpy)
            self._dpy = 0

    def __enter__(self) -> XDisplay:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def screen_size(self) -> Tuple[int, int]:
        """Width and height of the default screen, in pixels."""
        screen = self._xlib.XDefaultScreen(self._dpy)
        return int(self._xlib.XDisplayWidth(self._dpy, screen)), int(self._xlib.XDisplayHeight(self._dpy, screen))

    def windows_of(self, pid: int) -> List[int]:
        """The viewable windows of process ``pid``, by their ``_NET_WM_PID`` property (Qt and GTK set it).

        The search stops descending at a match, so a top-level window's own children are not
        listed; unmapped helper windows (Qt's client leader and selection owner) are left out.
        """
        if not self._dpy:
            return []
        with self._errors_ignored():
            wm_pid = self._xlib.XInternAtom(self._dpy, b"_NET_WM_PID", 0)
            found = self._find(self._xlib.XDefaultRootWindow(self._dpy), lambda w: self._cardinal(w, wm_pid) == pid)
            return [w for w in found if self._viewable(w) is not None]

    def announce_mapped(self, window: int) -> bool:
        """Send ``window``'s creator a MapNotify event for it, if the window is viewable; whether one was sent.

        The event goes to the client that created the window only (event mask 0): neither the
        window manager nor anyone else sees it. A window that is not viewable (not mapped yet,
        iconified, gone) gets nothing: its real MapNotify is still to come.
        """
        if not self._dpy:
            return False
        with self._errors_ignored():
            attributes = self._viewable(window)
            if attributes is None:
                return False
            event = _XEvent()
            event.xmap.type = _MAP_NOTIFY
            event.xmap.event = window
            event.xmap.window = window
            event.xmap.override_redirect = attributes.override_redirect
            sent = bool(self._xlib.XSendEvent(self._dpy, window, 0, 0, ctypes.byref(event)))
            self._xlib.XSync(self._dpy, 0)
        return sent

    @contextlib.contextmanager
    def _errors_ignored(self) -> Iterator[None]:
        """X errors (a window that went away meanwhile) are ignored, not fatal, inside this block.

        Xlib's default handler would end the process; the handler that was there (Qt's) is put back.
        """
        ignored = _ERROR_HANDLER(lambda _dpy, _event: 0)
        previous = self._xlib.XSetErrorHandler(ctypes.cast(ignored, ctypes.c_void_p))
        try:
            yield
            self._xlib.XSync(self._dpy, 0)  # errors arrive late: let them reach our handler
        finally:
            self._xlib.XSetErrorHandler(previous)

    def _viewable(self, window: int) -> Optional[_XWindowAttributes]:
        attributes = _XWindowAttributes()
        if not self._xlib.XGetWindowAttributes(self._dpy, window, ctypes.byref(attributes)):
            return None
        return attributes if attributes.map_state == _IS_VIEWABLE else None

    def _find(self, root: int, match: Callable[[int], bool]) -> List[int]:
        """Windows under ``root`` that ``match`` (not looking inside a matching window)."""
        found: List[int] = []
        pending = [root]
        seen = 0
        while pending and seen < MAX_WINDOWS:
            for child in self._children(pending.pop()):
                seen += 1
                if match(child):
                    found.append(child)
                else:
                    pending.append(child)
        return found

    def _children(self, window: int) -> List[int]:
        root, parent = _Window(), _Window()
        children = ctypes.POINTER(_Window)()
        count = ctypes.c_uint()
        if not self._xlib.XQueryTree(self._dpy, window, root, parent, ctypes.byref(children), count):
            return []
        try:
            return [int(children[i]) for i in range(count.value)]
        finally:
            if children:
                self._xlib.XFree(children)

    def _property(self, window: int, atom: int) -> Tuple[int, bytes]:
        """A property's format (8, 16 or 32; 0 when absent) and its raw bytes (at most 4 kB)."""
        actual_type, actual_format = _Atom(), ctypes.c_int()
        nitems, after = ctypes.c_ulong(), ctypes.c_ulong()
        data = ctypes.c_void_p()
        status = self._xlib.XGetWindowProperty(
            self._dpy, window, atom, 0, 1024, 0, 0, actual_type, actual_format, nitems, after, ctypes.byref(data)
        )  # req_type 0 = AnyPropertyType
        if status != 0 or not data.value:
            return 0, b""
        try:
            fmt = actual_format.value
            # Xlib returns 32-bit items as C longs
            size = {8: 1, 16: ctypes.sizeof(ctypes.c_short), 32: ctypes.sizeof(ctypes.c_long)}.get(fmt, 0)
            return fmt, ctypes.string_at(data.value, size * nitems.value)
        finally:
            self._xlib.XFree(data)

    def _cardinal(self, window: int, atom: int) -> Optional[int]:
        fmt, raw = self._property(window, atom)
        if fmt != 32 or len(raw) < ctypes.sizeof(ctypes.c_long):
            return None
        return ctypes.c_long.from_buffer_copy(raw[: ctypes.sizeof(ctypes.c_long)]).value


#: seconds after a window opens at which it is told again that it is mapped (see MapReminder)
MAP_REMINDERS = (0.0, 0.5, 2.0)


def opencv_uses_qt() -> bool:
    """Whether OpenCV's windows are Qt's (opencv-python's wheels); GTK builds do not lose the event."""
    import cv2

    framework = getattr(cv2, "currentUIFramework", None)
    return framework is not None and str(framework()).upper().startswith("QT")


class MapReminder:
    """Tells this process's windows, a few times in their first seconds, that they are mapped.

    For OpenCV's Qt windows on X11 (see :meth:`XDisplay.announce_mapped`); elsewhere it does
    nothing. Create it once the window exists and call :meth:`tick` after each ``waitKey``
    (Qt must have run its event loop once before a reminder helps).
    """

    def __init__(self, xdisplay: Optional[XDisplay], schedule: Tuple[float, ...] = MAP_REMINDERS) -> None:
        self._xdisplay = xdisplay
        self._started = time.monotonic()
        self._due = list(schedule) if xdisplay is not None and opencv_uses_qt() else []
        self._windows: List[int] = []

    def stop(self) -> None:
        """No more reminders (the window, or the display, is about to close)."""
        self._due = []

    def tick(self) -> None:
        """Send the reminder that is due, if any."""
        if not self._due or self._xdisplay is None or time.monotonic() - self._started < self._due[0]:
            return
        self._due.pop(0)
        if not self._windows:
            self._windows = self._xdisplay.windows_of(os.getpid())
        told = sum(self._xdisplay.announce_mapped(w) for w in self._windows)
        _log.debug("told %d of %d window(s) again that they are mapped", told, len(self._windows))
