"""A conversation so far, as a case may give it instead of a single prompt: user turns, the model's
earlier calls and the tools' responses, in the Hugging Face chat form (`role`, `content`,
`tool_calls`), ending where the model must answer next (a user turn or a tool's response).

Read into that same form, with calls normalised to `{type: function, function: {name, arguments}}`,
so that the chat template renders it like any Hugging Face conversation.
"""

from __future__ import annotations

from typing import Any, Mapping

from .suite import Tool
from .tools import ToolReferences

MESSAGE_KEYS = ("role", "content", "tool_calls", "name", "tool_call_id")
ROLES = ("user", "assistant", "tool")
CALL_KEYS = ("type", "id", "function", "name", "arguments")


class ConversationReader(ToolReferences):
    """Messages checked one by one; the calls in them must be to declared tools and arguments."""

    def read_conversation(
        self, value: Any, by_name: Mapping[str, Tool], keys: tuple, where: str, first: int = 0
    ) -> tuple[tuple[dict, ...], str]:
        """The normalised messages and the prompt they carry (the last user turn's text). `first`: the
        index of the first message in the list the user wrote (after a system message read apart)."""
        if not isinstance(value, list) or not value:
            raise self.error("a conversation must be a non-empty list of messages", keys, where)
        messages = tuple(self.read_message(m, first + i, by_name, keys + (i,), where) for i, m in enumerate(value))
        if messages[-1]["role"] not in ("user", "tool"):
            raise self.error(
                "the conversation must end where the model answers next: with a user message or a tool's response "
                f"(the last message is from {messages[-1]['role']!r})",
                keys + (len(messages) - 1,),
                where,
            )
        users = [m["content"] for m in messages if m["role"] == "user"]
        if not users:
            raise self.error("the conversation has no user message", keys, where)
        return messages, users[-1]

    def read_message(self, message: Any, index: int, by_name: Mapping[str, Tool], keys: tuple, where: str) -> dict:
        field = f"messages[{index}]"
        if not isinstance(message, dict):
            raise self.error(f"{field} must be a mapping with 'role' and 'content'", keys, where)
        self.check_keys(message, MESSAGE_KEYS, keys, where)
        role = message.get("role")
        if role not in ROLES:
            hint = " (the system text goes first, outside the conversation)" if role in ("system", "developer") else ""
            raise self.error(f"{field}.role must be one of {', '.join(ROLES)}, got {role!r}{hint}", keys + ("role",), where)
        content = message.get("content")
        if role == "user":
            if not isinstance(content, str) or not content.strip():
                raise self.error(f"{field}: a user message needs its text as 'content'", keys + ("content",), where)
            return {"role": "user", "content": content}
        if role == "assistant":
            return self.read_assistant(message, field, by_name, keys, where)
        return self.read_tool_response(message, field, keys, where)

    def read_assistant(self, message: dict, field: str, by_name: Mapping[str, Tool], keys: tuple, where: str) -> dict:
        content, calls = message.get("content"), message.get("tool_calls")
        if content is not None and not isinstance(content, str):
            raise self.error(f"{field}.content must be text", keys + ("content",), where)
        if calls is not None and (not isinstance(calls, list) or not calls):
            raise self.error(f"{field}.tool_calls must be a non-empty list of calls", keys + ("tool_calls",), where)
        if not calls and not (content or "").strip():
            raise self.error(f"{field}: an assistant message needs 'content' or 'tool_calls'", keys, where)
        read: dict[str, Any] = {"role": "assistant"}
        if content is not None:
            read["content"] = content
        if calls:
            read["tool_calls"] = [
                self.read_tool_call(call, f"{field}.tool_calls[{i}]", by_name, keys + ("tool_calls", i), where)
                for i, call in enumerate(calls)
            ]
        return read

    def read_tool_call(self, call: Any, field: str, by_name: Mapping[str, Tool], keys: tuple, where: str) -> dict:
        if not isinstance(call, dict):
            raise self.error(f"{field} must be a mapping with 'function': {{name, arguments}}", keys, where)
        self.check_keys(call, CALL_KEYS, keys, where)
        function = call.get("function", call)
        if not isinstance(function, dict):
            raise self.error(f"{field}.function must be a mapping with 'name' and 'arguments'", keys, where)
        tool = self.undeclared(function.get("name"), by_name, keys, where, f"{field}.name")
        arguments = function.get("arguments") or {}
        if not isinstance(arguments, dict):
            raise self.error(f"{field}.arguments must be a mapping of argument: value", keys, where)
        self.check_arg_names(tool, arguments, keys, where, f"{field}.arguments")
        return {"type": "function", "function": {"name": tool.name, "arguments": dict(arguments)}}

    def read_tool_response(self, message: dict, field: str, keys: tuple, where: str) -> dict:
        name, content = message.get("name"), message.get("content")
        if isinstance(name, str) and name:
            if content is None:
                raise self.error(f"{field}: a tool response needs its 'content'", keys, where)
            return {"role": "tool", "name": name, "content": content}
        parallel = isinstance(content, list) and content and all(
            isinstance(item, dict) and isinstance(item.get("name"), str) and isinstance(item.get("response"), dict)
            for item in content
        )
        if not parallel:
            raise self.error(
                f"{field}: a tool response needs the tool's 'name' (or, for parallel calls, content as a list of "
                "{name, response} with mapping responses)",
                keys,
                where,
            )
        return {"role": "tool", "content": content}

    def read_turns(self, entry: dict, by_name: Mapping[str, Tool], keys: tuple, where: str) -> tuple[str, tuple[dict, ...]]:
        """A case file entry's prompt, and with `messages:` the conversation it ends: the earlier turns,
        then the prompt as the last user turn (without a prompt, the messages end with a tool's response)."""
        if "messages" not in entry:
            return self.read_prompt(entry, keys, where), ()
        messages = entry["messages"]
        if not isinstance(messages, list) or not messages:
            raise self.error("field 'messages' must be a non-empty list of messages", keys + ("messages",), where)
        if "prompt" in entry:
            messages = [*messages, {"role": "user", "content": self.read_prompt(entry, keys, where)}]
        elif not (isinstance(messages[-1], dict) and messages[-1].get("role") == "tool"):
            raise self.error(
                "field 'prompt' is missing: give the user's prompt, or end 'messages' with a tool's response",
                keys, where,
            )
        conversation, prompt = self.read_conversation(messages, by_name, keys + ("messages",), where)
        return prompt, conversation
