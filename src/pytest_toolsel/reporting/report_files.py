"""The report files: results.json first, then the renderings, each on its own.

results.json holds every answer and verdict. It is written first, and as soon as there is something
to write (the plugin writes it once the candidate's answers are judged, and again with the before
model's), so that nothing that happens while rendering can cost it. A rendering (accuracy.md, the
heatmap) that fails is named in `WrittenReports.problems` with its error, and the others are still
written: the reports never end a session. Every file is written beside its place and renamed into
it, so a reader never sees half a file.
"""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from ..verdicts.evaluation import RunResult
from .heatmap import can_draw, draw_heatmap
from .invariance import as_written
from .reports import markdown_report, results_document
from .where_calls_went import policy_views

RESULTS_FILE = "results.json"
MARKDOWN_FILE = "accuracy.md"
PNG_FILE = "confusion.png"


@dataclass
class WrittenReports:
    paths: list[Path] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # a line per report that was not written, and why

    def attempt(self, path: Path, write: Callable[[Path], bool]) -> bool:
        """`write(path)`: True when it wrote the file, False when it had nothing to write. A failure
        is kept as a problem, and no earlier run's file is left in its place to be taken for this run's."""
        try:
            wrote = write(path)
        except Exception as error:  # MemoryError included: the other reports may still fit
            path.unlink(missing_ok=True)
            self.problems.append(f"{path} was not written: {type(error).__name__}{f': {error}' if str(error) else ''}")
            return False
        if wrote:
            self.paths.append(path)
        return wrote


@contextmanager
def replaced_atomically(path: Path) -> Iterator[Path]:
    """A staging path beside `path`, renamed to it once written; removed if writing fails."""
    staging = path.with_name(f".{path.name}.tmp")
    try:
        yield staging
        os.replace(staging, path)
    finally:
        staging.unlink(missing_ok=True)


def write_results(
    report_dir: Path, candidate: RunResult, baseline: RunResult | None, settings: dict,
    fragile_margin: float = 0.3, *, finished: bool = True, written: WrittenReports | None = None,
) -> WrittenReports:
    """results.json alone (see `results_document` for `finished`)."""
    written = written if written is not None else WrittenReports()

    def write(path: Path) -> bool:
        path.parent.mkdir(parents=True, exist_ok=True)
        document = results_document(candidate, baseline, settings, fragile_margin, finished)
        with replaced_atomically(path) as staging, staging.open("w", encoding="utf-8") as handle:
            # Streamed: a dataset's document is not held a second time as one string.
            json.dump(document, handle, indent=2, ensure_ascii=False, default=str)
            handle.write("\n")
        return True

    written.attempt(report_dir / RESULTS_FILE, write)
    return written


def write_reports(
    report_dir: Path, candidate: RunResult, baseline: RunResult | None, settings: dict, fragile_margin: float = 0.3
) -> WrittenReports:
    """results.json, then confusion.png and accuracy.md (which names the picture when it was drawn)."""
    written = write_results(report_dir, candidate, baseline, settings, fragile_margin)
    policies = policy_views(as_written(candidate), as_written(baseline))  # as accuracy.md's tables count
    models = [("before", baseline.model), ("after", candidate.model)] if baseline else [("after", candidate.model)]

    def heatmap(path: Path) -> bool:
        # No matplotlib, or only variants ran: no picture, and no earlier run's left to mislead.
        if not can_draw() or not policies:
            path.unlink(missing_ok=True)
            return False
        with replaced_atomically(path) as staging:
            draw_heatmap(staging, policies, models)
        return True

    drawn = written.attempt(report_dir / PNG_FILE, heatmap)

    def markdown(path: Path) -> bool:
        text = markdown_report(candidate, baseline, fragile_margin, PNG_FILE if drawn else None, settings)
        with replaced_atomically(path) as staging:
            staging.write_text(text, encoding="utf-8")
        return True

    written.attempt(report_dir / MARKDOWN_FILE, markdown)
    return written
