"""What a case file declares, once read: a policy's tools, training examples and held-out cases.

Plain frozen data, whatever source it was read from (a YAML case file, a JSON Lines dataset).
`CaseFileError` is how every source reports a problem, naming the file, the entry, the field and,
where it can tell, the line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from ..functiongemma.chat_format import as_function_tool

NO_TOOL = "none"


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
    # The conversation the answer continues, when there is more than the prompt (as Case.conversation).
    conversation: tuple[Mapping[str, Any], ...] = field(default=(), hash=False)


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
    # The conversation so far when there is more than the prompt (cases/conversation.py): HF chat
    # messages ending with a user turn or a tool's response; `prompt` is its last user turn. Empty:
    # the prompt is the whole conversation. Dicts, so left out of the hash.
    conversation: tuple[Mapping[str, Any], ...] = field(default=(), hash=False)
    # The expected calls as a whole, arguments included, when the source gives them (a dataset row's
    # last assistant message): what exact-call accuracy compares with. They do not fail the test.
    reference_calls: tuple[Call, ...] | None = field(default=None, hash=False)
    # The invariance variant this case is (cases/variants.py: its tools declared otherwise, its id
    # `case[variant]`); None: the case as written.
    variant: str | None = None

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
    notes: tuple[str, ...] = field(default=(), compare=False)  # accepted, but the user should know
    variants: tuple[str, ...] = ()  # the invariance variants every case of the file gets (`variants:`)
    distractors: tuple[Tool, ...] = ()  # the tools its distractors variant adds (`distractors:`)

    @property
    def tool_schemas(self) -> list[dict]:
        return [tool.schema for tool in self.tools]

    @property
    def tool_names(self) -> tuple[str, ...]:
        return tuple(tool.name for tool in self.tools)


def normalise_prompt(prompt: str) -> str:
    return " ".join(prompt.casefold().split())
