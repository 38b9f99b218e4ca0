"""What every part of a case file's reader shares: errors that point at the entry, the field and the
line; unknown keys with a suggestion; lists; prompts."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, Iterable

import yaml

from .suite import CaseFileError


def node_line(root: yaml.Node | None, keys: Iterable[str | int]) -> int | None:
    """The 1-based line of the YAML node at `keys`, or of its deepest existing ancestor."""
    node, line = root, None
    for key in keys:
        if node is None:
            break
        line = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            node = next((value for k, value in node.value if getattr(k, "value", None) == key), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
        else:
            node = None
    return node.start_mark.line + 1 if node is not None else line


class Reader:
    """Reads one part of a parsed YAML document, raising CaseFileError at the first problem."""

    def __init__(self, path: Path, root: yaml.Node | None):
        self.path = path
        self.root = root

    def error(self, message: str, keys: tuple = (), where: str = "") -> CaseFileError:
        return CaseFileError(self.path, message, where=where, line=node_line(self.root, keys))

    def check_keys(self, entry: dict, allowed: tuple[str, ...], keys: tuple, where: str) -> None:
        for key in entry:
            if key not in allowed:
                close = difflib.get_close_matches(str(key), allowed, n=1)
                hint = f"; did you mean '{close[0]}'?" if close else f"; allowed: {', '.join(allowed)}"
                raise self.error(f"unknown key '{key}'{hint}", keys + (key,), where=where)

    def read_list(self, value: Any, key: str) -> list:
        if not isinstance(value, list):
            raise self.error(f"'{key}' must be a list", (key,), where=key)
        return value

    def read_prompt(self, entry: dict, keys: tuple, where: str) -> str:
        prompt = entry.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            problem = "is missing" if prompt is None else "must be a non-empty string" + yaml_typed(prompt)
            raise self.error(f"field 'prompt' {problem}", keys + ("prompt",), where)
        return prompt


def yaml_typed(value: Any) -> str:
    """A hint for values YAML did not read as text: `yes`, `no`, `on`, numbers, dates."""
    if value is None or isinstance(value, (str, dict, list)):
        return ""
    return f" (YAML read this as a {type(value).__name__}; put it in quotes)"
