"""Case files in YAML: a policy's tools, training examples and held-out cases, read and validated.

Every problem is reported as a `CaseFileError` naming the file, the entry (index or id), the field
and, where YAML can tell, the line. Nothing here executes anything from the file: `yaml.safe_load`
only, and regular expressions are compiled, never evaluated as code. What each part of the file
holds is read by its own reader: tools.py, examples.py, heldout.py.

A file with `train:` and no `cases:` holds training examples only (drills of a skill, a policy's
extra data): it is collected, its examples are trained on with the rest, and it yields no tests.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from .examples import ExamplesReader
from .heldout import CasesReader
from .reader import Reader, node_line
from .suite import CaseFileError, Suite
from .tools import ToolsReader
from .variants import VariantKeysReader

MAX_FILE_BYTES = 5 * 1024 * 1024
TOP_LEVEL_KEYS = (
    "policy", "description", "system", "tools", "train", "cases", "min_accuracy", "variants", "distractors",
)
_CASE_FILE_MARKER = re.compile(rb"^cases\s*:", re.MULTILINE)
# A file of training examples only: `train:` alone is too common a key in other YAML to claim a file.
_TRAINING_FILE_MARKERS = (re.compile(rb"^train\s*:", re.MULTILINE), re.compile(rb"^tools\s*:", re.MULTILINE))


def looks_like_case_file(path: Path) -> bool:
    """Cheap test used at collection: YAML with a top-level `cases:` key, or with `tools:` and `train:`
    (training examples only), even if otherwise broken."""
    if path.suffix not in (".yaml", ".yml"):
        return False
    try:
        with path.open("rb") as handle:
            head = handle.read(MAX_FILE_BYTES + 1)
    except OSError:
        return False
    return bool(_CASE_FILE_MARKER.search(head)) or all(marker.search(head) for marker in _TRAINING_FILE_MARKERS)


def load_suite(path: Path | str, display: Path | None = None) -> Suite:
    """Read and validate a case file. `display` is the path shown in errors and reports."""
    path = Path(path)
    shown = display or path
    text = _read_text(path, shown)
    document, root = _parse_yaml(shown, text)
    return SuiteReader(shown, root).read(document)


def _read_text(path: Path, shown: Path) -> str:
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise CaseFileError(
            shown, f"file is {size:,} bytes; case files are limited to {MAX_FILE_BYTES:,} bytes (5 MiB)"
        )
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise CaseFileError(
            shown, f"not valid UTF-8 (byte 0x{raw[error.start]:02x} at offset {error.start})", line=line
        ) from None


def _parse_yaml(path: Path, text: str) -> tuple[Any, yaml.Node | None]:
    """The document and its node tree (for line numbers), from one parse.

    This is what `yaml.safe_load` does (the safe loader: plain data only), keeping the tree it builds
    on the way; libyaml's parser when PyYAML has it, since a large case file is a noticeable part
    of a cold run otherwise.
    """
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)(text)
    try:
        root = loader.get_single_node()
        document = loader.construct_document(root) if root is not None else None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        problem = getattr(error, "problem", None) or str(error)
        context = getattr(error, "context", None)
        message = f"YAML syntax error: {problem}" + (f" ({context})" if context else "")
        raise CaseFileError(path, message, line=mark.line + 1 if mark else None) from None
    finally:
        loader.dispose()
    return document, root


class SuiteReader(Reader):
    """Turns a parsed YAML document into a Suite, raising CaseFileError at the first problem."""

    def read(self, document: Any) -> Suite:
        if not isinstance(document, dict):
            kind = "empty" if document is None else f"a {type(document).__name__}"
            raise self.error(f"a case file must be a mapping with 'tools' and 'cases' (or 'train'); this one is {kind}")
        self.check_keys(document, TOP_LEVEL_KEYS, (), "top level")
        if "tools" not in document:
            raise self.error("missing required key 'tools'", where="top level")
        if "cases" not in document and "train" not in document:
            raise self.error(
                "missing required key 'cases' (held-out prompts; a file of training examples only has 'train')",
                where="top level",
            )
        policy = document.get("policy", self.path.stem)
        system = document.get("system")
        for key, value in (("policy", policy), ("system", system)):
            if value is not None and not (isinstance(value, str) and value.strip()):
                raise self.error(f"'{key}' must be a non-empty string", (key,), where=key)
        tools = ToolsReader(self.path, self.root).read_tools(document["tools"])
        by_name = {tool.name: tool for tool in tools}
        train = self.read_list(document.get("train") or [], "train")
        cases = self.read_list(document.get("cases", []), "cases")
        training_only = not cases and bool(train)
        if training_only and document.get("min_accuracy") is not None:
            raise self.error("'min_accuracy' needs held-out 'cases' to count; this file has training examples only",
                             ("min_accuracy",), "min_accuracy")
        examples = ExamplesReader(self.path, self.root)
        variant_keys = VariantKeysReader(self.path, self.root)
        return Suite(
            path=self.path,
            policy=policy,
            system=system,
            tools=tools,
            train=tuple(examples.read_train(entry, i, by_name) for i, entry in enumerate(train)),
            cases=() if training_only else CasesReader(self.path, self.root).read_cases(cases, by_name),
            min_accuracy=self.read_min_accuracy(document.get("min_accuracy")),
            train_lines=tuple(node_line(self.root, ("train", i)) for i in range(len(train))),
            variants=variant_keys.read_variants(document.get("variants")),
            distractors=variant_keys.read_distractors(document.get("distractors"), by_name),
        )

    def read_min_accuracy(self, value: Any) -> float | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
            raise self.error("'min_accuracy' must be a number between 0 and 1", ("min_accuracy",), "min_accuracy")
        return float(value)
