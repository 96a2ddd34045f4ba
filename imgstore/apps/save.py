"""``imgstore-save DEST --source ...``: record a camera, or convert a video, a store or images, into a new store.

Decoding and encoding overlap: a reader thread decodes the source into a bounded queue while the
main thread writes the store. Ctrl-C (or SIGTERM) stops between two frames and closes the store,
so that everything written so far stays readable (exit status 130).
"""

from __future__ import annotations

import argparse
import itertools
import logging
import os
import queue
import signal
import sys
import threading
import time
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

from ..errors import ImgStoreError
from ..mosaic import as_8bit
from ._cli import ToolError, progress, run
from ._save_parser import PROG, TESTSRC_FRAMES, build_parser
from ._selection import to_epoch
from ._transform_args import pipeline_from
from .sources import TESTSRC, Frame, Source, open_source

log = logging.getLogger(__name__)

#: the reader thread runs at most this many frames (and this many bytes) ahead of the writer
QUEUE_FRAMES = 64
QUEUE_BYTES = 512 * 1024 * 1024
#: how long to wait for the reader thread to stop before leaving it to die with the process
READER_STOP_TIMEOUT = 5.0

_TESTSRC_OPTIONS = ("size", "color", "realtime")


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    return run(PROG, lambda args: _save(args, parser), parser, argv)


# ----------------------------------------------------------------------------------------------
# checks before anything is opened or written
# ----------------------------------------------------------------------------------------------
def _encoder_settings(args: argparse.Namespace, parser: argparse.ArgumentParser) -> Dict[str, Any]:
    """The encoder settings given, refused (as bad usage) when the format does not have them."""
    from .. import codecs

    # the settings this tool has options for, among those the codecs define
    given = {name: getattr(args, name, None) for name in codecs.ENCODER_SETTING_NAMES}
    settings = {name: value for name, value in given.items() if value is not None}
    if settings:
        codec = codecs.get_codec(args.format)
        try:
            codec.check_options((480, 640, 3), "uint8", settings)
        except ImgStoreError as exc:
            parser.error(str(exc))
    return settings


def _check_testsrc_options(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    given = [f"--{name}" for name in _TESTSRC_OPTIONS if getattr(args, name) is not None]
    if given and args.source != TESTSRC:
        parser.error(f"{', '.join(given)}: only for --source {TESTSRC}")


def _check_destination(dest: str) -> None:
    """Refuse an existing store, file or non-empty directory before anything is written."""
    from ..constants import STORE_MD_FILENAME

    if not os.path.lexists(dest):
        return
    if os.path.isfile(os.path.join(dest, STORE_MD_FILENAME)):
        raise ToolError(f"{dest}: already holds a store; refusing to overwrite it (choose a new directory)")
    if not os.path.isdir(dest):
        raise ToolError(f"{dest}: already exists and is not a directory (choose a new directory)")
    if os.listdir(dest):
        raise ToolError(f"{dest}: directory is not empty; refusing to write into it (choose a new directory)")


# ----------------------------------------------------------------------------------------------
# the reader thread
# ----------------------------------------------------------------------------------------------
class _Reader:
    """Runs a frame iterator in a thread, into a bounded queue of ``("frame"|"end"|"error", value)``."""

    def __init__(self, frames: Iterator[Frame], maxsize: int) -> None:
        self._frames = frames
        self._queue: queue.Queue = queue.Queue(maxsize)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"{PROG}-reader", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for frame in self._frames:
                if not self._put(("frame", frame)):
                    return
            self._put(("end", None))
        except BaseException as exc:  # handed to the main thread, which reports it
            self._put(("error", exc))

    def _put(self, item: Tuple[str, Any]) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def get(self, timeout: float) -> Tuple[str, Any]:
        """The next item, or ``("wait", None)`` when none came within ``timeout`` seconds."""
        try:
            return self._queue.get(timeout=timeout)
        except queue.Empty:
            return "wait", None

    def stop(self) -> bool:
        """Stop reading; True once the thread has finished (a camera read may hang: then False)."""
        self._stop.set()
        self._thread.join(READER_STOP_TIMEOUT)
        return not self._thread.is_alive()


# ----------------------------------------------------------------------------------------------
# signals: Ctrl-C and SIGTERM stop between two frames
# ----------------------------------------------------------------------------------------------
class _Signals:
    """SIGINT/SIGTERM handling: raise at once, or (while recording) finish the frame and stop."""

    def __init__(self) -> None:
        self.requested = False
        self._mode = "raise"
        self._previous: Dict[int, Any] = {}
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._handle)

    def _handle(self, signum: int, frame: Any) -> None:
        if self._mode == "raise" or (self._mode == "defer" and self.requested):  # a second Ctrl-C: now
            raise KeyboardInterrupt
        self.requested = True  # "defer" (first signal) and "hold" (closing the store): noted only

    def defer(self) -> None:
        self._mode = "defer"

    def hold(self) -> None:
        self._mode = "hold"

    def restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}


class _Preview:
    """Upstream's preview window: every frame shown, Esc stops."""

    WINDOW = "preview"

    def __init__(self) -> None:
        from ._x11 import DisplayError, XDisplay, is_x11_platform

        # without a display OpenCV's Qt build aborts the whole process: say so instead
        self._xdisplay = None
        if is_x11_platform() and not os.environ.get("WAYLAND_DISPLAY"):
            try:
                self._xdisplay = XDisplay.open()
            except DisplayError as exc:
                raise ToolError(f"--preview: cannot show a window: {exc}; run without --preview") from None
        import cv2

        self._cv2 = cv2
        self._reminder: Any = None

    def show(self, img: Any) -> bool:
        """Show a frame; False when Esc was pressed."""
        from ._x11 import MapReminder

        cv2 = self._cv2
        try:
            cv2.imshow(self.WINDOW, img)
            key = cv2.waitKey(1) & 0xFF
        except cv2.error as exc:
            reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
            raise ToolError(f"--preview: cannot show a window ({reason})") from None
        if self._reminder is None:  # the window exists from the first imshow on
            self._reminder = MapReminder(self._xdisplay)
        self._reminder.tick()  # Qt may have lost the window's MapNotify: see imgstore.apps._x11
        return key != 27

    def close(self) -> None:
        if self._reminder is not None:
            self._reminder.stop()
        try:
            self._cv2.destroyWindow(self.WINDOW)
            self._cv2.waitKey(1)
        except self._cv2.error:
            pass
        if self._xdisplay is not None:
            self._xdisplay.close()
            self._xdisplay = None


# ----------------------------------------------------------------------------------------------
# saving
# ----------------------------------------------------------------------------------------------
def _save(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    _check_testsrc_options(args, parser)
    settings = _encoder_settings(args, parser)
    _check_destination(args.dest)
    preview = _Preview() if args.preview else None  # no display: fail before the source opens
    signals = _Signals()
    try:
        source = open_source(
            args.source,
            size=args.size or (640, 480),
            fps=args.fps,
            color=bool(args.color),
            realtime=bool(args.realtime),
            start_time=None if args.start_time is None else to_epoch(args.start_time, None),
        )
        log.debug("source: %s", source.description)
        return _record(args, source, settings, signals, preview)
    finally:
        signals.restore()


def _record(
    args: argparse.Namespace, source: Source, settings: Dict[str, Any], signals: _Signals, preview: Optional[_Preview]
) -> int:
    """Write the source's frames into a new store; the source is closed on the way out."""
    from ..store.factory import new_for_format

    limit = args.frames
    if limit is None and args.source == TESTSRC:
        limit = TESTSRC_FRAMES
    if limit == 0:
        limit = None
    total = source.total if limit is None else (limit if source.total is None else min(limit, source.total))
    frames = source.frames if limit is None else itertools.islice(source.frames, limit)

    reader: Optional[_Reader] = None
    extra = None
    store = None
    written = 0
    start = time.monotonic()
    try:
        first = next(frames, None)  # read here: a source that fails, fails before anything is written
        if first is None:
            raise ToolError(f"{source.description}: no frames to save")
        pipeline = pipeline_from(args.transforms, first[0].shape, source.description)
        img = pipeline(*first) if pipeline else first[0]
        depth = _depth_for(args.format, img, source.description)
        img = depth(img)
        if preview is not None:
            preview.show(img)
        try:
            store = new_for_format(
                args.format,
                path=args.dest,
                imgshape=img.shape,
                imgdtype=img.dtype,
                chunksize=args.chunksize,
                metadata=pipeline.recorded_in(_with_companions(source.metadata, args.companion, args.dest)),
                **settings,
            )
        except ImgStoreError as exc:  # e.g. uint16 frames for an 8-bit format: name the store it is about
            raise ToolError(str(exc) if args.dest in str(exc) else f"{args.dest}: {exc}") from None
        extra = source.extra
        if extra is not None:
            for row in extra.at(-1):  # rows the source store got before its first frame
                store.add_extra_data(**row)
        start = time.monotonic()
        reader = _Reader(frames, max(2, min(QUEUE_FRAMES, QUEUE_BYTES // max(1, img.nbytes))))
        signals.defer()
        if total is None and not args.quiet:
            print(f"{PROG}: saving {source.description} to {args.dest}; Ctrl-C stops", file=sys.stderr)
        bar = progress(_frames_in_order(first, reader, source, signals), total, args.quiet, "saving")
        try:
            for img, number, frame_time in bar:
                if pipeline:
                    img = pipeline(img, number, frame_time)
                store.add_image(depth(img), frame_number=number, frame_time=frame_time)
                if extra is not None:
                    for row in extra.at(written):  # the source's rows after this frame
                        store.add_extra_data(**row)
                written += 1
                if preview is not None and not preview.show(img):
                    break
        finally:
            getattr(bar, "close", lambda: None)()
    finally:
        signals.hold()  # closing the store must not be cut short
        stopped = reader.stop() if reader is not None else True
        try:
            if store is not None:
                store.close()
        finally:
            if stopped:
                source.close()
            else:
                log.warning("%s: the reader did not stop; leaving it behind", source.description)
            if preview is not None:
                preview.close()
        if store is not None and extra is not None:
            copied = extra.up_to(written - 1)
            log.info("copied %d of %d extra-data rows (the rest follow frames not saved)", copied, extra.total)
        if store is not None and not args.quiet:
            _print_summary(written, args.format, time.monotonic() - start, args.dest)
    if signals.requested:
        raise KeyboardInterrupt
    return 0


def _depth_for(fmt: str, img: Any, description: str) -> Any:
    """How each frame reaches the store: 16-bit frames kept 16-bit where the format holds them,
    else cut to their top 8 bits with a warning."""
    from .. import codecs

    if img.dtype.kind != "u" or img.dtype.itemsize == 1:  # other dtypes: the format says whether it holds them
        return lambda frame: frame
    try:
        codecs.get_codec(fmt).check_image_type(img.shape, img.dtype.name)
        return lambda frame: frame
    except ImgStoreError:
        log.warning(
            "%s: %s frames cut to 8 bits (format %s holds no deeper frames; npy, png, tif, ffv1/mkv do)",
            description,
            img.dtype,
            fmt,
        )
        return as_8bit


def _frames_in_order(first: Frame, reader: _Reader, source: Source, signals: _Signals) -> Iterator[Frame]:
    """The first frame, then the reader's, until the end, an error or a stop request."""
    yield first
    while not signals.requested:
        kind, value = reader.get(timeout=0.1)
        if kind == "frame":
            yield value
        elif kind == "end":
            return
        elif kind == "error":
            if isinstance(value, (ToolError, ImgStoreError)):
                raise value
            log.debug("reading %s failed", source.description, exc_info=value)
            raise ToolError(f"{source.description}: reading failed: {type(value).__name__}: {value}") from value


def _print_summary(written: int, fmt: str, elapsed: float, dest: str) -> None:
    fps = written / elapsed if elapsed > 0 else 0.0
    frames = "frame" if written == 1 else "frames"
    print(f"wrote {written} {frames} ({fmt}) in {elapsed:.1f} s, {fps:.1f} fps: {dest}", flush=True)


def _with_companions(metadata: Optional[Dict[str, Any]], companions: Optional[List[str]], dest: str) -> Any:
    """The user metadata to store, with ``--companion`` stores listed relative to the new store."""
    if not companions:
        return metadata or None
    from ..multi import COMPANIONS_KEY

    linked = dict(metadata or {})
    linked[COMPANIONS_KEY] = [os.path.relpath(os.path.abspath(c), os.path.abspath(dest)) for c in companions]
    return linked
