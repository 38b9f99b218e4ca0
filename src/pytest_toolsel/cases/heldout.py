"""The held-out `cases:` of a case file: a prompt, the tools it must call, and the argument checks."""

from __future__ import annotations

import difflib
import re
from dataclasses import replace
from typing import Any, Mapping

from .reader import node_line, yaml_typed
from .suite import NO_TOOL, ArgCheck, Case, Tool
from .conversation import ConversationReader

CASE_KEYS = ("prompt", "messages", "expect", "id", "args", "xfail")
CHECK_OPERATORS = ("equals", "contains", "regex")
_CASE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")


class CasesReader(ConversationReader):
    """The cases, their ids unique; what each expects and checks is declared by the tools."""

    def read_cases(self, entries: list, by_name: Mapping[str, Tool]) -> tuple[Case, ...]:
        if not entries:
            raise self.error(
                "'cases' is empty: add at least one held-out prompt (or training examples under 'train')",
                ("cases",),
                where="cases",
            )
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
                    f"digits, '_', '.', '-'{yaml_typed(case_id)}",
                    keys + ("id",),
                    where,
                )
            where = f"cases[{index}] (id '{case_id}')"
        self.check_keys(entry, CASE_KEYS, keys, where)
        prompt, conversation = self.read_turns(entry, by_name, keys, where)
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
            line=node_line(self.root, keys),
            conversation=conversation,
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
