"""How evaluation splits cases into generation calls."""

from __future__ import annotations

from pytest_toolsel.cases.yaml_source import load_suite
from pytest_toolsel.inference.answers import per_policy

TOOLS = """
tools:
  - name: {first}
    parameters: {{type: object, properties: {{query: {{type: string}}}}}}
  - name: other
"""


def suite(tmp_path, name: str, first: str, system: str | None = None):
    path = tmp_path / f"{name}.yaml"
    text = f"policy: {name}\n" + (f"system: {system}\n" if system else "") + TOOLS.format(first=first)
    path.write_text(text + "cases:\n  - prompt: a\n    expect: other\n  - prompt: b\n    expect: other\n")
    return load_suite(path)


def test_files_with_the_same_tools_and_system_text_share_one_call(tmp_path):
    same_a, same_b = suite(tmp_path, "a", "lookup"), suite(tmp_path, "b", "lookup")
    other_tools, other_system = suite(tmp_path, "c", "search"), suite(tmp_path, "d", "lookup", "Be brief.")
    cases = [(s, c) for s in (same_a, other_tools, same_b, other_system) for c in s.cases]
    calls = []

    def work(first_suite, indices):
        calls.append([cases[i][0].policy for i in indices])
        return [f"{cases[i][0].policy}/{cases[i][1].prompt}" for i in indices]

    results = per_policy(cases, work)
    assert results == [f"{s.policy}/{c.prompt}" for s, c in cases]  # back in the cases' order
    assert sorted(calls) == [["a", "a", "b", "b"], ["c", "c"], ["d", "d"]]
