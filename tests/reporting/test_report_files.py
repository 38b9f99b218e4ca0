"""The report files: results.json first and whole; a rendering that fails costs only itself."""

from __future__ import annotations

import json

import pytest

from pytest_toolsel.reporting import report_files
from pytest_toolsel.reporting.report_files import write_reports, write_results
from test_reports import AFTER, BEFORE, run_of, suite  # noqa: F401 (suite: a fixture)


@pytest.fixture
def runs(suite):  # noqa: F811
    return run_of(suite, "models/after", AFTER), run_of(suite, "models/before", BEFORE)


@pytest.fixture
def reports(tmp_path):
    """A report directory where an earlier run left its reports."""
    directory = tmp_path / "reports"
    directory.mkdir()
    for name in ("results.json", "accuracy.md"):
        (directory / name).write_text("{}" if name.endswith(".json") else "an earlier run's report")
    return directory


def fail(*args, **kwargs):
    raise RuntimeError("the renderer broke")


def test_a_rendering_that_fails_is_named_and_results_json_is_still_whole(reports, runs, monkeypatch):
    after, before = runs
    monkeypatch.setattr(report_files, "markdown_report", fail)
    monkeypatch.setattr(report_files, "draw_heatmap", lambda *args: (_ for _ in ()).throw(MemoryError()))
    written = write_reports(reports, after, before, {"batch_size": 8})
    assert [path.name for path in written.paths] == ["results.json"]
    assert written.problems == [
        f"{reports / 'confusion.png'} was not written: MemoryError",
        f"{reports / 'accuracy.md'} was not written: RuntimeError: the renderer broke",
    ]
    document = json.loads((reports / "results.json").read_text())
    assert document["finished"] and document["candidate"]["total"] == document["baseline"]["total"] == 6
    assert len(document["candidate"]["cases"]) == 6 and document["generation"] == {"batch_size": 8}
    assert [path.name for path in reports.iterdir()] == ["results.json"]  # no stale report, no staging file


def test_results_json_that_cannot_be_written_leaves_no_older_one_and_the_renderings_still_come(reports, runs, monkeypatch):
    after, _ = runs
    monkeypatch.setattr(report_files, "results_document", fail)
    written = write_reports(reports, after, None, {})
    assert [path.name for path in written.paths] == ["confusion.png", "accuracy.md"]
    assert written.problems == [f"{reports / 'results.json'} was not written: RuntimeError: the renderer broke"]
    assert sorted(path.name for path in reports.iterdir()) == ["accuracy.md", "confusion.png"]


def test_results_written_before_the_before_model_says_they_are_not_finished(tmp_path, runs):
    after, _ = runs
    written = write_results(tmp_path, after, None, {}, finished=False)
    assert written.paths == [tmp_path / "results.json"] and written.problems == []
    document = json.loads((tmp_path / "results.json").read_text())
    assert document["finished"] is False and document["baseline"] is None
    assert [case["id"] for case in document["candidate"]["cases"]] == ["paris", "oslo", "rome", "acme", "both", "joke"]
