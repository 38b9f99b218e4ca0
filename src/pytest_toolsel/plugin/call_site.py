"""Where in a user's test the `toolsel_model` fixture was called, and failing that test there:
its messages name the test file, the line of the call and the test's id, as case files' errors
name the file, the line and the case."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from .items import display_path

_PACKAGE_DIR = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class CallSite:
    path: Path  # the test file, as reports name files
    line: int | None  # of the call in the test
    label: str  # the test's node id


def call_site(item: pytest.Item | None) -> CallSite:
    """The call into the fixture from the running test `item` (None: outside a test)."""
    path, line = _calling_frame()
    if item is None:
        return CallSite(path, line, str(path))
    return CallSite(display_path(item.path, item.config.rootpath), line, item.nodeid)


def fail(message: str):
    """Fail the running test with `message` alone: no traceback, no chained exception."""
    try:
        pytest.fail(message, pytrace=False)
    except pytest.fail.Exception as failure:
        raise failure from None


def fail_at(site: CallSite, message: str):
    fail(f"{site.path}:{site.line}: {site.label}: {message}")


def _calling_frame() -> tuple[Path, int | None]:
    """The file and line of the first frame outside this package: the test code that called in."""
    frame = sys._getframe(1)
    while frame is not None and Path(frame.f_code.co_filename).resolve().is_relative_to(_PACKAGE_DIR):
        frame = frame.f_back
    return (Path(frame.f_code.co_filename), frame.f_lineno) if frame is not None else (Path("?"), None)
