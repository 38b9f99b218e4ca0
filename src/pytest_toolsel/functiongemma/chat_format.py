"""The FunctionGemma conversation format: control tokens, the chat template, prompt rendering.

The Jinja template shipped beside this module is the single source of truth for the format: the
prompts we evaluate, the examples we train on and the template saved with every checkpoint are all
rendered by it, so they can never drift apart.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from typing import Any, Mapping, Sequence

START_DECLARATION = "<start_function_declaration>"
END_DECLARATION = "<end_function_declaration>"
START_CALL = "<start_function_call>"
END_CALL = "<end_function_call>"
START_RESPONSE = "<start_function_response>"
END_RESPONSE = "<end_function_response>"
ESCAPE = "<escape>"
CONTROL_TOKENS = (
    START_DECLARATION,
    END_DECLARATION,
    START_CALL,
    END_CALL,
    START_RESPONSE,
    END_RESPONSE,
    ESCAPE,
)
# FunctionGemma's vocabulary is Gemma 3's with the placeholders `<unused40>`..`<unused46>` renamed to
# the control tokens: same size (262,144), same id for every token.
FUNCTIONGEMMA_TOKEN_IDS = {token: 46 + offset for offset, token in enumerate(CONTROL_TOKENS)}
GEMMA3_PLACEHOLDERS = {token: f"<unused{40 + offset}>" for offset, token in enumerate(CONTROL_TOKENS)}
# The conversation format our checkpoints speak, recorded in their toolsel.json. 1 was pytest-toolsel's
# own dialect (` }` closing declarations, `null`, unsorted keys, control tokens appended at 262144+);
# 2 is the real FunctionGemma format, byte for byte, with FunctionGemma's token ids.
FORMAT_VERSION = 2
START_OF_TURN = "<start_of_turn>"
END_OF_TURN = "<end_of_turn>"
BOS = "<bos>"
# Generation stops at either: a tool-calling answer ends by opening the response slot.
STOP_STRINGS = (START_RESPONSE, END_OF_TURN)

DEFAULT_SYSTEM = "You are a model that can do function calling with the following functions"

Message = Mapping[str, Any]
ToolSchema = Mapping[str, Any]


@cache
def chat_template() -> str:
    return files(__package__).joinpath("functiongemma.jinja").read_text(encoding="utf-8")


def as_function_tool(name: str, description: str | None, parameters: Mapping | None) -> dict:
    """The OpenAI/HF `{type: function, function: {...}}` form that chat templates receive."""
    function: dict[str, Any] = {"name": name}
    if description is not None:
        function["description"] = description
    if parameters is not None:
        function["parameters"] = parameters
    return {"type": "function", "function": function}


def prompt_messages(user: str, system: str | None = None, conversation: Sequence[Message] = ()) -> list[dict]:
    """The messages a prompt is rendered from: the developer turn, then the conversation so far
    (when a case gives one, it ends with `user`'s turn or a tool's response) or just `user`'s turn."""
    messages = [{"role": "developer", "content": system}] if system is not None else []
    if conversation:
        messages.extend(dict(message) for message in conversation)
    else:
        messages.append({"role": "user", "content": user})
    return messages


def call_message(calls: Sequence[tuple[str, Mapping]]) -> dict:
    """An assistant turn that calls the given tools, in the HF `tool_calls` form."""
    return {
        "role": "assistant",
        "tool_calls": [
            {"type": "function", "function": {"name": name, "arguments": dict(args)}}
            for name, args in calls
        ],
    }


def render(
    messages: Sequence[Message],
    tools: Sequence[ToolSchema] | None,
    *,
    add_generation_prompt: bool,
    template: str | None = None,
    bos_token: str = BOS,
) -> str:
    """Render a conversation the way `tokenizer.apply_chat_template(..., tokenize=False)` does.

    Uses transformers' own Jinja environment, so a tokenizer carrying the same template renders
    byte for byte the same text.
    """
    from transformers.utils.chat_template_utils import render_jinja_template

    rendered, _ = render_jinja_template(
        conversations=[list(messages)],
        tools=list(tools) if tools else None,
        chat_template=template or chat_template(),
        add_generation_prompt=add_generation_prompt,
        bos_token=bos_token,
        eos_token="<eos>",
    )
    return rendered[0]
