"""Fault injection at every write site: make the N-th file-system operation of a store writer fail.

The C shim ``faultfs/faultfs.c`` is built once (with the system C compiler) and loaded with
``LD_PRELOAD`` into a *fault server*: a Python process that imports imgstore, OpenCV and PyAV
once, then forks one child per case. The child records a store in a directory the shim
watches, with the N-th operation there (write, fsync, rename, close or create, in whatever
library it happens: Python, numpy, libjpeg, FFmpeg...) failing with a chosen errno, once or for
good. It catches our errors as a recorder would, and reports what it was told:

- ``accepted``: the frames whose ``add_image`` returned;
- ``refused``: the frames whose ``add_image`` raised (``StoreWriteError.frame_number``);
- ``lost``: frames accepted earlier that an error said were lost (``StoreWriteError.lost_frames``);
- ``foreign``: any exception that is not one of ours (always a failure).

The checker then opens the store with faults off and compares: every accepted frame not
reported lost is readable with the right pixels, nothing else is readable, every frame read is
the frame it claims to be, and the store opens at all. SQLite's I/O-error tests are the model.

Run directly for the table in the issue note: ``python tests/faultinject.py [--every 1]``; one
case with ``--case FORMAT AT ERRNO STICKY`` (``FAULTFS_VERBOSE=1`` prints each injected failure,
with the file it hit when the operation names one).
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))

import framecodes

SOURCE = Path(__file__).resolve().parent / "faultfs" / "faultfs.c"
T0 = 1_700_000_000.0
FIRST_NUMBER = 1000
#: seconds a case may take before the server kills it (a hang is a failure)
CASE_TIMEOUT_S = 60.0
ERRNOS = {"ENOSPC": errno.ENOSPC, "EIO": errno.EIO, "EROFS": errno.EROFS}


@dataclass(frozen=True)
class Recording:
    """What a child records: format, frames, chunks, when it flushes and adds extra data."""

    fmt: str
    shape: tuple = (48, 64)
    frames: int = 24
    chunksize: int = 10
    flush_at: tuple = (7, 17)
    extra_every: int = 5
    options: tuple = ()  # encoder settings as (name, value) pairs

    def number(self, i: int) -> int:
        return FIRST_NUMBER + i

    def time(self, i: int) -> float:
        return T0 + i / 25.0


@dataclass(frozen=True)
class Fault:
    """The N-th counted operation fails with ``err``; ``sticky``: every later one too (a full disk);
    ``partial``: a failing write first writes half its bytes."""

    at: int
    err: str = "ENOSPC"
    sticky: bool = True
    partial: bool = False


@dataclass
class Outcome:
    """What the child was told by the library while recording with one fault."""

    accepted: List[int] = field(default_factory=list)
    refused: List[int] = field(default_factory=list)
    lost: List[int] = field(default_factory=list)
    extra_accepted: List[int] = field(default_factory=list)
    errors: List[str] = field(default_factory=list)
    foreign: List[str] = field(default_factory=list)
    operations: int = 0
    failures: int = 0
    crashed: str = ""


# ----------------------------------------------------------------------------------------------
# the shim
# ----------------------------------------------------------------------------------------------
def build_shim(cache: Optional[Path] = None) -> Path:
    """The compiled shim (built once per source version); raises RuntimeError without a compiler."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        raise RuntimeError("no C compiler (install gcc, Debian package gcc) to build the fault-injection shim")
    source = SOURCE.read_bytes()
    key = hashlib.sha256(source).hexdigest()[:16]
    cache = cache or Path(tempfile.gettempdir()) / "imgstore-faultfs"
    cache.mkdir(parents=True, exist_ok=True)
    target = cache / f"faultfs-{key}.so"
    if not target.exists():
        partial = cache / f".faultfs-{key}-{os.getpid()}.so"
        proc = subprocess.run(
            [compiler, "-shared", "-fPIC", "-O2", "-o", str(partial), str(SOURCE), "-ldl"],
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"cannot build the fault-injection shim:\n{proc.stderr}")
        os.replace(partial, target)
    return target


# ----------------------------------------------------------------------------------------------
# the child: record with one fault armed
# ----------------------------------------------------------------------------------------------
def _record(rec: Recording, path: str, fault: Optional[Fault], shim: Any) -> Outcome:
    import imgstore
    from imgstore.errors import ImgStoreError

    out = Outcome()

    def ours(exc: BaseException, call: str) -> None:
        if not isinstance(exc, ImgStoreError):
            where = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)[-3:])
            out.foreign.append(f"{call}: {type(exc).__module__}.{type(exc).__name__}: {exc}\n{where}")
            return
        out.errors.append(f"{call}: {type(exc).__name__}: {exc}")
        out.lost.extend(int(n) - FIRST_NUMBER for n in getattr(exc, "lost_frames", ()))

    if fault is not None:
        shim.faultfs_arm(fault.at, ERRNOS[fault.err], int(fault.sticky))
    try:
        store = imgstore.new_for_format(
            rec.fmt, path=path, imgshape=rec.shape, chunksize=rec.chunksize, **dict(rec.options)
        )
    except Exception as exc:
        ours(exc, "new_for_format")
        return out
    for i in range(rec.frames):
        try:
            store.add_image(framecodes.make_grid_frame(i, rec.shape), rec.number(i), rec.time(i))
            out.accepted.append(i)
        except Exception as exc:
            ours(exc, f"add_image({i})")
            out.refused.append(i)
        if rec.extra_every and i % rec.extra_every == 0:
            try:
                store.add_extra_data(i=i)
                out.extra_accepted.append(i)
            except Exception as exc:
                ours(exc, f"add_extra_data(i={i})")
        if i in rec.flush_at:
            try:
                store.flush()
            except Exception as exc:
                ours(exc, f"flush() after {i}")
    try:
        store.close()
    except Exception as exc:
        ours(exc, "close()")
    return out


def _reply_when_ended(pid: int, timeout: float) -> None:
    """Wait for the forked child ``pid`` (killed after ``timeout`` s: a hang), then tell the parent
    its wait status, or ``"timeout"``, as one JSON line on stdout."""
    deadline = time.monotonic() + timeout
    status: Any = None
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.005)
    else:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        status = "timeout"
    sys.stdout.write(json.dumps({"status": status}) + "\n")
    sys.stdout.flush()


def _serve() -> None:
    """The fault server: one JSON case per stdin line, one JSON outcome per stdout line."""
    import ctypes

    import av  # noqa: F401 - imported once here, so that each forked case starts at once

    with contextlib.suppress(ImportError):  # (a machine without libGL: the formats needing OpenCV are not run)
        import cv2  # noqa: F401

    import imgstore  # noqa: F401

    shim = ctypes.CDLL(os.environ["FAULTFS_SHIM"])
    shim.faultfs_arm.argtypes = (ctypes.c_long, ctypes.c_int, ctypes.c_int)
    shim.faultfs_count.restype = ctypes.c_long
    shim.faultfs_failures.restype = ctypes.c_long
    for line in sys.stdin:
        case = json.loads(line)
        if "session" in case:
            _fork_session(case["session"], shim)
            continue
        rec = Recording(
            **{
                k: tuple(map(tuple, v)) if k == "options" else tuple(v) if isinstance(v, list) else v
                for k, v in case["recording"].items()
            }
        )
        fault = Fault(**case["fault"]) if case["fault"] else None
        result_path = case["result"]
        pid = os.fork()
        if pid == 0:  # the case
            code = 0
            try:
                shim.faultfs_disarm()
                before = shim.faultfs_count()
                out = _record(rec, case["path"], fault, shim)
                out.operations = shim.faultfs_count() - before
                out.failures = shim.faultfs_failures()
                shim.faultfs_disarm()
                with open(result_path, "w") as f:
                    json.dump(asdict(out), f)
            except BaseException as exc:
                with open(result_path, "w") as f:
                    json.dump(asdict(Outcome(crashed=f"{type(exc).__name__}: {exc}")), f)
                code = 1
            finally:
                os._exit(code)
        _reply_when_ended(pid, CASE_TIMEOUT_S)


# ----------------------------------------------------------------------------------------------
# sessions: a store writer driven call by call (for the state machine in test_fault_machine.py)
# ----------------------------------------------------------------------------------------------
def _session_call(store: Any, command: Dict[str, Any], shim: Any, shape: tuple) -> Dict[str, Any]:
    """Carry out one command on the store; what happened, as JSON."""
    import numpy as np

    from imgstore.errors import ImgStoreError

    op = command["op"]
    try:
        if op == "add":
            i, bad = command["i"], command.get("bad")
            img = framecodes.make_grid_frame(i, shape)
            number, ftime = FIRST_NUMBER + i, T0 + i / 25.0
            if bad == "number":
                number = 2**63
            elif bad == "boolean":
                number = True
            elif bad == "shape":
                img = np.zeros((shape[0] + 2, shape[1]), np.uint8)
            elif bad == "time":
                ftime = "noon"
            store.add_image(img, number, ftime)
        elif op == "extra":
            store.add_extra_data(i=command["i"])
        elif op == "flush":
            store.flush()
        elif op == "close":
            store.close()
        elif op == "arm":
            shim.faultfs_arm(command["n"], ERRNOS[command["err"]], int(command["sticky"]))
        elif op == "disarm":
            shim.faultfs_disarm()
    except ImgStoreError as exc:
        lost = [int(n) - FIRST_NUMBER for n in getattr(exc, "lost_frames", ())]
        return {"ok": False, "ours": True, "message": str(exc), "lost": lost}
    except Exception as exc:
        where = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)[-3:])
        return {"ok": False, "ours": False, "message": f"{type(exc).__name__}: {exc}\n{where}", "lost": []}
    return {"ok": True}


def _fork_session(session: Dict[str, Any], shim: Any) -> None:
    """Fork a worker that creates a store and carries out commands from a FIFO until closed or killed."""
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            import imgstore

            shim.faultfs_disarm()
            shape = tuple(session["shape"])
            with open(session["replies"], "w") as replies, open(session["commands"]) as commands:
                replies.write(json.dumps({"ok": True, "pid": os.getpid()}) + "\n")
                replies.flush()
                store = imgstore.new_for_format(
                    session["fmt"], path=session["path"], imgshape=shape, chunksize=session["chunksize"]
                )
                for line in commands:
                    reply = _session_call(store, json.loads(line), shim, shape)
                    replies.write(json.dumps(reply) + "\n")
                    replies.flush()
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    _reply_when_ended(pid, 10 * CASE_TIMEOUT_S)


class Session:
    """A store writer in a forked worker of a ``FaultServer``, driven call by call."""

    def __init__(self, server: FaultServer, fmt: str, name: str, shape: tuple = (32, 48), chunksize: int = 5) -> None:
        self.path = server.watched / name
        fifo_dir = server.watched.parent
        self._commands, self._replies = fifo_dir / f"{name}.cmd", fifo_dir / f"{name}.reply"
        for fifo in (self._commands, self._replies):
            if fifo.exists():
                fifo.unlink()
            os.mkfifo(fifo)
        self._server = server
        server.start_session(
            {
                "fmt": fmt,
                "path": str(self.path),
                "shape": list(shape),
                "chunksize": chunksize,
                "commands": str(self._commands),
                "replies": str(self._replies),
            }
        )
        self._reply_file = open(self._replies)
        self._command_file = open(self._commands, "w")
        hello = json.loads(self._reply_file.readline())
        self.pid = hello["pid"]
        self.alive = True

    def call(self, **command: Any) -> Dict[str, Any]:
        """Carry out ``command`` in the worker; its reply (``ok``, else ``ours``, ``message``, ``lost``)."""
        self._command_file.write(json.dumps(command) + "\n")
        self._command_file.flush()
        line = self._reply_file.readline()
        if not line:
            self.alive = False
            return {"ok": False, "ours": False, "message": "the worker died", "lost": []}
        return json.loads(line)

    def kill(self) -> None:
        """SIGKILL the worker, as a crash or a power switch would stop a recorder."""
        os.kill(self.pid, 9)
        self.end()

    def end(self) -> None:
        """Let the worker go (after close or kill) and wait for the server to see it gone."""
        if self.alive:
            for f in (self._command_file, self._reply_file):
                try:
                    f.close()
                except OSError:
                    pass
            self.alive = False
            self._server.end_session()


@contextlib.contextmanager
def started_fault_server(root: Path, shim: Optional[Path] = None) -> Iterator[FaultServer]:
    """A fault server watching ``root/watched`` (made here), closed on leaving; building the shim
    raises RuntimeError without a C compiler."""
    watched = Path(root) / "watched"
    watched.mkdir()
    server = FaultServer(shim or build_shim(), watched)
    try:
        yield server
    finally:
        server.close()


class FaultServer:
    """A fault server process (see ``_serve``) that runs cases under the shim, one at a time."""

    def __init__(self, shim: Path, watched: Path) -> None:
        env = dict(os.environ, LD_PRELOAD=str(shim), FAULTFS_SHIM=str(shim), FAULTFS_DIR=str(watched))
        self.watched = watched
        self._proc = subprocess.Popen(
            [sys.executable, __file__, "--serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
        )

    def run(self, rec: Recording, fault: Optional[Fault], name: str) -> Outcome:
        """Record ``rec`` in ``<watched>/<name>`` with ``fault``; what the recorder was told."""
        path = self.watched / name
        result = self.watched.parent / f"{name}.json"
        case = {
            "recording": asdict(rec),
            "fault": asdict(fault) if fault else None,
            "path": str(path),
            "result": str(result),
        }
        self._proc.stdin.write(json.dumps(case) + "\n")
        self._proc.stdin.flush()
        reply = json.loads(self._proc.stdout.readline())
        if reply["status"] == "timeout":
            return Outcome(crashed=f"the case hung for more than {CASE_TIMEOUT_S} s")
        if not result.exists():
            return Outcome(crashed=f"the case died (wait status {reply['status']})")
        return Outcome(**json.loads(result.read_text()))

    def start_session(self, session: Dict[str, Any]) -> None:
        """Ask the server to fork a session worker (see ``Session``)."""
        self._proc.stdin.write(json.dumps({"session": session}) + "\n")
        self._proc.stdin.flush()

    def end_session(self) -> None:
        """Wait for the server to see the session worker gone."""
        self._proc.stdout.readline()

    def close(self) -> None:
        self._proc.stdin.close()
        self._proc.wait(timeout=30)


# ----------------------------------------------------------------------------------------------
# the checker
# ----------------------------------------------------------------------------------------------
def check(rec: Recording, path: Path, out: Outcome) -> List[str]:
    """Everything wrong with the store at ``path`` given what the recorder was told ([] if nothing)."""
    import numpy as np

    import imgstore
    from imgstore.codecs import get_codec

    problems = [f"not our error: {f}" for f in out.foreign]
    if out.crashed:
        return [*problems, f"the writer crashed: {out.crashed}"]
    accepted, lost = set(out.accepted), set(out.lost)
    problems += [f"frame {i} reported lost but never accepted" for i in sorted(lost - accepted)]
    if not (path / "metadata.yaml").exists():
        if accepted:
            problems.append(f"no store although {len(accepted)} frames were accepted")
        return problems
    try:
        store = imgstore.new_for_filename(str(path))
    except Exception as exc:
        return [*problems, f"the store does not open: {type(exc).__name__}: {exc}"]
    lossless = get_codec(rec.fmt).lossless
    read = []
    with store:
        for position in range(store.frame_count):
            try:
                img, (number, ftime) = store.get_image(None, frame_index=position)
            except Exception as exc:
                problems.append(f"position {position}: {type(exc).__name__}: {exc}")
                continue
            i = int(number) - FIRST_NUMBER
            read.append(i)
            if ftime != rec.time(i):
                problems.append(f"position {position}: frame {i} has time {ftime}, not {rec.time(i)}")
            expected = framecodes.make_grid_frame(i, rec.shape)[: img.shape[0], : img.shape[1]]
            if lossless and not np.array_equal(img, expected):
                problems.append(f"position {position}: frame {i} has wrong pixels")
            elif not lossless and framecodes.decode_grid(img) != i:
                problems.append(f"position {position}: frame {i} holds frame {framecodes.decode_grid(img)}")
        try:
            extra = store.get_extra_data()
        except Exception as exc:
            problems.append(f"get_extra_data(): {type(exc).__name__}: {exc}")
            extra = None
    if read != sorted(read) or len(set(read)) != len(read):
        problems.append(f"frames out of order or repeated: {read}")
    kept = accepted - lost
    missing = sorted(kept - set(read))
    if missing:
        problems.append(f"accepted frames lost without an error: {missing}")
    unexpected = sorted(set(read) - accepted)
    if unexpected:
        problems.append(f"frames readable although add_image raised for them: {unexpected}")
    reported_but_kept = sorted(lost & set(read))
    if reported_but_kept:
        problems.append(f"frames reported lost are readable: {reported_but_kept}")
    records = [] if extra is None else [int(v) for v in extra["i"]]
    gone = sorted(set(out.extra_accepted) - set(records) - {i for i in out.extra_accepted if i in lost})
    if gone:
        problems.append(f"extra data records accepted, then lost without an error: {gone}")
    return problems


# ----------------------------------------------------------------------------------------------
# the table for the note
# ----------------------------------------------------------------------------------------------
def sweep(
    server: FaultServer, rec: Recording, err: str, sticky: bool, partial: bool, every: int, tag: str
) -> Dict[str, Any]:
    """Run a fault at every ``every``-th operation of a clean recording; totals and the problems."""
    clean = server.run(rec, None, f"{tag}-clean")
    totals = {
        "faults": 0,
        "accepted": 0,
        "refused": 0,
        "lost_reported": 0,
        "silent_losses": 0,
        "wrong_frames": 0,
        "other_problems": 0,
        "operations": clean.operations,
        "problems": [],
    }
    for at in range(1, clean.operations + 1, every):
        name = f"{tag}-{at}"
        out = server.run(rec, Fault(at, err, sticky, partial), name)
        problems = check(rec, server.watched / name, out)
        totals["faults"] += 1
        totals["accepted"] += len(out.accepted)
        totals["refused"] += len(out.refused)
        totals["lost_reported"] += len(out.lost)
        for p in problems:
            if "without an error" in p:
                totals["silent_losses"] += 1
            elif "wrong pixels" in p or "holds frame" in p or "readable although" in p:
                totals["wrong_frames"] += 1
            else:
                totals["other_problems"] += 1
            totals["problems"].append(f"at {at}: {p}")
        shutil.rmtree(server.watched / name, ignore_errors=True)
    return totals


def _one_case(fmt: str, at: str, err: str, sticky: str) -> int:
    """Run one case, print the outcome and the problems (for debugging a failed sweep)."""
    with tempfile.TemporaryDirectory(prefix="imgstore-fault-") as tmp, started_fault_server(Path(tmp)) as server:
        rec = Recording(fmt)
        out = server.run(rec, Fault(int(at), err, sticky == "1", sticky == "1"), "case")
        print(json.dumps(asdict(out), indent=1))
        for p in check(rec, server.watched / "case", out):
            print("PROBLEM:", p)
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--every", type=int, default=1, help="inject at every N-th operation (default 1: all)")
    parser.add_argument("--format", action="append", help="formats (default: every supported format)")
    parser.add_argument(
        "--case", nargs=4, metavar=("FORMAT", "AT", "ERRNO", "STICKY"), help="run one case and print what happened"
    )
    args = parser.parse_args(argv)
    if args.serve:
        _serve()
        return 0
    import logging

    import imgstore

    logging.getLogger("imgstore").setLevel(logging.ERROR)
    if args.case:
        return _one_case(*args.case)
    formats = args.format or [f for f in imgstore.get_supported_formats() if "+color" not in f]
    with tempfile.TemporaryDirectory(prefix="imgstore-faults-") as tmp, started_fault_server(Path(tmp)) as server:
        print(
            "| format | fault | faults injected | frames accepted | refused | reported lost | "
            "lost without an error | wrong frames | other problems |"
        )
        print("|---|---|---|---|---|---|---|---|---|")
        for fmt in formats:
            for err, sticky, partial in (("ENOSPC", True, True), ("EIO", False, False), ("EROFS", True, False)):
                kind = f"{err} {'for good' if sticky else 'once'}{', short writes' if partial else ''}"
                t = sweep(server, Recording(fmt), err, sticky, partial, args.every, f"{fmt.replace('/', '_')}-{err}")
                print(
                    f"| {fmt} | {kind} | {t['faults']} | {t['accepted']} | {t['refused']} | "
                    f"{t['lost_reported']} | {t['silent_losses']} | {t['wrong_frames']} | {t['other_problems']} |",
                    flush=True,
                )
                for p in t["problems"][:5]:
                    print(f"<!-- {fmt} {kind}: {p} -->", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
