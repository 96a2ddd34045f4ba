"""What every console tool shares (``imgstore.apps._cli``): each failure is one line in words.

The sweep runs every tool on inputs that fail (files that are no video, folders that are no
store, outputs that cannot be written, broken metadata) and asserts one line on stderr, with no
traceback and no raw error number (``[Errno 1094995529]`` is how FFmpeg's "invalid data" arrives).
"""

from __future__ import annotations

import errno
import re
import sys
from pathlib import Path
from typing import List

import av
import numpy as np
import pytest

import imgstore
from imgstore.apps._cli import describe_error, error_reason, one_line

from toolrun import run_parallel

BIN = Path(sys.executable).parent
_ERRNO = re.compile(r"Errno|\[-?\d{3,}\]|Traceback")


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cli")
    (root / "t.txt").write_text("not a video\n")
    (root / "empty.mp4").write_bytes(b"")
    (root / "junk.mp4").write_bytes(bytes(range(256)) * 12)
    (root / "folder").mkdir()
    (root / "badmd").mkdir()
    (root / "badmd" / "metadata.yaml").write_text("a: [\n")
    with imgstore.new_for_format("npy", path=str(root / "ok"), imgshape=(16, 16)) as store:
        for i in range(3):
            store.add_image(np.full((16, 16), i, np.uint8), i, float(i))
    return root


CASES = [
    ("imgstore-save", ["d1", "--source", "t.txt"], "t.txt: cannot open as a video: invalid data found"),
    ("imgstore-save", ["d2", "--source", "empty.mp4"], "empty.mp4: cannot open as a video: invalid data found"),
    ("imgstore-save", ["d3", "--source", "junk.mp4"], "junk.mp4: cannot open as a video"),
    ("imgstore-save", ["t.txt/sub", "--source", "testsrc", "--frames", "3"], "t.txt/sub"),
    ("imgstore-save", ["d4", "--source", "badmd"], "badmd/metadata.yaml: not valid YAML: "),
    ("imgstore-save", ["d5", "--source", "http://127.0.0.1:9/x.mp4"], "cannot open as a video: connection refused"),
    ("imgstore-info", ["badmd"], "badmd/metadata.yaml: not valid YAML: "),
    ("imgstore-info", ["folder"], "path 'folder' holds no metadata.yaml: not an imgstore"),
    ("imgstore-info", ["ok", "--plot", "t.txt/x.png"], "t.txt/x.png: not a directory"),
    ("imgstore-export", ["ok", "t.txt/out.mp4"], "t.txt/out.mp4: cannot be written: t.txt is a file, not a folder"),
    ("imgstore-export", ["ok", "t.txt/frames/"], "t.txt/frames/: cannot be written: t.txt is a file, not a folder"),
    ("imgstore-export", ["badmd", "o.mp4"], "badmd/metadata.yaml: not valid YAML: "),
    ("imgstore-view", ["badmd"], "badmd/metadata.yaml: not valid YAML: "),
]


@pytest.mark.parametrize("program", sorted({c[0] for c in CASES}))
def test_every_failure_is_one_line_in_words(workdir: Path, program: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(workdir)
    cases = [(args, expected) for prog, args, expected in CASES if prog == program]
    results = run_parallel(str(BIN / program), *[args for args, _ in cases], timeout=120)
    problems: List[str] = []
    for (args, expected), result in zip(cases, results):
        lines = [line for line in result.stderr.splitlines() if not line.startswith(("export:", "saving:"))]
        if result.returncode != 1 or len(lines) != 1 or _ERRNO.search(result.stderr):
            problems.append(f"{program} {' '.join(args)} -> exit {result.returncode}: {result.stderr!r}")
        elif not lines[0].startswith(f"{program}: error: ") or expected not in lines[0]:
            problems.append(f"{program} {' '.join(args)}: {lines[0]!r} lacks {expected!r}")
    assert not problems, "\n".join(problems)


def test_ffmpeg_errors_read_as_ffmpeg_says_them(tmp_path: Path) -> None:
    path = tmp_path / "t.txt"
    path.write_text("no video")
    with pytest.raises(av.FFmpegError) as caught:
        av.open(str(path))
    assert "1094995529" in str(caught.value)  # what the message used to show
    assert error_reason(caught.value) == "invalid data found when processing input"
    assert describe_error(caught.value) == f"{path}: invalid data found when processing input"


def test_os_errors_read_as_file_and_reason() -> None:
    exc = NotADirectoryError(errno.ENOTDIR, "Not a directory", "t.txt/sub")
    assert describe_error(exc) == "t.txt/sub: not a directory"
    assert describe_error(OSError(errno.EIO, "Input/output error")) == "input/output error"
    assert error_reason(ValueError("[Errno 5] odd")) == "odd"


def test_one_line_joins_a_parsers_lines() -> None:
    text = 'bad.yaml: not valid YAML: while parsing\nexpected a node\n  in "<byte string>", line 2\n    ^\n'
    assert one_line(text) == 'bad.yaml: not valid YAML: while parsing; expected a node; in "<byte string>", line 2'


def test_an_unforeseen_failure_is_one_line_too(capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    import argparse

    from imgstore.apps import _cli

    def body(args: argparse.Namespace) -> int:
        raise RuntimeError("something nobody foresaw")

    parser = argparse.ArgumentParser(prog="imgstore-x")
    _cli.add_common_arguments(parser)
    assert _cli.run("imgstore-x", body, parser, []) == _cli.EXIT_FAILED
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("imgstore-x: error: RuntimeError: something nobody foresaw")
    assert "--verbose" in err[0]
