"""Report: at the end of the session the reports are written and the session judged on its bars.

Under pytest-xdist the workers send their answers here (the controller) instead, which merges
them into one run per model before writing the reports.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from ..reporting.reports import write_reports
from .xdist import WORKER_OUTPUT_KEY, is_worker, merge_runs, recorded_cases, recorded_payload, run_payload

if TYPE_CHECKING:
    from .session import ToolselSession


class SessionReport:
    """The report files written, the workers' answers received, and what fails the session."""

    def __init__(self, session: ToolselSession):
        self.session = session
        self.config = session.config
        self.report_paths: list[Path] = []
        self.worker_payloads: list[dict] = []

    def finish(self, session: pytest.Session) -> None:
        state = self.session
        runs = state.runs
        if is_worker(self.config):
            runs.evaluate_baseline()
            if state.candidate is not None:
                self.config.workeroutput[WORKER_OUTPUT_KEY] = {
                    "candidate": run_payload(state.candidate),
                    "baseline": run_payload(state.baseline) if state.baseline else None,
                    "notes": state.notes,
                    "worker": self.config.workerinput["workerid"],
                    "recorded": recorded_payload(runs.recorded),
                }
            return
        if self.worker_payloads:
            self.merge_workers()
        else:
            runs.evaluate_baseline()
        candidate = state.candidate
        if candidate is None:
            return
        options = state.options
        self.report_paths = write_reports(
            options.report_dir, candidate, state.baseline, options.generation.as_dict(), options.fragile_margin
        )
        note = self.schema_note()
        if note:
            state.notes.append(note)
        failed_bars = self.failed_bars()
        if failed_bars:
            state.notes.extend(failed_bars)
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def merge_workers(self) -> None:
        rootpath = self.config.rootpath
        payloads = self.worker_payloads
        notes = self.session.notes
        recorded = recorded_cases([definition for p in payloads for definition in p["recorded"]])
        candidate = merge_runs([p["candidate"] for p in payloads], rootpath, recorded)
        baseline = merge_runs([p["baseline"] for p in payloads if p["baseline"]], rootpath, recorded)
        self.session.runs.adopt(candidate, baseline)
        shares = ", ".join(
            f"{p['worker']} answered {len(p['candidate']['answers'])}" for p in sorted(payloads, key=lambda p: p["worker"])
        )
        notes.append(f"pytest-xdist: {shares} of {len(candidate.outcomes) if candidate else 0} cases")
        for note in (note for p in payloads for note in p["notes"]):
            if note not in notes:
                notes.append(note)

    def failed_bars(self) -> list[str]:
        problems = []
        options = self.session.options
        candidate = self.session.candidate
        strict = options.strict_calls
        counted = " with --strict-calls" if strict else ""  # the bars count what the tests count
        passed = sum(o.passes(strict) for o in candidate.outcomes)
        if options.min_accuracy is not None and passed / candidate.total < options.min_accuracy:
            problems.append(
                f"FAILED: accuracy{counted} {passed / candidate.total:.1%} ({passed}/{candidate.total}) "
                f"is below --min-accuracy {options.min_accuracy:.0%}"
            )
        for outcomes in candidate.grouped(lambda outcome: str(outcome.suite.path)).values():
            suite = outcomes[0].suite
            if suite.min_accuracy is None:
                continue
            passed = sum(o.passes(strict) for o in outcomes)
            if passed / len(outcomes) < suite.min_accuracy:
                problems.append(
                    f"FAILED: suite {suite.policy} ({suite.path}) scored {passed}/{len(outcomes)}{counted}, "
                    f"below its min_accuracy {suite.min_accuracy:.0%}"
                )
        return problems

    def schema_note(self) -> str | None:
        """Schema problems that did not fail any test still deserve a line in the summary."""
        candidate = self.session.candidate
        invalid = [o for o in candidate.outcomes if o.verdict.schema_problems]
        if not invalid or self.session.options.strict_calls:
            return None
        made = sum(o.made_call for o in candidate.outcomes)
        return (
            f"{len(invalid)} of {made} cases with calls called a tool in a way its schema does not allow "
            "(listed in accuracy.md and results.json); --strict-calls fails them"
        )
