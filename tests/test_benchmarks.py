"""The benchmark suite still runs: ``benchmarks/run.py --quick`` (tiny sizes; its figures are not checked)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from upstream_oracle import upstream_python

RUN = Path(__file__).resolve().parent.parent / "benchmarks" / "run.py"
WORKLOADS = (
    "write npy",
    "write png",
    "write jpg",
    "write mjpeg/avi",
    "write avc1/mp4",
    "write ffv1/mkv",
    "open 3,000-frame store",
    "open 1-day store",
    "open 1-week store",
    "lookup by frame number",
    "lookup nearest frame time",
    "get_frame_metadata()",
    "read npy",
    "read avc1/mp4",
    "random avc1/mp4",
    "random mjpeg/avi",
    "add_extra_data()",
    "get_extra_data()",
    "stream npy",
)


def run_suite(tmp_path: Path, *args: str) -> str:
    proc = subprocess.run(
        [sys.executable, str(RUN), "--quick", "--dir", str(tmp_path), *args],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def check_table(out: str) -> None:
    for workload in WORKLOADS:
        assert workload in out, f"no {workload!r} row in:\n{out}"
    assert "failed" not in out and "!!" not in out, out
    assert "same as sequential decode" in out


def test_suite_runs_quick(tmp_path: Path) -> None:
    out = run_suite(tmp_path)
    check_table(out)
    assert "upstream" not in out.splitlines()[1]  # no upstream columns without --upstream


def test_suite_runs_quick_against_upstream(tmp_path: Path) -> None:
    out = run_suite(tmp_path, "--upstream", upstream_python())
    check_table(out)
    assert "imgstore 0.4.0" in out
    assert "equal to upstream's: 3/3" in out


def test_multi_store_benchmark_runs(tmp_path: Path) -> None:
    """``benchmarks/multi_store.py --quick`` steps, tiles and seeks (its figures are not checked)."""
    script = RUN.parent / "multi_store.py"
    proc = subprocess.run(
        [sys.executable, str(script), "--quick", "--dir", str(tmp_path)], capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    for label in ("stepping", "with mosaic", "random by time"):
        assert label in proc.stdout, proc.stdout


def test_edit_trim_benchmark_runs(tmp_path: Path) -> None:
    """``benchmarks/edit_trim.py --quick`` trims by copying and by encoding again, and checks both agree."""
    script = RUN.parent / "edit_trim.py"
    proc = subprocess.run(
        [sys.executable, str(script), "--quick", "--dir", str(tmp_path)], capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "trim, copying" in proc.stdout and "trim, encoding again" in proc.stdout, proc.stdout


def test_peer_readers_benchmark_runs(tmp_path: Path) -> None:
    """``benchmarks/peer_readers.py --quick`` makes the third-party files and reads them frame-exact."""
    script = RUN.parent / "peer_readers.py"
    proc = subprocess.run(
        [sys.executable, str(script), "--quick", "--dir", str(tmp_path)], capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    tables = [line for line in proc.stdout.splitlines() if line.startswith("[")]
    assert [t.split(":")[0] for t in tables] == ["[x264", "[motif", "[ffmpeg", "[colour"], proc.stdout
    ours = [line for line in proc.stdout.splitlines() if line.split("  ")[0] == "ours"]
    assert len(ours) == 4 and all(line.endswith("60/60 / 5/5") for line in ours), proc.stdout
    assert "raw PyAV: luma through range LUT" in proc.stdout and "cv2.VideoCapture" in proc.stdout


def test_reader_overhead_benchmark_runs(tmp_path: Path) -> None:
    """``benchmarks/reader_overhead.py --quick`` reads every store with ours and the raw limit, both frame-exact."""
    script = RUN.parent / "reader_overhead.py"
    proc = subprocess.run(
        [sys.executable, str(script), "--quick", "--dir", str(tmp_path)], capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = {line.split()[0]: line.split()[2] for line in proc.stdout.splitlines()[1:-1]}
    assert rows == {"x264": "180", "motif": "60", "ffmpeg": "60", "colour": "60", "own": "180"}, proc.stdout


def test_write_speed_benchmark_runs(tmp_path: Path) -> None:
    """``benchmarks/write_speed.py --quick``: ours and raw x264 give the same stream with every frame."""
    script = RUN.parent / "write_speed.py"
    proc = subprocess.run(
        [sys.executable, str(script), "--quick", "--dir", str(tmp_path)], capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    for writer in ("| ours |", "| raw |", "| raw, one copy per frame |", "| raw, plain MP4 |"):
        assert writer in proc.stdout, proc.stdout
    assert "x264 settings, ours and raw: the same" in proc.stdout, proc.stdout
    assert "H.264 streams of every writer and round: identical" in proc.stdout, proc.stdout
    assert "frames in every file: 30" in proc.stdout, proc.stdout


def test_metadata_speed_benchmark_runs(tmp_path: Path) -> None:
    """``benchmarks/metadata_speed.py --quick``: get_frame_metadata() timed against tolist(), same lists."""
    script = RUN.parent / "metadata_speed.py"
    proc = subprocess.run(
        [sys.executable, str(script), "--quick", "--dir", str(tmp_path), "--processes", "1", "--rounds", "2"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "numpy tolist() of both columns (the limit)" in proc.stdout, proc.stdout
    assert "equal to tolist()'s lists: yes" in proc.stdout, proc.stdout
