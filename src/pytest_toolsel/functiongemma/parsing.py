"""Parse a model's answer into tool calls.

Model output is untrusted text: parsing never raises. Whatever cannot be read is recorded as a
problem next to the calls that could, and the raw text is always kept.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from .chat_format import END_CALL, ESCAPE, START_CALL

_INTEGER = re.compile(r"-?\d+")
_NUMBER = re.compile(r"-?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_NAME = re.compile(r"[^{}\s<>,:]+")
_BARE_END = ",}]"
# FunctionGemma writes a null value as `None`; `null` is what JSON-minded models (and pytest-toolsel
# checkpoints of format 1) write.
_LITERALS = {"true": True, "false": False, "None": None, "null": None}


@dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: dict[str, Any]
    error: str | None = None

    def as_dict(self) -> dict:
        record = {"name": self.name, "arguments": self.arguments}
        if self.error:
            record["error"] = self.error
        return record


@dataclass(frozen=True)
class ParsedOutput:
    text: str
    calls: tuple[ToolCall, ...] = ()
    problems: tuple[str, ...] = field(default=())

    @property
    def malformed(self) -> bool:
        return bool(self.problems) or any(call.error for call in self.calls)

    @property
    def called(self) -> tuple[str, ...]:
        return tuple(call.name for call in self.calls)


class _Malformed(ValueError):
    pass


class _Reader:
    """Recursive-descent reader for the argument syntax: `{key:value,...}` with escaped strings."""

    def __init__(self, text: str):
        self.text = text
        self.pos = 0

    def fail(self, what: str) -> _Malformed:
        snippet = self.text[self.pos : self.pos + 20]
        return _Malformed(f"{what} at offset {self.pos} (near {snippet!r})")

    def expect(self, token: str) -> None:
        if not self.text.startswith(token, self.pos):
            raise self.fail(f"expected {token!r}")
        self.pos += len(token)

    def value(self) -> Any:
        text, pos = self.text, self.pos
        if text.startswith(ESCAPE, pos):
            end = text.find(ESCAPE, pos + len(ESCAPE))
            if end < 0:
                raise self.fail("unterminated <escape> string")
            self.pos = end + len(ESCAPE)
            return text[pos + len(ESCAPE) : end]
        if text.startswith("{", pos):
            return self.mapping()
        if text.startswith("[", pos):
            return self.sequence()
        return self.bare()

    def bare(self) -> Any:
        end = self.pos
        while end < len(self.text) and self.text[end] not in _BARE_END:
            if self.text.startswith(ESCAPE, end) or self.text[end] in "{[":
                raise self.fail("unexpected structure inside a bare value")
            end += 1
        word = self.text[self.pos : end].strip()
        if not word:
            raise self.fail("missing value")
        self.pos = end
        if word in _LITERALS:
            return _LITERALS[word]
        if _INTEGER.fullmatch(word):
            return int(word)
        if _NUMBER.fullmatch(word):
            return float(word)
        # The real model sometimes leaves a string unescaped; keep it rather than reject the call.
        return word

    def mapping(self) -> dict:
        self.expect("{")
        result: dict[str, Any] = {}
        if self.text.startswith("}", self.pos):
            self.pos += 1
            return result
        while True:
            colon = self.text.find(":", self.pos)
            if colon < 0:
                raise self.fail("expected key:value")
            key = self.text[self.pos : colon].strip()
            if not key or any(ch in key for ch in "{}[],<>"):
                raise self.fail("malformed key")
            self.pos = colon + 1
            result[key] = self.value()
            if self.text.startswith(",", self.pos):
                self.pos += 1
            elif self.text.startswith("}", self.pos):
                self.pos += 1
                return result
            else:
                raise self.fail("expected ',' or '}'")

    def sequence(self) -> list:
        self.expect("[")
        items: list[Any] = []
        if self.text.startswith("]", self.pos):
            self.pos += 1
            return items
        while True:
            items.append(self.value())
            if self.text.startswith(",", self.pos):
                self.pos += 1
            elif self.text.startswith("]", self.pos):
                self.pos += 1
                return items
            else:
                raise self.fail("expected ',' or ']'")


def parse_call(body: str) -> ToolCall:
    """Parse the text between <start_function_call> and <end_function_call>."""
    if not body.startswith("call:"):
        name_match = _NAME.match(body.strip())
        name = name_match.group(0) if name_match else ""
        return ToolCall(name, {}, error=f"call does not start with 'call:': {body[:40]!r}")
    name_match = _NAME.match(body, len("call:"))
    if not name_match:
        return ToolCall("", {}, error="call has no tool name")
    name = name_match.group(0)
    reader = _Reader(body)
    reader.pos = name_match.end()
    try:
        arguments = reader.mapping()
        if reader.pos != len(body):
            raise reader.fail("unexpected text after the arguments")
    except _Malformed as problem:
        return ToolCall(name, {}, error=str(problem))
    return ToolCall(name, arguments)


def parse_output(text: str) -> ParsedOutput:
    calls: list[ToolCall] = []
    problems: list[str] = []
    pos = 0
    while True:
        start = text.find(START_CALL, pos)
        if start < 0:
            break
        body_start = start + len(START_CALL)
        end = text.find(END_CALL, body_start)
        if end < 0:
            problems.append("a function call was opened but never closed (output truncated?)")
            calls.append(parse_call(text[body_start:]))
            break
        calls.append(parse_call(text[body_start:end]))
        pos = end + len(END_CALL)
    if not calls and "call:" in text:
        problems.append("'call:' appears outside <start_function_call> markers")
    return ParsedOutput(text=text, calls=tuple(calls), problems=tuple(problems))
