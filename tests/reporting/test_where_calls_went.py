"""Which tool went where, at any size: datasets whose rows bring their own tools are counted by kind of
outcome; tool-by-tool tables only for shared tool sets, capped at the most frequent tools."""

from __future__ import annotations

import json
import random
import struct

from pytest_toolsel.cases.sources import load_suites
from pytest_toolsel.functiongemma.chat_format import END_CALL, START_CALL, as_function_tool
from pytest_toolsel.inference.results_cache import Answer
from pytest_toolsel.reporting.confusion import OTHER, TOP_LABELS, shared_confusions
from pytest_toolsel.reporting.outcome_kinds import (
    EXPECTED_TOOL, EXPECTS_CALL, EXPECTS_NO_CALL, KINDS, MALFORMED, NO_CALL, OTHER_DECLARED, UNDECLARED,
)
from pytest_toolsel.reporting.report_files import write_reports
from pytest_toolsel.reporting.reports import markdown_report, results_document
from pytest_toolsel.reporting.where_calls_went import MIN_SHARED_CASES, policy_views
from pytest_toolsel.verdicts.evaluation import RunResult, judged


def tool(name: str) -> dict:
    return as_function_tool(name, f"The {name} tool.", {"type": "object", "properties": {"q": {"type": "string"}}})


def row(row_id: str, names: list[str], expect: str | None) -> dict:
    answer = ({"role": "assistant", "tool_calls": [{"function": {"name": expect, "arguments": {"q": "x"}}}]}
              if expect else {"role": "assistant", "content": "No tool for that."})
    return {"id": row_id, "messages": [{"role": "user", "content": f"Request {row_id}"}, answer],
            "tools": [tool(name) for name in names]}


def dataset(tmp_path, rows: list[dict], name: str = "rows.jsonl"):
    path = tmp_path / name
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return [(suite, case) for suite in load_suites(path) for case in suite.cases]


def own_tool_rows(count: int) -> list[dict]:
    """Rows with a tool set each: row i declares four tools of its own and expects the first (every
    fifth row expects no call)."""
    return [row(f"r{i}", [f"t{i}_{k}" for k in range(4)], None if i % 5 == 4 else f"t{i}_0") for i in range(count)]


def call(name: str) -> str:
    return f"{START_CALL}call:{name}{{q:<escape>x<escape>}}{END_CALL}"


def answered(cases, answer_of) -> RunResult:
    return RunResult("models/after", tuple(judged(s, c, Answer(answer_of(i, s, c))) for i, (s, c) in enumerate(cases)))


def cycling_kinds(i, suite, case) -> str:
    """Each kind of outcome in turn: the expected tool, another of the row's tools, an invented one,
    no call, an unreadable call."""
    own = suite.tool_names
    return [call(own[0]), call(own[1]), call("invented_tool"), "Sorry, no.", f"{START_CALL}call:{own[0]}{{q:<escape>x"][i % 5]


def test_rows_with_their_own_tools_are_counted_by_kind_of_outcome(tmp_path):
    cases = dataset(tmp_path, own_tool_rows(50))
    (policy,) = policy_views(answered(cases, cycling_kinds), None)
    assert (policy.cases, policy.tool_sets) == (50, 50)
    (kinds,) = policy.views  # no tool set is shared: no tool-by-tool table at all
    table = kinds.after
    assert table.rows == (EXPECTS_CALL, EXPECTS_NO_CALL) and table.columns == KINDS
    # Rows 0..49 answer kind i % 5; rows 4, 9, ... (answered "malformed") expect no call.
    assert [table.count(EXPECTS_CALL, kind) for kind in KINDS] == [10, 10, 10, 10, 0, 0]
    assert [table.count(EXPECTS_NO_CALL, kind) for kind in KINDS] == [0, 0, 0, 0, 10, 0]
    assert table.right == {EXPECTS_CALL: EXPECTED_TOOL, EXPECTS_NO_CALL: NO_CALL}


def test_a_no_call_case_that_calls_a_declared_tool_called_another_declared_tool(tmp_path):
    cases = dataset(tmp_path, own_tool_rows(5))
    (policy,) = policy_views(answered(cases, lambda i, s, c: call(s.tool_names[0])), None)
    assert policy.views[0].after.count(EXPECTS_NO_CALL, OTHER_DECLARED) == 1
    assert policy.views[0].after.count(EXPECTS_CALL, UNDECLARED) == 0


def test_accuracy_md_shows_the_kinds_before_and_after_and_no_tool_by_tool_table(tmp_path):
    cases = dataset(tmp_path, own_tool_rows(50))
    after = answered(cases, cycling_kinds)
    before = answered(cases, lambda i, s, c: "Sorry, no.")
    markdown = markdown_report(after, before)
    section = markdown.split("### rows\n\n")[1].split("\n## ")[0]
    assert section.startswith("50 cases bring 50 tool sets, so they are counted by kind of outcome")
    table = section.split("\n\n")[1].splitlines()
    assert [cell.strip() for cell in table[0].strip("|").split("|")] == ["expected ↓ / outcome →", *KINDS]
    assert [cell.strip() for cell in table[2].strip("|").split("|")] == [
        EXPECTS_CALL, "0 → 10", "0 → 10", "0 → 10", "40 → 10", "·", "·",
    ]
    assert f"No tool set is shared by {MIN_SHARED_CASES} cases or more" in section
    assert "t17_0" not in section  # no table names the rows' tools
    record = results_document(after, before, {})["candidate"]["policies"]["rows"]
    assert record["confusion"] is None and record["tool_sets"] == 50 and record["shared_tool_sets"] == []
    assert record["outcome_kinds"]["counts"] == [[10, 10, 10, 10, 0, 0], [0, 0, 0, 0, 10, 0]]


def test_a_tool_set_that_enough_rows_share_gets_its_own_tool_by_tool_table(tmp_path):
    shuffle = random.Random(0).shuffle
    shared = []
    for i in range(MIN_SHARED_CASES + 2):  # the same three tools in another order in every row
        names = ["lookup", "order", "refund"]
        shuffle(names)
        shared.append(row(f"s{i}", names, ["lookup", "order", "refund"][i % 3]))
    cases = dataset(tmp_path, shared + own_tool_rows(20))
    (policy,) = policy_views(answered(cases, lambda i, s, c: call(s.tool_names[0])), None)
    kinds, matrix = policy.views
    first_order = ", ".join(tool["function"]["name"] for tool in shared[0]["tools"])  # as the first row declares them
    assert matrix.title == f"rows: {MIN_SHARED_CASES + 2} cases sharing 3 tools: {first_order}"
    assert set(matrix.after.rows) == {"lookup", "order", "refund"}
    assert sum(matrix.after.counts.values()) == MIN_SHARED_CASES + 2
    markdown = markdown_report(answered(cases, lambda i, s, c: call(s.tool_names[0])), None)
    assert f"#### {MIN_SHARED_CASES + 2} cases sharing 3 tools:" in markdown


def test_a_tool_by_tool_table_names_the_most_frequent_tools_and_counts_the_rest_as_other(tmp_path):
    names = [f"tool_{k:02}" for k in range(40)]
    # One tool set of 40 tools; case k expects tool k; the model calls tool_00 for the first half and
    # the right tool for the second: tool_00 names 21 cases, tool_20..tool_39 two each, the rest one.
    cases = dataset(tmp_path, [row(f"c{k}", names, names[k]) for k in range(40)])
    run = answered(cases, lambda i, s, c: call("tool_00") if i < 20 else call(names[i]))
    (table,) = shared_confusions([run.outcomes])
    named = [label for label in table.columns if label.startswith("tool_")]
    assert named == ["tool_00", *names[20:39]]  # ties go by declaration order: tool_39 is cut
    assert table.columns[-3:] == (OTHER, "none", "malformed") and table.rows[-1] == OTHER
    assert sum(table.counts.values()) == 40  # nobody is lost: the cut tools' cases are `other`
    assert (table.count(OTHER, "tool_00"), table.count(OTHER, OTHER)) == (19, 1)
    assert len(named) == TOP_LABELS
    assert OTHER not in table.right  # `other` called for `other` expected is not known to be right


def test_reports_grow_with_the_cases_not_with_the_square_of_the_tools(tmp_path):
    sizes = {}
    for count in (100, 200):
        cases = dataset(tmp_path, own_tool_rows(count), f"rows{count}.jsonl")
        after = answered(cases, cycling_kinds)
        before = answered(cases, lambda i, s, c: call(s.tool_names[1]))
        reports = tmp_path / f"reports{count}"
        written = write_reports(reports, after, before, {})
        assert written.problems == []
        sizes[count] = (reports / "accuracy.md").stat().st_size
        width, height = struct.unpack(">II", (reports / "confusion.png").read_bytes()[16:24])
        assert width < 2000 and height < 1000  # one small panel pair per policy, whatever the tools
    # Doubling the rows (and the tools: 4 a row) doubles the lists of failing cases, not the tables.
    assert sizes[200] < 2.2 * sizes[100]
    assert sizes[200] < 100_000
