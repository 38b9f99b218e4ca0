"""Reports at any size, as users run the plugin: datasets whose rows bring their own tools, capped
tables, results.json first and whole, progress while answering, and why each failing case fails."""

from __future__ import annotations

import importlib
import json
import random
import struct
from pathlib import Path

import pytest

from conftest import STOCKS, WEATHER, case_file
from pytest_toolsel.functiongemma.chat_format import as_function_tool
from pytest_toolsel.plugin import report as plugin_report
from pytest_toolsel.plugin.progress import TerminalProgress
from pytest_toolsel.reporting import report_files
from pytest_toolsel.reporting.confusion import OTHER, TOP_LABELS
from pytest_toolsel.reporting.outcome_kinds import EXPECTS_CALL, EXPECTS_NO_CALL, KINDS, UNDECLARED

from test_plugin import MISSING, PASSING, run

ROOT = Path(__file__).resolve().parents[2]


def reports(pytester) -> Path:
    return pytester.path / "reports"


def results(pytester) -> dict:
    return json.loads((reports(pytester) / "results.json").read_text())


def cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip("|").split("|")]


def png_pixels(path: Path) -> tuple[int, int]:
    return struct.unpack(">II", path.read_bytes()[16:24])


def tool(name: str) -> dict:
    return as_function_tool(name, f"Does {name.replace('_', ' ')}.", {"type": "object", "properties": {"x": {"type": "string"}}})


def row(row_id: str, prompt: str, expect: str | None, tools: list[dict]) -> dict:
    answer = ({"role": "assistant", "tool_calls": [{"function": {"name": expect}}]} if expect
              else {"role": "assistant", "content": "I cannot help with that."})
    return {"id": row_id, "messages": [{"role": "user", "content": prompt}, answer], "tools": tools}


REQUESTS = [("What is the weather in Paris?", "get_weather"), ("How much is ACME stock?", "get_stock_price"),
            ("Tell me a joke.", None)]


def rows_with_their_own_tools() -> list[dict]:
    """12 rows share the two tools the tiny model knows (in either order); 18 add two tools of their
    own; 3 ask for the weather without declaring the weather tool."""
    shuffle = random.Random(0).shuffle
    rows = []
    for i in range(12):
        prompt, expect = REQUESTS[i % 3]
        rows.append(row(f"shared-{i}", prompt, expect, [WEATHER, STOCKS] if i % 2 else [STOCKS, WEATHER]))
    for i in range(18):
        prompt, expect = REQUESTS[i % 3]
        tools = [WEATHER, STOCKS, tool(f"lookup_{i}"), tool(f"archive_{i}")]
        shuffle(tools)
        rows.append(row(f"own-{i}", prompt, expect, tools))
    rows += [row(f"no-weather-{i}", "What is the weather in Paris?", None, [STOCKS, tool(f"memo_{i}")]) for i in range(3)]
    return rows


def write_rows(pytester, rows: list[dict], name: str = "rows.jsonl") -> Path:
    path = pytester.path / name
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_rows_with_their_own_tools_are_reported_by_kind_and_shared_tool_sets_tool_by_tool(pytester, tiny_checkpoint, tiny_base):
    write_rows(pytester, rows_with_their_own_tools())
    result = run(pytester, tiny_checkpoint, base=tiny_base)
    assert result.ret in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED)
    markdown = (reports(pytester) / "accuracy.md").read_text()
    section = markdown.split("### rows\n\n")[1].split("\n## ")[0]
    assert section.startswith("33 cases bring 22 tool sets, so they are counted by kind of outcome")
    kinds = section.split("\n\n")[1].splitlines()
    assert cells(kinds[0]) == ["expected ↓ / outcome →", *KINDS]
    assert [cells(line)[0] for line in kinds[2:]] == [EXPECTS_CALL, EXPECTS_NO_CALL]
    assert "#### 12 cases sharing 2 tools: " in section
    shared = section.split("#### 12 cases sharing 2 tools: ")[1].split("\n\n")[1].splitlines()
    assert {cells(line)[0] for line in shared[2:]} == {"get_weather", "get_stock_price", "none"}
    assert "lookup_" not in section and "memo_" not in section  # no table names a row's own tools
    for run_name in ("candidate", "baseline"):
        policy = results(pytester)[run_name]["policies"]["rows"]
        assert policy["confusion"] is None and policy["tool_sets"] == 22
        assert policy["outcome_kinds"]["rows"] == [EXPECTS_CALL, EXPECTS_NO_CALL]
        assert sum(map(sum, policy["outcome_kinds"]["counts"])) == 33
        assert [(s["cases"], sorted(s["tools"])) for s in policy["shared_tool_sets"]] == [(12, ["get_stock_price", "get_weather"])]
    # The tiny model answers the weather with get_weather, which the last three rows do not declare.
    after = results(pytester)["candidate"]["policies"]["rows"]["outcome_kinds"]
    assert after["counts"][after["rows"].index(EXPECTS_NO_CALL)][KINDS.index(UNDECLARED)] == 3
    width, height = png_pixels(reports(pytester) / "confusion.png")
    assert width < 3000 and height < 2000


def test_a_tool_by_tool_table_names_at_most_the_most_frequent_tools(pytester, tiny_checkpoint):
    names = ["get_weather", "get_stock_price", *(f"tool_{k:02}" for k in range(3, 31))]
    tools = "tools:\n" + "".join(f"  - name: {name}\n    parameters: {{type: object, properties: {{}}}}\n" for name in names)
    cases = "".join(f"- {{id: case-{k}, prompt: Please run tool number {k}., expect: tool_{k:02}}}\n" for k in range(3, 27))
    pytester.makefile(".yaml", policy=case_file(cases, tools=tools))
    outcomes = run(pytester, tiny_checkpoint, "--no-confidence").parseoutcomes()
    assert outcomes.get("passed", 0) + outcomes.get("failed", 0) == 24
    table = (reports(pytester) / "accuracy.md").read_text().split("### policy\n\n")[1].split("\n\n")[0].splitlines()
    columns, rows = cells(table[0])[1:], [cells(line)[0] for line in table[2:]]
    assert len([c for c in columns if c not in (OTHER, "none", "malformed", "cut")]) <= TOP_LABELS
    assert rows[-1] == OTHER and len(rows) <= TOP_LABELS + 1  # 24 expected tools: at least 4 are `other`
    confusion = results(pytester)["candidate"]["policies"]["policy"]["confusion"]
    assert sum(map(sum, confusion["counts"])) == 24 and OTHER in confusion["columns"]


def failing(*args, **kwargs):
    raise RuntimeError("the renderer broke")


def test_results_json_is_written_first_and_whole_when_rendering_fails(pytester, tiny_checkpoint, tiny_base, monkeypatch):
    pytester.makefile(".yaml", policy=case_file(PASSING + MISSING))
    monkeypatch.setattr(report_files, "markdown_report", failing)
    monkeypatch.setattr(report_files, "draw_heatmap", failing)
    before_the_final_reports = []

    def final_reports(report_dir, *args, **kwargs):
        before_the_final_reports.append(json.loads((report_dir / "results.json").read_text()))
        return report_files.write_reports(report_dir, *args, **kwargs)

    monkeypatch.setattr(plugin_report, "write_reports", final_reports)
    result = run(pytester, tiny_checkpoint, base=tiny_base)
    result.assert_outcomes(passed=2, failed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED  # the tests' verdict, not an internal error
    result.stdout.fnmatch_lines([
        f"pytest-toolsel: {Path('reports') / 'confusion.png'} was not written: RuntimeError: the renderer broke",
        f"pytest-toolsel: {Path('reports') / 'accuracy.md'} was not written: RuntimeError: the renderer broke",
        f"report written to {Path('reports') / 'results.json'}",
    ])
    # Written once the candidate was judged, before the before model ran...
    (early,) = before_the_final_reports
    assert early["finished"] is False and early["baseline"] is None and early["candidate"]["total"] == 3
    # ...and again, whole, with the before model's answers.
    document = results(pytester)
    assert document["finished"] and document["candidate"]["total"] == document["baseline"]["total"] == 3
    assert [case["id"] for case in document["candidate"]["cases"]] == ["paris", "how-much-is-acme-stock", "oslo-wrong"]
    assert sorted(path.name for path in reports(pytester).iterdir()) == ["results.json"]


def test_the_batched_pass_shows_its_progress_a_line_per_chunk_in_a_log(pytester, tiny_checkpoint):
    pytester.makefile(".yaml", policy=case_file(PASSING + MISSING))
    result = run(pytester, tiny_checkpoint, "--batch-size", "2")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines([
        f"pytest-toolsel: {tiny_checkpoint}: 0/3 cases answered",
        f"pytest-toolsel: {tiny_checkpoint}: 2/3 cases answered, about *s left",
        f"pytest-toolsel: {tiny_checkpoint}: 3/3 cases answered in *s",
    ])


class Terminal:
    """What TerminalProgress uses of pytest's terminal reporter, recorded."""

    def __init__(self, tty: bool):
        self.tty, self.calls = tty, []

    def isatty(self) -> bool:
        return self.tty

    def write_line(self, text):
        self.calls.append(("line", text))

    def ensure_newline(self):
        self.calls.append(("newline",))

    def rewrite(self, text, erase):
        self.calls.append(("rewrite", text))

    def write(self, text):
        self.calls.append(("write", text))


class Config:
    def __init__(self, terminal):
        self.pluginmanager = self
        self.plugins = {"terminalreporter": terminal, "capturemanager": None}

    def get_plugin(self, name):
        return self.plugins[name]


@pytest.mark.parametrize("ci", ["", "true"])
def test_on_a_terminal_the_progress_line_is_rewritten_in_place_except_under_ci(monkeypatch, ci):
    monkeypatch.setenv("CI", ci)
    monkeypatch.delenv("BUILD_NUMBER", raising=False)
    terminal = Terminal(tty=True)
    show = TerminalProgress(Config(terminal)).sink("ckpt")
    show("0/3 cases answered", False)
    show("3/3 cases answered in 2s", True)
    if ci:
        assert terminal.calls == [("line", "pytest-toolsel: ckpt: 0/3 cases answered"),
                                  ("line", "pytest-toolsel: ckpt: 3/3 cases answered in 2s")]
    else:
        assert terminal.calls == [("newline",), ("rewrite", "pytest-toolsel: ckpt: 0/3 cases answered"),
                                  ("newline",), ("rewrite", "pytest-toolsel: ckpt: 3/3 cases answered in 2s"),
                                  ("write", "\n")]


def test_failing_cases_say_which_check_failed_and_what_was_written(pytester, tiny_checkpoint):
    london = "- prompt: What is the weather in Paris?\n  id: paris-london\n  expect: get_weather\n  args: {city: London}\n"
    pytester.makefile(".yaml", policy=case_file(PASSING + london))
    run(pytester, tiny_checkpoint).assert_outcomes(passed=2, failed=1)
    markdown = (reports(pytester) / "accuracy.md").read_text()
    assert ("## Failing (1)\n\n- `paris-london` (policy): 'What is the weather in Paris?', expects get_weather; "
            "now calls get_weather (city: expected London, wrote Paris)\n") in markdown


def test_200_rows_with_600_tools_of_their_own_keep_the_reports_small(pytester, tiny_checkpoint, monkeypatch):
    monkeypatch.syspath_prepend(ROOT / "benchmarks")  # the benchmark's generated dataset (benchmarks are scripts)
    benchmark = importlib.import_module("dataset_scale")
    rows = benchmark.scale_rows(200)
    tools = {tool["function"]["name"] for r in rows for tool in r["tools"]}
    assert len(tools) > 500  # a table over them would hold 250,000 cells and more
    benchmark.write_rows(pytester.path / "rows.jsonl", rows)
    result = run(pytester, tiny_checkpoint, "--max-new-tokens", "8", "--no-confidence", "-q", "--tb=no")
    assert result.ret in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED)
    document = results(pytester)
    assert document["candidate"]["total"] == 200 and document["finished"]
    markdown = reports(pytester) / "accuracy.md"
    assert markdown.stat().st_size < 100_000  # lines for the failing cases, and tables of bounded size
    assert "200 cases bring 200 tool sets" in markdown.read_text()
    width, height = png_pixels(reports(pytester) / "confusion.png")
    assert width < 2000 and height < 1000
