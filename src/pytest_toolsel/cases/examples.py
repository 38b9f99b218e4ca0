"""The `train:` examples of a case file: a prompt (or a conversation) and the calls (or the text answer) to teach."""

from __future__ import annotations

from typing import Any, Mapping

from .suite import NO_TOOL, Call, Tool, TrainExample
from .conversation import ConversationReader

TRAIN_KEYS = ("prompt", "messages", "call", "args", "answer")
CALL_KEYS = ("name", "args")


class ExamplesReader(ConversationReader):
    """One training example at a time; its calls name declared tools with declared arguments."""

    def read_train(self, entry: Any, index: int, by_name: Mapping[str, Tool]) -> TrainExample:
        keys: tuple = ("train", index)
        where = f"train[{index}]"
        if not isinstance(entry, dict):
            raise self.error("a training example must be a mapping with 'prompt' and 'call'", keys, where)
        self.check_keys(entry, TRAIN_KEYS, keys, where)
        prompt, conversation = self.read_turns(entry, by_name, keys, where)
        if "call" not in entry:
            raise self.error("field 'call' is missing (a tool name, a list of {name, args}, or none)", keys, where)
        spec = entry["call"]
        if spec is None or spec == NO_TOOL:
            if "args" in entry:
                raise self.error("field 'args': an example with 'call: none' calls nothing", keys + ("args",), where)
            answer = entry.get("answer")
            if not isinstance(answer, str) or not answer.strip():
                raise self.error("field 'answer': an example that calls no tool needs the text answer", keys, where)
            return TrainExample(prompt=prompt, calls=(), answer=answer, conversation=conversation)
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
        return TrainExample(prompt=prompt, calls=calls, conversation=conversation)

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
