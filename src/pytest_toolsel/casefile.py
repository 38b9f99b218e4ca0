"""Case files: a policy's tools, training examples and held-out cases, read from YAML and validated.

Every problem is reported as a `CaseFileError` naming the file, the entry (index or id), the field
and, where YAML can tell, the line. Nothing here executes anything from the file: `yaml.safe_load`
only, and regular expressions are compiled, never evaluated as code.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml

from .chat_format import as_function_tool

MAX_FILE_BYTES = 5 * 1024 * 1024
MAX_SCHEMA_DEPTH = 32
# Types are compared case-insensitively: Google publishes its schemas (Gemini, Mobile Actions) with
# upper-case types ("OBJECT", "STRING"), and FunctionGemma's template upper-cases every type anyway.
JSON_TYPES = frozenset({"string", "number", "integer", "boolean", "array", "object", "null"})
# FunctionGemma's template silently leaves out a property with one of these names, so the model
# would never see it declared: refused here rather than reproduced unseen.
UNDECLARABLE_PROPERTY_NAMES = frozenset({"description", "type", "properties", "required", "nullable"})
TOP_LEVEL_KEYS = ("policy", "description", "system", "tools", "train", "cases", "min_accuracy")
TOOL_KEYS = ("name", "description", "parameters")
WRAPPED_TOOL_KEYS = ("type", "function")
TRAIN_KEYS = ("prompt", "call", "args", "answer")
CALL_KEYS = ("name", "args")
CASE_KEYS = ("prompt", "expect", "id", "args", "xfail")
CHECK_OPERATORS = ("equals", "contains", "regex")
NO_TOOL = "none"
_CASE_FILE_MARKER = re.compile(rb"^cases\s*:", re.MULTILINE)
_TOOL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")
_CASE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")


class CaseFileError(Exception):
    """A problem in a case file, phrased for the person who wrote it."""

    def __init__(self, path: Path, message: str, *, where: str = "", line: int | None = None):
        self.path = path
        self.where = where
        self.line = line
        self.message = message
        location = str(path) + (f":{line}" if line else "")
        super().__init__(f"{location}: {where + ': ' if where else ''}{message}")


@dataclass(frozen=True)
class Tool:
    name: str
    description: str | None
    parameters: Mapping[str, Any] | None

    @property
    def schema(self) -> dict:
        return as_function_tool(self.name, self.description, self.parameters)

    @property
    def argument_names(self) -> frozenset[str] | None:
        """Declared argument names, or None when the tool declares no properties to check against."""
        if not self.parameters or "properties" not in self.parameters:
            return None
        return frozenset(self.parameters["properties"])


@dataclass(frozen=True)
class Call:
    name: str
    args: Mapping[str, Any]


@dataclass(frozen=True)
class TrainExample:
    prompt: str
    calls: tuple[Call, ...]
    answer: str | None = None


@dataclass(frozen=True)
class ArgCheck:
    """One expectation on one argument of one expected tool."""

    tool: str
    argument: str
    operator: str  # equals | contains | regex
    expected: Any

    def matches(self, value: Any) -> bool:
        if self.operator == "equals":
            return value == self.expected
        if not isinstance(value, str):
            return False
        if self.operator == "contains":
            return self.expected.casefold() in value.casefold()
        return re.search(self.expected, value) is not None

    def describe(self) -> str:
        return f"{self.tool}.{self.argument} {self.operator} {self.expected!r}"


@dataclass(frozen=True)
class Case:
    id: str
    prompt: str
    expect: frozenset[str]  # empty: the model must call no tool
    arg_checks: tuple[ArgCheck, ...] = ()
    xfail: str | None = None
    index: int = 0
    line: int | None = None

    @property
    def expect_label(self) -> str:
        return ", ".join(sorted(self.expect)) or NO_TOOL


@dataclass(frozen=True)
class Suite:
    path: Path
    policy: str
    system: str | None
    tools: tuple[Tool, ...]
    train: tuple[TrainExample, ...]
    cases: tuple[Case, ...]
    min_accuracy: float | None = None
    train_lines: tuple[int | None, ...] = field(default=(), compare=False)

    @property
    def tool_schemas(self) -> list[dict]:
        return [tool.schema for tool in self.tools]

    @property
    def tool_names(self) -> tuple[str, ...]:
        return tuple(tool.name for tool in self.tools)


def normalise_prompt(prompt: str) -> str:
    return " ".join(prompt.casefold().split())


def looks_like_case_file(path: Path) -> bool:
    """Cheap test used at collection: YAML with a top-level `cases:` key (even if otherwise broken)."""
    if path.suffix not in (".yaml", ".yml"):
        return False
    try:
        with path.open("rb") as handle:
            head = handle.read(MAX_FILE_BYTES + 1)
    except OSError:
        return False
    return bool(_CASE_FILE_MARKER.search(head))


def load_suite(path: Path | str, display: Path | None = None) -> Suite:
    """Read and validate a case file. `display` is the path shown in errors and reports."""
    path = Path(path)
    shown = display or path
    text = _read_text(path, shown)
    document, root = _parse_yaml(shown, text)
    return _SuiteReader(shown, root).read(document)


def _read_text(path: Path, shown: Path) -> str:
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise CaseFileError(
            shown, f"file is {size:,} bytes; case files are limited to {MAX_FILE_BYTES:,} bytes (5 MiB)"
        )
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise CaseFileError(
            shown, f"not valid UTF-8 (byte 0x{raw[error.start]:02x} at offset {error.start})", line=line
        ) from None


def _parse_yaml(path: Path, text: str) -> tuple[Any, yaml.Node | None]:
    """The document and its node tree (for line numbers), from one parse.

    This is what `yaml.safe_load` does (the safe loader: plain data only), keeping the tree it builds
    on the way; libyaml's parser when PyYAML has it, since a large case file is a noticeable part
    of a cold run otherwise.
    """
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)(text)
    try:
        root = loader.get_single_node()
        document = loader.construct_document(root) if root is not None else None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        problem = getattr(error, "problem", None) or str(error)
        context = getattr(error, "context", None)
        message = f"YAML syntax error: {problem}" + (f" ({context})" if context else "")
        raise CaseFileError(path, message, line=mark.line + 1 if mark else None) from None
    finally:
        loader.dispose()
    return document, root


def _node_line(root: yaml.Node | None, keys: Iterable[str | int]) -> int | None:
    """The 1-based line of the YAML node at `keys`, or of its deepest existing ancestor."""
    node, line = root, None
    for key in keys:
        if node is None:
            break
        line = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            node = next((value for k, value in node.value if getattr(k, "value", None) == key), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
        else:
            node = None
    return node.start_mark.line + 1 if node is not None else line


class _SuiteReader:
    """Turns a parsed YAML document into a Suite, raising CaseFileError at the first problem."""

    def __init__(self, path: Path, root: yaml.Node | None):
        self.path = path
        self.root = root

    def error(self, message: str, keys: tuple = (), where: str = "") -> CaseFileError:
        return CaseFileError(self.path, message, where=where, line=_node_line(self.root, keys))

    def read(self, document: Any) -> Suite:
        if not isinstance(document, dict):
            kind = "empty" if document is None else f"a {type(document).__name__}"
            raise self.error(f"a case file must be a mapping with 'tools' and 'cases'; this one is {kind}")
        self.check_keys(document, TOP_LEVEL_KEYS, (), "top level")
        for required in ("tools", "cases"):
            if required not in document:
                raise self.error(f"missing required key '{required}'", where="top level")
        policy = document.get("policy", self.path.stem)
        system = document.get("system")
        for key, value in (("policy", policy), ("system", system)):
            if value is not None and not (isinstance(value, str) and value.strip()):
                raise self.error(f"'{key}' must be a non-empty string", (key,), where=key)
        tools = self.read_tools(document["tools"])
        by_name = {tool.name: tool for tool in tools}
        train = self.read_list(document.get("train") or [], "train")
        cases = self.read_list(document["cases"], "cases")
        return Suite(
            path=self.path,
            policy=policy,
            system=system,
            tools=tools,
            train=tuple(self.read_train(entry, i, by_name) for i, entry in enumerate(train)),
            cases=self.read_cases(cases, by_name),
            min_accuracy=self.read_min_accuracy(document.get("min_accuracy")),
            train_lines=tuple(_node_line(self.root, ("train", i)) for i in range(len(train))),
        )

    def check_keys(self, entry: dict, allowed: tuple[str, ...], keys: tuple, where: str) -> None:
        for key in entry:
            if key not in allowed:
                close = difflib.get_close_matches(str(key), allowed, n=1)
                hint = f"; did you mean '{close[0]}'?" if close else f"; allowed: {', '.join(allowed)}"
                raise self.error(f"unknown key '{key}'{hint}", keys + (key,), where=where)

    def read_list(self, value: Any, key: str) -> list:
        if not isinstance(value, list):
            raise self.error(f"'{key}' must be a list", (key,), where=key)
        return value

    def read_min_accuracy(self, value: Any) -> float | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
            raise self.error("'min_accuracy' must be a number between 0 and 1", ("min_accuracy",), "min_accuracy")
        return float(value)

    # tools -------------------------------------------------------------------------------------

    def read_tools(self, value: Any) -> tuple[Tool, ...]:
        entries = self.read_list(value, "tools")
        if not entries:
            raise self.error("'tools' must declare at least one tool", ("tools",), where="tools")
        tools: list[Tool] = []
        for index, entry in enumerate(entries):
            tool = self.read_tool(entry, index)
            if any(existing.name == tool.name for existing in tools):
                raise self.error(f"duplicate tool name '{tool.name}'", ("tools", index, "name"), f"tools[{index}]")
            tools.append(tool)
        return tuple(tools)

    def read_tool(self, entry: Any, index: int) -> Tool:
        keys: tuple = ("tools", index)
        where = f"tools[{index}]"
        if not isinstance(entry, dict):
            raise self.error("a tool must be a mapping with 'name', 'description', 'parameters'", keys, where)
        if "function" in entry:
            self.check_keys(entry, WRAPPED_TOOL_KEYS, keys, where)
            if entry.get("type", "function") != "function":
                raise self.error(f"field 'type': expected 'function', got {entry['type']!r}", keys + ("type",), where)
            entry, keys = entry["function"], keys + ("function",)
            if not isinstance(entry, dict):
                raise self.error("field 'function' must be a mapping", keys, where)
        self.check_keys(entry, TOOL_KEYS, keys, where)
        name = entry.get("name")
        if not isinstance(name, str) or not _TOOL_NAME.match(name):
            raise self.error(
                f"field 'name': a tool needs a name of letters, digits, '_', '.', '-' (got {name!r})",
                keys + ("name",),
                where,
            )
        where = f"tools[{index}] ({name})"
        description = entry.get("description")
        if description is not None and not isinstance(description, str):
            raise self.error("field 'description' must be a string", keys + ("description",), where)
        parameters = entry.get("parameters")
        if parameters is not None:
            self.check_schema(parameters, keys + ("parameters",), where, "parameters")
            if "type" not in parameters:
                # FunctionGemma's template renders such a declaration malformed (a brace missing).
                raise self.error(
                    "field 'parameters.type' is missing; write 'type: object' (FunctionGemma's template renders "
                    "parameters without a type malformed)",
                    keys + ("parameters",),
                    where,
                )
            if not isinstance(parameters["type"], str) or parameters["type"].lower() != "object":
                raise self.error("field 'parameters': the top-level type must be 'object'", keys + ("parameters",), where)
        return Tool(name=name, description=description, parameters=parameters)

    def check_schema(self, schema: Any, keys: tuple, where: str, field_name: str, depth: int = 0) -> None:
        if not isinstance(schema, dict):
            raise self.error(f"field '{field_name}' must be a JSON-schema mapping", keys, where)
        if depth > MAX_SCHEMA_DEPTH:
            raise self.error(
                f"field '{field_name}': schema nested deeper than {MAX_SCHEMA_DEPTH} levels (a YAML alias "
                "referring to itself?)",
                keys,
                where,
            )
        kind = schema.get("type")
        kinds = kind if isinstance(kind, list) else [kind] if kind is not None else []
        for one in kinds:
            if not isinstance(one, str) or one.lower() not in JSON_TYPES:
                raise self.error(
                    f"field '{field_name}.type': {one!r} is not a JSON-schema type ({', '.join(sorted(JSON_TYPES))})",
                    keys + ("type",),
                    where,
                )
        if "description" in schema and not isinstance(schema["description"], str):
            raise self.error(f"field '{field_name}.description' must be a string", keys + ("description",), where)
        if "enum" in schema and not isinstance(schema["enum"], list):
            raise self.error(f"field '{field_name}.enum' must be a list", keys + ("enum",), where)
        properties = schema.get("properties", {})
        if not isinstance(properties, dict):
            raise self.error(f"field '{field_name}.properties' must be a mapping", keys + ("properties",), where)
        for name, prop in properties.items():
            if name in UNDECLARABLE_PROPERTY_NAMES:
                raise self.error(
                    f"field '{field_name}.properties.{name}': FunctionGemma's template leaves out a property named "
                    f"'{name}', so the model would never see it; rename it",
                    keys + ("properties", name),
                    where,
                )
            self.check_schema(prop, keys + ("properties", name), where, f"{field_name}.properties.{name}", depth + 1)
        required = schema.get("required", [])
        if not isinstance(required, list) or not all(isinstance(item, str) for item in required):
            raise self.error(f"field '{field_name}.required' must be a list of names", keys + ("required",), where)
        for name in required:
            if name not in properties:
                raise self.error(
                    f"field '{field_name}.required': '{name}' is not among the properties", keys + ("required",), where
                )
        if "items" in schema:
            self.check_schema(schema["items"], keys + ("items",), where, f"{field_name}.items", depth + 1)

    def undeclared(self, name: Any, by_name: Mapping[str, Tool], keys: tuple, where: str, field_name: str) -> Tool:
        if not isinstance(name, str) or name not in by_name:
            declared = ", ".join(by_name)
            raise self.error(
                f"field '{field_name}': {name!r} is not a declared tool (declared: {declared}){_yaml_typed(name)}",
                keys,
                where,
            )
        return by_name[name]

    def check_arg_names(self, tool: Tool, names: Iterable[str], keys: tuple, where: str, field_name: str) -> None:
        declared = tool.argument_names
        if declared is None:
            return
        for name in names:
            if name not in declared:
                raise self.error(
                    f"field '{field_name}': tool '{tool.name}' declares no argument '{name}' "
                    f"(declared: {', '.join(sorted(declared)) or 'none'})",
                    keys + (name,),
                    where,
                )

    # training examples -------------------------------------------------------------------------

    def read_prompt(self, entry: dict, keys: tuple, where: str) -> str:
        prompt = entry.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            problem = "is missing" if prompt is None else "must be a non-empty string" + _yaml_typed(prompt)
            raise self.error(f"field 'prompt' {problem}", keys + ("prompt",), where)
        return prompt

    def read_train(self, entry: Any, index: int, by_name: Mapping[str, Tool]) -> TrainExample:
        keys: tuple = ("train", index)
        where = f"train[{index}]"
        if not isinstance(entry, dict):
            raise self.error("a training example must be a mapping with 'prompt' and 'call'", keys, where)
        self.check_keys(entry, TRAIN_KEYS, keys, where)
        prompt = self.read_prompt(entry, keys, where)
        if "call" not in entry:
            raise self.error("field 'call' is missing (a tool name, a list of {name, args}, or none)", keys, where)
        spec = entry["call"]
        if spec is None or spec == NO_TOOL:
            if "args" in entry:
                raise self.error("field 'args': an example with 'call: none' calls nothing", keys + ("args",), where)
            answer = entry.get("answer")
            if not isinstance(answer, str) or not answer.strip():
                raise self.error("field 'answer': an example that calls no tool needs the text answer", keys, where)
            return TrainExample(prompt=prompt, calls=(), answer=answer)
        if "answer" in entry:
            raise self.error("field 'answer' is only for examples with 'call: none'", keys + ("answer",), where)
        if isinstance(spec, str):
            raw_calls = [{"name": spec, "args": entry.get("args", {})}]
            call_keys = [keys]
        elif isinstance(spec, list) and spec:
            if "args" in entry:
                raise self.error("field 'args': with a list of calls, give each call its own args", keys + ("args",), where)
            raw_calls = spec
            call_keys = [keys + ("call", i) for i in range(len(spec))]
        else:
            raise self.error("field 'call' must be a tool name, a list of {name, args}, or none", keys + ("call",), where)
        calls = tuple(self.read_call(raw, ck, where, by_name) for raw, ck in zip(raw_calls, call_keys))
        return TrainExample(prompt=prompt, calls=calls)

    def read_call(self, raw: Any, keys: tuple, where: str, by_name: Mapping[str, Tool]) -> Call:
        if not isinstance(raw, dict):
            raise self.error("each call must be a mapping with 'name' and 'args'", keys, where)
        if keys[-2:-1] == ("call",):
            self.check_keys(raw, CALL_KEYS, keys, where)
        name_keys = keys + ("name",) if keys[-2:-1] == ("call",) else keys + ("call",)
        tool = self.undeclared(raw.get("name"), by_name, name_keys, where, "call")
        args = raw.get("args") or {}
        if not isinstance(args, dict):
            raise self.error("field 'args' must be a mapping of argument: value", keys + ("args",), where)
        self.check_arg_names(tool, args, keys + ("args",), where, "args")
        required = (tool.parameters or {}).get("required", [])
        missing = [name for name in required if name not in args]
        if missing:
            raise self.error(
                f"field 'args': tool '{tool.name}' requires {', '.join(missing)}", keys + ("args",), where
            )
        return Call(name=tool.name, args=args)

    # held-out cases ----------------------------------------------------------------------------

    def read_cases(self, entries: list, by_name: Mapping[str, Tool]) -> tuple[Case, ...]:
        if not entries:
            raise self.error("'cases' is empty: add at least one held-out prompt", ("cases",), where="cases")
        cases: list[tuple[Case, bool]] = []
        explicit_ids: dict[str, int] = {}
        for index, entry in enumerate(entries):
            case = self.read_case(entry, index, by_name)
            explicit = isinstance(entry.get("id"), str)
            if explicit:
                if case.id in explicit_ids:
                    raise self.error(
                        f"field 'id': duplicate id '{case.id}' (also cases[{explicit_ids[case.id]}])",
                        ("cases", index, "id"),
                        f"cases[{index}] (id '{case.id}')",
                    )
                explicit_ids[case.id] = index
            cases.append((case, explicit))
        return _dedupe_derived_ids(cases)

    def read_case(self, entry: Any, index: int, by_name: Mapping[str, Tool]) -> Case:
        keys: tuple = ("cases", index)
        where = f"cases[{index}]"
        if not isinstance(entry, dict):
            raise self.error("a case must be a mapping with 'prompt' and 'expect'", keys, where)
        case_id = entry.get("id")
        if case_id is not None:
            if not isinstance(case_id, str) or not _CASE_ID.match(case_id):
                raise self.error(
                    f"field 'id': {case_id!r} must start with a letter or digit and contain only letters, "
                    f"digits, '_', '.', '-'{_yaml_typed(case_id)}",
                    keys + ("id",),
                    where,
                )
            where = f"cases[{index}] (id '{case_id}')"
        self.check_keys(entry, CASE_KEYS, keys, where)
        prompt = self.read_prompt(entry, keys, where)
        if "expect" not in entry:
            raise self.error("field 'expect' is missing (a tool name, a list of names, or none)", keys, where)
        expect = self.read_expect(entry["expect"], by_name, keys + ("expect",), where)
        checks = self.read_arg_checks(entry.get("args"), expect, by_name, keys + ("args",), where)
        xfail = entry.get("xfail")
        if xfail is not None and not isinstance(xfail, (str, bool)):
            raise self.error("field 'xfail' must be a reason (string) or true", keys + ("xfail",), where)
        return Case(
            id=case_id or slugify(prompt),
            prompt=prompt,
            expect=expect,
            arg_checks=checks,
            xfail=("expected to fail" if xfail is True else xfail) or None,
            index=index,
            line=_node_line(self.root, keys),
        )

    def read_expect(self, value: Any, by_name: Mapping[str, Tool], keys: tuple, where: str) -> frozenset[str]:
        if value is None or value == NO_TOOL:
            return frozenset()
        names = value if isinstance(value, list) else [value]
        if not names:
            raise self.error("field 'expect': an empty list; write 'none' to expect no call", keys, where)
        for name in names:
            self.undeclared(name, by_name, keys, where, "expect")
        if len(set(names)) != len(names):
            raise self.error("field 'expect' names a tool twice", keys, where)
        return frozenset(names)

    def read_arg_checks(
        self, value: Any, expect: frozenset[str], by_name: Mapping[str, Tool], keys: tuple, where: str
    ) -> tuple[ArgCheck, ...]:
        if value is None:
            return ()
        if not isinstance(value, dict):
            raise self.error("field 'args' must be a mapping", keys, where)
        if not expect:
            raise self.error("field 'args': the case expects no call, so there are no arguments to check", keys, where)
        if len(expect) == 1:
            (tool_name,) = expect
            per_tool = {tool_name: (value, keys)}
        else:
            # Parallel calls: args are grouped by tool, e.g. {get_weather: {city: Paris}}.
            per_tool = {}
            for tool_name, tool_args in value.items():
                if tool_name not in expect:
                    raise self.error(
                        f"field 'args': with several expected tools, group checks by tool name; "
                        f"'{tool_name}' is not one of {', '.join(sorted(expect))}",
                        keys + (tool_name,),
                        where,
                    )
                if not isinstance(tool_args, dict):
                    raise self.error(f"field 'args.{tool_name}' must be a mapping", keys + (tool_name,), where)
                per_tool[tool_name] = (tool_args, keys + (tool_name,))
        checks = []
        for tool_name, (tool_args, tool_keys) in per_tool.items():
            self.check_arg_names(by_name[tool_name], tool_args, tool_keys, where, "args")
            for argument, spec in tool_args.items():
                checks.append(self.read_check(tool_name, argument, spec, tool_keys + (argument,), where))
        return tuple(checks)

    def read_check(self, tool: str, argument: str, spec: Any, keys: tuple, where: str) -> ArgCheck:
        if isinstance(spec, dict) and len(spec) == 1 and next(iter(spec)) not in CHECK_OPERATORS:
            close = difflib.get_close_matches(str(next(iter(spec))), CHECK_OPERATORS, n=1)
            if close:
                raise self.error(
                    f"field 'args.{argument}': unknown check '{next(iter(spec))}'; did you mean '{close[0]}'? "
                    f"(write {{equals: {{...}}}} to compare with a mapping)",
                    keys,
                    where,
                )
        if isinstance(spec, dict) and len(spec) == 1 and next(iter(spec)) in CHECK_OPERATORS:
            operator, expected = next(iter(spec.items()))
            if operator in ("contains", "regex") and not isinstance(expected, str):
                raise self.error(f"field 'args.{argument}.{operator}' must be a string", keys, where)
            if operator == "regex":
                try:
                    re.compile(expected)
                except re.error as problem:
                    raise self.error(f"field 'args.{argument}.regex': invalid pattern ({problem})", keys, where)
            return ArgCheck(tool, argument, operator, expected)
        return ArgCheck(tool, argument, "equals", spec)


def _yaml_typed(value: Any) -> str:
    """A hint for values YAML did not read as text: `yes`, `no`, `on`, numbers, dates."""
    if value is None or isinstance(value, (str, dict, list)):
        return ""
    return f" (YAML read this as a {type(value).__name__}; put it in quotes)"


def slugify(prompt: str, limit: int = 48) -> str:
    words = re.findall(r"[a-z0-9]+", prompt.casefold())
    slug = ""
    for word in words:
        candidate = f"{slug}-{word}" if slug else word
        if len(candidate) > limit:
            break
        slug = candidate
    return slug or "case"


def _dedupe_derived_ids(cases: list[tuple[Case, bool]]) -> tuple[Case, ...]:
    """Derived ids (from the prompt) get a numeric suffix when they collide; explicit ids never change."""
    seen = {case.id for case, explicit in cases if explicit}
    unique = []
    for case, explicit in cases:
        if not explicit:
            base, n = case.id, 2
            while case.id in seen:
                case, n = replace(case, id=f"{base}-{n}"), n + 1
        seen.add(case.id)
        unique.append(case)
    return tuple(unique)
