"""Report: at the end of the session the reports are written and the session judged on its bars.

results.json comes first: written once the candidate's answers are judged, before the before model
runs, and again with the before model's; a report that cannot be rendered is a line in the summary.

Under pytest-xdist the workers send their answers here (the controller) instead, which merges
them into one run per model before writing the reports.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ..reporting.invariance import as_written, by_variant
from ..reporting.report_files import write_reports, write_results
from ..verdicts.evaluation import Outcome, grouped
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
                    "generation": runs.generation_reported(),
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
                    options.report_dir, runs.candidate, None, self.settings(), options.fragile_margin,
                    finished=False,
                ).problems)
            runs.evaluate_baseline()
        candidate = runs.candidate
        if candidate is None:
            return
        written = write_reports(
            options.report_dir, candidate, runs.baseline, self.settings(), options.fragile_margin
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

    def settings(self) -> dict:
        """The generation settings the reports record, sampling's included."""
        return {**self.runs.generation_reported(), **self.options.sampling_record()}

    def add_problems(self, problems: list[str]) -> None:
        """Reports that could not be written: the rest were, and the session goes on to its verdict."""
        self.notes.extend(f"pytest-toolsel: {problem}" for problem in problems if f"pytest-toolsel: {problem}" not in self.notes)

    def merge_workers(self, rootpath: Path) -> None:
        payloads = self.worker_payloads
        notes = self.notes
        recorded = recorded_cases([definition for p in payloads for definition in p["recorded"]])
        judge = self.options.judge_answer
        candidate = merge_runs([p["candidate"] for p in payloads], rootpath, recorded, judge)
        baseline = merge_runs([p["baseline"] for p in payloads if p["baseline"]], rootpath, recorded, judge)
        self.runs.adopt(candidate, baseline, payloads[0]["generation"])
        shares = ", ".join(
            f"{p['worker']} answered {len(p['candidate']['answers'])}" for p in sorted(payloads, key=lambda p: p["worker"])
        )
        notes.append(f"pytest-xdist: {shares} of {len(candidate.outcomes) if candidate else 0} cases")
        for note in (note for p in payloads for note in p["notes"]):
            if note not in notes:
                notes.append(note)

    def failed_bars(self) -> list[str]:
        """The bars missed: --min-accuracy and each suite's min_accuracy, met by the cases as written and
        again by each invariance variant (whose misses the tests count against the same bars)."""
        problems = []
        for variant, outcomes in by_variant(self.runs.candidate.outcomes).items():
            problems += self._failed_bars(outcomes, f" under {variant}" if variant else "")
        return problems

    def _failed_bars(self, outcomes: list[Outcome], under: str) -> list[str]:
        problems = []
        options = self.options
        strict = options.strict_calls
        counted = " with --strict-calls" if strict else ""  # the bars count what the tests count
        passed = sum(o.passes(strict) for o in outcomes)
        if options.min_accuracy is not None and passed / len(outcomes) < options.min_accuracy:
            problems.append(
                f"FAILED: accuracy{under}{counted} {passed / len(outcomes):.1%} ({passed}/{len(outcomes)}) "
                f"is below --min-accuracy {options.min_accuracy:.0%}"
            )
        for in_file in grouped(outcomes, lambda outcome: str(outcome.suite.path)).values():
            suite = in_file[0].suite
            if suite.min_accuracy is None:
                continue
            passed = sum(o.passes(strict) for o in in_file)
            if passed / len(in_file) < suite.min_accuracy:
                problems.append(
                    f"FAILED: suite {suite.policy} ({suite.path}){under} scored {passed}/{len(in_file)}{counted}, "
                    f"below its min_accuracy {suite.min_accuracy:.0%}"
                )
        return problems

    def schema_note(self) -> str | None:
        """Schema problems that did not fail any test still deserve a line in the summary."""
        candidate = as_written(self.runs.candidate)  # as accuracy.md lists them
        invalid = [o for o in candidate.outcomes if o.verdict.schema_problems]
        if not invalid or self.options.strict_calls:
            return None
        made = sum(o.made_call for o in candidate.outcomes)
        return (
            f"{len(invalid)} of {made} cases with calls called a tool in a way its schema does not allow "
            "(listed in accuracy.md and results.json); --strict-calls fails them"
        )
