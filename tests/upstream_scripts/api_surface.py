"""Oracle script: describe the public API of an ``imgstore`` implementation as JSON.

Run with upstream imgstore 0.4.0 by ``tests/upstream_oracle.py`` (``main``), and with ours in a
fresh interpreter by ``tests/compat/test_api_surface.py``, so that both are described the same way and
``import imgstore`` starts from nothing (module attributes such as ``imgstore.apps`` must exist
without importing the submodule first).

The description holds, for each module of upstream's layout, every public name: its kind, the
parameters of a callable (name, kind, whether it has a default) and the value of a plain
constant; for every public class it defines, every public attribute those classes (not
``object`` or other libraries) define; the public instance attributes of live stores and of an
index; and the private names real client code uses.
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
import tempfile
from typing import Any, Dict, List, Optional

MODULES = (
    "imgstore",
    "imgstore.stores",
    "imgstore.index",
    "imgstore.util",
    "imgstore.apps",
    "imgstore.align",
    "imgstore.constants",
    "imgstore.ui",
    "imgstore.font",
)
#: submodules upstream's ``imgstore`` has as attributes right after ``import imgstore``
SUBMODULES = ("apps", "constants", "font", "index", "stores", "ui", "util")
#: private names that upstream's own tests and real client code use (issue 13)
PRIVATE_METHODS = ("_get_chunk_metadata", "_iter_chunk_n_and_chunk_paths")
PRIVATE_INSTANCE_ATTRIBUTES = ("_chunk_n_and_chunk_paths", "_chunk_n", "_index")
_PLAIN = (str, int, float, bool, type(None))


def _parameters(obj: Any) -> Optional[List[List[Any]]]:
    """``[[name, kind, has_default], ...]`` of a callable; None when Python cannot tell (builtins)."""
    try:
        signature = inspect.signature(obj)
    except (TypeError, ValueError):
        return None
    return [[p.name, p.kind.name, p.default is not inspect.Parameter.empty] for p in signature.parameters.values()]


def _plain_value(value: Any) -> Any:
    """The value of a constant made of plain types, as JSON; None marks 'not plain'."""
    if isinstance(value, _PLAIN):
        return {"value": value}
    if isinstance(value, (tuple, list)) and all(isinstance(v, _PLAIN) for v in value):
        return {"value": list(value)}
    return None


def describe(obj: Any) -> Dict[str, Any]:
    """Kind, parameters and plain value of one module-level name."""
    if inspect.ismodule(obj):
        return {"kind": "module", "module": obj.__name__}
    if inspect.isclass(obj):
        return {"kind": "class", "params": _parameters(obj), "qualname": f"{obj.__module__}.{obj.__qualname__}"}
    if callable(obj):
        return {"kind": "function", "params": _parameters(obj)}
    return {"kind": "value", "type": type(obj).__name__, "plain": _plain_value(obj)}


def _defined_by_package(cls: type, name: str) -> bool:
    """Whether the first class in the MRO that defines ``name`` belongs to the imgstore package."""
    for klass in cls.__mro__:
        if name in vars(klass):
            return klass.__module__.split(".")[0] == "imgstore"
    return False


def describe_member(cls: type, name: str) -> Dict[str, Any]:
    """Kind and parameters of one class attribute."""
    static = inspect.getattr_static(cls, name)
    if isinstance(static, property):
        return {"kind": "property"}
    if isinstance(static, classmethod):
        return {"kind": "classmethod", "params": _parameters(getattr(cls, name))}
    if isinstance(static, staticmethod):
        return {"kind": "staticmethod", "params": _parameters(getattr(cls, name))}
    if inspect.isfunction(static):
        return {"kind": "method", "params": _parameters(static)}
    if inspect.isclass(static):
        return {"kind": "class"}
    return {"kind": "value", "type": type(static).__name__, "plain": _plain_value(static)}


def class_surface(cls: type) -> Dict[str, Any]:
    """Every public attribute the package's classes define on ``cls`` (and its bases)."""
    names = [n for n in dir(cls) if not n.startswith("_") and _defined_by_package(cls, n)]
    names += [n for n in PRIVATE_METHODS if hasattr(cls, n)]
    return {name: describe_member(cls, name) for name in sorted(names)}


def _public_instance_attributes(obj: Any) -> List[str]:
    """Every public name an instance answers to: its own attributes and its class's."""
    return sorted(n for n in dir(obj) if not n.startswith("_"))


def instance_surfaces(imgstore: Any) -> Dict[str, Any]:
    """Public instance attributes of stores (written, read) and of an index, plus the private ones
    real code uses, from small stores made here."""
    import numpy as np

    out: Dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="imgstore-surface-") as tmp:
        for fmt in ("npy", "mjpeg/avi"):
            path = os.path.join(tmp, fmt.replace("/", "_"))
            store = imgstore.new_for_format(fmt, path=path, imgshape=(16, 16), imgdtype=np.uint8, chunksize=2)
            for i in range(3):
                store.add_image(np.full((16, 16), i, np.uint8), i, float(i))
            cls = type(store).__name__
            out[f"{cls}(mode='w')"] = {
                "public": _public_instance_attributes(store),
                "private": [n for n in PRIVATE_INSTANCE_ATTRIBUTES if n != "_index" and hasattr(store, n)],
            }
            store.close()
            reader = imgstore.new_for_filename(path)
            out[f"{cls}(mode='r')"] = {
                "public": _public_instance_attributes(reader),
                "private": [n for n in PRIVATE_INSTANCE_ATTRIBUTES if hasattr(reader, n)],
            }
            index = reader._index
            out["ImgStoreIndex"] = {"public": _public_instance_attributes(index), "private": []}
            reader.close()
    return out


def surface() -> Dict[str, Any]:
    """The whole description of the ``imgstore`` importable here."""
    modules: Dict[str, Any] = {}
    classes: Dict[str, Any] = {}
    for module_name in MODULES:
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:  # a missing module is part of the answer
            modules[module_name] = {"error": f"{type(exc).__name__}: {exc}"}
            continue
        names = {}
        for name in sorted(dir(module)):
            if name.startswith("_"):
                continue
            obj = getattr(module, name)
            names[name] = describe(obj)
            if inspect.isclass(obj) and obj.__module__.split(".")[0] == "imgstore":
                classes.setdefault(f"{module_name}.{name}", class_surface(obj))
        modules[module_name] = names
        if module_name == "imgstore":  # asked before the loop imports the submodules itself
            modules[module_name].update({n: describe(getattr(module, n)) for n in SUBMODULES if hasattr(module, n)})
    return {"modules": modules, "classes": classes, "instances": instance_surfaces(importlib.import_module("imgstore"))}


def main() -> Dict[str, Any]:
    return surface()


if __name__ == "__main__":
    import json

    json.dump(surface(), sys.stdout)
