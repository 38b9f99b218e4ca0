"""How evaluation splits cases into generation calls."""

from __future__ import annotations

from pytest_toolsel.cases.yaml_source import load_suite
from pytest_toolsel.inference.answers import MIN_SHARED_GROUP, answer_batches

TOOLS = """
tools:
  - name: {first}
    parameters: {{type: object, properties: {{query: {{type: string}}}}}}
  - name: other
"""


def suite(tmp_path, name: str, first: str, system: str | None = None, cases: int = MIN_SHARED_GROUP // 2 + 1):
    path = tmp_path / f"{name}.yaml"
    text = f"policy: {name}\n" + (f"system: {system}\n" if system else "") + TOOLS.format(first=first)
    entries = "".join(f"  - prompt: p{i}\n    expect: other\n" for i in range(cases))
    path.write_text(text + "cases:\n" + entries)
    return load_suite(path)


def policies_of(cases, batches) -> list[list[str]]:
    return sorted(sorted(cases[i][0].policy for i in batch) for batch in batches)


def test_files_with_the_same_tools_and_system_text_share_one_group(tmp_path):
    same_a, same_b = suite(tmp_path, "a", "lookup"), suite(tmp_path, "b", "lookup")
    other_tools = suite(tmp_path, "c", "search", cases=MIN_SHARED_GROUP)
    other_system = suite(tmp_path, "d", "lookup", "Be brief.", cases=MIN_SHARED_GROUP)
    cases = [(s, c) for s in (same_a, other_tools, same_b, other_system) for c in s.cases]
    batches = answer_batches(cases)
    assert sorted(i for batch in batches for i in batch) == list(range(len(cases)))  # each case once
    n = MIN_SHARED_GROUP
    assert policies_of(cases, batches) == [["a"] * (n // 2 + 1) + ["b"] * (n // 2 + 1), ["c"] * n, ["d"] * n]


def test_tool_sets_that_few_cases_share_are_pooled_into_one_group(tmp_path):
    """A dataset where every row has its own tools: one group, not one small batch per row."""
    rows = [suite(tmp_path, f"row{i}", f"tool{i}", cases=1) for i in range(6)]
    shared = suite(tmp_path, "policy", "lookup", cases=MIN_SHARED_GROUP)
    cases = [(s, c) for s in (*rows, shared) for c in s.cases]
    assert policies_of(cases, answer_batches(cases)) == [["policy"] * MIN_SHARED_GROUP, [f"row{i}" for i in range(6)]]


def test_pooled_rows_with_their_own_tools_get_the_answers_they_get_alone(loaded_either_window):
    """BFCL rows, each with its own tools, answered in one pool: every output and tool probability is
    the one the row gets answered on its own."""
    from pathlib import Path

    from pytest_toolsel.cases.sources import load_suites
    from pytest_toolsel.inference.answers import answer
    from pytest_toolsel.inference.generation import GenerationSettings

    suites = load_suites(Path(__file__).resolve().parents[1] / "data" / "bfcl_sample.jsonl")
    cases = [(suite, case) for suite in suites for case in suite.cases][:8]
    assert len(answer_batches(cases)) == 1
    settings = GenerationSettings(max_new_tokens=24)
    pooled = answer(loaded_either_window, cases, settings, confidence=True)
    alone = [answer(loaded_either_window, [pair], settings, confidence=True)[0] for pair in cases]
    assert [a.output for a in pooled] == [a.output for a in alone]
    assert [a.choice.probabilities for a in pooled] == [a.choice.probabilities for a in alone]
    assert all(list(a.choice.probabilities) == list(suite.tool_names) for a, (suite, _) in zip(pooled, cases))
