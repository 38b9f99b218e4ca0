"""Invariance variants as data (cases/variants.py) and the case-file keys asking for them."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import TOOLS_YAML, case_file
from pytest_toolsel.cases.suite import Case, CaseFileError, Suite, Tool
from pytest_toolsel.cases.variants import (
    VariantError,
    distractor_pool,
    plain_id,
    shuffled,
    variant_of,
    with_distractors,
)
from pytest_toolsel.cases.yaml_source import load_suite

CASES = "- prompt: What is the weather in Paris?\n  expect: get_weather\n  id: paris\n"
EMAIL = "  - name: send_email\n    description: Send an email.\n"


def tools(*names: str) -> tuple[Tool, ...]:
    return tuple(Tool(name, f"{name} tool", None) for name in names)


def suite_of(path: str, *names: str, distractors: tuple[Tool, ...] = ()) -> Suite:
    case = Case(id="paris", prompt="What is the weather in Paris?", expect=frozenset(names[:1]))
    return Suite(Path(path), Path(path).stem, None, tools(*names), (), (case,), distractors=distractors)


def test_shuffled_is_another_order_of_the_same_tools_and_the_same_expectation():
    suite = suite_of("a.yaml", "t1", "t2", "t3", "t4")
    case = suite.cases[0]
    variant_suite, variant_case = shuffled(suite, case, seed=0)
    assert variant_suite.tool_names != suite.tool_names
    assert sorted(variant_suite.tool_names) == sorted(suite.tool_names)
    assert (variant_case.id, variant_case.variant, plain_id(variant_case)) == ("paris[shuffled]", "shuffled", "paris")
    assert (variant_case.prompt, variant_case.expect) == (case.prompt, case.expect)
    assert shuffled(suite, case, seed=0)[0].tool_names == variant_suite.tool_names  # seeded: the same again
    orders = {shuffled(suite, case, seed)[0].tool_names for seed in range(12)}
    assert len(orders) > 1  # ...and the seed moves it


def test_two_tools_shuffle_to_the_reverse_and_one_tool_has_no_shuffled_variant():
    two = suite_of("a.yaml", "t1", "t2")
    assert all(shuffled(two, two.cases[0], seed)[0].tool_names == ("t2", "t1") for seed in range(5))
    one = suite_of("b.yaml", "t1")
    assert shuffled(one, one.cases[0], 0) is None


def test_distractors_are_placed_among_the_tools_which_keep_their_order():
    suite = suite_of("a.yaml", "t1", "t2", "t3")
    pool = tools("d1", "d2", "d3", "d4", "d5")
    variant_suite, variant_case = with_distractors(suite, suite.cases[0], pool, count=3, seed=0)
    names = variant_suite.tool_names
    assert [name for name in names if name.startswith("t")] == ["t1", "t2", "t3"]
    assert len([name for name in names if name.startswith("d")]) == 3
    assert variant_case.id == "paris[distractors]"
    assert with_distractors(suite, suite.cases[0], pool, 3, 0)[0].tool_names == names
    # Fewer tools to add than asked for: all of them.
    assert len(with_distractors(suite, suite.cases[0], pool[:2], 3, 0)[0].tools) == 5
    with pytest.raises(VariantError, match="a.yaml: the distractors variant has no tools to add"):
        with_distractors(suite, suite.cases[0], (), 3, 0)


def test_the_distractor_pool_is_the_files_list_else_other_suites_tools_in_a_fixed_order():
    own = suite_of("a.yaml", "t1", "shared")
    others = [suite_of("c.yaml", "c1", "shared"), suite_of("b.yaml", "b1")]
    pool = distractor_pool(own, [own, *others])
    assert [tool.name for tool in pool] == ["b1", "c1"]  # not its own tools, nor 'shared', which it declares
    assert distractor_pool(own, [*reversed(others), own]) == pool  # the order of the arguments does not matter
    listed = suite_of("a.yaml", "t1", distractors=tools("x"))
    assert [tool.name for tool in distractor_pool(listed, [listed, *others])] == ["x"]
    # Through variant_of, a case's distractors come from the pool.
    variant = variant_of("distractors", own, own.cases[0], [own, *others], distractors=5, seed=1)
    assert sorted(variant[0].tool_names) == ["b1", "c1", "shared", "t1"]


def test_case_file_keys_variants_and_distractors(tmp_path):
    text = case_file(CASES, extra="variants: [distractors, shuffled]\ndistractors:\n" + EMAIL)
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    suite = load_suite(path)
    assert suite.variants == ("shuffled", "distractors")
    assert [tool.name for tool in suite.distractors] == ["send_email"]
    path.write_text(case_file(CASES))
    assert (load_suite(path).variants, load_suite(path).distractors) == ((), ())


@pytest.mark.parametrize(
    ("extra", "message", "at"),
    [
        ("variants: [shufled]\n", "variants: unknown variant 'shufled'; did you mean 'shuffled'?", "variants:"),
        ("variants: shuffled\n", "'variants' must be a list", "variants:"),
        ("distractors:\n  - name: get_weather\n",
         "distractors[0] (get_weather): 'get_weather' is one of the policy's own tools", "- name: get_weather"),
        ("distractors: []\n", "'distractors' must declare at least one tool", "distractors:"),
        ("distractors:\n  - description: no name\n", "distractors[0]: field 'name': a tool needs a name", "description: no"),
    ],
    ids=["unknown-variant", "variants-not-a-list", "own-tool", "empty-distractors", "distractor-without-name"],
)
def test_bad_variant_keys_are_errors_naming_the_file_line_and_field(tmp_path, extra, message, at):
    text = TOOLS_YAML + extra + "cases:\n  - prompt: hi\n    expect: get_weather\n"
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    with pytest.raises(CaseFileError) as problem:
        load_suite(path)
    line = max(number for number, content in enumerate(text.splitlines(), 1) if at in content)  # in `extra`
    assert message in str(problem.value)
    assert str(problem.value).startswith(f"{path}:{line}:")
