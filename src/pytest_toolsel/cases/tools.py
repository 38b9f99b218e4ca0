"""The `tools:` of a case file: each tool's name, description and JSON-schema parameters, checked
against what FunctionGemma's template can render; and the checks of other entries that name a tool."""

from __future__ import annotations

import re
from typing import Any, Iterable, Mapping

from .reader import Reader, yaml_typed
from .suite import Tool

MAX_SCHEMA_DEPTH = 32
# Types are compared case-insensitively: Google publishes its schemas (Gemini, Mobile Actions) with
# upper-case types ("OBJECT", "STRING"), and FunctionGemma's template upper-cases every type anyway.
JSON_TYPES = frozenset({"string", "number", "integer", "boolean", "array", "object", "null"})
# FunctionGemma's template silently leaves out a property with one of these names, so the model
# would never see it declared: refused here rather than reproduced unseen.
UNDECLARABLE_PROPERTY_NAMES = frozenset({"description", "type", "properties", "required", "nullable"})
TOOL_KEYS = ("name", "description", "parameters")
WRAPPED_TOOL_KEYS = ("type", "function")
_TOOL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")


class ToolsReader(Reader):
    """The `tools:` list: names unique, schemas well-formed.

    A property that FunctionGemma's template leaves out is refused, since a case file's author can
    rename it; a dataset's rows are as published, so with `unseen` given it is accepted and
    described there instead (the model sees the declaration without it, as deployed FunctionGemma does).
    """

    def __init__(self, path, root, unseen: list[str] | None = None):
        super().__init__(path, root)
        self.unseen = unseen

    def read_tools(self, value: Any, key: str = "tools") -> tuple[Tool, ...]:
        """The tool list under `key` (`tools:`, or a case file's `distractors:`), each tool checked."""
        entries = self.read_list(value, key)
        if not entries:
            raise self.error(f"'{key}' must declare at least one tool", (key,), where=key)
        tools: list[Tool] = []
        for index, entry in enumerate(entries):
            tool = self.read_tool(entry, index, key)
            if any(existing.name == tool.name for existing in tools):
                raise self.error(f"duplicate tool name '{tool.name}'", (key, index, "name"), f"{key}[{index}]")
            tools.append(tool)
        return tuple(tools)

    def read_tool(self, entry: Any, index: int, key: str = "tools") -> Tool:
        keys: tuple = (key, index)
        where = f"{key}[{index}]"
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
        where = f"{key}[{index}] ({name})"
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
            if name in UNDECLARABLE_PROPERTY_NAMES and self.unseen is not None:
                self.unseen.append(f"{where}: property '{field_name}.properties.{name}' is left out by FunctionGemma's "
                                   "template, so the model never sees it")
            elif name in UNDECLARABLE_PROPERTY_NAMES:
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


class ToolReferences(Reader):
    """Entries that name declared tools and their arguments: training calls, expected tools, argument checks."""

    def undeclared(self, name: Any, by_name: Mapping[str, Tool], keys: tuple, where: str, field_name: str) -> Tool:
        if not isinstance(name, str) or name not in by_name:
            declared = ", ".join(by_name)
            raise self.error(
                f"field '{field_name}': {name!r} is not a declared tool (declared: {declared}){yaml_typed(name)}",
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
