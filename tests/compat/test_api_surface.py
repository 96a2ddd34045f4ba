"""Upstream's whole public API exists in ours, and ours accepts every call upstream's accepts.

Both surfaces are read by the same script (``upstream_scripts/api_surface.py``): upstream's in the
oracle interpreter, ours in a fresh interpreter of this one. For every public name of upstream's
modules ours must exist with a compatible kind (a plain constant with the same value), and every
callable (functions, constructors, methods) must take the same parameter names at the same
positions, keep optional what upstream has optional, and require nothing new. Classes are
compared member by member, and live stores and indexes attribute by attribute, including the
private names real client code uses.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from typing import Any, Dict, List, Optional, Sequence

import pytest

from upstream_oracle import SCRIPTS_DIR, run_script

_SCRIPT = SCRIPTS_DIR / "api_surface.py"
_spec = importlib.util.spec_from_file_location("api_surface", _SCRIPT)
api_surface = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(api_surface)

#: upstream names that are not API, with why they are left out
NOT_API = {
    "imgstore.stores.bloscpack": "upstream's handle on the optional bloscpack module (None when it is missing)",
}

#: upstream methods whose ``**kwargs`` only reach another signature, and the parameters that one takes
FORWARDED = {
    "VideoImgStore.close": [["save_index", "KEYWORD_ONLY", True]],  # to the base class's close(save_index=False)
}

POSITIONAL = ("POSITIONAL_ONLY", "POSITIONAL_OR_KEYWORD")
KEYWORD = ("POSITIONAL_OR_KEYWORD", "KEYWORD_ONLY")


@pytest.fixture(scope="module")
def upstream() -> Dict[str, Any]:
    return run_script("api_surface.py")


@pytest.fixture(scope="module")
def ours(tmp_path_factory: pytest.TempPathFactory) -> Dict[str, Any]:
    """Our surface, read in a fresh interpreter (nothing imported before ``import imgstore``)."""
    proc = subprocess.run(
        [sys.executable, str(_SCRIPT)], cwd=tmp_path_factory.mktemp("surface"), capture_output=True, text=True,
        timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout)


def call_problems(theirs: Optional[List[list]], mine: Optional[List[list]]) -> List[str]:
    """Why a call that upstream's parameters accept could fail with ours ([] when none could).

    Parameters are ``[name, kind, has_default]``. Every positional parameter of upstream's must
    be ours at the same position with the same name, every keyword must be accepted by name,
    upstream's optional parameters must stay optional, ``*args``/``**kwargs`` must stay, and
    any parameter of ours that upstream lacks must be optional.
    """
    if theirs is None or mine is None:
        return [] if mine is not None or theirs is None else ["ours has no readable signature"]
    problems = []
    by_name = {p[0]: p for p in mine}
    my_positional = [p for p in mine if p[1] in POSITIONAL]
    my_var_positional = any(p[1] == "VAR_POSITIONAL" for p in mine)
    my_var_keyword = any(p[1] == "VAR_KEYWORD" for p in mine)
    their_positional = [p for p in theirs if p[1] in POSITIONAL]
    for position, (name, kind, has_default) in enumerate(their_positional):
        if position < len(my_positional):
            mine_here = my_positional[position]
            if kind != "POSITIONAL_ONLY" and mine_here[0] != name:
                problems.append(f"position {position} is {mine_here[0]!r}, upstream's is {name!r}")
            if has_default and not mine_here[2]:
                problems.append(f"{name!r} is optional upstream but required here")
        elif not my_var_positional:
            problems.append(f"upstream's positional parameter {name!r} (position {position}) is missing")
    for name, kind, has_default in theirs:
        if kind == "KEYWORD_ONLY":
            if name in by_name and by_name[name][1] in KEYWORD:
                if has_default and not by_name[name][2]:
                    problems.append(f"{name!r} is optional upstream but required here")
            elif not my_var_keyword:
                problems.append(f"keyword {name!r} is not accepted")
        if kind == "POSITIONAL_OR_KEYWORD" and name in by_name and by_name[name][1] not in KEYWORD:
            problems.append(f"{name!r} cannot be passed by keyword")
        if kind == "POSITIONAL_OR_KEYWORD" and name not in by_name and not my_var_keyword:
            problems.append(f"keyword {name!r} is not accepted")
        if kind == "VAR_POSITIONAL" and not my_var_positional:
            problems.append("upstream takes *args; ours does not")
        if kind == "VAR_KEYWORD" and not my_var_keyword:
            problems.append("upstream takes **kwargs; ours does not")
    their_names = {p[0] for p in theirs}
    for name, kind, has_default in mine:
        if name not in their_names and kind in (*POSITIONAL, "KEYWORD_ONLY") and not has_default:
            problems.append(f"ours requires {name!r}, which upstream does not have")
    return problems


def _call_site(entry: Dict[str, Any]) -> Optional[List[list]]:
    """Parameters as seen at a call on an instance: a method's ``self`` dropped."""
    params = entry.get("params")
    if params is not None and entry["kind"] == "method" and params and params[0][1] in POSITIONAL:
        return params[1:]
    return params


def entry_problems(where: str, theirs: Dict[str, Any], mine: Optional[Dict[str, Any]]) -> List[str]:
    """What is wrong with our ``mine`` standing in for upstream's ``theirs`` at ``where``."""
    if mine is None:
        return [f"{where}: missing ({theirs['kind']})"]
    kinds = {
        "module": ("module",),
        "class": ("class",),
        "function": ("function", "class"),
        "value": ("value", "property"),
        "property": ("property", "value"),
        "method": ("method", "classmethod", "staticmethod"),
        "classmethod": ("classmethod", "staticmethod"),
        "staticmethod": ("classmethod", "staticmethod"),
    }[theirs["kind"]]
    if mine["kind"] not in kinds:
        return [f"{where}: is a {mine['kind']}, upstream's is a {theirs['kind']}"]
    if theirs["kind"] == "module" and theirs["module"] != mine["module"]:
        return [f"{where}: is module {mine['module']}, upstream's is {theirs['module']}"]
    if theirs.get("plain") is not None and mine.get("plain") != theirs["plain"]:
        return [f"{where}: value {mine.get('plain')} differs from upstream's {theirs['plain']}"]
    forwarded = next((params for name, params in FORWARDED.items() if where.endswith("." + name)), None)
    their_call = forwarded if forwarded is not None else _call_site(theirs)
    return [f"{where}: {p}" for p in call_problems(their_call, _call_site(mine))]


def _module_names(surface: Dict[str, Any], module: str) -> Dict[str, Any]:
    names = surface["modules"].get(module)
    assert names is not None and "error" not in names, f"module {module}: {names and names.get('error')}"
    return names


@pytest.mark.parametrize("module", api_surface.MODULES)
def test_module_has_every_upstream_name(module: str, upstream: Dict[str, Any], ours: Dict[str, Any]) -> None:
    theirs = _module_names(upstream, module)
    mine = _module_names(ours, module)
    problems = []
    for name, entry in theirs.items():
        third_party_module = entry["kind"] == "module" and entry["module"].split(".")[0] != "imgstore"
        if third_party_module or f"{module}.{name}" in NOT_API:
            continue
        problems += entry_problems(f"{module}.{name}", entry, mine.get(name))
    assert not problems, "\n".join(problems)


def test_classes_have_every_upstream_member(upstream: Dict[str, Any], ours: Dict[str, Any]) -> None:
    problems = []
    for qualified, members in upstream["classes"].items():
        mine = ours["classes"].get(qualified)
        if mine is None:
            problems.append(f"{qualified}: missing class")
            continue
        for name, entry in members.items():
            problems += entry_problems(f"{qualified}.{name}", entry, mine.get(name))
    assert not problems, "\n".join(problems)
    assert len(upstream["classes"]) >= 10  # the store classes, the index, codec processor, fonts, aligner...


def test_instances_answer_to_every_upstream_attribute(upstream: Dict[str, Any], ours: Dict[str, Any]) -> None:
    """Live stores (written and read) and indexes have upstream's attributes, private ones included."""
    problems = []
    for kind, attributes in upstream["instances"].items():
        mine = ours["instances"].get(kind, {"public": [], "private": []})
        for group in ("public", "private"):
            problems += [f"{kind}.{name}: missing" for name in attributes[group] if name not in mine[group]]
    assert not problems, "\n".join(problems)
    assert set(upstream["instances"]["VideoImgStore(mode='r')"]["private"]) == set(
        api_surface.PRIVATE_INSTANCE_ATTRIBUTES
    )


@pytest.mark.parametrize(
    ("theirs", "mine", "ok"),
    [
        ([["a", "POSITIONAL_OR_KEYWORD", False]], [["a", "POSITIONAL_OR_KEYWORD", False]], True),
        ([["a", "POSITIONAL_OR_KEYWORD", False]], [["b", "POSITIONAL_OR_KEYWORD", False]], False),
        ([["a", "POSITIONAL_OR_KEYWORD", True]], [["a", "POSITIONAL_OR_KEYWORD", False]], False),
        ([], [["a", "POSITIONAL_OR_KEYWORD", False]], False),
        ([], [["a", "POSITIONAL_OR_KEYWORD", True]], True),
        ([["kw", "VAR_KEYWORD", False]], [["backend", "POSITIONAL_OR_KEYWORD", True], ["kw", "VAR_KEYWORD", False]],
         True),
        ([["kw", "VAR_KEYWORD", False]], [["backend", "POSITIONAL_OR_KEYWORD", True]], False),
        ([["a", "KEYWORD_ONLY", True]], [["kw", "VAR_KEYWORD", False]], True),
        ([["a", "POSITIONAL_OR_KEYWORD", False]], [["a", "KEYWORD_ONLY", False]], False),
        ([["s", "VAR_POSITIONAL", False]], [["s", "VAR_POSITIONAL", False]], True),
        ([["s", "VAR_POSITIONAL", False]], [], False),
    ],
)  # fmt: skip
def test_call_problems_judges_signatures(theirs: Sequence[list], mine: Sequence[list], ok: bool) -> None:
    """The signature rule itself: compatible pairs pass, each kind of break is caught."""
    assert (call_problems(list(theirs), list(mine)) == []) is ok
