"""Calls held to their tool's JSON schema: each kind of problem, with the exact message a user reads."""

from __future__ import annotations

import pytest

from pytest_toolsel.cases.suite import Tool
from pytest_toolsel.functiongemma.chat_format import END_CALL, START_CALL
from pytest_toolsel.functiongemma.parsing import parse_output
from pytest_toolsel.verdicts.call_schema import has_type, schema_problems

BOOK = Tool(
    "book_trip",
    "Book a trip.",
    {
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "nights": {"type": "integer"},
            "budget": {"type": "number"},
            "refundable": {"type": "boolean"},
            "cabin": {"type": "string", "enum": ["economy", "business"]},
            "guests": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
                    "required": ["name"],
                },
            },
            "notes": {"type": ["string", "null"]},
            "floor": {"enum": [1, 2]},  # an enum without a type
        },
        "required": ["city"],
    },
)
# As Google publishes schemas: upper-case type names.
GOOGLE_STYLE = Tool(
    "set_alarm",
    None,
    {
        "type": "OBJECT",
        "properties": {
            "hour": {"type": "INTEGER"},
            "label": {"type": "STRING", "nullable": True},
            "days": {"type": "ARRAY", "items": {"type": "STRING"}},
        },
        "required": ["hour"],
    },
)
OPEN = Tool("ping", None, None)  # declares nothing about its arguments
TOOLS = [BOOK, GOOGLE_STYLE, OPEN]


def problems(*bodies: str) -> tuple[str, ...]:
    return schema_problems(parse_output("".join(f"{START_CALL}call:{body}{END_CALL}" for body in bodies)), TOOLS)


@pytest.mark.parametrize(
    "body",
    [
        "book_trip{city:<escape>Paris<escape>}",
        "book_trip{city:<escape>Paris<escape>,nights:3,budget:120.5,refundable:true,cabin:<escape>economy<escape>}",
        "book_trip{city:<escape>Rome<escape>,budget:120}",  # an integer is a number too
        "book_trip{city:<escape>Rome<escape>,guests:[{name:<escape>Ann<escape>,age:7},{name:<escape>Bo<escape>}]}",
        "book_trip{city:<escape>Rome<escape>,notes:null}",
        "book_trip{city:<escape>Rome<escape>,notes:<escape>late<escape>}",
        "book_trip{city:<escape>Rome<escape>,floor:2}",
        "set_alarm{hour:7,label:<escape>gym<escape>,days:[<escape>mon<escape>]}",
        "set_alarm{hour:7,label:null}",  # nullable, as Google writes a union with null
        "ping{anything:1}",
    ],
)
def test_calls_that_fit_their_schema_have_no_problems(body):
    assert problems(body) == ()


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("get_time{}", "call to undeclared tool 'get_time' (declared: book_trip, set_alarm, ping)"),
        ("book_trip{city:<escape>Paris<escape>,town:<escape>Paris<escape>}",
         "book_trip: undeclared argument 'town' (declared: budget, cabin, city, floor, guests, nights, notes, refundable)"),
        ("book_trip{nights:2}", "book_trip: missing required argument 'city'"),
        ("book_trip{city:7}", "book_trip.city: expected string, got integer 7"),
        ("book_trip{city:<escape>Oslo<escape>,nights:<escape>two<escape>}",
         'book_trip.nights: expected integer, got string "two"'),
        # A float is not an integer, even when its value is whole; a bool is never a number.
        ("book_trip{city:<escape>Oslo<escape>,nights:3.0}", "book_trip.nights: expected integer, got number 3.0"),
        ("book_trip{city:<escape>Oslo<escape>,nights:true}", "book_trip.nights: expected integer, got boolean true"),
        ("book_trip{city:<escape>Oslo<escape>,budget:false}", "book_trip.budget: expected number, got boolean false"),
        ("book_trip{city:<escape>Oslo<escape>,refundable:<escape>yes<escape>}",
         'book_trip.refundable: expected boolean, got string "yes"'),
        ("book_trip{city:<escape>Oslo<escape>,cabin:<escape>first<escape>}",
         'book_trip.cabin: "first" is not one of "economy", "business"'),
        ("book_trip{city:<escape>Oslo<escape>,floor:3}", "book_trip.floor: 3 is not one of 1, 2"),
        ("book_trip{city:<escape>Oslo<escape>,floor:true}", "book_trip.floor: true is not one of 1, 2"),
        ("book_trip{city:<escape>Oslo<escape>,guests:{name:<escape>Ann<escape>}}",
         'book_trip.guests: expected array, got object {"name": "Ann"}'),
        ("book_trip{city:<escape>Oslo<escape>,guests:[{name:<escape>Ann<escape>,age:<escape>7<escape>}]}",
         'book_trip.guests[0].age: expected integer, got string "7"'),
        ("book_trip{city:<escape>Oslo<escape>,guests:[{name:<escape>Ann<escape>},{age:7}]}",
         "book_trip.guests[1]: missing required property 'name'"),
        ("book_trip{city:<escape>Oslo<escape>,guests:[{name:<escape>Ann<escape>,pet:<escape>cat<escape>}]}",
         "book_trip.guests[0]: undeclared property 'pet' (declared: age, name)"),
        ("book_trip{city:<escape>Oslo<escape>,notes:3}", "book_trip.notes: expected string or null, got integer 3"),
        ("set_alarm{hour:<escape>7<escape>}", 'set_alarm.hour: expected integer, got string "7"'),
        ("set_alarm{hour:7,days:[<escape>mon<escape>,2]}", "set_alarm.days[1]: expected string, got integer 2"),
        ("set_alarm{hour:7,label:false}", "set_alarm.label: expected string or null, got boolean false"),
        ("set_alarm{hour:7,days:null}", "set_alarm.days: expected array, got null"),
    ],
)
def test_each_schema_problem_is_named_with_its_place(body, expected):
    assert problems(body) == (expected,)


def test_every_call_and_every_problem_is_reported_in_order():
    found = problems("book_trip{nights:3.5,extra:1}", "set_alarm{}", "nope{}")
    assert found == (
        "book_trip: missing required argument 'city'",
        "book_trip.nights: expected integer, got number 3.5",
        "book_trip: undeclared argument 'extra' (declared: budget, cabin, city, floor, guests, nights, notes, refundable)",
        "set_alarm: missing required argument 'hour'",
        "call to undeclared tool 'nope' (declared: book_trip, set_alarm, ping)",
    )


def test_unparseable_calls_are_left_to_the_malformed_verdict():
    parsed = parse_output(f"{START_CALL}call:book_trip{{city:<escape>Paris}}{END_CALL}")
    assert parsed.malformed and schema_problems(parsed, TOOLS) == ()


def test_additional_properties_when_the_schema_allows_them():
    tool = Tool("tag", None, {"type": "object", "properties": {"id": {"type": "string"}},
                              "additionalProperties": {"type": "integer"}})
    parsed = parse_output(f"{START_CALL}call:tag{{id:<escape>a<escape>,x:1,y:<escape>b<escape>}}{END_CALL}")
    assert schema_problems(parsed, [tool]) == ('tag.y: expected integer, got string "b"',)


def test_long_values_are_cut_short_in_messages():
    (message,) = problems("book_trip{city:<escape>Oslo<escape>,nights:<escape>" + "x" * 100 + "<escape>}")
    assert message == 'book_trip.nights: expected integer, got string "' + "x" * 36 + "..."


@pytest.mark.parametrize(
    ("value", "json_type", "expected"),
    [(3, "integer", True), (3, "number", True), (3.0, "integer", False), (3.0, "number", True),
     (True, "integer", False), (True, "boolean", True), (None, "null", True), ("3", "number", False)],
)
def test_json_type_membership(value, json_type, expected):
    assert has_type(value, json_type) is expected
