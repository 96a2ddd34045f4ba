"""The documentation site: it builds with warnings as errors, its nav lists every page, and its
API reference documents every public name of the library."""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator, List, Set

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
DOCS_DIR = REPO_ROOT / "docs"
MKDOCS_YML = REPO_ROOT / "mkdocs.yml"
API_PAGE = "api.md"

# the modules whose public names (their __all__) the API reference documents
API_MODULES = [
    "imgstore",
    "imgstore.stores",
    "imgstore.index",
    "imgstore.util",
    "imgstore.align",
    "imgstore.errors",
    "imgstore.multi",
    "imgstore.capture",
    "imgstore.edit",
    "imgstore.transforms",
    "imgstore.constants",
]
if importlib.util.find_spec("imgstore.dask") is not None:
    API_MODULES.append("imgstore.dask")


def load_config() -> dict:
    """mkdocs.yml (plain YAML: it uses no Python tags)."""
    return yaml.safe_load(MKDOCS_YML.read_text(encoding="utf-8"))


def nav_pages(nav: Any) -> Iterator[str]:
    """Every page file named in a mkdocs ``nav`` (titles and sections unwrapped)."""
    if isinstance(nav, str):
        if "://" not in nav:  # external links are not pages
            yield nav
    elif isinstance(nav, list):
        for item in nav:
            yield from nav_pages(item)
    elif isinstance(nav, dict):
        for value in nav.values():
            yield from nav_pages(value)


def doc_pages() -> Set[str]:
    """The Markdown pages under docs/, relative to it, leaving out folders the site excludes."""
    excluded = [line.strip().strip("/") for line in load_config().get("exclude_docs", "").splitlines() if line.strip()]
    pages = set()
    for path in DOCS_DIR.rglob("*.md"):
        relative = path.relative_to(DOCS_DIR).as_posix()
        if not any(relative == e or relative.startswith(e + "/") for e in excluded):
            pages.add(relative)
    return pages


def test_nav_parsing() -> None:
    nav = ["index.md", {"Guides": [{"One": "a.md"}, "b/c.md", {"Site": "https://example.org/"}]}]
    assert list(nav_pages(nav)) == ["index.md", "a.md", "b/c.md"]


def test_every_page_is_in_the_nav_and_every_nav_entry_exists() -> None:
    listed = list(nav_pages(load_config()["nav"]))
    assert len(listed) == len(set(listed)), f"pages listed twice in the nav: {sorted(listed)}"
    pages = doc_pages()
    assert not pages - set(listed), f"pages under docs/ missing from mkdocs.yml's nav: {sorted(pages - set(listed))}"
    assert not set(listed) - pages, f"nav entries with no file under docs/: {sorted(set(listed) - pages)}"
    assert API_PAGE in listed


@pytest.fixture(scope="module")
def built_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site built by ``mkdocs build --strict`` (skipped without mkdocs, except on CI)."""
    missing = [m for m in ("mkdocs", "material", "mkdocstrings_handlers.python") if importlib.util.find_spec(m) is None]
    if missing:
        message = f"the documentation tools are not installed ({', '.join(missing)}): pip install -e '.[docs]'"
        if os.environ.get("CI") == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    site = tmp_path_factory.mktemp("site")
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "--config-file",
            str(MKDOCS_YML),
            "--site-dir",
            str(site),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{result.stdout}\n{result.stderr}"
    return site


def api_anchors(site: Path) -> Set[str]:
    html = (site / "api" / "index.html").read_text(encoding="utf-8")
    return set(re.findall(r'id="([A-Za-z_][\w.]*)"', html))


def test_site_builds_with_every_page(built_site: Path) -> None:
    for page in doc_pages():
        html = built_site / (page[: -len(".md")] + "/index.html" if page != "index.md" else "index.html")
        assert html.is_file(), f"{page} was not built ({html} missing)"


def test_api_page_shows_real_members_with_their_docstrings(built_site: Path) -> None:
    anchors = api_anchors(built_site)
    for name in (
        "imgstore.stores.new_for_format",
        "imgstore.stores.VideoImgStore.get_nearest_image",
        "imgstore.stores.DirectoryImgStore.get_image",
        "imgstore.index.ImgStoreIndex",
        "imgstore.errors.FrameNotFoundError",
        "imgstore.constants.STORE_MD_FILENAME",
    ):
        assert name in anchors, f"{name} is not in the API reference"
    text = re.sub(r"<[^>]+>", "", (built_site / "api" / "index.html").read_text(encoding="utf-8"))
    # docstrings come through: the first line of some real ones, and a #: comment of constants.py
    from imgstore.index import ImgStoreIndex
    from imgstore.stores import VideoImgStore

    for doc in (VideoImgStore.get_nearest_image.__doc__, ImgStoreIndex.__doc__):
        first_words = " ".join(doc.split()[:4])
        assert first_words.replace("``", "") in text.replace("\n", " "), f"docstring {first_words!r} not rendered"
    assert "The file that makes a directory a store." in text


def public_names(module_name: str) -> List[str]:
    module = importlib.import_module(module_name)
    return [n for n in module.__all__ if not n.startswith("_") or n == "__version__"]


@pytest.mark.parametrize("module_name", API_MODULES)
def test_api_page_documents_every_public_name(built_site: Path, module_name: str) -> None:
    anchors = api_anchors(built_site)
    module = importlib.import_module(module_name)
    assert module_name in anchors, f"module {module_name} has no section in the API reference"
    undocumented = []
    for name in public_names(module_name):
        if f"{module_name}.{name}" in anchors:
            continue
        # the package's re-exports are documented where they are defined, and linked from the package
        elsewhere = [
            m
            for m in API_MODULES
            if m != module_name
            and f"{m}.{name}" in anchors
            and getattr(importlib.import_module(m), name, None) is getattr(module, name)
        ]
        if not elsewhere:
            undocumented.append(name)
    assert not undocumented, (
        f"public names of {module_name} missing from the API reference: {undocumented} "
        f"(add them to {API_PAGE}: the package's own names as '::: imgstore.NAME' directives)"
    )
