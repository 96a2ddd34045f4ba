"""A griffe extension for the API reference: ``#:`` comments above an attribute are its docstring.

The library documents module constants and class attributes with ``#:`` comment lines written
just above the assignment (the convention Sphinx's autodoc reads). griffe only reads string
literals placed after an assignment, so without this extension those attributes would show up
in the API reference without any description.
"""

from __future__ import annotations

from typing import Any, Dict, List

import griffe

_MARKER = "#:"


class SphinxComments(griffe.Extension):
    """Give an attribute without a docstring the ``#:`` comment lines written right above it."""

    def __init__(self) -> None:
        super().__init__()
        self._lines: Dict[str, List[str]] = {}

    def _source_lines(self, path: str) -> List[str]:
        if path not in self._lines:
            with open(path, encoding="utf-8") as source:
                self._lines[path] = source.read().splitlines()
        return self._lines[path]

    def on_attribute_instance(self, *, node: Any, attr: griffe.Attribute, agent: Any, **kwargs: Any) -> None:
        if attr.docstring is not None or attr.lineno is None:
            return
        filepath = attr.filepath
        if isinstance(filepath, list) or filepath is None or not str(filepath).endswith(".py"):
            return
        lines = self._source_lines(str(filepath))
        comment: List[str] = []
        number = attr.lineno - 2  # the line above the assignment, 0-based
        while number >= 0 and lines[number].strip().startswith(_MARKER):
            comment.insert(0, lines[number].strip()[len(_MARKER) :].strip())
            number -= 1
        if comment:
            attr.docstring = griffe.Docstring("\n".join(comment), lineno=number + 2, parent=attr)
