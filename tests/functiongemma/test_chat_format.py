"""The FunctionGemma conversation format, byte for byte.

tests/data/format-goldens.jsonl holds 21 conversations rendered by the real FunctionGemma chat
template through transformers' own renderer (copied from the project's format reference, so the
tests run wherever the package does). Our template must render every one of them identically,
directly and through a tokenizer that saved it, as a checkpoint ships it.
"""

from __future__ import annotations

import pytest
from jinja2.exceptions import TemplateError
from transformers import AutoTokenizer

from conftest import GOLDENS
from pytest_toolsel.functiongemma.chat_format import (
    BOS,
    CONTROL_TOKENS,
    END_OF_TURN,
    START_OF_TURN,
    as_function_tool,
    call_message,
    chat_template,
    prompt_messages,
    render,
)

SEED = GOLDENS[0]  # the seed tutorial's first training record


def golden_id(golden: dict) -> str:
    return golden["name"].split(":")[0].replace(" ", "-")[:40] + f"-{GOLDENS.index(golden)}"


@pytest.fixture(scope="module")
def reloaded_tokenizer(tiny_tokenizer, tmp_path_factory):
    """The test tokenizer after a save/load round trip, as a checkpoint ships it."""
    directory = tmp_path_factory.mktemp("tokenizer")
    tiny_tokenizer.save_pretrained(directory)
    return AutoTokenizer.from_pretrained(directory)


def test_there_are_21_goldens():
    assert len(GOLDENS) == 21


@pytest.mark.parametrize("golden", GOLDENS, ids=golden_id)
def test_golden_through_render(golden):
    text = render(golden["messages"], golden["tools"], add_generation_prompt=golden["add_generation_prompt"])
    assert text == golden["expected"]


@pytest.mark.parametrize("golden", GOLDENS, ids=golden_id)
def test_golden_through_a_saved_tokenizer(reloaded_tokenizer, golden):
    assert reloaded_tokenizer.chat_template == chat_template()
    text = reloaded_tokenizer.apply_chat_template(
        golden["messages"], tools=golden["tools"], add_generation_prompt=golden["add_generation_prompt"], tokenize=False
    )
    assert text == golden["expected"]


@pytest.mark.parametrize("token", [*CONTROL_TOKENS, START_OF_TURN, END_OF_TURN, BOS])
def test_control_tokens_are_single_tokens(reloaded_tokenizer, token):
    ids = reloaded_tokenizer.encode(token, add_special_tokens=False)
    assert len(ids) == 1
    assert reloaded_tokenizer.decode(ids) == token


def test_golden_example_tokenizes_control_tokens_whole(reloaded_tokenizer):
    golden = SEED["expected"]
    ids = reloaded_tokenizer.encode(golden, add_special_tokens=False)
    assert reloaded_tokenizer.decode(ids) == golden
    assert ids[0] == reloaded_tokenizer.bos_token_id
    escape_id = reloaded_tokenizer.convert_tokens_to_ids("<escape>")
    assert ids.count(escape_id) == golden.count("<escape>")


def test_our_message_builders_render_the_seed_golden():
    """What training and evaluation build (prompt_messages, call_message) is the golden conversation."""
    messages = prompt_messages("What is the reimbursement limit for travel meals?") + [
        call_message([("search_knowledge_base", {"query": "travel meal reimbursement limit policy"})])
    ]
    assert render(messages, SEED["tools"], add_generation_prompt=False) == SEED["expected"]


def test_generation_prompt_is_the_training_text_up_to_the_answer():
    """A prompt rendered for generation is a prefix of the same conversation with its answer."""
    prompt = render(SEED["messages"][:2], SEED["tools"], add_generation_prompt=True)
    assert SEED["expected"].startswith(prompt)
    assert prompt.endswith("<start_of_turn>model\n")


def test_plain_and_wrapped_tool_forms_render_identically():
    plain = [dict(tool["function"]) for tool in SEED["tools"]]
    assert render(SEED["messages"], plain, add_generation_prompt=False) == SEED["expected"]


def test_as_function_tool_renders_like_the_published_form():
    tools = [as_function_tool(t["function"]["name"], t["function"]["description"], t["function"]["parameters"]) for t in SEED["tools"]]
    assert tools == SEED["tools"]


def declaration(text: str) -> str:
    """The one `<start_function_declaration>...<end_function_declaration>` in a rendering."""
    assert text.count("<start_function_declaration>") == 1
    start = text.index("<start_function_declaration>")
    return text[start : text.index("<end_function_declaration>") + len("<end_function_declaration>")]


def declared(properties: dict) -> str:
    tool = as_function_tool("f", "d", {"type": "object", "properties": properties})
    return declaration(render(prompt_messages("hi"), [tool], add_generation_prompt=False))


# Quirks of the real template (FORMAT.md). The template reproduces them, so that a checkpoint sees
# the same bytes under it as under Google's; case files refuse the inputs that would hit them.


def test_quirk_properties_named_like_schema_keywords_are_left_out():
    text = declared({"type": {"type": "string"}, "description": {"type": "string"}, "keep": {"type": "string"}})
    assert "properties:{keep:{description:<escape><escape>,type:<escape>STRING<escape>}}" in text
    assert "description:{" not in text and "type:{" not in text


def test_quirk_union_types_print_as_a_python_list():
    text = declared({"a": {"type": ["string", "null"]}})
    assert "a:{description:<escape><escape>,type:<escape>['STRING', 'NULL']<escape>}" in text


def test_quirk_enum_is_written_only_for_strings():
    assert "enum" not in declared({"a": {"type": "integer", "enum": [1, 2]}})
    assert "enum:[<escape>x<escape>]" in declared({"a": {"type": "STRING", "enum": ["x"]}})


def test_quirk_json_string_arguments_are_pasted_raw():
    message = {"role": "assistant", "tool_calls": [{"type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}}]}
    text = render(prompt_messages("hi") + [message], None, add_generation_prompt=False)
    assert text.endswith('<start_function_call>call:f{' + " " * 20 + '{"a": 1}}<end_function_call><start_function_response>')


def test_quirk_a_user_message_after_a_tool_response_stays_in_the_model_turn():
    messages = SEED["messages"] + [
        {"role": "tool", "name": "search_knowledge_base", "content": "50 USD"},
        {"role": "user", "content": "And for hotels?"},
    ]
    text = render(messages, SEED["tools"], add_generation_prompt=True)
    assert text.endswith("<end_function_response>And for hotels?<end_of_turn>\n<start_of_turn>model\n")


@pytest.mark.parametrize(
    "tool_message",
    [{"role": "tool", "content": "81%"}, {"role": "tool", "content": [{"name": "f", "response": "text"}]}],
    ids=["string-without-name", "list-with-string-response"],
)
def test_quirk_unnamed_or_unstructured_tool_responses_are_errors(tool_message):
    with pytest.raises(TemplateError):
        render(prompt_messages("hi") + [tool_message], None, add_generation_prompt=True)


def test_call_argument_values():
    args = {"s": "x", "i": -3, "f": 2.5, "t": True, "n": None, "L": [1, "a", []], "o": {"k": {"J": False, "a": 1e-05}}}
    text = render(prompt_messages("hi") + [call_message([("f", args)])], None, add_generation_prompt=False)
    assert text.endswith(
        "<start_of_turn>model\n<start_function_call>call:f{f:2.5,i:-3,L:[1,<escape>a<escape>,[]],n:None,"
        "o:{k:{a:1e-05,J:false}},s:<escape>x<escape>,t:true}<end_function_call><start_function_response>"
    )
