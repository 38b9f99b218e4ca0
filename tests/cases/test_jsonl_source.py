"""JSON Lines case files: datasets in the Hugging Face conversational format, as published."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import TOOLS
from pytest_toolsel.cases.sources import is_case_file, load_suites
from pytest_toolsel.cases.suite import Call, CaseFileError

DATA = Path(__file__).resolve().parents[1] / "data"
BFCL = DATA / "bfcl_sample.jsonl"
MOBILE_ROW = DATA / "mobile_actions_row.jsonl"


def call(name: str, **arguments) -> dict:
    return {"type": "function", "function": {"name": name, "arguments": arguments}}


def row(*messages, tools=TOOLS, **extra) -> dict:
    return {"messages": list(messages), "tools": tools, **extra}


USER = {"role": "user", "content": "What is the weather in Paris?"}
CALLS_WEATHER = {"role": "assistant", "tool_calls": [call("get_weather", city="Paris")]}
RESPONSE = {"role": "tool", "name": "get_weather", "content": {"temperature": 21}}


def write(path: Path, rows: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def cases_of(path: Path):
    return [case for suite in load_suites(path) for case in suite.cases]


def test_the_bfcl_sample_is_twenty_cases_each_with_its_own_tools():
    suites = load_suites(BFCL)
    cases = sorted(((suite, case) for suite in suites for case in suite.cases), key=lambda pair: pair[1].line)
    assert len(cases) == 20 and len(suites) == 20  # every row its own tool set
    assert [case.line for _, case in cases] == list(range(1, 21))
    ids = [case.id for _, case in cases]
    assert ids[0] == "multiple_190" and len(set(ids)) == 20
    no_call = [case for _, case in cases if not case.expect]
    assert len(no_call) == 10 and all(case.id.startswith("irrelevance") for case in no_call)
    assert all(case.reference_calls == () for case in no_call)
    dotted = [(suite, case) for suite, case in cases if case.id == "multiple_192"][0]
    assert dotted[1].expect == {"currency_conversion.convert"}
    assert dotted[1].reference_calls == (Call("currency_conversion.convert", {"amount": 150, "from_currency": "EUR", "to_currency": "CAD"}),)
    assert "currency_conversion.convert" in dotted[0].tool_names
    assert all(suite.policy == "bfcl_sample" and suite.path == BFCL for suite in suites)


def test_a_tool_property_the_template_leaves_out_is_accepted_in_a_dataset_with_a_note():
    """BFCL declares arguments named `type`, which FunctionGemma's template drops: the rows are kept as
    published (a case file's author would be asked to rename it) and the user told."""
    notes = load_suites(BFCL)[0].notes
    assert notes == (
        f"{BFCL}:2: row 2 (id 'multiple_191'): tools[1] (get_personality_traits): property 'parameters.properties.type' "
        "is left out by FunctionGemma's template, so the model never sees it",
        f"{BFCL}:6: row 6 (id 'multiple_195'): tools[1] (get_team_rank): property 'parameters.properties.type' "
        "is left out by FunctionGemma's template, so the model never sees it",
    )


def test_a_mobile_actions_row_keeps_its_dated_developer_message_as_system_text():
    (suite,) = load_suites(MOBILE_ROW)
    (case,) = suite.cases
    published = json.loads(MOBILE_ROW.read_text())
    assert suite.system == published["messages"][0]["content"] and suite.system.startswith("Current date and time")
    assert [tool.name for tool in suite.tools] == [tool["function"]["name"] for tool in published["tools"]]
    assert case.id == "line-1" and case.expect == {"create_calendar_event"}
    assert case.reference_calls == (Call("create_calendar_event", {"title": "Q4 Planning Meeting", "datetime": "2024-10-24T14:00:00"}),)
    assert case.prompt == published["messages"][1]["content"] and case.conversation == ()


def test_rows_with_the_same_tools_and_system_text_share_a_suite(tmp_path):
    path = write(tmp_path / "data.jsonl", [
        row(USER, CALLS_WEATHER, id="a"),
        row({"role": "user", "content": "Price of ACME?"}, {"role": "assistant", "tool_calls": [call("get_stock_price", ticker="ACME")]}),
        row({"role": "system", "content": "Be brief."}, USER, CALLS_WEATHER, id="c"),
    ])
    suites = load_suites(path)
    assert [(suite.system, [case.id for case in suite.cases]) for suite in suites] == [(None, ["a", "line-2"]), ("Be brief.", ["c"])]


def test_train_rows_are_training_examples_and_a_multi_turn_row_keeps_its_conversation(tmp_path):
    follow_up = {"role": "user", "content": "And the price of ACME?"}
    path = write(tmp_path / "data.jsonl", [
        row(USER, CALLS_WEATHER, metadata="train"),
        row(USER, CALLS_WEATHER, RESPONSE, follow_up, {"role": "assistant", "tool_calls": [call("get_stock_price", ticker="ACME")]},
            split="train"),
        row({"role": "user", "content": "Tell me a joke"}, {"role": "assistant", "content": "Why did the..."}, metadata="train"),
        row(USER, CALLS_WEATHER, RESPONSE, {"role": "assistant", "content": "It is 21 degrees."}, id="after-response"),
    ])
    (suite,) = load_suites(path)
    simple, multi, text = suite.train
    assert simple.prompt == USER["content"] and simple.calls == (Call("get_weather", {"city": "Paris"}),) and simple.conversation == ()
    assert multi.prompt == follow_up["content"] and multi.calls == (Call("get_stock_price", {"ticker": "ACME"}),)
    assert [m["role"] for m in multi.conversation] == ["user", "assistant", "tool", "user"]
    assert text.calls == () and text.answer == "Why did the..."
    assert suite.train_lines == (1, 2, 3)
    (case,) = suite.cases
    assert case.id == "after-response" and case.expect == frozenset() and case.reference_calls == ()
    assert case.prompt == USER["content"] and [m["role"] for m in case.conversation] == ["user", "assistant", "tool"]


def test_every_bad_row_is_reported_with_its_line(tmp_path):
    path = write(tmp_path / "data.jsonl", [
        row(USER, CALLS_WEATHER, id="fine"),
        "{not json",
        row(USER, CALLS_WEATHER, metdata="train"),
        row(USER),
        row(USER, {"role": "assistant", "tool_calls": [call("get_wether", city="Paris")]}),
        row(USER, {"role": "assistant", "tool_calls": [call("get_weather", town="Paris")]}),
        row(USER, CALLS_WEATHER, id="fine"),
        {"messages": [USER, CALLS_WEATHER]},
        row({"role": "system", "content": "Be brief."}, {"role": "robot", "content": "hi"}, CALLS_WEATHER),
        row(USER, CALLS_WEATHER, tools=[{"name": "f", "parameters": {"properties": {}}}]),
    ])
    with pytest.raises(CaseFileError) as raised:
        load_suites(path)
    assert str(raised.value).splitlines() == [
        f"{path}:2: row 2: not valid JSON (Expecting property name enclosed in double quotes at column 2)",
        f"{path}:3: row 3: unknown key 'metdata'; did you mean 'metadata'?",
        f"{path}:4: row 4: field 'messages' must list the conversation and the assistant's answer",
        f"{path}:5: row 5: field 'messages[1].tool_calls[0].name': 'get_wether' is not a declared tool "
        "(declared: get_weather, get_stock_price)",
        f"{path}:6: row 6: field 'messages[1].tool_calls[0].arguments': tool 'get_weather' declares no argument "
        "'town' (declared: city)",
        f"{path}:7: row 7 (id 'fine'): field 'id': duplicate id 'fine' (also row 1)",
        f"{path}:8: row 8: field 'tools' is missing: every row declares the tools it may call",
        f"{path}:9: row 9: messages[1].role must be one of user, assistant, tool, got 'robot'",
        f"{path}:10: row 10: tools[0] (f): field 'parameters.type' is missing; write 'type: object' (FunctionGemma's "
        "template renders parameters without a type malformed)",
    ]


@pytest.mark.parametrize(
    ("first_row", "ours"),
    [
        ({"messages": [USER, CALLS_WEATHER], "tools": TOOLS}, True),
        ({"id": "x", "messages": [USER, CALLS_WEATHER], "tools": TOOLS, "metadata": "eval"}, True),
        ({"messages": [USER], "tools": TOOLS, "expected": "<bos>...", "name": "golden"}, False),  # golden renderings
        ({"event": "log line"}, False),
        ("not json at all", False),
    ],
    ids=["hf-row", "hf-row-with-id-and-split", "other-keys", "other-jsonl", "not-json"],
)
def test_which_jsonl_files_are_case_files(tmp_path, first_row, ours):
    path = write(tmp_path / "data.jsonl", [first_row])
    assert is_case_file(path) is ours
    assert not is_case_file(write(tmp_path / "data.json", [first_row]))


def test_the_golden_renderings_beside_are_not_case_files():
    assert not is_case_file(DATA / "format-goldens.jsonl")
    assert is_case_file(BFCL) and is_case_file(MOBILE_ROW)
