"""judge(): the tool choice is the verdict; schema problems and exact calls are reported beside it."""

from __future__ import annotations

import pytest

from conftest import TOOLS_YAML, case_file
from pytest_toolsel.cases.yaml_source import load_suite
from pytest_toolsel.functiongemma.chat_format import END_CALL, START_CALL
from pytest_toolsel.functiongemma.parsing import parse_output
from pytest_toolsel.verdicts.judge import expected_calls, judge

EXTRA_TOOL = """\
  - name: get_time
    parameters: {type: object, properties: {}}
  - name: book_table
    parameters:
      type: object
      properties:
        guests: {type: integer}
        place: {type: string}
      required: [guests]
"""
TOOLS_WITH_EXTRA = TOOLS_YAML + EXTRA_TOOL


def answer(*bodies: str) -> str:
    return "".join(f"{START_CALL}call:{body}{END_CALL}" for body in bodies)


@pytest.fixture
def suite(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text(
        case_file(
            """\
            - {id: exact-weather, prompt: Weather in Paris?, expect: get_weather, args: {city: Paris}}
            - {id: contains-weather, prompt: Weather in Rome?, expect: get_weather, args: {city: {contains: rom}}}
            - {id: no-args, prompt: Weather in Oslo?, expect: get_weather}
            - id: both-exact
              prompt: Weather in Rome and the price of ACME?
              expect: [get_weather, get_stock_price]
              args: {get_weather: {city: Rome}, get_stock_price: {ticker: ACME}}
            - id: both-half-given
              prompt: Weather in Rome and the price of GLOBEX?
              expect: [get_weather, get_stock_price]
              args: {get_weather: {city: Rome}}
            - id: time-and-weather
              prompt: Time and weather in Lima?
              expect: [get_time, get_weather]
              args: {get_weather: {city: Lima}}
            - {id: table, prompt: A table for three, expect: book_table, args: {guests: 3}}
            - {id: joke, prompt: Tell me a joke, expect: none}
            """,
            tools=TOOLS_WITH_EXTRA,
        )
    )
    return load_suite(path)


def verdict(suite, case_id, text):
    case = next(case for case in suite.cases if case.id == case_id)
    return judge(case, parse_output(text), suite.tools)


def test_expected_calls_only_where_the_case_spells_out_every_argument(suite):
    given = {case.id: expected_calls(case, suite.tools) for case in suite.cases}
    assert given == {
        "exact-weather": [("get_weather", {"city": "Paris"})],
        "contains-weather": None,  # a substring does not say what the call is
        "no-args": None,  # get_weather takes a city, which the case leaves open
        "both-exact": [("get_stock_price", {"ticker": "ACME"}), ("get_weather", {"city": "Rome"})],
        "both-half-given": None,  # get_stock_price's ticker is left open
        "time-and-weather": [("get_time", {}), ("get_weather", {"city": "Lima"})],  # get_time takes no arguments
        "table": [("book_table", {"guests": 3})],
        "joke": [],  # no call expected: the empty call list is the exact answer
    }


@pytest.mark.parametrize(
    ("case_id", "text", "exact"),
    [
        ("exact-weather", answer("get_weather{city:<escape>Paris<escape>}"), True),
        ("exact-weather", answer("get_weather{city:<escape>paris<escape>}"), False),
        # An extra argument, even one the tool would not read, is not the expected call.
        ("exact-weather", answer("get_weather{city:<escape>Paris<escape>,units:<escape>c<escape>}"), False),
        ("exact-weather", answer("get_weather{city:<escape>Paris<escape>}", "get_weather{city:<escape>Paris<escape>}"), False),
        ("both-exact", answer("get_weather{city:<escape>Rome<escape>}", "get_stock_price{ticker:<escape>ACME<escape>}"), True),
        ("both-exact", answer("get_stock_price{ticker:<escape>ACME<escape>}", "get_weather{city:<escape>Rome<escape>}"), True),
        ("both-exact", answer("get_stock_price{ticker:<escape>ACME<escape>}"), False),
        ("time-and-weather", answer("get_time{}", "get_weather{city:<escape>Lima<escape>}"), True),
        ("table", answer("book_table{guests:3}"), True),
        ("table", answer("book_table{guests:3.0}"), False),  # 3.0 is not the integer 3 the case gives
        ("table", answer("book_table{guests:<escape>3<escape>}"), False),
        ("exact-weather", answer("get_weather{city:<escape>Paris<escape>") + "<end_function_call", False),
        ("contains-weather", answer("get_weather{city:<escape>Rome<escape>}"), None),
        ("joke", "Why did the chicken cross the road?", True),
        ("joke", answer("get_weather{city:<escape>Paris<escape>}"), False),
    ],
)
def test_exact_call(suite, case_id, text, exact):
    assert verdict(suite, case_id, text).exact is exact


def test_a_schema_problem_on_the_right_tool_is_reported_not_failed(suite):
    judged = verdict(suite, "no-args", answer("get_weather{city:7,units:<escape>c<escape>}"))
    assert judged.passed and judged.reasons == ()
    assert judged.schema_problems == (
        "get_weather.city: expected string, got integer 7",
        "get_weather: undeclared argument 'units' (declared: city)",
    )


def test_a_call_to_an_undeclared_tool_is_a_miss_and_a_schema_problem(suite):
    judged = verdict(suite, "no-args", answer("get_weather{city:<escape>Oslo<escape>}", "send_email{to:<escape>x<escape>}"))
    assert not judged.passed
    assert judged.reasons == ("called send_email, which the case does not expect",)
    assert judged.schema_problems == (
        "call to undeclared tool 'send_email' (declared: get_weather, get_stock_price, get_time, book_table)",
    )


@pytest.mark.parametrize(
    ("case_id", "text", "described"),
    [
        ("exact-weather", answer("get_weather{city:<escape>Pariss<escape>}"), ["city: expected Paris, wrote Pariss"]),
        ("exact-weather", answer("get_weather{}"), ["city: expected Paris, left it out"]),
        ("contains-weather", answer("get_weather{city:<escape>Oslo<escape>}"), ["city: expected text containing rom, wrote Oslo"]),
        ("table", answer("book_table{guests:<escape>3<escape>}"), ['guests: expected 3, wrote "3"']),  # a string, not the number
        ("table", answer("book_table{guests:<escape> <escape>}"), ['guests: expected 3, wrote " "']),
        ("exact-weather", answer("get_weather{city:<escape> Paris<escape>}"), ['city: expected Paris, wrote " Paris"']),
        ("exact-weather", answer("get_weather{city:7}"), ['city: expected "Paris", wrote 7']),
        # A case that expects several tools names the tool: their arguments may share names.
        ("both-exact", answer("get_weather{city:<escape>Roma<escape>}", "get_stock_price{ticker:<escape>ACME<escape>}"),
         ["get_weather.city: expected Rome, wrote Roma"]),
        ("exact-weather", answer("get_stock_price{ticker:<escape>Paris<escape>}"), []),  # the tool is the failure
    ],
)
def test_failed_argument_checks_keep_the_check_and_the_value_written(suite, case_id, text, described):
    judged = verdict(suite, case_id, text)
    several = len(next(case for case in suite.cases if case.id == case_id).expect) > 1
    assert [failure.describe(several) for failure in judged.failed_checks] == described
    assert not judged.passed
