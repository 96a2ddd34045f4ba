"""``imgstore-test``: the installed self-test, run as a user runs it (a subprocess of this venv)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import List, Optional

import pytest

import imgstore

TOOL = Path(sys.executable).parent / "imgstore-test"
SUMMARY_OK = re.compile(r"^\d+ passed$")
SUMMARY_FAILED = re.compile(r"^(\d+) passed, (\d+) failed$")

#: makes every npy frame read come back as the first frame of its chunk, then runs the tool
BROKEN_NPY = textwrap.dedent(
    """
    import re, sys
    import imgstore.codecs.images as images
    original = images.load_npy
    images.load_npy = lambda path: original(re.sub(r"\\d{6}\\.npy$", "000000.npy", path))
    from imgstore.apps.selftest import main
    sys.exit(main(sys.argv[1:]))
    """
)

#: makes every npy frame read raise, then runs the tool
FAILING_NPY = textwrap.dedent(
    """
    import sys
    import imgstore.codecs.images as images
    def load(path):
        raise OSError("simulated unreadable disk")
    images.load_npy = load
    from imgstore.apps.selftest import main
    sys.exit(main(sys.argv[1:]))
    """
)


def run_tool(
    args: List[str], script: Optional[str] = None, tmpdir: Optional[Path] = None
) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-c", script, *args] if script else [str(TOOL), *args]
    env = dict(os.environ)
    if tmpdir is not None:
        env["TMPDIR"] = str(tmpdir)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)


def lines_of(proc: subprocess.CompletedProcess) -> List[str]:
    return proc.stdout.splitlines()


def test_passes_on_this_install_and_cleans_up(tmp_path: Path) -> None:
    proc = run_tool([], tmpdir=tmp_path)
    lines = lines_of(proc)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert SUMMARY_OK.match(lines[-1]), lines[-1]
    assert not [line for line in lines if line.startswith("FAILED")]
    checks = [line for line in lines if line.startswith("PASSED  ")]
    assert int(lines[-1].split()[0]) == len(checks)
    for fmt in imgstore.get_supported_formats():
        assert any(line.startswith(f"PASSED  {fmt} ") for line in checks), f"no check of {fmt}"
    # each kind of check ran, on 16-bit and colour frames too
    for name in ("write", "index", "sequential", "seek number random", "seek index backwards", "nearest time random"):
        assert f"PASSED  npy grey uint8 {name}" in checks
    assert "PASSED  png colour uint16 sequential" in checks
    assert "PASSED  png+color bayer uint8 sequential" in checks
    assert list(tmp_path.iterdir()) == [], "the temporary stores were not removed"


def test_format_restricts_and_quiet_prints_only_the_summary() -> None:
    proc = run_tool(["--format", "npy"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = lines_of(proc)
    checks = [line for line in lines if line.startswith(("PASSED", "FAILED", "SKIPPED"))]
    assert checks and all(line.startswith("PASSED  npy ") for line in checks)
    assert SUMMARY_OK.match(lines[-1])

    quiet = run_tool(["--format", "npy", "--quiet"])
    assert quiet.returncode == 0
    assert lines_of(quiet) == [lines[-1]]


def test_unknown_format_is_a_usage_error() -> None:
    proc = run_tool(["--format", "nosuchformat"])
    assert proc.returncode == 2
    assert "nosuchformat" in proc.stderr
    assert proc.stdout == ""


def test_unknown_backend_is_a_usage_error() -> None:
    proc = run_tool(["--backend", "nosuchbackend"])
    assert proc.returncode == 2
    assert "nosuchbackend" in proc.stderr


@pytest.mark.usefixtures("opencv")
def test_wrong_frames_are_caught_and_reported() -> None:
    proc = run_tool(["--format", "npy", "--format", "png"], script=BROKEN_NPY)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = lines_of(proc)
    match = SUMMARY_FAILED.match(lines[-1])
    assert match, lines[-1]
    passed, failed = int(match.group(1)), int(match.group(2))
    failures = [line for line in lines if line.startswith("FAILED  ")]
    assert failed == len(failures) > 0
    assert all(line.startswith("FAILED  npy ") for line in failures)  # png still works
    assert any(line.startswith("PASSED  png ") for line in lines)
    assert passed == len([line for line in lines if line.startswith("PASSED  ")])
    assert "FAILED  npy grey uint8 sequential: frame 1: " in proc.stdout
    assert "holds the id of frame 0" in proc.stdout
    # the recap names the broken format
    assert re.search(r"^  npy: \d+ of \d+ checks failed", proc.stdout, re.MULTILINE)


@pytest.mark.usefixtures("opencv")
def test_exceptions_are_reported_and_exitfirst_stops() -> None:
    proc = run_tool(["--format", "npy", "-x", "--quiet"], script=FAILING_NPY)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert lines_of(proc) == [
        "FAILED  npy grey uint8 sequential: OSError: simulated unreadable disk",
        "2 passed, 1 failed",
    ]


def test_keep_leaves_the_stores_readable(tmp_path: Path) -> None:
    keep = tmp_path / "stores"
    proc = run_tool(["--format", "npy", "--quiet", "--keep", str(keep)])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    stores = sorted(p.name for p in keep.iterdir())
    assert "npy_grey_uint8" in stores
    with imgstore.new_for_filename(str(keep / "npy_grey_uint8")) as store:
        assert store.frame_count > 0
    # a second run refuses to mix its stores with these
    again = run_tool(["--format", "npy", "--keep", str(keep)])
    assert again.returncode == 1
    assert "not empty" in again.stderr
