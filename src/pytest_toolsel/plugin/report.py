"""Report: at the end of the session the reports are written and the session judged on its bars.

results.json comes first: written once the candidate's answers are judged, before the before model
runs, and again with the before model's; a report that cannot be rendered is a line in the summary.

Under pytest-xdist the workers send their answers here (the controller) instead, which merges
them into one run per model before writing the reports.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ..reporting.report_files import write_reports, write_results
from .options import Options
from .runs import Runs
from .xdist import WORKER_OUTPUT_KEY, is_worker, merge_runs, recorded_cases, recorded_payload, run_payload


class SessionReport:
    """The report files written, the workers' answers received, and what fails the session.

    `notes` are the session's lines for the terminal summary, which the report adds to.
    """

    def __init__(self, options: Options, runs: Runs, notes: list[str]):
        self.options = options
        self.runs = runs
        self.notes = notes
        self.report_paths: list[Path] = []
        self.worker_payloads: list[dict] = []

    def finish(self, session: pytest.Session) -> None:
        config = session.config
        runs = self.runs
        if is_worker(config):
            runs.evaluate_baseline()
            if runs.candidate is not None:
                config.workeroutput[WORKER_OUTPUT_KEY] = {
                    "candidate": run_payload(runs.candidate),
                    "baseline": run_payload(runs.baseline) if runs.baseline else None,
                    "notes": self.notes,
                    "worker": config.workerinput["workerid"],
                    "recorded": recorded_payload(runs.recorded),
                }
            return
        options = self.options
        if self.worker_payloads:
            self.merge_workers(config.rootpath)
        else:
            if runs.candidate is not None and options.baseline and runs.baseline is None:
                # The before model may take as long as the candidate (or be killed): the candidate's
                # answers are on disk first.
                self.add_problems(write_results(
                    options.report_dir, runs.candidate, None, options.generation.as_dict(), options.fragile_margin,
                    finished=False,
                ).problems)
            runs.evaluate_baseline()
        candidate = runs.candidate
        if candidate is None:
            return
        written = write_reports(
            options.report_dir, candidate, runs.baseline, options.generation.as_dict(), options.fragile_margin
        )
        self.report_paths = written.paths
        self.add_problems(written.problems)
        note = self.schema_note()
        if note:
            self.notes.append(note)
        failed_bars = self.failed_bars()
        if failed_bars:
            self.notes.extend(failed_bars)
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def add_problems(self, problems: list[str]) -> None:
        """Reports that could not be written: the rest were, and the session goes on to its verdict."""
        self.notes.extend(f"pytest-toolsel: {problem}" for problem in problems if f"pytest-toolsel: {problem}" not in self.notes)

    def merge_workers(self, rootpath: Path) -> None:
        payloads = self.worker_payloads
        notes = self.notes
        recorded = recorded_cases([definition for p in payloads for definition in p["recorded"]])
        candidate = merge_runs([p["candidate"] for p in payloads], rootpath, recorded)
        baseline = merge_runs([p["baseline"] for p in payloads if p["baseline"]], rootpath, recorded)
        self.runs.adopt(candidate, baseline)
        shares = ", ".join(
            f"{p['worker']} answered {len(p['candidate']['answers'])}" for p in sorted(payloads, key=lambda p: p["worker"])
        )
        notes.append(f"pytest-xdist: {shares} of {len(candidate.outcomes) if candidate else 0} cases")
        for note in (note for p in payloads for note in p["notes"]):
            if note not in notes:
                notes.append(note)

    def failed_bars(self) -> list[str]:
        problems = []
        options = self.options
        candidate = self.runs.candidate
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
        candidate = self.runs.candidate
        invalid = [o for o in candidate.outcomes if o.verdict.schema_problems]
        if not invalid or self.options.strict_calls:
            return None
        made = sum(o.made_call for o in candidate.outcomes)
        return (
            f"{len(invalid)} of {made} cases with calls called a tool in a way its schema does not allow "
            "(listed in accuracy.md and results.json); --strict-calls fails them"
        )
