"""Which files are case files, and reading one into its suites, whatever its format."""

from __future__ import annotations

from pathlib import Path

from .jsonl_source import load_jsonl_suites, looks_like_jsonl_case_file
from .suite import Suite
from .yaml_source import load_suite, looks_like_case_file


def is_case_file(path: Path) -> bool:
    """YAML with a top-level `cases:` key, or JSON Lines rows in the Hugging Face conversational format."""
    return looks_like_case_file(path) or looks_like_jsonl_case_file(path)


def load_suites(path: Path | str, display: Path | None = None) -> list[Suite]:
    """A YAML case file is one suite; a JSONL file one suite per distinct tools and system text."""
    if Path(path).suffix == ".jsonl":
        return load_jsonl_suites(path, display)
    return [load_suite(path, display)]
