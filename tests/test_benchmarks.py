"""The benchmark scripts still run (tiny sizes; the figures themselves are not checked here)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def _run(script: str, *args: str, tmp_path: Path) -> str:
    proc = subprocess.run([sys.executable, str(BENCHMARKS / script), *args, "--dir", str(tmp_path)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def test_index_lookup_benchmark_runs(tmp_path):
    out = _run("index_lookup.py", "--frames", "3000", "--chunksize", "200", "--queries", "50", tmp_path=tmp_path)
    assert "by number (exact)" in out and "nearest time" in out


def test_video_benchmark_runs(tmp_path):
    out = _run("video_speed.py", "--quick", tmp_path=tmp_path)
    assert "sequential read" in out and "random read" in out and "exact" in out
