"""What pytest collects from a case file, as in pytest's own example of tests in YAML files: the file
(`CaseFile.collect`), its cases (`CaseItem.runtest`) and how a miss reads (`repr_failure`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ..cases.suite import Case, CaseFileError, Suite
from ..cases.sources import load_suites
from ..models.loading import ModelLoadError
from .misses import ToolSelectionMiss, format_miss, settle
from .session import SESSION_KEY
from .xdist import is_worker, queued_items


def display_path(path: Path, rootpath: Path) -> Path:
    """How reports and errors name a case file: relative to the rootdir, or whole when outside it
    (where pytest's node id names the file by the collection argument, often as '.')."""
    try:
        return path.relative_to(rootpath)
    except ValueError:
        return path


class CaseFile(pytest.File):
    def collect(self):
        try:
            suites = load_suites(self.path, display=display_path(self.path, self.config.rootpath))
        except CaseFileError as problem:
            raise self.CollectError(str(problem)) from None
        state = self.config.stash[SESSION_KEY]
        state.suites.extend(suites)
        state.notes.extend(dict.fromkeys(note for suite in suites for note in suite.notes if note not in state.notes))
        cases = sorted(((suite, case) for suite in suites for case in suite.cases), key=lambda pair: pair[1].index)
        for suite, case in cases:
            yield CaseItem.for_case(self, suite, case)


class CaseItem(pytest.Item):
    def __init__(self, *, suite: Suite, case: Case, **kwargs):
        super().__init__(**kwargs)
        self.suite = suite
        self.case = case

    @classmethod
    def for_case(cls, parent: pytest.Collector, suite: Suite, case: Case) -> "CaseItem":
        """The test of a case (or of a variant of one), named by its id and marked as the case says."""
        item = cls.from_parent(parent, name=case.id, suite=suite, case=case)
        item.add_marker(pytest.mark.toolsel)
        if case.xfail:
            item.add_marker(pytest.mark.xfail(reason=case.xfail))
        return item

    def runtest(self) -> None:
        state = self.config.stash[SESSION_KEY]
        try:
            outcome = state.runs.outcome_for(self.suite, self.case, self.answered_together)
        except ModelLoadError:
            if state.runs.load_error is not None:  # the model under test: every case would fail alike
                self.session.shouldfail = "the model under test could not be loaded"
            raise
        settle(outcome, state.options, state.runs)

    def answered_together(self) -> list[tuple[Suite, Case]]:
        """The cases generated in one pass with this one: all selected, or on an xdist worker the share
        it has been sent."""
        items = [self, *queued_items(self.session)] if is_worker(self.config) else self.session.items
        return [(item.suite, item.case) for item in items if isinstance(item, CaseItem)]

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, ToolSelectionMiss):
            return format_miss(excinfo.value)
        if isinstance(excinfo.value, ModelLoadError):
            return f"pytest-toolsel could not load a model: {excinfo.value}"
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self):
        return self.path, (self.case.line or 1) - 1, f"{self.suite.policy}: {self.case.id}"
