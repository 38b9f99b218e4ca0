"""Verdicts: did the model call exactly the expected tools (and pass the argument checks)?

The tool choice is the verdict. Beside it, each answer's calls are held to their tools' schemas
(call_schema.py) and, where the case spells out every expected argument, compared with the
expected calls as a whole (Google's exact-call metric for Mobile Actions).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from ..cases.suite import ArgCheck, Case, Tool
from ..functiongemma.parsing import ParsedOutput
from ..inference.budget import cut_reason
from .call_schema import schema_problems, shown, shown_plainly


@dataclass(frozen=True)
class CheckFailure:
    """An argument check that the expected tool's call did not pass, and what the call wrote instead:
    a report must tell a wrong value from a right one, since the tool alone looks like a pass."""

    check: ArgCheck
    written: Any = None
    given: bool = True  # False: the call left the argument out

    def describe(self, name_the_tool: bool = False) -> str:
        """`datetime: expected 2026-06-10T16:00, wrote 2026-06-10T15:00`; `name_the_tool` prefixes the
        tool (`get_weather.city: ...`) for cases that expect several tools, whose arguments may share names."""
        check = self.check
        where = f"{check.tool}.{check.argument}" if name_the_tool else check.argument
        # Unquoted only when both are strings: `expected 3, wrote 3` must not hide a "3" written for 3.
        strings = isinstance(check.expected, str) and (isinstance(self.written, str) or not self.given)
        show = shown_plainly if strings else shown
        expected = {
            "equals": show(check.expected),
            "contains": f"text containing {show(check.expected)}",
            "regex": f"a match of /{check.expected}/",
        }[check.operator]
        wrote = f"wrote {show(self.written)}" if self.given else "left it out"
        return f"{where}: expected {expected}, {wrote}"


@dataclass(frozen=True)
class Verdict:
    passed: bool
    called: tuple[str, ...]  # distinct tool names, in the order first called
    reasons: tuple[str, ...] = ()
    schema_problems: tuple[str, ...] = ()  # reported; they fail the test only under --strict-calls
    exact: bool | None = None  # the calls equal the expected ones; None when the case gives no expected calls
    failed_checks: tuple[CheckFailure, ...] = ()  # the argument checks among `reasons`, with the values written


def judge(case: Case, parsed: ParsedOutput, tools: Sequence[Tool], cut_at: int | None = None) -> Verdict:
    """`cut_at`: the generation budget, when it ended the answer before the answer did. Such an
    answer fails as cut, not as malformed: what it lacks was never written, not written wrong."""
    called = tuple(dict.fromkeys(parsed.called))
    reasons = [cut_reason(cut_at)] if cut_at is not None else malformed_reasons(parsed)
    missing = sorted(case.expect - set(called))
    unexpected = [name for name in called if name not in case.expect]
    if missing:
        reasons.append(f"did not call {', '.join(missing)}")
    if unexpected:
        reasons.append(f"called {', '.join(unexpected)}, which the case does not expect")
    failed_checks = []
    for check in case.arg_checks:
        calls = [call for call in parsed.calls if call.name == check.tool]
        values = [call.arguments.get(check.argument) for call in calls]
        if values and not any(check.matches(value) for value in values):
            failed_checks.append(CheckFailure(check, values[0], given=check.argument in calls[0].arguments))
            reasons.append(f"argument check failed: {check.describe()}, got {values[0]!r}")
    expected = expected_calls(case, tools)
    return Verdict(
        passed=not reasons,
        called=called,
        reasons=tuple(reasons),
        schema_problems=schema_problems(parsed, tools),
        # A cut answer is never exact: what it would have written next is unknown (a call, for a no-call case).
        exact=None if expected is None else cut_at is None and is_exact_call(parsed, expected),
        failed_checks=tuple(failed_checks),
    )


def malformed_reasons(parsed: ParsedOutput) -> list[str]:
    """What could not be read of an answer: the answer's own problems, then each broken call's."""
    reasons = [f"malformed output: {problem}" for problem in parsed.problems]
    return reasons + [f"malformed call to {call.name or '?'}: {call.error}" for call in parsed.calls if call.error]


def expected_calls(case: Case, tools: Sequence[Tool]) -> list[tuple[str, dict]] | None:
    """The calls a case expects, when its argument checks say exactly what they are.

    That is: the reference calls a dataset row gives; or every check is a plain value (`equals`), and every expected tool has its arguments given
    (or declares none, so that `{}` is its only call); a case that expects no call expects the empty
    call list. A `contains` or `regex` check, or a tool with arguments left without checks, leaves the
    expected call open, and the case out of exact-call accuracy.
    """
    if case.reference_calls is not None:
        return [(call.name, dict(call.args)) for call in case.reference_calls]
    if any(check.operator != "equals" for check in case.arg_checks):
        return None
    arguments: dict[str, dict] = {name: {} for name in case.expect}
    for check in case.arg_checks:
        arguments[check.tool][check.argument] = check.expected
    declares_arguments = {tool.name: bool((tool.parameters or {}).get("properties")) for tool in tools}
    if any(not given and declares_arguments.get(name, True) for name, given in arguments.items()):
        return None
    return sorted(arguments.items())


def is_exact_call(parsed: ParsedOutput, expected: Iterable[tuple[str, dict]]) -> bool:
    """The whole call list equals the expected calls: same names, same argument dicts (no extra
    arguments), in any order. A malformed answer is never exact, whatever could be read of it."""
    if parsed.malformed:
        return False
    return Counter(_canonical(call.name, call.arguments) for call in parsed.calls) == Counter(
        _canonical(name, arguments) for name, arguments in expected
    )


def _canonical(name: str, arguments: Any) -> str:
    # Canonical JSON, so that 3 and 3.0, or true and 1, stay different values, and dicts compare
    # whatever their key order. repr() for what JSON cannot hold (a YAML date), which no parsed
    # call ever equals.
    return json.dumps([name, arguments], sort_keys=True, ensure_ascii=False, default=repr)
