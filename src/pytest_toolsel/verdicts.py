"""Verdicts: did the model call exactly the expected tools (and pass the argument checks)?"""

from __future__ import annotations

from dataclasses import dataclass

from .casefile import Case
from .parsing import ParsedOutput


@dataclass(frozen=True)
class Verdict:
    passed: bool
    called: tuple[str, ...]  # distinct tool names, in the order first called
    reasons: tuple[str, ...] = ()


def judge(case: Case, parsed: ParsedOutput) -> Verdict:
    called = tuple(dict.fromkeys(parsed.called))
    reasons = [f"malformed output: {problem}" for problem in parsed.problems]
    reasons += [f"malformed call to {call.name or '?'}: {call.error}" for call in parsed.calls if call.error]
    missing = sorted(case.expect - set(called))
    unexpected = [name for name in called if name not in case.expect]
    if missing:
        reasons.append(f"did not call {', '.join(missing)}")
    if unexpected:
        reasons.append(f"called {', '.join(unexpected)}, which the case does not expect")
    for check in case.arg_checks:
        values = [call.arguments.get(check.argument) for call in parsed.calls if call.name == check.tool]
        if values and not any(check.matches(value) for value in values):
            reasons.append(f"argument check failed: {check.describe()}, got {values[0]!r}")
    return Verdict(passed=not reasons, called=called, reasons=tuple(reasons))
