"""Case files: every broken file is one clear collection error, never a traceback.

Each bad input is its own test, run the way users run the plugin (a pytester session), and each
checks that the error names the file, the line YAML gives, the entry (`cases[1]`, `(id 'x')`) and
the field. Brackets are character classes to fnmatch, so the output is searched with `in`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import TOOLS_YAML, case_file
from pytest_toolsel.cases.suite import CaseFileError, Tool, normalise_prompt
from pytest_toolsel.cases.yaml_source import MAX_FILE_BYTES, load_suite, looks_like_case_file

FILE = "policy.yaml"
GOOD_CASE = "- prompt: What is the weather in Paris?\n  expect: get_weather\n"
# One tool `t` with a single string argument `q`, for files that are all about the tool declarations.
TOOL_T = "tools:\n  - name: t\n    parameters:\n      type: object\n      properties:\n        q: {type: string}\n"
CASES_T = "cases:\n  - prompt: hi\n    expect: t\n"
TRAIN_T = "train:\n  - prompt: look up cats\n    call: t\n    args: {q: cats}\n"


@dataclass(frozen=True)
class Bad:
    content: str | bytes
    message: str  # the distinctive words of the explanation
    where: str | None = None  # the entry the error must name, e.g. "cases[1] (id 'x')"
    field: str | None = None  # the field the error must name, e.g. "expect" -> "field 'expect'"
    at: str | bytes | None = None  # text on the line the error must point at; None: no line to give


def line_of(content: str | bytes, needle: str | bytes) -> int:
    """The 1-based number of the first line containing `needle`."""
    lines = content.splitlines()
    return next(number for number, line in enumerate(lines, 1) if needle in line)


BAD = {
    "yaml-syntax-error": Bad(
        case_file(GOOD_CASE + "- prompt: What: is this\n  expect: none\n"),
        "YAML syntax error: mapping values are not allowed",  # "here" or "in this context" (libyaml)
        at="What: is this",
    ),
    "cases-is-a-scalar": Bad(
        TOOLS_YAML + "cases: hello\n", "'cases' must be a list", where="cases", at="cases: hello"
    ),
    "cases-is-null": Bad(TOOLS_YAML + "cases:\n", "'cases' must be a list", where="cases", at="cases:"),
    # Collection only picks files with a line starting `cases:`, so a non-mapping document must
    # carry one: inside a flow sequence, or inside a multi-line quoted string.
    "document-is-a-list": Bad(
        "[\ncases: x\n]\n", "must be a mapping with 'tools' and 'cases' (or 'train'); this one is a list", at="["
    ),
    "document-is-a-string": Bad(
        '"a document that is a string\ncases: inside the string"\n',
        "must be a mapping with 'tools' and 'cases' (or 'train'); this one is a str",
        at='"a document',
    ),
    "two-documents": Bad(
        TOOLS_YAML + "---\n" + CASES_T, "YAML syntax error: but found another document", at="---"
    ),
    "missing-tools": Bad(CASES_T, "missing required key 'tools'", where="top level", at="cases:"),
    "empty-tools": Bad("tools: []\n" + CASES_T, "'tools' must declare at least one tool", where="tools", at="tools:"),
    "empty-cases": Bad(TOOLS_YAML + "cases: []\n", "'cases' is empty", where="cases", at="cases: []"),
    "neither-cases-nor-training-examples": Bad(
        TOOL_T + "train: []\ncases: []\n", "'cases' is empty: add at least one held-out prompt (or training examples",
        where="cases", at="cases: []",
    ),
    "training-only-file-with-a-bar": Bad(
        TOOL_T + TRAIN_T + "min_accuracy: 0.9\n", "'min_accuracy' needs held-out 'cases' to count",
        where="min_accuracy", at="min_accuracy: 0.9",
    ),
    "bad-example-in-a-training-only-file": Bad(
        TOOL_T + TRAIN_T + "  - prompt: and dogs\n    call: u\n", "'u' is not a declared tool",
        where="train[1]", field="call", at="call: u",
    ),
    "tool-without-name": Bad(
        "tools:\n  - description: no name here\n    parameters: {type: object}\n" + CASES_T,
        "a tool needs a name",
        where="tools[0]",
        field="name",
        at="no name here",
    ),
    "tool-name-with-spaces": Bad(
        "tools:\n  - name: get weather\n" + CASES_T, "(got 'get weather')", where="tools[0]", field="name", at="get weather"
    ),
    "invalid-json-schema-type": Bad(
        TOOL_T.replace("q: {type: string}", "q: {type: str}") + CASES_T,
        "'str' is not a JSON-schema type",
        where="tools[0] (t)",
        field="parameters.properties.q.type",
        at="type: str}",
    ),
    "parameters-not-an-object": Bad(
        "tools:\n  - name: t\n    parameters: {type: string}\n" + CASES_T,
        "the top-level type must be 'object'",
        where="tools[0] (t)",
        field="parameters",
        at="parameters:",
    ),
    "parameters-without-a-type": Bad(
        "tools:\n  - name: t\n    parameters:\n      properties: {q: {type: string}}\n" + CASES_T,
        "'parameters.type' is missing; write 'type: object'",
        where="tools[0] (t)",
        field="parameters.type",
        at="properties: {q",
    ),
    "property-that-functiongemma-cannot-declare": Bad(
        TOOL_T.replace("q: {type: string}", "type: {type: string}") + CASES_T,
        "leaves out a property named 'type', so the model would never see it; rename it",
        where="tools[0] (t)",
        field="parameters.properties.type",
        at="type: {type: string}",
    ),
    "unknown-upper-case-type": Bad(
        TOOL_T.replace("q: {type: string}", "q: {type: STR}") + CASES_T,
        "'STR' is not a JSON-schema type",
        where="tools[0] (t)",
        field="parameters.properties.q.type",
        at="type: STR}",
    ),
    "required-names-a-missing-property": Bad(
        TOOL_T + "      required: [query]\n" + CASES_T,
        "'query' is not among the properties",
        where="tools[0] (t)",
        field="parameters.required",
        at="required: [query]",
    ),
    "duplicate-tool-names": Bad(
        TOOL_T + "  - name: t  # again\n" + CASES_T,
        "duplicate tool name 't'",
        where="tools[1]",
        at="# again",
    ),
    "wrapped-tool-of-another-type": Bad(
        "tools:\n  - type: retrieval\n    function: {name: t}\n" + CASES_T,
        "expected 'function', got 'retrieval'",
        where="tools[0]",
        field="type",
        at="type: retrieval",
    ),
    "expect-names-an-undeclared-tool": Bad(
        case_file(GOOD_CASE + "- prompt: What time is it?\n  expect: get_time\n"),
        "'get_time' is not a declared tool (declared: get_weather, get_stock_price)",
        where="cases[1]",
        field="expect",
        at="expect: get_time",
    ),
    "expect-is-missing": Bad(
        case_file(GOOD_CASE + "- prompt: What time is it?\n"),
        "is missing (a tool name, a list of names, or none)",
        where="cases[1]",
        field="expect",
        at="What time is it?",
    ),
    "expect-is-an-empty-list": Bad(
        case_file(GOOD_CASE + "- prompt: What time is it?\n  expect: []\n"),
        "an empty list; write 'none' to expect no call",
        where="cases[1]",
        field="expect",
        at="expect: []",
    ),
    "missing-prompt": Bad(
        case_file(GOOD_CASE + "- expect: get_weather\n  id: no-prompt\n"),
        "field 'prompt' is missing",
        where="cases[1] (id 'no-prompt')",
        field="prompt",
        at="- expect: get_weather",
    ),
    "empty-prompt": Bad(
        case_file(GOOD_CASE + "- prompt: '   '\n  expect: get_weather\n"),
        "must be a non-empty string",
        where="cases[1]",
        field="prompt",
        at="prompt: '   '",
    ),
    "case-is-not-a-mapping": Bad(
        case_file(GOOD_CASE + "- What time is it?\n"),
        "a case must be a mapping with 'prompt' and 'expect'",
        where="cases[1]",
        at="- What time is it?",
    ),
    "duplicate-case-ids": Bad(
        case_file("- prompt: a\n  id: same\n  expect: none\n- prompt: b\n  id: same  # again\n  expect: none\n"),
        "duplicate id 'same' (also cases[0])",
        where="cases[1] (id 'same')",
        field="id",
        at="# again",
    ),
    "invalid-case-id": Bad(
        case_file("- prompt: a\n  id: has space\n  expect: none\n"),
        "'has space' must start with a letter or digit",
        where="cases[0]",
        field="id",
        at="id: has space",
    ),
    "unknown-key-typo": Bad(
        case_file(GOOD_CASE + "- prompt: What time is it?\n  id: typo\n  expcet: none\n"),
        "unknown key 'expcet'; did you mean 'expect'?",
        where="cases[1] (id 'typo')",
        at="expcet",
    ),
    "unknown-top-level-key": Bad(
        case_file(GOOD_CASE, extra="tarin: []\n"),
        "unknown key 'tarin'; did you mean 'train'?",
        where="top level",
        at="tarin",
    ),
    "args-check-on-undeclared-argument": Bad(
        case_file(GOOD_CASE + "- prompt: Weather in Paris?\n  expect: get_weather\n  args: {town: Paris}\n"),
        "tool 'get_weather' declares no argument 'town' (declared: city)",
        where="cases[1]",
        field="args",
        at="town: Paris",
    ),
    "args-check-with-invalid-regex": Bad(
        case_file(GOOD_CASE + "- prompt: Weather in Paris?\n  expect: get_weather\n  args: {city: {regex: '(Par'}}\n"),
        "invalid pattern (missing ), unterminated subpattern",
        where="cases[1]",
        field="args.city.regex",
        at="regex:",
    ),
    "args-check-when-no-call-is-expected": Bad(
        case_file(GOOD_CASE + "- prompt: Tell me a joke\n  expect: none\n  args: {city: Paris}\n"),
        "the case expects no call, so there are no arguments to check",
        where="cases[1]",
        field="args",
        at="args:",
    ),
    "xfail-not-a-reason": Bad(
        case_file(GOOD_CASE + "- prompt: Tell me a joke\n  expect: none\n  xfail: 3\n"),
        "must be a reason (string) or true",
        where="cases[1]",
        field="xfail",
        at="xfail: 3",
    ),
    "min-accuracy-out-of-range": Bad(
        case_file(GOOD_CASE, extra="min_accuracy: 90\n"),
        "'min_accuracy' must be a number between 0 and 1",
        where="min_accuracy",
        at="min_accuracy: 90",
    ),
    "train-calls-an-undeclared-tool": Bad(
        case_file(GOOD_CASE, extra="train:\n  - prompt: What time is it?\n    call: get_time\n"),
        "'get_time' is not a declared tool",
        where="train[0]",
        field="call",
        at="call: get_time",
    ),
    "train-misses-a-required-argument": Bad(
        case_file(GOOD_CASE, extra="train:\n  - prompt: Weather in Oslo?\n    call: get_weather\n    args: {}\n"),
        "tool 'get_weather' requires city",
        where="train[0]",
        field="args",
        at="args: {}",
    ),
    "train-parallel-call-misses-a-required-argument": Bad(
        case_file(
            GOOD_CASE,
            extra="train:\n  - prompt: Oslo and ACME?\n    call:\n      - {name: get_weather, args: {city: Oslo}}\n"
            "      - {name: get_stock_price, args: {}}\n",
        ),
        "tool 'get_stock_price' requires ticker",
        where="train[0]",
        field="args",
        at="{name: get_stock_price",
    ),
    "train-without-call-or-answer": Bad(
        case_file(GOOD_CASE, extra="train:\n  - prompt: Tell me a joke\n    call: none\n"),
        "an example that calls no tool needs the text answer",
        where="train[0]",
        field="answer",
        at="Tell me a joke",
    ),
    "non-utf8-bytes": Bad(
        case_file(GOOD_CASE).encode() + b"  - prompt: caf\xe9 au lait?\n    expect: none\n",
        "not valid UTF-8 (byte 0xe9",
        at=b"caf\xe9",
    ),
    "huge-file": Bad(
        b"cases:\n" + b"#" * MAX_FILE_BYTES,
        "bytes; case files are limited to 5,242,880 bytes (5 MiB)",
    ),
    # `messages:`: the conversation before the prompt (or ending with a tool's response, without one).
    "messages-bad-role": Bad(
        case_file("- messages:\n    - {role: robot, content: hi}\n  prompt: Weather in Oslo?\n  expect: get_weather\n"),
        "messages[0].role must be one of user, assistant, tool, got 'robot'",
        where="cases[0]",
        at="role: robot",
    ),
    "messages-call-undeclared-tool": Bad(
        case_file("- messages:\n    - {role: user, content: Weather in Oslo?}\n"
                  "    - role: assistant\n      tool_calls: [{function: {name: get_wether, arguments: {city: Oslo}}}]\n"
                  "    - {role: tool, name: get_weather, content: {temperature: 3}}\n  expect: none\n"),
        "'get_wether' is not a declared tool",
        where="cases[0]",
        field="messages[1].tool_calls[0].name",
        at="get_wether",
    ),
    "messages-no-prompt-and-no-response": Bad(
        case_file("- messages:\n    - {role: user, content: Weather in Oslo?}\n  expect: get_weather\n"),
        "field 'prompt' is missing: give the user's prompt, or end 'messages' with a tool's response",
        where="cases[0]",
        at="- messages:",
    ),
    "train-messages-not-a-list": Bad(
        case_file(GOOD_CASE, extra="train:\n  - messages: hello\n    prompt: Weather in Oslo?\n    call: get_weather\n"
                  "    args: {city: Oslo}\n"),
        "field 'messages' must be a non-empty list of messages",
        where="train[0]",
        at="messages: hello",
    ),
}


def run(pytester, checkpoint, *args):
    return pytester.runpytest("-p", "no:cacheprovider", "--model", str(checkpoint), "--no-baseline", *args)


def write(pytester, name: str, content: str | bytes) -> Path:
    path = pytester.path.joinpath(name)
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return path


def error_sections(output: str) -> dict[str, list[str]]:
    """The body of each `ERROR collecting NAME` section, by the name of the file."""
    sections: dict[str, list[str]] = {}
    body: list[str] = []
    for line in output.splitlines():
        if "ERROR collecting " in line:
            body = sections.setdefault(line.split("ERROR collecting ")[1].strip(" _").rsplit("/", 1)[-1], [])
        elif line.startswith("=") or line.startswith("_"):
            body = []
        else:
            body.append(line)
    return sections


def assert_one_clear_error(output: str, bad: Bad, file: str = FILE) -> None:
    """One error section for `file`, holding one line: the message, no traceback or exception repr."""
    assert "Traceback" not in output
    sections = error_sections(output)
    assert list(sections) == [file], output
    body = sections[file]
    assert len(body) == 1, "\n".join(body)
    message = body[0]
    line = line_of(bad.content, bad.at) if bad.at else None
    location = f"{file}:{line}: " if line else f"{file}: "
    assert location in message
    if bad.where:
        assert f"{location}{bad.where}: " in message
    if bad.field:
        assert f"field '{bad.field}" in message
    assert bad.message in message


@pytest.mark.parametrize("bad", [pytest.param(bad, id=name) for name, bad in BAD.items()])
def test_bad_case_file_is_one_clear_collection_error(pytester, tiny_checkpoint, bad: Bad):
    write(pytester, FILE, bad.content)
    result = run(pytester, tiny_checkpoint)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    assert_one_clear_error(result.stdout.str(), bad)
    result.stdout.fnmatch_lines(["*Interrupted: 1 error during collection*"])


# Schemas that once escaped CaseFileError as a TypeError / RecursionError.
UNHASHABLE_TYPE = Bad(
    TOOL_T.replace("q: {type: string}", "q: {type: {name: string}}") + CASES_T,
    "is not a JSON-schema type",
    where="tools[0] (t)",
    field="parameters.properties.q.type",
    at="q: {type:",
)
RECURSIVE_SCHEMA = "tools:\n  - name: t\n    parameters: &schema\n      type: object\n      properties:\n        q: *schema\n"


def test_schema_type_that_is_a_mapping_is_an_error_not_a_crash(pytester, tiny_checkpoint):
    write(pytester, FILE, UNHASHABLE_TYPE.content)
    result = run(pytester, tiny_checkpoint)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    assert_one_clear_error(result.stdout.str(), UNHASHABLE_TYPE)


def test_recursive_schema_is_an_error_not_a_crash(pytester, tiny_checkpoint):
    write(pytester, FILE, RECURSIVE_SCHEMA + CASES_T)
    result = run(pytester, tiny_checkpoint)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    sections = error_sections(result.stdout.str())
    assert len(sections[FILE]) == 1, "\n".join(sections[FILE])
    assert f"{FILE}:3: tools[0] (t): " in sections[FILE][0] and "nested deeper than" in sections[FILE][0]


def test_yaml_without_a_cases_key_is_not_collected(pytester, tiny_checkpoint):
    # By design a YAML file is a case file only when a line starts with `cases:`; so a misspelt
    # `case:` is not an error but an empty session, which pytest reports as such.
    write(pytester, FILE, case_file(GOOD_CASE).replace("cases:", "case:"))
    result = run(pytester, tiny_checkpoint)
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED
    assert "error" not in result.stdout.str().lower()


BROKEN = Bad(
    case_file(GOOD_CASE + "- prompt: What time is it?\n  expect: get_time\n"),
    "'get_time' is not a declared tool",
    where="cases[1]",
    field="expect",
    at="expect: get_time",
)


def test_broken_file_next_to_a_valid_one(pytester, tiny_checkpoint):
    write(pytester, "broken.yaml", BROKEN.content)
    write(pytester, "valid.yaml", case_file(GOOD_CASE + "- prompt: How much is ACME stock?\n  expect: get_stock_price\n"))

    result = run(pytester, tiny_checkpoint)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    assert_one_clear_error(result.stdout.str(), BROKEN, file="broken.yaml")  # the valid file is not blamed
    result.stdout.fnmatch_lines(["*Interrupted: 1 error during collection*"])
    result.assert_outcomes(errors=1)

    result = run(pytester, tiny_checkpoint, "--continue-on-collection-errors", "-v")
    assert_one_clear_error(result.stdout.str(), BROKEN, file="broken.yaml")
    result.stdout.fnmatch_lines(
        ["*valid.yaml::what-is-the-weather-in-paris PASSED*", "*valid.yaml::how-much-is-acme-stock PASSED*"]
    )
    result.assert_outcomes(passed=2, errors=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED  # the collection error still fails the session


# load_suite, directly ------------------------------------------------------------------------------


def load(tmp_path: Path, text: str):
    path = tmp_path / "suite.yaml"
    path.write_text(text, encoding="utf-8")
    return load_suite(path)


def test_derived_ids_are_unique(tmp_path):
    suite = load(
        tmp_path,
        case_file(
            "- prompt: What is the weather in Paris?\n  expect: get_weather\n"
            "- prompt: What is the weather in Paris?\n  expect: get_weather\n"
            "- prompt: what is the WEATHER in paris\n  expect: get_weather\n"
        ),
    )
    assert [case.id for case in suite.cases] == [
        "what-is-the-weather-in-paris",
        "what-is-the-weather-in-paris-2",
        "what-is-the-weather-in-paris-3",
    ]


def test_explicit_ids_are_kept_and_derived_ids_avoid_them(tmp_path):
    suite = load(
        tmp_path,
        case_file(
            "- prompt: Tell me a joke\n  expect: none\n"
            "- prompt: Something else\n  id: tell-me-a-joke-2\n  expect: none\n"
            "- prompt: Tell me a joke\n  expect: none\n"
            "- prompt: Paris?\n  id: Paris.weather_1\n  expect: get_weather\n"
        ),
    )
    assert [case.id for case in suite.cases] == ["tell-me-a-joke", "tell-me-a-joke-2", "tell-me-a-joke-3", "Paris.weather_1"]
    assert [case.index for case in suite.cases] == [0, 1, 2, 3]



def test_derived_id_that_equals_an_explicit_id_is_renamed(tmp_path):
    suite = load(tmp_path, case_file("- prompt: Unrelated\n  id: hello\n  expect: none\n- prompt: Hello\n  expect: none\n"))
    assert [case.id for case in suite.cases] == ["hello", "hello-2"]


@pytest.mark.parametrize("expect", ["none", "'none'", "null", "~"])
def test_expect_none_is_the_empty_set(tmp_path, expect):
    suite = load(tmp_path, case_file(f"- prompt: Tell me a joke\n  expect: {expect}\n"))
    assert suite.cases[0].expect == frozenset()
    assert suite.cases[0].expect_label == "none"


def test_expect_list_for_parallel_calls(tmp_path):
    suite = load(
        tmp_path,
        case_file(
            "- prompt: Rome and ACME?\n  expect: [get_weather, get_stock_price]\n"
            "  args: {get_weather: {city: Rome}, get_stock_price: {ticker: {contains: acm}}}\n"
        ),
    )
    (case,) = suite.cases
    assert case.expect == frozenset({"get_weather", "get_stock_price"})
    assert case.expect_label == "get_stock_price, get_weather"
    assert {(check.tool, check.argument, check.operator, check.expected) for check in case.arg_checks} == {
        ("get_weather", "city", "equals", "Rome"),
        ("get_stock_price", "ticker", "contains", "acm"),
    }


def test_line_of_each_case_is_recorded(tmp_path):
    text = case_file("- prompt: a\n  expect: none\n- prompt: b\n  expect: none\n")
    suite = load(tmp_path, text)
    assert [case.line for case in suite.cases] == [line_of(text, "prompt: a"), line_of(text, "prompt: b")]


def test_openai_function_tool_form_is_accepted(tmp_path):
    wrapped = """\
tools:
  - type: function
    function:
      name: get_weather
      description: Current weather for a city.
      parameters:
        type: object
        properties:
          city: {type: string, description: city name}
        required: [city]
  - name: get_stock_price
    description: Latest stock price for a ticker.
    parameters:
      type: object
      properties:
        ticker: {type: string, description: ticker symbol}
      required: [ticker]
"""
    cases = "- prompt: Weather in Paris?\n  expect: get_weather\n  args: {city: Paris}\n"
    suite = load(tmp_path, case_file(cases, tools=wrapped))
    plain = load_suite(write_text(tmp_path / "plain.yaml", case_file(cases)))
    assert suite.tools == plain.tools
    assert suite.tools[0] == Tool(
        "get_weather",
        "Current weather for a city.",
        {"type": "object", "properties": {"city": {"type": "string", "description": "city name"}}, "required": ["city"]},
    )
    assert suite.tool_schemas[0]["type"] == "function"
    assert suite.tool_schemas[0]["function"]["name"] == "get_weather"


def write_text(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_load_suite_raises_case_file_error_with_parts(tmp_path):
    text = case_file("- prompt: a\n  id: x\n  expect: get_time\n")
    with pytest.raises(CaseFileError) as caught:
        load(tmp_path, text)
    error = caught.value
    assert error.path == tmp_path / "suite.yaml"
    assert error.where == "cases[0] (id 'x')"
    assert error.line == line_of(text, "expect: get_time")
    assert "field 'expect'" in error.message


def test_shipped_search_policy_loads():
    path = Path(__file__).resolve().parents[2] / "cases" / "search_policy.yaml"
    suite = load_suite(path)
    assert suite.policy == "internal-vs-public-search"
    assert suite.tool_names == ("search_knowledge_base", "search_google")
    # The tutorial's 20 training records come first (hand-written examples may follow them) ...
    assert len(suite.train) >= 20
    assert suite.train[0].prompt == "What is the reimbursement limit for travel meals?"
    assert suite.train[19].prompt == "Convert 100 USD to JPY."
    assert all(len(example.calls) == 1 for example in suite.train)
    # ... and its 20 held-out prompts are the cases, none of them also a training prompt.
    assert len(suite.cases) == 20
    assert suite.cases[0].prompt == "How do I access my paystubs on the ADP portal?"
    assert {case.expect for case in suite.cases} == {frozenset({"search_knowledge_base"}), frozenset({"search_google"})}
    assert len({case.id for case in suite.cases}) == 20
    trained = {normalise_prompt(example.prompt) for example in suite.train}
    assert not [case.prompt for case in suite.cases if normalise_prompt(case.prompt) in trained]


MOBILE_ACTIONS_TOOLS = Path(__file__).resolve().parents[1] / "data" / "mobile_actions_tools.json"


def test_google_mobile_actions_schemas_collect_and_render_as_published(tmp_path):
    """Google's seven schemas, upper-case types and all, pasted into a case file as they are (YAML
    reads JSON): they load, and each declares what FunctionGemma's template makes of the schema."""
    import json

    from pytest_toolsel.functiongemma.chat_format import prompt_messages, render

    published = json.loads(MOBILE_ACTIONS_TOOLS.read_text())
    path = tmp_path / "mobile.yaml"
    path.write_text(
        "tools: " + json.dumps(published) + "\n"
        "train:\n  - prompt: Turn the torch on please\n    call: turn_on_flashlight\n"
        "  - prompt: Email ana@example.com about lunch\n    call: send_email\n"
        "    args: {to: ana@example.com, subject: Lunch}\n"
        "cases:\n  - prompt: Flashlight off\n    expect: turn_off_flashlight\n"
    )
    suite = load_suite(path)
    assert suite.tool_names == tuple(tool["function"]["name"] for tool in published)
    assert render(prompt_messages("hi"), suite.tool_schemas, add_generation_prompt=True) == render(
        prompt_messages("hi"), published, add_generation_prompt=True
    )
    text = render(prompt_messages("hi"), suite.tool_schemas, add_generation_prompt=True)
    assert "declaration:turn_on_flashlight{description:<escape>" in text
    assert "parameters:{type:<escape>OBJECT<escape>}}<end_function_declaration>" in text  # "properties": {}
    assert ",type:<escape>STRING<escape>}" in text and "OBJECT" in text and "<escape>object<escape>" not in text


def test_upper_and_lower_case_types_render_the_same(tmp_path):
    lower = tmp_path / "lower.yaml"
    lower.write_text(TOOL_T + CASES_T)
    upper = tmp_path / "upper.yaml"
    upper.write_text(TOOL_T.replace("object", "OBJECT").replace("string", "STRING") + CASES_T)
    from pytest_toolsel.functiongemma.chat_format import prompt_messages, render

    rendered = [render(prompt_messages("hi"), load_suite(p).tool_schemas, add_generation_prompt=True) for p in (lower, upper)]
    assert rendered[0] == rendered[1]


def test_shipped_mobile_actions_policy_is_googles_tools_with_our_own_examples():
    import json
    from datetime import datetime

    suite = load_suite(Path(__file__).resolve().parents[2] / "cases" / "mobile_actions.yaml")
    published = json.loads(MOBILE_ACTIONS_TOOLS.read_text())
    assert suite.tool_schemas == [{"type": "function", **tool} for tool in published]
    # The developer message carries a current date and weekday, as Google's rows do.
    first_line, weekday_line = suite.system.splitlines()[:2]
    now = datetime.fromisoformat(first_line.rsplit(": ", 1)[1])
    assert weekday_line == f"Day of week is {now:%A}"
    assert suite.system.rstrip().endswith("You are a model that can do function calling with the following functions")
    trained = {example.calls[0].name if example.calls else "none" for example in suite.train}
    tested = {case.expect_label for case in suite.cases}
    assert trained == tested == set(suite.tool_names) | {"none"}
    assert not {normalise_prompt(e.prompt) for e in suite.train} & {normalise_prompt(c.prompt) for c in suite.cases}
    for example in suite.train:
        for call in example.calls:
            if "datetime" in call.args:  # resolved against the message's date, never before it
                assert datetime.fromisoformat(call.args["datetime"]) > now, example.prompt
    for case in suite.cases:
        for check in case.arg_checks:
            if check.argument == "datetime":
                assert check.operator == "equals" and datetime.fromisoformat(check.expected) > now
    assert suite.min_accuracy == 0.95


def test_cases_and_examples_carry_the_conversation_before_their_prompt(tmp_path):
    history = (
        "  - messages:\n"
        "      - {role: user, content: Weather in Oslo?}\n"
        "      - role: assistant\n        tool_calls: [{function: {name: get_weather, arguments: {city: Oslo}}}]\n"
        "      - {role: tool, name: get_weather, content: {temperature: 3}}\n"
    )
    path = tmp_path / "policy.yaml"
    path.write_text(case_file(
        history + "    prompt: And the price of ACME?\n    expect: get_stock_price\n"
        + history + "    expect: none\n    id: after-response\n",
        extra="train:\n" + history + "    call: none\n    answer: It is 3 degrees in Oslo.\n",
    ))
    suite = load_suite(path)
    follow_up, after_response = suite.cases
    calls = [{"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Oslo"}}}]
    turns = [{"role": "user", "content": "Weather in Oslo?"}, {"role": "assistant", "tool_calls": calls},
             {"role": "tool", "name": "get_weather", "content": {"temperature": 3}}]
    assert follow_up.prompt == "And the price of ACME?"
    assert list(follow_up.conversation) == [*turns, {"role": "user", "content": "And the price of ACME?"}]
    assert after_response.prompt == "Weather in Oslo?" and list(after_response.conversation) == turns
    (example,) = suite.train
    assert example.prompt == "Weather in Oslo?" and list(example.conversation) == turns and example.answer


@pytest.mark.parametrize("cases", ["", "cases: []\n"], ids=["no-cases-key", "empty-cases"])
def test_a_file_of_training_examples_only_is_a_case_file_without_cases(tmp_path, cases):
    text = TOOL_T + TRAIN_T + cases
    suite = load(tmp_path, text)
    assert suite.cases == () and [example.prompt for example in suite.train] == ["look up cats"]
    assert suite.train_lines == (line_of(text, "look up cats"),)
    assert looks_like_case_file(tmp_path / "suite.yaml")


def test_other_yaml_with_a_train_key_is_not_a_case_file(tmp_path):
    """`train:` alone is common in other tools' YAML (configs of trainers); only with `tools:` is it ours."""
    config = tmp_path / "config.yaml"
    config.write_text("model: gemma\ntrain:\n  epochs: 3\n", encoding="utf-8")
    assert not looks_like_case_file(config)
