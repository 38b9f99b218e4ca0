"""The session's pytest-toolsel state, one part per phase of the session, as the hooks go through them.

- collect: `suites`, the case files read (each `CaseFile` adds its own);
- run: `checkpoint` trains the model under test when it is missing; `runs` answers and judges the
  cases, for the model under test and the before model;
- report: `report` writes the reports at the end and says what fails the session; `notes` are the
  lines every phase adds to the terminal summary.
"""

from __future__ import annotations

import pytest

from ..cases.suite import Suite
from ..verdicts.evaluation import RunResult
from .checkpoint import Checkpoint
from .options import Options
from .report import SessionReport
from .runs import Runs


class ToolselSession:
    """Session state: the suites collected, the candidate and baseline runs, the reports.

    Under pytest-xdist each worker generates the cases it was given and sends its answers to the
    controller, which merges them and writes the reports.
    """

    def __init__(self, config: pytest.Config):
        self.config = config
        self.suites: list[Suite] = []
        self.notes: list[str] = []
        self.current_item: pytest.Item | None = None  # the test running now, for toolsel_model's records
        self.checkpoint = Checkpoint(self)
        self.runs = Runs(self)
        self.report = SessionReport(self)

    @property
    def options(self) -> Options:
        return Options.from_config(self.config)

    @property
    def candidate(self) -> RunResult | None:
        return self.runs.candidate

    @property
    def baseline(self) -> RunResult | None:
        return self.runs.baseline

    def accuracy_bar(self, suite: Suite) -> float | None:
        return suite.min_accuracy if suite.min_accuracy is not None else self.options.min_accuracy
