"""Run the ```python blocks of the documentation, so that every example keeps working.

Each Markdown file (``docs/*.md`` and ``README.md``) is one test: its ``python`` blocks run in
order in one namespace, in a fresh temporary directory. Blocks fenced as ``text`` or
``python-norun`` (or any other language) are not run.
"""

from __future__ import annotations

import re
import traceback
from pathlib import Path
from typing import List

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent

# an opening fence of exactly ```python (nothing but spaces after it), up to the next closing fence
_PYTHON_BLOCK = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)


def doc_files() -> List[Path]:
    """The Markdown files whose examples are tested."""
    files = sorted((REPO_ROOT / "docs").glob("*.md"))
    readme = REPO_ROOT / "README.md"
    if readme.is_file():
        files.append(readme)
    return files


def python_blocks(text: str) -> List[str]:
    """The source of every ```python block of a Markdown text, in order."""
    return [match.group(1) for match in _PYTHON_BLOCK.finditer(text)]


def test_block_extraction() -> None:
    text = (
        "intro\n```python\na = 1\n```\n\n```python-norun\nraise SystemExit\n```\n"
        "```text\nnot code\n```\n```python  \nb = a + 1\n```\n"
    )
    assert python_blocks(text) == ["a = 1\n", "b = a + 1\n"]
    assert python_blocks("no code here\n") == []


@pytest.mark.parametrize("path", doc_files(), ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_doc_examples_run(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    name = str(path.relative_to(REPO_ROOT))
    namespace = {"__name__": "__docs__"}
    for number, source in enumerate(python_blocks(path.read_text(encoding="utf-8")), start=1):
        label = f"{name}, python block {number}"
        failure = None
        try:
            exec(compile(source, f"<{label}>", "exec"), namespace)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # any failure (SystemExit too) is reported with its block
            failure = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        if failure is not None:
            pytest.fail(f"{label} failed:\n{source}\n{failure}", pytrace=False)
