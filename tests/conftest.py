"""Shared pytest set-up: the sets of fixture stores, and one clear error for a broken OpenCV.

Two sets of fixture stores with upstream's answers exist, replayed alike by the tests that take
``fixtures_dir`` (and ``fixture_name``):

- ``upstream``: written by upstream imgstore 0.4.0 at test time, through the oracle
  (``upstream_fixtures.py``); every clone has it.
- ``shared``: the independent set in ``../shared/fixtures`` (or ``$IMGSTORE_FIXTURES``), used
  when that folder exists; CI (``CI=true``) requires it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from upstream_fixtures import fixture_names, generated_fixtures_dir

FIXTURES_ENV = "IMGSTORE_FIXTURES"
REPO_ROOT = Path(__file__).resolve().parent.parent
GENERATED_SET = "upstream"
SHARED_SET = "shared"


# ----------------------------------------------------------------------------------------------
# OpenCV: imgstore needs it at import time; without its system libraries, say so once
# ----------------------------------------------------------------------------------------------
#: shared libraries opencv-python loads, and the Debian/Ubuntu packages that provide them
OPENCV_SYSTEM_LIBRARIES = {
    "libGL.so.1": "libgl1",
    "libgthread-2.0.so.0": "libglib2.0-0",
    "libglib-2.0.so.0": "libglib2.0-0",
    "libSM.so.6": "libsm6",
    "libICE.so.6": "libice6",
    "libXext.so.6": "libxext6",
}


def opencv_import_problem() -> str | None:
    """Why ``import cv2`` fails here, as one message naming what to install; None when it works."""
    try:
        import cv2  # noqa: F401
    except ImportError as exc:
        text = str(exc)
        for library, package in OPENCV_SYSTEM_LIBRARIES.items():
            if library in text:
                return (
                    f"OpenCV (opencv-python) cannot load {library}, a system library it needs: "
                    f"`apt-get install {package}` (Debian/Ubuntu; the README lists every system package the tests "
                    "use), or on a machine without a display swap in OpenCV's headless build: `pip uninstall -y "
                    f"opencv-python && pip install opencv-python-headless`; the error was: {text}"
                )
        return f"OpenCV cannot be imported (pip install opencv-python): {text}"
    return None


def pytest_configure(config: pytest.Config) -> None:
    """Stop before collection, in one line, when OpenCV cannot load (every test module imports it)."""
    problem = opencv_import_problem()
    if problem is not None:
        raise pytest.UsageError(problem)


# ----------------------------------------------------------------------------------------------
# fixture stores
# ----------------------------------------------------------------------------------------------
def locate_fixtures_dir() -> Path:
    """The shared fixture directory: ``$IMGSTORE_FIXTURES`` if set, else ``<repo>/../shared/fixtures``."""
    env = os.environ.get(FIXTURES_ENV)
    return Path(env) if env else REPO_ROOT.parent / "shared" / "fixtures"


def fixture_store_names(directory: Path) -> list[str]:
    """Names of the fixture stores in ``directory`` that have a ``<name>.expected.json``."""
    if not directory.is_dir():
        return []
    return sorted(p.name[: -len(".expected.json")] for p in directory.glob("*.expected.json"))


def _in_ci() -> bool:
    return os.environ.get("CI") == "true"


def fixture_sets() -> dict[str, list[str]]:
    """``{set name: its store names}``: the generated set, and the shared one where it exists (always in CI)."""
    sets = {GENERATED_SET: fixture_names()}
    shared = fixture_store_names(locate_fixtures_dir())
    if shared or _in_ci():
        sets[SHARED_SET] = shared or ["missing"]
    return sets


def pytest_report_header(config: pytest.Config) -> list[str]:
    """Say where the fixture stores come from."""
    shared = locate_fixtures_dir()
    count = len(fixture_store_names(shared))
    lines = [f"fixture stores: '{GENERATED_SET}' set written by upstream imgstore 0.4.0 at test time (oracle cache)"]
    if count:
        lines.append(f"fixture stores: '{SHARED_SET}' set, {count} stores in {shared}")
    else:
        lines.append(f"fixture stores: no '{SHARED_SET}' set ({shared} not found; set {FIXTURES_ENV} to add one)")
    return lines


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run tests that use fixture stores on every set: each store of each set for ``fixture_name``."""
    if "fixture_set" not in metafunc.fixturenames:
        return
    sets = fixture_sets()
    if "fixture_name" in metafunc.fixturenames:
        pairs = [(s, name) for s, names in sets.items() for name in names]
        metafunc.parametrize(
            ("fixture_set", "fixture_name"), pairs, indirect=["fixture_set"], ids=[f"{s}-{n}" for s, n in pairs]
        )
    else:
        metafunc.parametrize("fixture_set", list(sets), indirect=True)


@pytest.fixture(scope="session")
def fixture_set(request: pytest.FixtureRequest) -> str:
    """The name of the set of fixture stores under test (parametrised by ``pytest_generate_tests``)."""
    return request.param


@pytest.fixture(scope="session")
def fixtures_dir(fixture_set: str) -> Path:
    """The folder of the fixture stores of ``fixture_set``: built by the oracle, or the shared one."""
    if fixture_set == GENERATED_SET:
        from upstream_oracle import upstream_python

        upstream_python()  # skips (fails in CI) with the reason when there is no oracle
        return generated_fixtures_dir()
    path = locate_fixtures_dir()
    if not fixture_store_names(path):
        pytest.fail(f"CI: the shared fixture stores (*.expected.json) are missing in {path}", pytrace=False)
    return path
