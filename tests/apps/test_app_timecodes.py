"""``imgstore.apps.generate_timecodes``: the timecode file of a store, byte for byte as upstream writes it.

Our stores (irregular intervals, a dropped-frame gap, a time that goes back, several chunks, a
single frame, a video store) and the shared fixture stores are written out by us and by upstream
0.4.0 in the oracle; the files, the returned times and what ``main_generate_timecodes`` prints
must be the same. Also: every name of upstream's ``imgstore.apps`` exists in ours.
"""

from __future__ import annotations

import io
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import imgstore
import imgstore.apps
from imgstore.apps import generate_timecodes, main_generate_timecodes

from framecodes import make_grid_frame
from upstream_oracle import run_upstream

T0 = 1717236000.123456  # not a round number: the subtraction of the first time must round as upstream's
SHAPE = (8, 12)

_UPSTREAM_TIMECODES = """
import contextlib, io, sys
from imgstore.apps import generate_timecodes, main_generate_timecodes
from imgstore.stores import new_for_filename

def main(paths):
    out = {}
    for path in paths:
        try:
            store = new_for_filename(path)
            text = io.StringIO()
            times = generate_timecodes(store, text)
            store.close()
            printed = io.StringIO()
            sys.argv = ["generate-timecodes", path]
            with contextlib.redirect_stdout(printed):
                main_generate_timecodes()
        except Exception as exc:
            out[path] = {"error": "%s: %s" % (type(exc).__name__, exc)}
            continue
        out[path] = {"text": text.getvalue(), "times": times.tolist(), "dtype": str(times.dtype),
                     "stdout": printed.getvalue()}
    return out
"""

_UPSTREAM_APPS_NAMES = """
import inspect
import imgstore.apps

def main():
    return sorted(n for n, v in vars(imgstore.apps).items() if not n.startswith("_") and not inspect.ismodule(v))
"""


def _write(path: Path, fmt: str, numbers: list, times: list, chunksize: int) -> str:
    with imgstore.new_for_format(fmt, path=str(path), imgshape=SHAPE, imgdtype=np.uint8, chunksize=chunksize) as s:
        for i, (n, t) in enumerate(zip(numbers, times)):
            s.add_image(make_grid_frame(i, SHAPE), n, t)
    return str(path)


def _store_specs() -> dict:
    rng = np.random.default_rng(20240601)
    # irregular intervals (1-100 ms, sub-millisecond parts that make .3f round both ways), 3 chunks
    jitter = T0 + np.concatenate([[0.0], np.cumsum(rng.uniform(0.001, 0.1, 119))])
    # frames 0..5 every 40 ms, 6..11 dropped, then 12..19 from 450 ms; one time goes back by 4 ms
    gap_numbers = list(range(6)) + list(range(12, 20))
    gap_times = [T0 + 0.04 * i for i in range(6)] + [T0 + 0.45 + 0.04 * i for i in range(8)]
    gap_times[9] = gap_times[8] - 0.004
    return {
        "jitter": ("npy", list(range(120)), jitter.tolist(), 50),
        "gap": ("png", gap_numbers, gap_times, 4),
        "single": ("npy", [7], [T0], 10),
        "video": ("mjpeg/avi", list(range(25)), (T0 + 1 / 30.0 * np.arange(25)).tolist(), 10),
    }


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("timecodes")
    return {name: _write(root / name, *spec) for name, spec in _store_specs().items()}


@pytest.fixture(scope="module")
def upstream_timecodes(stores: dict) -> dict:
    """What upstream writes and prints for each of our stores (one oracle run)."""
    return run_upstream(_UPSTREAM_TIMECODES, list(stores.values()))


def _ours(path: str, capsys: pytest.CaptureFixture) -> dict:
    with imgstore.new_for_filename(path) as store:
        text = io.StringIO()
        times = generate_timecodes(store, text)
    capsys.readouterr()
    status = main_generate_timecodes([path])
    printed = capsys.readouterr()
    assert status == 0 and printed.err == "", printed.err
    return {"text": text.getvalue(), "times": times, "stdout": printed.out}


@pytest.mark.parametrize("name", list(_store_specs()))
def test_timecodes_match_upstream_byte_for_byte(
    name: str, stores: dict, upstream_timecodes: dict, capsys: pytest.CaptureFixture
) -> None:
    path = stores[name]
    theirs = upstream_timecodes[path]
    assert "error" not in theirs, theirs
    ours = _ours(path, capsys)
    assert ours["text"].encode() == theirs["text"].encode()
    assert ours["stdout"].encode() == theirs["stdout"].encode() == theirs["text"].encode()
    assert isinstance(ours["times"], np.ndarray) and ours["times"].dtype == np.float64 == np.dtype(theirs["dtype"])
    assert ours["times"].tolist() == theirs["times"]  # exactly the same floats

    # and the file says what the store holds: one line per frame, ms after the first frame
    times = _store_specs()[name][2]
    lines = ours["text"].splitlines()
    assert lines[0] == "# timecode format v2" and len(lines) == len(times) + 1
    for line, t in zip(lines[1:], times):
        assert math.isclose(float(line), (t - times[0]) * 1000.0, abs_tol=0.0006), (line, t)
        assert len(line.split(".")[1]) == 3
    if name == "gap":
        assert lines[6:8] == ["200.000", "450.000"]  # the gap of the dropped frames
        assert lines[10].startswith("5") and float(lines[10]) < float(lines[9])  # the time that goes back
        assert float(lines[10]) == pytest.approx(float(lines[9]) - 4.0, abs=0.002)


def test_timecodes_of_the_fixture_stores_match_upstream(
    fixtures_dir: Path, fixture_name: str, capsys: pytest.CaptureFixture
) -> None:
    path = str(fixtures_dir / fixture_name)
    theirs = run_upstream(_UPSTREAM_TIMECODES, [path])[path]
    if "error" in theirs:
        pytest.skip(f"upstream cannot read {fixture_name}: {theirs['error']}")
    ours = _ours(path, capsys)
    assert ours["text"] == theirs["text"] and ours["stdout"] == theirs["stdout"]
    assert ours["times"].tolist() == theirs["times"]


def test_timecodes_by_hand() -> None:
    class Times:
        def __init__(self, times: list) -> None:
            self.times = times

        def get_frame_metadata(self) -> dict:
            return {"frame_number": list(range(len(self.times))), "frame_time": self.times}

    out = io.StringIO()
    got = generate_timecodes(Times([100.5, 100.75, 101.0, 110.5, 100.0]), out)
    assert out.getvalue() == "# timecode format v2\n0.000\n250.000\n500.000\n10000.000\n-500.000\n"
    np.testing.assert_array_equal(got, [0.0, 0.25, 0.5, 10.0, -0.5])

    out = io.StringIO()
    got = generate_timecodes(Times([]), out)  # upstream raises IndexError; we write the header alone
    assert out.getvalue() == "# timecode format v2\n" and got.shape == (0,)


def test_main_generate_timecodes_errors(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    missing = tmp_path / "no store here"
    assert main_generate_timecodes([str(missing)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(missing) in err
    with pytest.raises(SystemExit) as exc:
        main_generate_timecodes([])
    assert exc.value.code == 2


def test_timecodes_module_runs_as_a_script(stores: dict) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "imgstore.apps.timecodes", stores["single"]],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0 and out.stderr == "", out.stderr
    assert out.stdout == "# timecode format v2\n0.000\n"


def test_apps_has_every_upstream_name() -> None:
    theirs = run_upstream(_UPSTREAM_APPS_NAMES)
    assert {"generate_timecodes", "main_generate_timecodes", "new_window", "FontRendererStatusBar"} <= set(theirs)
    missing = [n for n in theirs if not hasattr(imgstore.apps, n)]
    assert not missing, f"upstream's imgstore.apps has names ours lacks: {missing}"
    assert set(theirs) <= set(imgstore.apps.__all__)
    for name in ("new_for_filename", "new_for_format", "get_supported_formats"):
        assert getattr(imgstore.apps, name) is getattr(imgstore.stores, name)
    for name in ("motif_get_parse_true_fps", "motif_get_recording_timezone"):
        assert getattr(imgstore.apps, name) is getattr(imgstore.util, name)
