"""The package's shape, as docs/architecture.md states it: layers without import circles, small
modules, no store internals used outside ``imgstore/store``, one place that tells local from remote.

Read from the source with ``ast`` (nothing is imported), so a change that breaks a rule fails here
with the module and the line that breaks it.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, Iterator, List, Set, Tuple

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "imgstore"

#: the largest a module may grow (lines) before it must be split
MAX_MODULE_LINES = 500
#: the packages below the store facades: they never reach up into the tools or Dask
CORE = ("imgstore.store", "imgstore.index", "imgstore.durability", "imgstore.io", "imgstore.codecs")
#: imports made when a function runs that go against the layers, with why
DEFERRED_UPWARD = {
    ("imgstore.store.base", "imgstore.dask"): "store.to_dask() is a shortcut for imgstore.dask.to_dask(store)",
    ("imgstore.store.reading_api", "imgstore.multi"): "store.open_group() is a shortcut for MultiStore.linked(store)",
}
#: names of the store object's private state that upstream's own users rely on (kept as API)
UPSTREAM_PRIVATE_NAMES = {"_chunk_n_and_chunk_paths", "_iter_chunk_n_and_chunk_paths", "_chunk_n", "_index",
                          "_get_chunk_metadata"}  # fmt: skip
#: the modules that may ask whether a path is a URL: the one that chooses (store.location), path
#: parsing, and repair's refusal of URL stores
URL_CHECKS = {
    "imgstore.store.location",
    "imgstore.io.paths",
    "imgstore.io.fs",
    "imgstore.durability.repair",
    "imgstore.apps.sources",  # imgstore-save's --source may name a video stream URL (rtsp://...), not a store
}


def _modules() -> Dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(REPO).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


MODULES = _modules()


def _imports(module: str, path: Path) -> Iterator[Tuple[str, int, bool]]:
    """``(imported module, line, at module level)`` for every import of one of our modules."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top = {id(node) for node in tree.body}
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            names = [f"{target}.{alias.name}" for alias in node.names]
            hits = [n for n in names if n in MODULES] or ([target] if target in MODULES else [])
        elif isinstance(node, ast.Import):
            hits = [alias.name for alias in node.names if alias.name in MODULES]
        else:
            continue
        for hit in hits:
            if hit != module:
                yield hit, node.lineno, id(node) in top


def _graph(module_level_only: bool) -> Dict[str, Set[str]]:
    graph: Dict[str, Set[str]] = {m: set() for m in MODULES}
    for module, path in MODULES.items():
        for target, _, at_top in _imports(module, path):
            if (module, target) in DEFERRED_UPWARD or (module_level_only and not at_top):
                continue
            graph[module].add(target)
    return graph


def _cycles(graph: Dict[str, Set[str]]) -> List[List[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on_stack: Set[str] = set()
    found: List[List[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


@pytest.mark.parametrize("module_level_only", [True, False], ids=["module-level", "deferred-too"])
def test_no_import_circles(module_level_only: bool) -> None:
    """Not even through imports deferred into functions, except the ones listed with their reason."""
    assert _cycles(_graph(module_level_only)) == []


def test_the_core_imports_neither_the_tools_nor_dask() -> None:
    upward = ("imgstore.apps", "imgstore.dask", "imgstore.ui", "imgstore.font", "imgstore.align")
    found = [
        f"{MODULES[module].relative_to(REPO)}:{line} imports {target}"
        for module in MODULES
        if module.startswith(CORE)
        for target, line, _ in _imports(module, MODULES[module])
        if target.startswith(upward) and (module, target) not in DEFERRED_UPWARD
    ]
    assert found == []


def test_no_module_is_over_the_size_limit() -> None:
    sizes = {
        str(path.relative_to(REPO)): len(path.read_text(encoding="utf-8").splitlines()) for path in MODULES.values()
    }
    assert {path: n for path, n in sizes.items() if n > MAX_MODULE_LINES} == {}


def _private_names(path: Path) -> Set[str]:
    """Private attributes and methods the classes of one module define on themselves."""
    names: Set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("_"):
            names.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self":
            if node.attr.startswith("_") and isinstance(node.ctx, ast.Store):
                names.add(node.attr)
    return {n for n in names if not n.startswith("__")}


def _private_store_names() -> Set[str]:
    """Private names of the store package's classes that no class elsewhere defines too.

    (A name such as ``_lock`` that other classes also use cannot be told apart without types.)
    """
    store = set().union(*(_private_names(p) for m, p in MODULES.items() if m.startswith("imgstore.store.")))
    elsewhere = set().union(*(_private_names(p) for m, p in MODULES.items() if not m.startswith("imgstore.store.")))
    return store - elsewhere - UPSTREAM_PRIVATE_NAMES


def test_nothing_outside_the_store_package_uses_a_stores_private_state() -> None:
    """Outside ``imgstore/store`` (tests included), no ``obj._name`` of a name private to the store classes.

    ``self._name`` and ``cls._name`` are an object's own business; everything else goes through
    upstream's API or ``store.view``.
    """
    private = _private_store_names()
    assert {"_side", "_read_side", "_write_side", "_abandoned"} <= private, sorted(private)  # it sees the store
    paths = [p for m, p in MODULES.items() if not m.startswith("imgstore.store.")]
    paths += sorted((REPO / "tests").rglob("*.py")) + sorted((REPO / "benchmarks").rglob("*.py"))
    found = []
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and node.attr in private:
                owner = node.value
                if isinstance(owner, ast.Name) and owner.id in ("self", "cls"):
                    continue
                found.append(f"{path.relative_to(REPO)}:{node.lineno} .{node.attr}")
    assert found == []


def test_only_the_location_module_tells_local_from_remote() -> None:
    """``is_url`` (and the ``"://"`` it looks for) is asked only where the choice is made, or a path parsed."""
    found = []
    for module, path in MODULES.items():
        if module in URL_CHECKS:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            called = isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) == "is_url"
            literal = isinstance(node, ast.Constant) and node.value == "://"
            if called or literal:
                found.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert found == []
