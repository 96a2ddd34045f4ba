"""A pytest plugin that lets upstream's shipped test suite run against *our* ``imgstore``.

Upstream's tests live in its wheel as the package ``imgstore.tests`` and import
``from imgstore.tests import TEST_DATA_DIR``. Loaded with ``-p upstream_suite_plugin`` (every
pytest-xdist worker loads it too), this module imports our ``imgstore`` and registers the folder
named by ``$IMGSTORE_UPSTREAM_TESTS`` as its ``tests`` sub-package, so that those imports resolve
to upstream's test files and data while every other ``imgstore`` name is ours. Nothing of
upstream's is copied: the files are run from the oracle's install (see ``test_upstream_suite``).
"""

from __future__ import annotations

import importlib.util
import os
import sys

import imgstore

TESTS_ENV = "IMGSTORE_UPSTREAM_TESTS"


def _register_upstream_tests(folder: str) -> None:
    """Make ``imgstore.tests`` the package in ``folder`` (upstream's ``imgstore/tests``)."""
    spec = importlib.util.spec_from_file_location(
        "imgstore.tests", os.path.join(folder, "__init__.py"), submodule_search_locations=[folder]
    )
    if spec is None or spec.loader is None:
        raise ImportError(f"{folder} holds no importable upstream test package")
    package = importlib.util.module_from_spec(spec)
    sys.modules["imgstore.tests"] = package
    spec.loader.exec_module(package)
    imgstore.tests = package  # type: ignore[attr-defined]


_folder = os.path.realpath(os.environ[TESTS_ENV])
if os.path.realpath(imgstore.__file__).startswith(os.path.dirname(_folder) + os.sep):
    raise ImportError(
        f"upstream's suite must run against our imgstore, but it imports upstream's ({imgstore.__file__})"
    )
_register_upstream_tests(_folder)
