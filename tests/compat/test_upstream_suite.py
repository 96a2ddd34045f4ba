"""Upstream's own shipped test suite, run against our ``imgstore``: the floor of compatibility.

The ``imgstore==0.4.0`` wheel ships its tests as ``imgstore/tests``. They are taken from the
oracle's install (see ``upstream_oracle``), copied to a temporary folder (so that running them
writes nothing into the oracle), and run by a child pytest in which ``imgstore`` is ours and only
``imgstore.tests`` is upstream's (``upstream_suite_plugin``). Upstream's tests parametrise over
``get_supported_formats()``, so every format we add runs through them as well.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Dict, NamedTuple

import pytest

import imgstore

from upstream_oracle import TESTS_DIR, upstream_package_dir

#: upstream tests that cannot pass because of a deliberate deviation listed in docs/differences.md,
#: as ``{test id: the deviation's heading in docs/differences.md}``. Empty: every test must pass.
DESELECTED: Dict[str, str] = {}

#: upstream 0.4.0 ships 124 tests when a store lists upstream's own formats; ours adds more
UPSTREAM_TEST_COUNT = 124
SUITE_TIMEOUT_S = 1200
#: a test of upstream's running longer than this dumps every thread's stack into the child's stderr
#: (pytest's faulthandler), so that a hang is reported with where it waits
TEST_STACK_DUMP_S = 300
DIFFERENCES = Path(__file__).resolve().parents[2] / "docs" / "differences.md"


class Outcome(NamedTuple):
    """One upstream test's result: 'passed', 'failed', 'error', 'skipped' or 'xfailed', and why."""

    result: str
    message: str


def _outcomes(junit_xml: Path) -> Dict[str, Outcome]:
    """Each test's outcome from pytest's JUnit XML, keyed ``file.py::name[params]``."""
    outcomes: Dict[str, Outcome] = {}
    for case in ET.parse(junit_xml).getroot().iter("testcase"):
        test_id = f"{case.get('classname', '').rpartition('.')[2]}.py::{case.get('name')}"
        result, message = "passed", ""
        for child in case:
            if child.tag in ("failure", "error"):
                result, message = ("failed" if child.tag == "failure" else "error"), child.get("message") or ""
                message += "\n" + (child.text or "")[-3000:]
            elif child.tag == "skipped":
                xfail = (child.get("type") or "") == "pytest.xfail"
                result, message = ("xfailed" if xfail else "skipped"), child.get("message") or ""
        outcomes[test_id] = Outcome(result, message)
    return outcomes


@pytest.fixture(scope="module")
def upstream_suite(tmp_path_factory: pytest.TempPathFactory) -> Dict[str, Outcome]:
    """Run upstream's shipped suite against our library once; every test's outcome."""
    work = tmp_path_factory.mktemp("upstream-suite")
    tests = work / "upstream" / "tests"
    shutil.copytree(upstream_package_dir() / "tests", tests, ignore=shutil.ignore_patterns("__pycache__"))
    ini = work / "pytest.ini"
    ini.write_text("[pytest]\n", encoding="utf-8")
    junit = work / "results.xml"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TESTS_DIR), env.get("PYTHONPATH")]))
    env["IMGSTORE_UPSTREAM_TESTS"] = str(tests)
    command = [
        sys.executable, "-m", "pytest", "-p", "upstream_suite_plugin", "-p", "no:cacheprovider",
        "--import-mode=importlib", "-c", str(ini), "--rootdir", str(tests), f"--junitxml={junit}",
        "-q", "-n", "2", "-o", "junit_family=xunit1", "-o", f"faulthandler_timeout={TEST_STACK_DUMP_S}",
        *(arg for test_id in DESELECTED for arg in ("--deselect", test_id)),
        str(tests),
    ]  # fmt: skip
    try:
        proc = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True, timeout=SUITE_TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(
            f"upstream's suite did not finish in {SUITE_TIMEOUT_S} s; its output:\n"
            f"{_text(exc.stdout)[-6000:]}\n{_text(exc.stderr)[-20000:]}"
        )
    if not junit.exists():
        pytest.fail(
            f"upstream's suite did not run (exit {proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
        )
    return _outcomes(junit)


def _text(output: object) -> str:
    """What a timed-out child wrote: ``TimeoutExpired`` carries bytes even for a text-mode run."""
    if isinstance(output, bytes):
        return output.decode("utf-8", "replace")
    return output or ""


def test_upstream_suite_passes(upstream_suite: Dict[str, Outcome]) -> None:
    """Every upstream test passes (upstream marks one ``xfail(strict=False)``: it may pass or xfail)."""
    bad = {t: o for t, o in upstream_suite.items() if o.result not in ("passed", "xfailed")}
    report = "\n\n".join(f"{t}: {o.result}\n{o.message.strip()}" for t, o in sorted(bad.items()))
    passed = sum(o.result == "passed" for o in upstream_suite.values())
    assert not bad, f"{len(bad)} of {len(upstream_suite)} upstream tests did not pass ({passed} passed):\n{report}"


def test_upstream_suite_ran_in_full(upstream_suite: Dict[str, Outcome]) -> None:
    """Nothing was silently left out: all of upstream's tests ran, ``test_all`` once per format we write."""
    assert len(upstream_suite) + len(DESELECTED) >= UPSTREAM_TEST_COUNT
    formats = imgstore.get_supported_formats()
    ran = {t.partition("[")[2].rstrip("]") for t in upstream_suite if t.startswith("test_imgstore.py::test_all[")}
    assert ran == set(formats)
    videos = imgstore.VideoImgStore.supported_formats()
    seek_tests = {t for t in upstream_suite if t.startswith("test_imgstore.py::test_videoseek_extensive[")}
    assert len(seek_tests) == 2 * len(videos)


def test_deselected_tests_name_a_documented_deviation() -> None:
    """Each deselected upstream test names a deviation that ``docs/differences.md`` describes."""
    differences = DIFFERENCES.read_text(encoding="utf-8")
    for test_id, deviation in DESELECTED.items():
        assert "::" in test_id, test_id
        assert deviation and deviation in differences, f"{test_id}: {deviation!r} is not in {DIFFERENCES.name}"
