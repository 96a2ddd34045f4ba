"""How often does a new viewer window stay black? Starts it N times on a fresh Xvfb and counts.

Not a test (pytest does not collect it): a measurement, for the defect ``imgstore.apps._x11``
describes (Qt loses a new window's MapNotify, and never paints it). Each start runs the viewer
on a 50-frame store of grid frames, finds its window, and takes screenshots for ``--wait``
seconds; a start whose window is all black the whole time is a black start.

    python tests/view_black_starts.py 60                      # imgstore-view --paused
    python tests/view_black_starts.py 60 --view-args '--fps 4 --loop'
    python tests/view_black_starts.py 60 --bare               # a bare namedWindow/imshow/waitKey loop
    python tests/view_black_starts.py 60 --viewer 'python /tmp/view_old.py'   # another viewer

Needs Xvfb, xdotool and ImageMagick's ``import``. Exit status 1 when any start was black.
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from framecodes import make_grid_frame

H, W = 240, 320

BARE = """
import sys, cv2, numpy as np
sys.path.insert(0, {tests!r})
from framecodes import make_grid_frame
cv2.namedWindow("bare", cv2.WINDOW_NORMAL | cv2.WINDOW_KEEPRATIO | cv2.WINDOW_GUI_NORMAL)
cv2.setWindowTitle("bare", {title!r})
cv2.resizeWindow("bare", {w}, {h})
img = make_grid_frame(103, ({h}, {w}))
while cv2.waitKeyEx(30) != ord("q"):
    cv2.imshow("bare", img)
"""


def make_store(path: Path) -> None:
    import imgstore

    with imgstore.new_for_format("png", path=str(path), imgshape=(H, W), imgdtype=np.uint8, chunksize=20) as store:
        for i in range(50):
            store.add_image(make_grid_frame(100 + i, (H, W)), 100 + i, 1717236000.0 + i * 0.5)


def start_xvfb() -> tuple:
    read_fd, write_fd = os.pipe()
    # -noreset: without it the server resets whenever its last client leaves, and refuses
    # connections meanwhile (xdotool: "Can't open display")
    proc = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write_fd), "-noreset", "-screen", "0", "1024x768x24", "-nolisten", "tcp"],
        pass_fds=(write_fd,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write_fd)
    number = b""
    while not number.endswith(b"\n"):
        chunk = os.read(read_fd, 16)
        if not chunk:
            raise SystemExit(f"Xvfb exited ({proc.wait()})")
        number += chunk
    os.close(read_fd)
    return proc, f":{int(number)}"


def one_start(cmd: list, env: dict, title: str, wait: float, shot: Path) -> str:
    """'ok', 'black' or 'no window' for one start of ``cmd``."""
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        found = subprocess.run(
            ["xdotool", "search", "--sync", "--onlyvisible", "--pid", str(proc.pid), "--name", title],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
        )
        if found.returncode != 0 or not found.stdout.split():
            return "no window"
        window = found.stdout.split()[0]
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            subprocess.run(["import", "-window", window, str(shot)], env=env, check=True, timeout=10)
            img = cv2.imread(str(shot))
            if img is not None and img.any():
                return "ok"
            time.sleep(0.1)
        return "black"
    except subprocess.TimeoutExpired:
        return "no window"
    finally:
        proc.kill()
        proc.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("starts", type=int, help="how many starts")
    parser.add_argument("--view-args", default="--paused", help="arguments for the viewer (default: --paused)")
    parser.add_argument("--viewer", default=None, help="the viewer command (default: this Python's imgstore-view)")
    parser.add_argument("--bare", action="store_true", help="a bare OpenCV loop with the viewer's window flags")
    parser.add_argument("--wait", type=float, default=3.0, help="seconds a window may take to paint (default 3)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="black-starts-") as tmp:
        work = Path(tmp)
        store = work / "store"
        make_store(store)
        title = "black-starts-store" if args.bare else str(store)
        if args.bare:
            bare = work / "bare.py"
            bare.write_text(BARE.format(tests=str(Path(__file__).resolve().parent), title=title, w=W, h=H))
            cmd = [sys.executable, str(bare)]
        else:
            viewer = shlex.split(args.viewer) if args.viewer else [str(Path(sys.executable).parent / "imgstore-view")]
            cmd = [*viewer, str(store), *shlex.split(args.view_args)]
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop Xvfb on the way out
        xvfb, display = start_xvfb()
        env = dict(os.environ, DISPLAY=display)
        counts = {"ok": 0, "black": 0, "no window": 0}
        try:
            for n in range(args.starts):
                result = one_start(cmd, env, title, args.wait, work / f"start{n}.png")
                counts[result] += 1
                if result != "ok":
                    print(f"start {n}: {result}", flush=True)
        finally:
            xvfb.terminate()
            xvfb.wait()
    print(f"black starts: {counts['black']}/{args.starts} (windows not found: {counts['no window']})")
    return 1 if counts["black"] else 0


if __name__ == "__main__":
    sys.exit(main())
