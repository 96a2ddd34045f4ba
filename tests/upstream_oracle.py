"""Find (or build) the upstream imgstore 0.4.0 oracle interpreter and run scripts with it.

Upstream is never imported into the test process: it lives in its own interpreter, found in
this order:

1. ``$IMGSTORE_UPSTREAM_PYTHON`` (a python that can import upstream imgstore 0.4.0);
2. the oracle venv in this user's cache, ``$XDG_CACHE_HOME/imgstore-oracle/py3.X/venv``
   (``~/.cache/...`` when ``XDG_CACHE_HOME`` is unset), when it imports upstream imgstore 0.4.0;
3. otherwise that venv is created (``python -m venv`` then
   ``pip install imgstore==0.4.0 opencv-python-headless``), once, under a file lock so that
   several pytest-xdist workers, or test runs of several clones, can ask at the same time.

The venv lives outside the repository and is shared by every clone of it (one per Python
version). When no oracle can be had the calling test is skipped, or fails when
``$CI == 'true'``. Scripts run with :func:`run_upstream` in a fresh temporary directory with
``python -I``, so the repository's own ``imgstore`` package cannot shadow upstream's there; the
child checks the version and the location of the ``imgstore`` it imported before running
anything.
"""

from __future__ import annotations

import fcntl
import functools
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

UPSTREAM_VERSION = "0.4.0"
ENV_PYTHON = "IMGSTORE_UPSTREAM_PYTHON"
TESTS_DIR = Path(__file__).resolve().parent
REPO_DIR = TESTS_DIR.parent
SCRIPTS_DIR = TESTS_DIR / "upstream_scripts"
# bloscpack is left out on purpose: with it installed upstream fails to import on Python 3.11
REQUIREMENTS = (f"imgstore=={UPSTREAM_VERSION}", "opencv-python-headless")
PROBE_TIMEOUT_S = 120
INSTALL_TIMEOUT_S = 1200
RUN_TIMEOUT_S = 300

# Run first in every oracle child: refuse anything but upstream 0.4.0 from the oracle's prefix.
_GUARD = f"""
import os, sys
import imgstore
assert imgstore.__version__ == {UPSTREAM_VERSION!r}, (
    "oracle imports imgstore %s, not {UPSTREAM_VERSION}" % imgstore.__version__)
_prefix = os.path.realpath(sys.prefix)
_found = os.path.realpath(imgstore.__file__)
assert os.path.commonpath([_prefix, _found]) == _prefix, (
    "oracle imports imgstore from %s, outside %s" % (_found, _prefix))
"""

_PROBE = _GUARD + "import cv2\nprint(imgstore.__version__, cv2.__version__, sys.version)\n"

_BOOTSTRAP = (
    _GUARD
    + """
import json
in_path, out_path, script_path, tests_dir = sys.argv[1:5]
sys.path.append(tests_dir)  # after upstream is imported: scripts may import tests/framecodes.py
with open(in_path, encoding="utf-8") as f:
    args = json.load(f)
with open(script_path, encoding="utf-8") as f:
    code = compile(f.read(), script_path, "exec")
namespace = {"__name__": "__oracle__", "__file__": script_path}
exec(code, namespace)
result = namespace["main"](*args)
with open(out_path, "w", encoding="utf-8") as f:
    json.dump(result, f)
"""
)


class OracleError(RuntimeError):
    """An oracle script failed; the message carries the child's stderr."""


@dataclass(frozen=True)
class _Oracle:
    """Outcome of looking for the oracle: a python path, or why there is none."""

    python: str | None
    reason: str = ""
    always_fail: bool = False


def _tail(text: str, limit: int = 4000) -> str:
    """The last ``limit`` characters of ``text``."""
    return text if len(text) <= limit else "...\n" + text[-limit:]


def _probe(python: str) -> tuple[bool, str]:
    """Whether ``python`` imports upstream imgstore 0.4.0 (and cv2); the output or error."""
    with tempfile.TemporaryDirectory(prefix="imgstore-oracle-probe-") as tmp:
        try:
            proc = subprocess.run(
                [python, "-I", "-c", _PROBE],
                cwd=tmp,
                capture_output=True,
                text=True,
                timeout=PROBE_TIMEOUT_S,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return False, f"{type(exc).__name__}: {exc}"
    if proc.returncode != 0:
        return False, _tail(proc.stderr or proc.stdout)
    return True, proc.stdout.strip()


def cache_dir() -> Path:
    """This user's oracle cache for the running Python version (the venv and the fixture stores).

    ``$XDG_CACHE_HOME/imgstore-oracle/py3.X``, or ``~/.cache/imgstore-oracle/py3.X`` when
    ``XDG_CACHE_HOME`` is unset or not an absolute path (as the XDG spec says to treat it).
    """
    base = os.environ.get("XDG_CACHE_HOME", "")
    root = Path(base) if os.path.isabs(base) else Path.home() / ".cache"
    return root / "imgstore-oracle" / f"py{sys.version_info[0]}.{sys.version_info[1]}"


def venv_dir() -> Path:
    """Where the oracle venv is built (outside the repository, shared by every clone)."""
    return cache_dir() / "venv"


def _state_path(suffix: str) -> Path:
    """A file beside the venv (lock, failure note), shared by every process that may build it."""
    return cache_dir() / f"venv{suffix}"


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created with its folders) for the block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _run_id() -> str | None:
    """The id that pytest-xdist shares between the workers of one run, if any."""
    return os.environ.get("PYTEST_XDIST_TESTRUNUID")


def _earlier_failure() -> str | None:
    """Why another worker of this same run already failed to build the venv, if it did."""
    note = _state_path(".failed")
    run_id = _run_id()
    if run_id is None or not note.exists():
        return None
    try:
        data = json.loads(note.read_text())
    except (OSError, ValueError):
        return None
    return data.get("reason") if data.get("run_id") == run_id else None


def _note_failure(reason: str) -> None:
    """Remember a failed build for the other workers of this run."""
    if _run_id() is not None:
        _state_path(".failed").write_text(json.dumps({"run_id": _run_id(), "reason": reason}))


def _venv_python() -> Path:
    """The interpreter of the cached oracle venv."""
    return venv_dir() / "bin" / "python"


def _build_venv() -> tuple[bool, str]:
    """Create the oracle venv and install upstream into it; success and a log tail."""
    steps = (
        [sys.executable, "-m", "venv", "--clear", str(venv_dir())],
        [str(_venv_python()), "-m", "pip", "install", "--no-input", "--disable-pip-version-check", *REQUIREMENTS],
    )
    for step in steps:
        try:
            proc = subprocess.run(step, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return False, f"{' '.join(step)}: {type(exc).__name__}: {exc}"
        if proc.returncode != 0:
            return False, f"{' '.join(step)} exited {proc.returncode}:\n{_tail(proc.stderr)}"
    return _probe(str(_venv_python()))


def _from_env(python: str) -> _Oracle:
    """Use the interpreter named by $IMGSTORE_UPSTREAM_PYTHON; a bad one is always an error."""
    ok, out = _probe(python)
    if ok:
        return _Oracle(python)
    return _Oracle(None, f"${ENV_PYTHON}={python} cannot import upstream imgstore:\n{out}", True)


def _from_venv() -> _Oracle:
    """Use the cached oracle venv, building it (once, under the lock) when needed."""
    python = str(_venv_python())
    if _venv_python().exists() and _probe(python)[0]:
        return _Oracle(python)
    try:
        with locked(_state_path(".lock")):
            return _build_locked(python)
    except OSError as exc:  # no cache folder can be made (read-only home...)
        return _Oracle(None, f"cannot use the oracle cache {cache_dir()}: {exc}")


def _build_locked(python: str) -> _Oracle:
    """Under the lock: use the venv another process just built, or build it."""
    if _venv_python().exists() and _probe(python)[0]:
        return _Oracle(python)
    earlier = _earlier_failure()
    if earlier is not None:
        return _Oracle(None, earlier)
    ok, out = _build_venv()
    if ok:
        return _Oracle(python)
    reason = f"could not build the upstream imgstore oracle venv at {venv_dir()}:\n{out}"
    _note_failure(reason)
    return _Oracle(None, reason)


@functools.cache
def _locate() -> _Oracle:
    """Find the oracle once per process."""
    python = os.environ.get(ENV_PYTHON)
    return _from_env(python) if python else _from_venv()


def upstream_python() -> str:
    """Path of the oracle python; skips the test (fails it when CI=true) if there is none."""
    oracle = _locate()
    if oracle.python is not None:
        return oracle.python
    if oracle.always_fail or os.environ.get("CI") == "true":
        pytest.fail(oracle.reason, pytrace=False)
    pytest.skip(oracle.reason)


def _json_default(obj: Any) -> Any:
    """Let numpy scalars and arrays through ``json.dump``."""
    if hasattr(obj, "tolist"):
        return obj.tolist()
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def run_upstream(script: str | Path, *args: Any, tz: str | None = "UTC") -> dict[str, Any]:
    """Run ``main(*args)`` of an oracle script with upstream imgstore; return its JSON result.

    ``script`` is Python source, or a :class:`~pathlib.Path` to a script file (e.g. one in
    ``upstream_scripts/``). It must define ``main``; arguments and result travel as JSON
    (NaN allowed). ``tz`` sets the child's ``TZ`` (upstream reads ``created_utc`` as local
    time, so UTC keeps its answers right); ``None`` keeps ours.
    """
    python = upstream_python()
    with tempfile.TemporaryDirectory(prefix="imgstore-oracle-") as tmp:
        work = Path(tmp)
        if isinstance(script, Path):
            script_path = script.resolve()
        else:
            script_path = work / "snippet.py"
            script_path.write_text(script, encoding="utf-8")
        in_path, out_path = work / "args.json", work / "result.json"
        in_path.write_text(json.dumps(list(args), default=_json_default), encoding="utf-8")
        env = dict(os.environ)
        if tz is not None:
            env["TZ"] = tz
        proc = subprocess.run(
            [python, "-I", "-c", _BOOTSTRAP, str(in_path), str(out_path), str(script_path), str(TESTS_DIR)],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT_S,
            check=False,
        )
        if proc.returncode != 0 or not out_path.exists():
            raise OracleError(f"oracle script {script_path.name} exited {proc.returncode}:\n{_tail(proc.stderr)}")
        return json.loads(out_path.read_text(encoding="utf-8"))


def run_script(name: str, *args: Any, tz: str | None = "UTC") -> dict[str, Any]:
    """Run ``upstream_scripts/<name>`` with :func:`run_upstream`."""
    return run_upstream(SCRIPTS_DIR / name, *args, tz=tz)


@functools.cache
def upstream_package_dir() -> Path:
    """The folder of the oracle's installed ``imgstore`` package (its shipped tests are in ``tests/``)."""
    python = upstream_python()
    code = _GUARD + "print(os.path.dirname(os.path.realpath(imgstore.__file__)))\n"
    with tempfile.TemporaryDirectory(prefix="imgstore-oracle-") as tmp:
        proc = subprocess.run(
            [python, "-I", "-c", code], cwd=tmp, capture_output=True, text=True, timeout=PROBE_TIMEOUT_S, check=False
        )
    if proc.returncode != 0:
        raise OracleError(f"cannot locate the oracle's imgstore package:\n{_tail(proc.stderr)}")
    return Path(proc.stdout.strip())
