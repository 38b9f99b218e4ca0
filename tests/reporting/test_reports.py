"""Reports: valid-call share, exact-call accuracy and the confusion table, from answers judged as in a run."""

from __future__ import annotations

import json
import sys

import pytest

from conftest import case_file
from pytest_toolsel.cases.yaml_source import load_suite
from pytest_toolsel.functiongemma.chat_format import END_CALL, START_CALL
from pytest_toolsel.inference.results_cache import Answer
from pytest_toolsel.reporting.confusion import MALFORMED, markdown_table, shared_confusions
from pytest_toolsel.reporting.report_files import write_reports
from pytest_toolsel.reporting.reports import markdown_report, results_document
from pytest_toolsel.reporting.where_calls_went import policy_views
from pytest_toolsel.verdicts.evaluation import RunResult, judged

CASES = """\
- {id: paris, prompt: Weather in Paris?, expect: get_weather, args: {city: Paris}}
- {id: oslo, prompt: Weather in Oslo?, expect: get_weather}
- {id: rome, prompt: Weather in Rome?, expect: get_weather, args: {city: Rome}}
- {id: acme, prompt: Price of ACME?, expect: get_stock_price, args: {ticker: ACME}}
- {id: both, prompt: Rome and ACME?, expect: [get_weather, get_stock_price]}
- {id: joke, prompt: Tell me a joke, expect: none}
"""


def call(body: str) -> str:
    return f"{START_CALL}call:{body}{END_CALL}"


WEATHER_PARIS = call("get_weather{city:<escape>Paris<escape>}")
# What each model answered, case by case.
AFTER = {
    "paris": WEATHER_PARIS,  # right and exact
    "oslo": call("get_weather{city:<escape>Oslo<escape>,units:<escape>c<escape>}"),  # right tool, undeclared arg
    "rome": call("get_weather{city:<escape>Roma<escape>}"),  # right tool, not exact
    "acme": call("get_weather{city:<escape>ACME<escape>}"),  # wrong tool
    "both": call("get_weather{city:<escape>Rome<escape>}") + call("get_stock_price{ticker:<escape>ACME<escape>}"),
    "joke": "Why did the chicken cross the road?",  # rightly no call
}
BEFORE = {
    "paris": "I don't know.",
    "oslo": call("get_weather{city:<escape>Oslo"),  # never closed: malformed
    "rome": call("get_stock_price{ticker:<escape>ROME<escape>}"),
    "acme": call("get_stock_price{ticker:7}"),  # right tool, wrong type (and a failed argument check)
    "both": call("get_weather{city:<escape>Rome<escape>}"),
    "joke": call("get_weather{city:<escape>Joke<escape>}"),
}


@pytest.fixture
def suite(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text(case_file(CASES))
    return load_suite(path)


def cells(line: str) -> list[str]:
    """A Markdown table row's cells."""
    return [cell.strip() for cell in line.strip("|").split("|")]


def run_of(suite, model: str, answers: dict[str, str]) -> RunResult:
    return RunResult(model, tuple(judged(suite, case, Answer(answers[case.id])) for case in suite.cases))


@pytest.fixture
def runs(suite):
    return run_of(suite, "models/after", AFTER), run_of(suite, "models/before", BEFORE)


def test_confusion_counts_each_case_once_in_its_cell(runs):
    after, before = runs
    old, new = shared_confusions([before.outcomes, after.outcomes])
    assert new.rows == old.rows == ("get_weather", "get_stock_price", "get_stock_price, get_weather", "none")
    assert new.columns == old.columns == (
        "get_weather", "get_stock_price", "get_stock_price, get_weather", "none", MALFORMED,
    )
    assert new.as_dict()["counts"] == [
        [3, 0, 0, 0, 0],  # a right tool with a wrong argument is still a right tool here
        [1, 0, 0, 0, 0],
        [0, 0, 1, 0, 0],
        [0, 0, 0, 1, 0],
    ]
    assert old.as_dict()["counts"] == [
        [0, 1, 0, 1, 1],  # paris answered in text; oslo's call never closed
        [0, 1, 0, 0, 0],
        [1, 0, 0, 0, 0],
        [1, 0, 0, 0, 0],
    ]


def test_confusion_markdown_reads_before_then_after(runs):
    after, before = runs
    ((view,),) = [policy.views for policy in policy_views(after, before)]
    lines = markdown_table(view.before, view.after).splitlines()
    rows = [cells(line) for line in lines]
    assert rows[0] == ["expected ↓ / called →", "get_weather", "get_stock_price", "get_stock_price, get_weather",
                        "none", "malformed"]
    assert rows[2] == ["get_weather", "0 → 3", "1 → 0", "·", "1 → 0", "1 → 0"]
    assert rows[5] == ["none", "1 → 0", "·", "·", "0 → 1", "·"]
    alone = markdown_table(None, shared_confusions([after.outcomes])[0]).splitlines()
    assert cells(alone[2]) == ["get_weather", "3", "·", "·", "·", "·"]


def test_columns_hold_every_declared_tool_and_what_was_called_beyond_them(suite):
    answers = {**AFTER, "acme": call("get_weather{city:<escape>ACME<escape>}") + call("lookup{q:1}"),
               "both": "no call", "paris": "no call"}
    (table,) = shared_confusions([run_of(suite, "m", answers).outcomes])
    assert table.columns == ("get_weather", "get_stock_price", "get_stock_price, get_weather",
                             "get_weather, lookup", "none", MALFORMED)
    assert table.count("get_stock_price", "get_weather, lookup") == 1
    assert table.count("get_stock_price, get_weather", "none") == 1


def test_results_json_has_valid_and_exact_call_shares_overall_and_per_policy(runs):
    after, before = runs
    document = results_document(after, before, {})
    candidate, baseline = document["candidate"], document["baseline"]
    # After: 5 cases made a call, oslo's has an undeclared argument; paris, rome, acme and joke (no
    # call expected) give their exact calls, and of those paris and joke are answered exactly.
    assert candidate["valid_calls"] == {
        "valid": 4, "cases_with_calls": 5, "share": 0.8, "share_ci95": pytest.approx(candidate["valid_calls"]["share_ci95"]),
    }
    assert candidate["exact_calls"]["exact"] == 2 and candidate["exact_calls"]["cases_with_expected_calls"] == 4
    assert candidate["exact_calls"]["accuracy"] == pytest.approx(2 / 4)
    # Before: oslo is malformed and acme's ticker is a number, so 3 of 5 answers with calls are valid.
    assert (baseline["valid_calls"]["valid"], baseline["valid_calls"]["cases_with_calls"]) == (3, 5)
    assert baseline["exact_calls"]["exact"] == 0
    policy = candidate["policies"]["policy"]
    assert (policy["passed"], policy["total"]) == (4, 6)
    assert policy["valid_calls"] == candidate["valid_calls"] and policy["exact_calls"] == candidate["exact_calls"]
    assert policy["confusion"]["counts"][0] == [3, 0, 0, 0, 0]
    cases = {case["id"]: case for case in candidate["cases"]}
    assert cases["oslo"]["schema_problems"] == ["get_weather: undeclared argument 'units' (declared: city)"]
    assert cases["oslo"]["passed"] and cases["oslo"]["exact_call"] is None
    assert (cases["paris"]["exact_call"], cases["rome"]["exact_call"], cases["acme"]["exact_call"]) == (True, False, False)
    assert cases["joke"]["exact_call"] is True
    assert {case["id"]: case["exact_call"] for case in baseline["cases"]}["joke"] is False  # it called a tool
    json.dumps(document)  # the document is plain JSON


def test_accuracy_md_shows_the_shares_beside_tool_selection_and_lists_schema_problems(runs):
    after, before = runs
    markdown = markdown_report(after, before, heatmap="confusion.png")
    overall = markdown.split("\n\n")[1].splitlines()
    assert cells(overall[0]) == [
        "", "model", "tool selection [95% CI]", "valid calls [95% CI]", "exact calls [95% CI]",
    ]
    assert overall[2].startswith("| before | models/before | 0/6 = 0% [0%, 39%] ")
    assert "| 3/5 = 60% [" in overall[2] and "| 0/4 = 0% [" in overall[2]
    assert "| 4/5 = 80% [" in overall[3] and "| 2/4 = 50% [" in overall[3]
    assert markdown.index("## Which tool went where") < markdown.index("## Per suite")
    assert "Heatmap: `confusion.png`." in markdown
    confusion = markdown.split("### policy\n\n")[1].split("\n\n")[0].splitlines()
    assert cells(confusion[2])[:2] == ["get_weather", "0 → 3"]
    suite_table = markdown.split("## Per suite\n\n")[1].split("\n\n")[0].splitlines()
    assert cells(suite_table[0]) == [
        "suite", "tool selection before", "tool selection after", "valid calls before", "valid calls after",
        "exact calls before", "exact calls after",
    ]
    assert cells(suite_table[2])[3:5] == [
        "3/5 = 60% [23%, 88%]", "4/5 = 80% [38%, 96%]",
    ]
    assert ("## Calls that do not fit their tool's schema (1)\n\n- `oslo` (policy, selection passed): "
            "get_weather: undeclared argument 'units' (declared: city)") in markdown


def test_write_reports_draws_the_confusion_heatmap(tmp_path, runs):
    after, before = runs
    written = write_reports(tmp_path / "reports", after, before, {})
    png = tmp_path / "reports" / "confusion.png"
    assert [path.name for path in written.paths] == ["results.json", "confusion.png", "accuracy.md"]
    assert written.problems == []
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [path for path in png.parent.iterdir() if path.name.startswith(".")]  # no staging file left


def test_without_matplotlib_the_heatmap_is_skipped_quietly(tmp_path, runs, monkeypatch):
    after, _ = runs
    stale = tmp_path / "confusion.png"
    stale.write_bytes(b"an older run's picture")
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` now raises ImportError
    written = write_reports(tmp_path, after, None, {})
    assert [path.name for path in written.paths] == ["results.json", "accuracy.md"] and written.problems == []
    assert not stale.exists()  # it would not show this run
    assert "Heatmap" not in (tmp_path / "accuracy.md").read_text()


def test_case_lists_say_why_a_case_fails_beyond_the_tool_it_called(runs):
    """A right tool with a wrong argument, or a call that could not be read, would otherwise read like a pass."""
    after, before = runs
    markdown = markdown_report(after, before)
    still = markdown.split("## Still failing (2)\n\n")[1].split("\n\n")[0].splitlines()
    assert still == [
        "- `rome` (policy): 'Weather in Rome?', expects get_weather; before called get_stock_price; "
        "now calls get_weather (city: expected Rome, wrote Roma)",
        "- `acme` (policy): 'Price of ACME?', expects get_stock_price; before called get_stock_price "
        "(ticker: expected \"ACME\", wrote 7); now calls get_weather",
    ]
    assert ("before called get_weather (malformed call to get_weather: unterminated <escape> string at offset 22 "
            "(near '<escape>Oslo')); now calls get_weather\n") in markdown
    rome = next(case for case in results_document(after, before, {})["candidate"]["cases"] if case["id"] == "rome")
    assert rome["failed_checks"] == [
        {"tool": "get_weather", "argument": "city", "check": "equals", "expected": "Rome", "written": "Roma", "given": True},
    ]
