"""The project as a newcomer meets it: a clone that tests itself, the README's promises, the
distribution name, the oracle's cache and a clear stop when OpenCV cannot load."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import upstream_oracle
from conftest import GENERATED_SET, fixture_store_names
from test_docs import python_blocks
from upstream_fixtures import fixture_names, generated_fixtures_dir

REPO = Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text(encoding="utf-8")
DISTRIBUTION = "imgstore-ng"


def _clean_env(**more: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "IMGSTORE_FIXTURES", "CI"))}
    env.update(more)
    return env


# ----------------------------------------------------------------------------------------------
# 1. a clone needs no ../shared: upstream's stores are written at test time
# ----------------------------------------------------------------------------------------------
def test_generated_fixture_set_holds_every_store_with_upstreams_answers() -> None:
    upstream_oracle.upstream_python()  # skips (fails in CI) with the reason when there is no oracle
    fixtures_dir = generated_fixtures_dir()
    assert REPO not in fixtures_dir.parents
    assert fixture_store_names(fixtures_dir) == fixture_names()
    assert len(fixture_names()) == 11
    for name in fixture_names():
        doc = json.loads((fixtures_dir / f"{name}.expected.json").read_text(encoding="utf-8"))
        assert (fixtures_dir / name / "metadata.yaml").is_file()
        assert doc["plan"]["frame_count"] == doc["expected"]["props"]["frame_count"] > 0
        assert doc["generator"].startswith(f"upstream imgstore {upstream_oracle.UPSTREAM_VERSION}")


@pytest.mark.usefixtures("opencv")
def test_fixture_tests_run_without_the_shared_folder(tmp_path: Path) -> None:
    """The replay of upstream's answers runs (and passes, without a skip) where ../shared is absent."""
    upstream_oracle.upstream_python()
    stores = ("dir_png_uint16_gray", "video_mjpeg_odd_color", "store_mp4")
    selection = " or ".join(f"{GENERATED_SET}-{name}" for name in stores)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-rs",
            "tests/compat/test_fixtures.py",
            "-k",
            selection,
        ],
        cwd=REPO,
        env=_clean_env(IMGSTORE_FIXTURES=str(tmp_path / "no-shared-here")),
        capture_output=True,
        text=True,
        timeout=900,
    )
    summary = proc.stdout.strip().splitlines()[-1]
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    counts = re.fullmatch(r"=+ (\d+) passed, \d+ deselected in .* =+", summary)
    assert counts is not None, summary  # no skip, no failure
    assert int(counts.group(1)) == 7 * len(stores)
    assert "no 'shared' set" in proc.stdout  # the header says where the fixtures come from


# ----------------------------------------------------------------------------------------------
# 2. system packages: named in the README; without libGL, what needs OpenCV skips naming it
# ----------------------------------------------------------------------------------------------
def test_readme_names_the_system_packages_ci_installs() -> None:
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    installed = {pkg for group in re.findall(r"missing\+=\(([^)]*)\)", ci) for pkg in group.split()}
    lines = [line for line in README.splitlines() if "apt-get install" in line]
    assert len(lines) == 1, "one README line names the system packages"
    named = set(re.search(r"apt-get install ([^`]+)`", lines[0]).group(1).split())
    assert named == installed and len(named) == 9
    for package in installed:  # and says what goes without each
        assert README.count(package) >= 2, f"the README does not say what {package} is for"


_NO_LIBGL = """
import sys

class _NoLibGL:
    def find_spec(self, name, path=None, target=None):
        if name == "cv2" or name.startswith("cv2."):
            raise ImportError("libGL.so.1: cannot open shared object file: No such file or directory")
        return None

sys.meta_path.insert(0, _NoLibGL())
"""


def _without_libgl(tmp_path: Path) -> dict:
    """The environment of a machine without libGL: ``import cv2`` (opencv-python) fails."""
    site = tmp_path / "nolibgl"
    site.mkdir()
    (site / "sitecustomize.py").write_text(_NO_LIBGL)
    return _clean_env(PYTHONPATH=os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH")) if p))


def test_readme_first_command_works_without_libgl(tmp_path: Path) -> None:
    """``import imgstore`` loads no OpenCV, testsrc draws with numpy, avc1/mp4 and info need none."""
    env = _without_libgl(tmp_path)
    command = re.search(r"pip install -e \. && (imgstore-save .*)\n", README).group(1)
    proc = subprocess.run(command, shell=True, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "9.960 s" in proc.stdout  # imgstore-info: 250 frames at 25 frames/s
    probe = "import sys, imgstore; print(sorted(imgstore.get_supported_formats())); print('cv2' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True).stdout
    formats, loaded = out.splitlines()
    assert "'avc1/mp4'" in formats and "'npy'" in formats and "'jpg'" not in formats and loaded == "False"
    jpg = "import imgstore; imgstore.new_for_format('jpg', path='s', imgshape=(8, 8))"
    proc = subprocess.run([sys.executable, "-c", jpg], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert "OpenCVUnavailable: format 'jpg': OpenCV (opencv-python) cannot load libGL.so.1" in proc.stderr
    assert "apt-get install libgl1" in proc.stderr


_FULL_DISK_WITHOUT_OPENCV = """
import errno, numpy as np, imgstore
from imgstore.codecs import images
from imgstore.errors import StoreWriteError

def no_room(path, img):
    raise OSError(errno.ENOSPC, "No space left on device")

real = images._save_or_raise
images._save_or_raise = lambda save, path, img, atomic=False: real(no_room, path, img, atomic)
store = imgstore.new_for_format("npy", path="s", imgshape=(8, 8))
try:
    store.add_image(np.zeros((8, 8), np.uint8), 0, 0.0)
except StoreWriteError as exc:
    print("StoreWriteError", exc.frame_number)
"""


def test_a_failed_npy_write_without_libgl_is_our_write_error(tmp_path: Path) -> None:
    """``except (OSError, cv2.error)`` around a frame write must not need OpenCV to name ``cv2.error``."""
    proc = subprocess.run(
        [sys.executable, "-c", _FULL_DISK_WITHOUT_OPENCV],
        cwd=tmp_path,
        env=_without_libgl(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.stdout.strip() == "StoreWriteError 0", proc.stdout + proc.stderr[-2000:]


def test_without_libgl_the_tests_that_need_opencv_skip_naming_the_package(tmp_path: Path) -> None:
    """As on a machine without libGL: what needs no OpenCV passes, the rest skips saying what to install."""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-rs",
            "-p",
            "no:cacheprovider",
            "tests/store/test_store.py",
            "tests/apps/test_font.py",
            "tests/index/test_frameindex.py",
        ],
        cwd=REPO,
        env=_without_libgl(tmp_path),
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-3000:]
    counts = re.search(r"(\d+) passed, (\d+) skipped", output)
    assert counts and int(counts.group(1)) > 40 and int(counts.group(2)) >= 3, output[-3000:]
    skips = [line for line in output.splitlines() if line.startswith("SKIPPED")]
    assert skips and all("apt-get install libgl1" in line for line in skips), skips[:3]


# ----------------------------------------------------------------------------------------------
# 6. a distribution name of our own
# ----------------------------------------------------------------------------------------------
def _setup_name() -> str:
    tree = ast.parse((REPO / "setup.py").read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == ["DISTRIBUTION"]:
            return node.value.value
    raise AssertionError("setup.py defines no DISTRIBUTION")


def test_the_distribution_has_a_name_of_its_own() -> None:
    assert _setup_name() == DISTRIBUTION != "imgstore"
    assert f"`{DISTRIBUTION}`" in README and "drop-in replacement" in README
    words = " ".join(README.replace("`", "").split())
    assert "pip uninstall imgstore " in words and f"pip uninstall {DISTRIBUTION}" in words


def test_every_install_hint_names_this_distribution() -> None:
    """No message, docstring or page tells users to ``pip install imgstore[...]`` (upstream's name)."""
    files = [*(REPO / "imgstore").rglob("*.py"), *(REPO / "docs").rglob("*.md"), REPO / "README.md", REPO / "setup.py"]
    wrong = []
    for path in files:
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            hints = [m.group(1) for m in re.finditer(r"""pip install\s+['"]?([\w.-]+)\[""", line)]
            if any(h not in (DISTRIBUTION, ".") for h in hints) or re.search(r"\bimgstore\[\w+\]", line):
                wrong.append(f"{path.relative_to(REPO)}:{n}: {line.strip()}")
    assert not wrong, "\n".join(wrong)


# ----------------------------------------------------------------------------------------------
# 8. small things: .gitignore, the oracle's venv out of the tree, the quick-start's output
# ----------------------------------------------------------------------------------------------
def test_gitignore_covers_the_stores_the_readme_makes() -> None:
    ignored = {line.strip().strip("/") for line in (REPO / ".gitignore").read_text().splitlines()}
    made = set(re.findall(r"imgstore-save ([\w-]+) --source testsrc", README)) | set(
        re.findall(r'path="([^"]+)"', README)
    )
    assert made >= {"demo-store", "my-store"}
    assert made <= ignored


def test_the_oracle_venv_lives_in_the_users_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    version = f"py{sys.version_info[0]}.{sys.version_info[1]}"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert upstream_oracle.venv_dir() == tmp_path / "xdg" / "imgstore-oracle" / version / "venv"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")  # not absolute: ignored, as the XDG spec says
    assert upstream_oracle.venv_dir() == Path.home() / ".cache" / "imgstore-oracle" / version / "venv"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert upstream_oracle.venv_dir() == Path.home() / ".cache" / "imgstore-oracle" / version / "venv"
    assert REPO not in upstream_oracle.venv_dir().parents


def test_parallel_workers_build_the_oracle_venv_once(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    builds = []

    def fake_build() -> tuple:
        builds.append(threading.get_ident())
        python = upstream_oracle.venv_dir() / "bin" / "python"
        python.parent.mkdir(parents=True)
        python.write_text("#!/bin/sh\necho upstream 0.4.0\n")
        python.chmod(0o755)
        return True, "built"

    monkeypatch.setattr(upstream_oracle, "_build_venv", fake_build)
    results = []
    workers = [threading.Thread(target=lambda: results.append(upstream_oracle._from_venv())) for _ in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    assert len(builds) == 1
    assert [r.python for r in results] == [str(upstream_oracle.venv_dir() / "bin" / "python")] * 4


def test_the_quick_start_prints_the_extra_data_on_lines_of_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.chdir(tmp_path)
    (block,) = [b for b in python_blocks(README) if "get_extra_data" in b]
    exec(compile(block, "README quick start", "exec"), {"__name__": "__readme__"})
    lines = capsys.readouterr().out.splitlines()
    header = next(i for i, line in enumerate(lines) if "temperature_c" in line)
    assert lines[header].split() == ["temperature_c", "frame_time", "frame_number", "frame_index"]
    assert lines[header - 1] == "120 {'genotype': 'wt'}"
