"""Calls judged against their tool's JSON schema: the right tool can still be called wrongly.

A call is invalid when it names a tool the policy does not declare, passes an argument the tool
does not declare, leaves out a required argument, or passes a value of the wrong JSON-schema type
(or outside its `enum`), at any depth of nested objects and arrays. The tool choice stays the
verdict; these problems are reported beside it, and fail the test only under --strict-calls.

Only the schema keywords that case files use are checked: type, nullable, enum, properties,
required, additionalProperties and items. Google publishes schemas with upper-case types ("OBJECT", "STRING"),
and a type may be a union list (["string", "null"]) or say `nullable: true`; types are compared
case-insensitively.
"""

from __future__ import annotations

import json
from typing import Any, Mapping, Sequence

from ..cases.suite import Tool
from ..functiongemma.parsing import ParsedOutput, ToolCall

_VALUE_SHOWN = 40  # characters of a value quoted in a message: enough to recognise it


def json_type_of(value: Any) -> str:
    """The JSON-schema type name of a parsed value (bool before int: in Python a bool is an int)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def declared_types(schema: Mapping[str, Any]) -> tuple[str, ...]:
    """The schema's type or union of types, lower-cased; empty when the schema leaves the type open.

    Google's OpenAPI-style schemas say `nullable: true` where JSON Schema writes a union with null.
    """
    kind = schema.get("type")
    kinds = [one.lower() for one in (kind if isinstance(kind, list) else [kind]) if isinstance(one, str)]
    if kinds and schema.get("nullable") is True and "null" not in kinds:
        kinds.append("null")
    return tuple(kinds)


def has_type(value: Any, json_type: str) -> bool:
    """JSON-schema type membership. 3 is a number and an integer; 3.0 is a number only (the model wrote
    a float where a whole number was asked for); a bool is neither."""
    actual = json_type_of(value)
    if json_type == "number":
        return actual in ("integer", "number")
    return actual == json_type


def shown(value: Any) -> str:
    """A value as JSON, cut short: messages quote what the model wrote, not pages of it."""
    return _cut(json.dumps(value, ensure_ascii=False, default=repr))


def shown_plainly(value: Any) -> str:
    """A value as a reader compares it with another: a string as it is written (quoted only where
    its quotes are needed to see it: empty, or with spaces at an end), anything else as JSON."""
    if isinstance(value, str) and value and value == value.strip():
        return _cut(value)
    return shown(value)


def _cut(text: str) -> str:
    return text if len(text) <= _VALUE_SHOWN else text[: _VALUE_SHOWN - 3] + "..."


def same_json_value(a: Any, b: Any) -> bool:
    """Equality as JSON sees it: 1 equals 1.0, but true is not 1."""
    numeric = ("integer", "number")
    kind_a, kind_b = json_type_of(a), json_type_of(b)
    same_kind = kind_a == kind_b or (kind_a in numeric and kind_b in numeric)
    return same_kind and a == b


def value_problems(value: Any, schema: Mapping[str, Any], where: str, top_level: bool = False) -> list[str]:
    """What is wrong with one value against its schema; `where` names it (`tool.arg[0].field`)."""
    types = declared_types(schema)
    if types and not any(has_type(value, one) for one in types):
        # A value of the wrong type has no sensible enum or properties to check further.
        got = "null" if value is None else f"{json_type_of(value)} {shown(value)}"
        return [f"{where}: expected {' or '.join(types)}, got {got}"]
    enum = schema.get("enum")
    if isinstance(enum, list) and not any(same_json_value(value, option) for option in enum):
        return [f"{where}: {shown(value)} is not one of {', '.join(map(shown, enum))}"]
    if isinstance(value, dict):
        return object_problems(value, schema, where, "argument" if top_level else "property")
    if isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        return [problem for index, item in enumerate(value)
                for problem in value_problems(item, schema["items"], f"{where}[{index}]")]
    return []


def object_problems(value: Mapping[str, Any], schema: Mapping[str, Any], where: str, noun: str) -> list[str]:
    """Missing required members, undeclared ones, and each declared member's own problems."""
    properties = schema.get("properties")
    problems = [f"{where}: missing required {noun} '{name}'"
                for name in schema.get("required", []) if name not in value]
    for name, member in value.items():
        if isinstance(properties, Mapping) and name in properties:
            problems += value_problems(member, properties[name], f"{where}.{name}")
        elif isinstance(properties, Mapping) and not allows_extra(schema):
            declared = ", ".join(sorted(properties)) or "none"
            problems.append(f"{where}: undeclared {noun} '{name}' (declared: {declared})")
        elif isinstance(schema.get("additionalProperties"), Mapping):
            problems += value_problems(member, schema["additionalProperties"], f"{where}.{name}")
    return problems


def allows_extra(schema: Mapping[str, Any]) -> bool:
    """Members beyond `properties` are errors unless the schema says otherwise: a tool that declares its
    arguments has declared them all (JSON Schema's own default is the opposite, but an argument the
    tool never declared is one the tool will not read)."""
    extra = schema.get("additionalProperties", False)
    return extra is True or isinstance(extra, Mapping)


def call_problems(call: ToolCall, tools: Mapping[str, Tool]) -> list[str]:
    """Schema problems of one parsed call (calls that did not parse are reported as malformed instead)."""
    if call.error:
        return []
    tool = tools.get(call.name)
    if tool is None:
        return [f"call to undeclared tool '{call.name}' (declared: {', '.join(tools) or 'none'})"]
    if tool.parameters is None:  # the tool says nothing about its arguments: nothing to hold them to
        return []
    return value_problems(call.arguments, tool.parameters, call.name, top_level=True)


def schema_problems(parsed: ParsedOutput, tools: Sequence[Tool]) -> tuple[str, ...]:
    """Every schema problem of every call in an answer, in call order."""
    by_name = {tool.name: tool for tool in tools}
    return tuple(problem for call in parsed.calls for problem in call_problems(call, by_name))
