"""Shared pytest fixtures: where the fixture stores written by upstream imgstore live."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

FIXTURES_ENV = "IMGSTORE_FIXTURES"
REPO_ROOT = Path(__file__).resolve().parent.parent
MISSING_FIXTURES = "no-fixture-stores"


def locate_fixtures_dir() -> Path:
    """The fixture directory: ``$IMGSTORE_FIXTURES`` if set, else ``<repo>/../shared/fixtures``."""
    env = os.environ.get(FIXTURES_ENV)
    return Path(env) if env else REPO_ROOT.parent / "shared" / "fixtures"


def fixture_store_names(directory: Path) -> list[str]:
    """Names of the fixture stores in ``directory`` that have a ``<name>.expected.json``."""
    if not directory.is_dir():
        return []
    return sorted(
        p.name[: -len(".expected.json")] for p in directory.glob("*.expected.json")
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrise any test taking ``fixture_name`` over the fixture stores (a placeholder if none)."""
    if "fixture_name" in metafunc.fixturenames:
        names = fixture_store_names(locate_fixtures_dir()) or [MISSING_FIXTURES]
        metafunc.parametrize("fixture_name", names)


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    """The fixture directory; skips when it is missing, or fails when running in CI."""
    path = locate_fixtures_dir()
    if not fixture_store_names(path):
        message = f"fixture stores (*.expected.json) not found in {path}; set {FIXTURES_ENV} to their directory"
        if os.environ.get("CI") == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return path
