"""Run the examples of the documentation, so that every example keeps working.

Each Markdown file (``docs/**/*.md`` and ``README.md``) is one test. Its runnable blocks run in
the order they appear, in a fresh temporary directory:

- ```` ```python ```` blocks run in one namespace shared by the page;
- ```` ```console ```` blocks show a shell session: every line starting with ``$ `` is a command
  of this package's console tools (``imgstore-save``, ``imgstore-info``...), run as a subprocess
  that must succeed; the other lines are the output shown to the reader and are not compared.

Blocks fenced as ``python-norun`` (they need a camera or a network), ``bash``, ``text`` or any
other language are not run.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import traceback
from pathlib import Path
from typing import List, Optional, Tuple

import pytest

from toolrun import tool

REPO_ROOT = Path(__file__).resolve().parent.parent

# an opening fence of exactly ```python or ```console (nothing but spaces after it), up to the
# next closing fence
_RUNNABLE_BLOCK = re.compile(r"^```(python|console)[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
_PROMPT = "$ "
_TOOL_PREFIX = "imgstore-"
_TOOL_TIMEOUT_S = 300


def doc_files() -> List[Path]:
    """The Markdown files whose examples are tested."""
    files = sorted((REPO_ROOT / "docs").glob("**/*.md"))
    readme = REPO_ROOT / "README.md"
    if readme.is_file():
        files.append(readme)
    return files


def runnable_blocks(text: str) -> List[Tuple[str, str]]:
    """``(language, source)`` of every ```python and ```console block of a Markdown text, in order."""
    return [(match.group(1), match.group(2)) for match in _RUNNABLE_BLOCK.finditer(text)]


def python_blocks(text: str) -> List[str]:
    """The source of every ```python block of a Markdown text, in order."""
    return [source for language, source in runnable_blocks(text) if language == "python"]


def console_commands(block: str) -> List[List[str]]:
    """The commands of a console block: its ``$ `` lines, split into words as a shell would."""
    return [shlex.split(line[len(_PROMPT) :]) for line in block.splitlines() if line.startswith(_PROMPT)]


def test_block_extraction() -> None:
    text = (
        "intro\n```python\na = 1\n```\n\n```python-norun\nraise SystemExit\n```\n"
        "```text\nnot code\n```\n```python  \nb = a + 1\n```\n"
        "```console\n$ imgstore-info 'my store'\nframes: 3\n```\n```bash\nimgstore-save x\n```\n"
    )
    assert python_blocks(text) == ["a = 1\n", "b = a + 1\n"]
    assert runnable_blocks(text) == [
        ("python", "a = 1\n"),
        ("python", "b = a + 1\n"),
        ("console", "$ imgstore-info 'my store'\nframes: 3\n"),
    ]
    assert console_commands("$ imgstore-info 'my store' --json\nframes: 3\n$ imgstore-test -q\n") == [
        ["imgstore-info", "my store", "--json"],
        ["imgstore-test", "-q"],
    ]
    assert python_blocks("no code here\n") == []


def _run_python(source: str, namespace: dict, label: str) -> Optional[str]:
    """Run one python block; the formatted traceback when it fails, else None."""
    try:
        exec(compile(source, f"<{label}>", "exec"), namespace)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # any failure (SystemExit too) is reported with its block
        return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return None


def _run_console(block: str) -> Optional[str]:
    """Run the commands of one console block in order; a description of the first failure, else None."""
    for argv in console_commands(block):
        command = shlex.join(argv)
        if not argv or not argv[0].startswith(_TOOL_PREFIX):
            return f"$ {command}: not one of this package's console tools; show it in a ```bash block instead"
        try:
            result = subprocess.run([tool(argv[0]), *argv[1:]], capture_output=True, text=True, timeout=_TOOL_TIMEOUT_S)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"$ {command}: {exc}"
        if result.returncode != 0:
            return f"$ {command} exited with {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    return None


@pytest.mark.parametrize("path", doc_files(), ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_doc_examples_run(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    name = str(path.relative_to(REPO_ROOT))
    namespace = {"__name__": "__docs__"}
    for number, (language, source) in enumerate(runnable_blocks(path.read_text(encoding="utf-8")), start=1):
        label = f"{name}, {language} block {number}"
        if language == "python":
            failure = _run_python(source, namespace, label)
        else:
            failure = _run_console(source)
        if failure is not None:
            pytest.fail(f"{label} failed:\n{source}\n{failure}", pytrace=False)
