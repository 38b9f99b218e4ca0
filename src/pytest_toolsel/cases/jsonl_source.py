"""Case files in JSON Lines: datasets in the Hugging Face conversational format TRL trains on.

One row a line: `{"messages": [...], "tools": [...]}`, with optional `id` and `metadata` / `split`.
The last assistant message is the expectation: its `tool_calls` are the expected tools and the
reference calls (for exact-call accuracy; a call without `arguments` names its tool only), a
text-only message means no call. Everything before
it is the conversation so far; a leading developer/system message is the row's system text. A row
whose `metadata` or `split` is `train` is a training example; every other row is a held-out case.

Every row may have its own tools and system text (BFCL; Mobile Actions' dated developer message),
so a file is read into one Suite per distinct (tools, system text), all under the file's path and
policy name. Every bad row is reported, each with its line, not just the first.
"""

from __future__ import annotations

import difflib
import json
import re
from pathlib import Path
from typing import Any

from .conversation import ConversationReader
from .suite import Call, Case, CaseFileError, Suite, TrainExample, Tool
from .tools import ToolsReader

ROW_KEYS = ("id", "messages", "tools", "metadata", "split")
TRAIN_SPLIT = "train"
MAX_REPORTED = 20  # bad rows listed in one error; the count of the rest follows
_ROW_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")


class CaseFileErrors(CaseFileError):
    """Several rows' problems, each naming its line, reported together."""

    def __init__(self, path: Path, errors: list[CaseFileError]):
        shown = [str(error) for error in errors[:MAX_REPORTED]]
        if len(errors) > MAX_REPORTED:
            shown.append(f"{path}: ... and {len(errors) - MAX_REPORTED} more bad rows")
        super().__init__(path, "\n".join(shown))
        self.errors = errors

    def __str__(self) -> str:
        return self.message


def looks_like_jsonl_case_file(path: Path) -> bool:
    """Ours: a `.jsonl` file whose first row is an object with `messages` and no keys but ROW_KEYS.

    Other JSON Lines files (logs, golden renderings with keys of their own) are left alone."""
    if path.suffix != ".jsonl":
        return False
    try:
        with path.open("rb") as handle:
            first = next((line for line in handle if line.strip()), b"")
        row = json.loads(first)
    except (OSError, ValueError):
        return False
    return isinstance(row, dict) and "messages" in row and set(row) <= set(ROW_KEYS)


def load_jsonl_suites(path: Path | str, display: Path | None = None) -> list[Suite]:
    path = Path(path)
    shown = display or path
    reader = RowReader(shown)
    errors: list[CaseFileError] = []
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise CaseFileError(shown, f"not valid UTF-8 (at byte offset {error.start})") from None
    for line_number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                reader.read_row(line, line_number)
            except CaseFileError as problem:
                errors.append(problem)
    if errors:
        raise CaseFileErrors(shown, errors)
    if not reader.rows:
        raise CaseFileError(shown, "no rows")
    return reader.suites()


class RowReader:
    """Rows read one at a time into per-(tools, system) groups of training examples and cases."""

    def __init__(self, path: Path):
        self.path = path
        self.rows = 0
        self._tools: dict[str, tuple[Tool, ...]] = {}  # tools JSON -> read tools (validated once)
        self._groups: dict[tuple[str, str | None], tuple[list, list, list]] = {}  # -> (train, lines, cases)
        self._ids: dict[str, int] = {}
        self.notes: list[str] = []  # what was accepted but deserves a word (see ToolsReader.unseen)

    def error(self, line: int, where: str, message: str) -> CaseFileError:
        return CaseFileError(self.path, message, where=where, line=line)

    def read_row(self, text: str, line: int) -> None:
        where = f"row {line}"
        try:
            row = json.loads(text)
        except json.JSONDecodeError as problem:
            raise self.error(line, where, f"not valid JSON ({problem.msg} at column {problem.colno})") from None
        if not isinstance(row, dict):
            raise self.error(line, where, "a row must be a JSON object with 'messages' and 'tools'")
        row_id = self.read_id(row, line)
        where = f"row {line} (id '{row_id}')" if "id" in row else where
        for key in row:
            if key not in ROW_KEYS:
                close = difflib.get_close_matches(str(key), ROW_KEYS, n=1)
                hint = f"; did you mean '{close[0]}'?" if close else f"; allowed: {', '.join(ROW_KEYS)}"
                raise self.error(line, where, f"unknown key '{key}'{hint}")
        tools = self.read_tools(row.get("tools"), line, where)
        by_name = {tool.name: tool for tool in tools}
        messages = row.get("messages")
        if not isinstance(messages, list) or len(messages) < 2:
            raise self.error(line, where, "field 'messages' must list the conversation and the assistant's answer")
        system, turns = self.read_system(messages, line, where)
        calls, answer = self.read_answer(turns[-1], f"messages[{len(messages) - 1}]", by_name, line, where)
        conversations = ConversationReader(self.path, None)
        try:
            conversation, prompt = conversations.read_conversation(
                turns[:-1], by_name, (), where, first=len(messages) - len(turns))
        except CaseFileError as problem:
            raise self.error(line, where, problem.message) from None
        if len(conversation) == 1:  # just the prompt: kept as one, like a YAML case's
            conversation = ()
        train, lines, cases = self._groups.setdefault((self._tools_key(row["tools"]), system), ([], [], []))
        self.rows += 1
        if TRAIN_SPLIT in (row.get("metadata"), row.get("split")):
            train.append(TrainExample(prompt, calls, answer, conversation=conversation))
            lines.append(line)
            return
        self.claim_id(row_id, line, where)
        cases.append(Case(
            id=row_id, prompt=prompt, expect=frozenset(call.name for call in calls), index=line, line=line,
            conversation=conversation, reference_calls=calls if self.gives_arguments(turns[-1]) else None,
        ))

    def read_id(self, row: dict, line: int) -> str:
        if "id" not in row:
            return f"line-{line}"
        row_id = row["id"]
        if not isinstance(row_id, str) or not _ROW_ID.match(row_id):
            raise self.error(line, f"row {line}", f"field 'id': {row_id!r} must start with a letter or digit and "
                             "contain only letters, digits, '_', '.', '-'")
        return row_id

    def claim_id(self, row_id: str, line: int, where: str) -> None:
        if row_id in self._ids:
            raise self.error(line, where, f"field 'id': duplicate id '{row_id}' (also row {self._ids[row_id]})")
        self._ids[row_id] = line

    def read_tools(self, value: Any, line: int, where: str) -> tuple[Tool, ...]:
        if value is None:
            raise self.error(line, where, "field 'tools' is missing: every row declares the tools it may call")
        key = self._tools_key(value)
        if key not in self._tools:
            unseen: list[str] = []
            try:
                self._tools[key] = ToolsReader(self.path, None, unseen).read_tools(value)
                self.notes.extend(f"{self.path}:{line}: {where}: {note}" for note in unseen)
            except CaseFileError as problem:
                inner = f"{problem.where}: " if problem.where else ""
                raise self.error(line, where, f"{inner}{problem.message}") from None
        return self._tools[key]

    def read_system(self, messages: list, line: int, where: str) -> tuple[str | None, list]:
        first = messages[0]
        if isinstance(first, dict) and first.get("role") in ("system", "developer"):
            content = first.get("content")
            if not isinstance(content, str):
                raise self.error(line, where, "messages[0]: the system/developer message needs its text as 'content'")
            return content, messages[1:]
        return None, messages

    def read_answer(self, message: Any, field: str, by_name: dict, line: int, where: str) -> tuple[tuple[Call, ...], str | None]:
        """The last message, the expectation: the calls it makes, or its text when it makes none."""
        if not isinstance(message, dict) or message.get("role") != "assistant":
            raise self.error(line, where, f"{field}: the last message must be the assistant's answer (its tool_calls, "
                             "or a text for no call)")
        reader = ConversationReader(self.path, None)
        try:
            read = reader.read_assistant(message, field, by_name, (), where)
        except CaseFileError as problem:
            raise self.error(line, where, problem.message) from None
        calls = tuple(Call(c["function"]["name"], c["function"]["arguments"]) for c in read.get("tool_calls", ()))
        return calls, None if calls else read.get("content")

    @staticmethod
    def gives_arguments(message: dict) -> bool:
        """Whether every call of the answer states its arguments (a call without an `arguments` key
        names the tool only: the row then has no reference call for exact-call accuracy)."""
        return all("arguments" in call.get("function", call) for call in message.get("tool_calls") or ())

    def suites(self) -> list[Suite]:
        policy = self.path.stem
        return [
            Suite(
                path=self.path, policy=policy, system=system, tools=self._tools[tools_key],
                train=tuple(train), cases=tuple(cases), train_lines=tuple(lines), notes=tuple(self.notes),
            )
            for (tools_key, system), (train, lines, cases) in self._groups.items()
        ]

    @staticmethod
    def _tools_key(value: Any) -> str:
        return json.dumps(value, sort_keys=True, ensure_ascii=False)
