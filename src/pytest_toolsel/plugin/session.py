"""The session's pytest-toolsel state, one part per phase of the session, as the hooks go through them.

- collect: `suites`, the case files read (each `CaseFile` adds its own);
- run: `checkpoint` trains the model under test when it is missing; `runs` answers and judges the
  cases, for the model under test and the before model;
- report: `report` writes the reports at the end and says what fails the session; `notes` are the
  lines every phase adds to the terminal summary.

Each part is handed what it uses (the options, the suites, the notes, the runs), and none of them
the session.
"""

from __future__ import annotations

import pytest

from ..cases.suite import Suite
from ..verdicts.evaluation import RunResult
from .checkpoint import Checkpoint
from .options import Options
from .progress import TerminalProgress
from .report import SessionReport
from .runs import Runs
from .xdist import worker_index


class ToolselSession:
    """Session state: the options, the suites collected, the candidate and baseline runs, the reports.

    Under pytest-xdist each worker generates the cases it was given and sends its answers to the
    controller, which merges them and writes the reports.
    """

    def __init__(self, options: Options, config: pytest.Config):
        self.options = options
        self.suites: list[Suite] = []
        self.notes: list[str] = []
        self.current_item: pytest.Item | None = None  # the test running now, for toolsel_model's records
        self.checkpoint = Checkpoint(options, self.suites, self.notes)
        # pytest's cache exists by now: the cacheprovider configures first (None: -p no:cacheprovider).
        cache = getattr(config, "cache", None)
        worker = worker_index(config)
        progress = TerminalProgress(config) if worker is None else None  # a worker's terminal is nobody's
        self.runs = Runs(options, self.notes, self.checkpoint, cache=cache, worker=worker, progress=progress,
                         suites=self.suites)
        self.report = SessionReport(options, self.runs, self.notes)

    @property
    def candidate(self) -> RunResult | None:
        return self.runs.candidate

    @property
    def baseline(self) -> RunResult | None:
        return self.runs.baseline


# Where the hooks, the items and the fixtures find the session's state (set by pytest_configure).
SESSION_KEY: pytest.StashKey[ToolselSession] = pytest.StashKey()
