"""Shared pytest set-up: the sets of fixture stores, and skips naming the package when OpenCV cannot load.

Two sets of fixture stores with upstream's answers exist, replayed alike by the tests that take
``fixtures_dir`` (and ``fixture_name``):

- ``upstream``: written by upstream imgstore 0.4.0 at test time, through the oracle
  (``upstream_fixtures.py``); every clone has it.
- ``shared``: the independent set in ``../shared/fixtures`` (or ``$IMGSTORE_FIXTURES``), used
  when that folder exists; CI (``CI=true``) requires it.
"""

from __future__ import annotations

import os
import sys
import types
from pathlib import Path

import pytest

from imgstore._opencv import OpenCVUnavailable, describe_import_error, mark_unavailable

from upstream_fixtures import fixture_names, generated_fixtures_dir

FIXTURES_ENV = "IMGSTORE_FIXTURES"
REPO_ROOT = Path(__file__).resolve().parent.parent
GENERATED_SET = "upstream"
SHARED_SET = "shared"


# ----------------------------------------------------------------------------------------------
# OpenCV: without its system libraries, the tests that need it skip, naming what to install
# ----------------------------------------------------------------------------------------------
class _OpenCVSkips(types.ModuleType):
    """Stands in for ``cv2`` when OpenCV cannot load: any use of it skips the test (or the test
    module) with the message naming the package to install. imgstore itself loads OpenCV
    lazily, so the tests that need no OpenCV run as usual."""

    def __init__(self, problem: str) -> None:
        super().__init__("cv2")
        self.__problem = problem

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        raise pytest.skip.Exception(self.__problem, allow_module_level=True)


def opencv_import_error() -> str | None:
    """What ``import cv2`` raises here (None when it works)."""
    try:
        import cv2  # noqa: F401
    except ImportError as exc:
        return str(exc)
    return None


#: what ``import cv2`` raises here, and that as a message naming what to install (None: it loads)
OPENCV_IMPORT_ERROR = opencv_import_error()
OPENCV_PROBLEM = None if OPENCV_IMPORT_ERROR is None else describe_import_error(ImportError(OPENCV_IMPORT_ERROR))


def pytest_configure(config: pytest.Config) -> None:
    """When OpenCV cannot load, say so once and let each use of it skip its test: in the tests, through
    a stand-in ``cv2``; in imgstore, which then works as on such a machine, through its own error.

    Index caches go to a folder of this run (and of the tools it starts), not the user's."""
    import tempfile

    os.environ.setdefault("IMGSTORE_CACHE_DIR", tempfile.mkdtemp(prefix="imgstore-test-cache-"))
    if OPENCV_PROBLEM is not None:
        sys.modules["cv2"] = _OpenCVSkips(OPENCV_PROBLEM)
        mark_unavailable(OPENCV_PROBLEM)
        config.issue_config_time_warning(pytest.PytestWarning(OPENCV_PROBLEM), stacklevel=2)


def _needs_opencv(value: object) -> bool:
    """Whether a test parameter names a format that needs OpenCV (``png``, ``mjpeg/avi``...)."""
    from imgstore.codecs import needs_opencv

    return needs_opencv(value)


def pytest_collection_modifyitems(config: pytest.Config, items: list) -> None:
    """Without OpenCV, tests run for a format that needs it skip (the list of such tests is fixed)."""
    if OPENCV_PROBLEM is None:
        return
    skip = pytest.mark.skip(reason=OPENCV_PROBLEM)
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if any(_needs_opencv(value) for value in params.values()):
            item.add_marker(skip)


@pytest.fixture
def opencv() -> None:
    """For a test that needs OpenCV whatever its parameters: without it, a skip naming what to install."""
    if OPENCV_PROBLEM is not None:
        pytest.skip(OPENCV_PROBLEM)


def _caused_by_missing_opencv(exc: BaseException | None) -> bool:
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, OpenCVUnavailable):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """A test that failed because OpenCV cannot load is a skip naming what to install."""
    outcome = yield
    report = outcome.get_result()
    if OPENCV_PROBLEM is None or call.excinfo is None or report.outcome != "failed":
        return
    # in this process imgstore raised its error; in a child process (a console tool, the oracle) the
    # import of cv2 failed, and what the child printed is in the failure
    text = str(report.longrepr)
    if _caused_by_missing_opencv(call.excinfo.value) or OPENCV_IMPORT_ERROR in text or "OpenCVUnavailable" in text:
        report.outcome = "skipped"
        report.longrepr = (str(item.path), item.location[1] or 0, f"Skipped: {OPENCV_PROBLEM}")


# ----------------------------------------------------------------------------------------------
# fault injection (test_faults.py, test_fault_machine.py)
# ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def fault_server(tmp_path_factory: pytest.TempPathFactory):
    """A fault server (``faultinject.py``) for the module's tests; skips, naming gcc, without a C compiler."""
    from faultinject import build_shim, started_fault_server

    try:
        shim = build_shim()
    except RuntimeError as exc:
        pytest.skip(str(exc))
    with started_fault_server(tmp_path_factory.mktemp("faults"), shim) as server:
        yield server


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
