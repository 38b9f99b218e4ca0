"""The FunctionGemma conversation format, byte for byte.

GOLDEN is the golden example of the format reference (FORMAT.md): what the real FunctionGemma
tokenizer's chat template produced for the seed tutorial's first training record. It is copied
here, not read from the reference, so the tests run wherever the package does.
"""

from __future__ import annotations

import pytest
from transformers import AutoTokenizer

from pytest_toolsel.chat_format import (
    BOS,
    CONTROL_TOKENS,
    DEFAULT_SYSTEM,
    END_OF_TURN,
    START_OF_TURN,
    as_function_tool,
    call_message,
    chat_template,
    prompt_messages,
    render,
)

GOLDEN = (
    "<bos><start_of_turn>developer\n"
    "You are a model that can do function calling with the following functions"
    "<start_function_declaration>declaration:search_knowledge_base{"
    "description:<escape>Search internal company documents, policies and project data.<escape>,"
    "parameters:{properties:{query:{description:<escape>query string<escape>,type:<escape>STRING<escape>} },"
    "required:[<escape>query<escape>],type:<escape>OBJECT<escape>} }<end_function_declaration>"
    "<start_function_declaration>declaration:search_google{"
    "description:<escape>Search public information.<escape>,"
    "parameters:{properties:{query:{description:<escape>query string<escape>,type:<escape>STRING<escape>} },"
    "required:[<escape>query<escape>],type:<escape>OBJECT<escape>} }<end_function_declaration>"
    "<end_of_turn>\n"
    "<start_of_turn>user\n"
    "What is the reimbursement limit for travel meals?<end_of_turn>\n"
    "<start_of_turn>model\n"
    "<start_function_call>call:search_knowledge_base{query:<escape>travel meal reimbursement limit policy<escape>}"
    "<end_function_call><start_function_response>"
)
QUERY = {"type": "object", "properties": {"query": {"type": "string", "description": "query string"}}, "required": ["query"]}
SEED_TOOLS = [
    as_function_tool("search_knowledge_base", "Search internal company documents, policies and project data.", QUERY),
    as_function_tool("search_google", "Search public information.", QUERY),
]
SEED_MESSAGES = prompt_messages("What is the reimbursement limit for travel meals?") + [
    call_message([("search_knowledge_base", {"query": "travel meal reimbursement limit policy"})])
]


def declaration(text: str) -> str:
    """The one `<start_function_declaration>...<end_function_declaration>` in a rendering."""
    start = text.index("<start_function_declaration>")
    end = text.index("<end_function_declaration>") + len("<end_function_declaration>")
    assert text.count("<start_function_declaration>") == 1
    return text[start:end]


def test_golden_example_through_render():
    assert render(SEED_MESSAGES, SEED_TOOLS, add_generation_prompt=False) == GOLDEN


@pytest.fixture(scope="module")
def reloaded_tokenizer(tiny_tokenizer, tmp_path_factory):
    """The test tokenizer after a save/load round trip, as a checkpoint ships it."""
    directory = tmp_path_factory.mktemp("tokenizer")
    tiny_tokenizer.save_pretrained(directory)
    return AutoTokenizer.from_pretrained(directory)


def test_golden_example_through_a_saved_tokenizer(reloaded_tokenizer):
    assert reloaded_tokenizer.chat_template == chat_template()
    text = reloaded_tokenizer.apply_chat_template(
        SEED_MESSAGES, tools=SEED_TOOLS, add_generation_prompt=False, tokenize=False
    )
    assert text == GOLDEN


@pytest.mark.parametrize("token", [*CONTROL_TOKENS, START_OF_TURN, END_OF_TURN, BOS])
def test_control_tokens_are_single_tokens(reloaded_tokenizer, token):
    ids = reloaded_tokenizer.encode(token, add_special_tokens=False)
    assert len(ids) == 1
    assert reloaded_tokenizer.decode(ids) == token


def test_golden_example_tokenizes_control_tokens_whole(reloaded_tokenizer):
    ids = reloaded_tokenizer.encode(GOLDEN, add_special_tokens=False)
    assert reloaded_tokenizer.decode(ids) == GOLDEN
    assert ids[0] == reloaded_tokenizer.bos_token_id
    escape_id = reloaded_tokenizer.convert_tokens_to_ids("<escape>")
    assert ids.count(escape_id) == GOLDEN.count("<escape>")


def test_generation_prompt_ends_with_the_model_turn():
    text = render(prompt_messages("What is the weather in Paris?"), SEED_TOOLS, add_generation_prompt=True)
    assert text.endswith("<start_of_turn>user\nWhat is the weather in Paris?<end_of_turn>\n<start_of_turn>model\n")
    prefix = GOLDEN[: GOLDEN.index("<start_of_turn>user\n")]
    assert text.startswith(prefix)


def test_without_tools_or_system_there_is_no_developer_turn():
    text = render(prompt_messages("hi"), None, add_generation_prompt=True)
    assert text == "<bos><start_of_turn>user\nhi<end_of_turn>\n<start_of_turn>model\n"


def test_default_system_message():
    text = render(prompt_messages("hi"), SEED_TOOLS[1:], add_generation_prompt=False)
    assert text.startswith(f"<bos><start_of_turn>developer\n{DEFAULT_SYSTEM}<start_function_declaration>")


@pytest.mark.parametrize("role", ["developer", "system"])
def test_custom_system_message_replaces_the_default(role):
    messages = [{"role": role, "content": "Route HR questions to the knowledge base."}, {"role": "user", "content": "hi"}]
    text = render(messages, SEED_TOOLS, add_generation_prompt=True)
    assert DEFAULT_SYSTEM not in text
    assert text.startswith(
        "<bos><start_of_turn>developer\nRoute HR questions to the knowledge base."
        "<start_function_declaration>declaration:search_knowledge_base{"
    )
    assert text == render(prompt_messages("hi", system="Route HR questions to the knowledge base."), SEED_TOOLS, add_generation_prompt=True)
    assert text.count("<start_of_turn>developer") == 1


def test_system_message_without_tools():
    text = render(prompt_messages("hi", system="Be brief."), None, add_generation_prompt=False)
    assert text == "<bos><start_of_turn>developer\nBe brief.<end_of_turn>\n<start_of_turn>user\nhi<end_of_turn>\n"


# Declarations: the template writes fields in a fixed order (description, enum, items, properties,
# required, type), closes every `properties:{...` with ` }` and upper-cases the type.


@pytest.mark.parametrize(
    ("prop", "rendered"),
    [
        ({"type": "integer", "enum": [1, 2]}, "a:{enum:[1,2],type:<escape>INTEGER<escape>}"),
        (
            {"enum": ["c", "f"], "description": "unit", "type": "string"},
            "a:{description:<escape>unit<escape>,enum:[<escape>c<escape>,<escape>f<escape>],type:<escape>STRING<escape>}",
        ),
        (
            {"type": "array", "items": {"type": "number"}, "description": "xs"},
            "a:{description:<escape>xs<escape>,items:{type:<escape>NUMBER<escape>},type:<escape>ARRAY<escape>}",
        ),
        (
            {"type": "array", "items": {"type": "string", "enum": ["x", "y"]}},
            "a:{items:{enum:[<escape>x<escape>,<escape>y<escape>],type:<escape>STRING<escape>},type:<escape>ARRAY<escape>}",
        ),
        (
            {"type": "object", "required": ["d"], "properties": {"d": {"type": "boolean"}, "e": {"type": "null"}}},
            "a:{properties:{d:{type:<escape>BOOLEAN<escape>},e:{type:<escape>NULL<escape>} },"
            "required:[<escape>d<escape>],type:<escape>OBJECT<escape>}",
        ),
        ({}, "a:{}"),
    ],
    ids=["int-enum", "string-enum", "array", "array-of-enum", "nested-object", "untyped"],
)
def test_property_declarations(prop, rendered):
    tool = as_function_tool("f", "d", {"type": "object", "properties": {"a": prop}})
    text = render(prompt_messages("hi"), [tool], add_generation_prompt=False)
    assert declaration(text) == (
        "<start_function_declaration>declaration:f{description:<escape>d<escape>,"
        f"parameters:{{properties:{{{rendered} }},type:<escape>OBJECT<escape>}} }}<end_function_declaration>"
    )


def test_declaration_without_description_or_parameters():
    bare = render(prompt_messages("hi"), [as_function_tool("ping", None, None)], add_generation_prompt=False)
    assert declaration(bare) == "<start_function_declaration>declaration:ping{ }<end_function_declaration>"
    no_desc = render(prompt_messages("hi"), [as_function_tool("ping", None, {"type": "object"})], add_generation_prompt=False)
    assert declaration(no_desc) == (
        "<start_function_declaration>declaration:ping{parameters:{type:<escape>OBJECT<escape>} }<end_function_declaration>"
    )


def test_declarations_render_deterministically_in_the_order_given():
    tools = [
        as_function_tool("b", "second", {"type": "object", "properties": {"z": {"type": "string"}, "y": {"type": "integer"}}}),
        as_function_tool("a", "first", None),
    ]
    once = render(prompt_messages("hi"), tools, add_generation_prompt=True)
    assert once == render(prompt_messages("hi"), tools, add_generation_prompt=True)
    assert once.index("declaration:b{") < once.index("declaration:a{")
    assert "properties:{z:{type:<escape>STRING<escape>},y:{type:<escape>INTEGER<escape>} }" in once


def test_plain_and_wrapped_tool_forms_render_identically():
    plain = [{"name": s["function"]["name"], **s["function"]} for s in SEED_TOOLS]
    assert all("type" not in tool for tool in plain)
    messages = prompt_messages("What is the reimbursement limit for travel meals?")
    assert render(messages, plain, add_generation_prompt=True) == render(messages, SEED_TOOLS, add_generation_prompt=True)
    assert render(SEED_MESSAGES, plain, add_generation_prompt=False) == GOLDEN


def test_call_argument_values():
    args = {"s": "x", "i": -3, "f": 2.5, "t": True, "n": None, "l": [1, "a", []], "o": {"k": {"j": False}}}
    text = render(prompt_messages("hi") + [call_message([("f", args)])], None, add_generation_prompt=False)
    assert text.endswith(
        "<start_of_turn>model\n<start_function_call>call:f{s:<escape>x<escape>,i:-3,f:2.5,t:true,n:null,"
        "l:[1,<escape>a<escape>,[]],o:{k:{j:false}}}<end_function_call><start_function_response>"
    )


def test_tool_response_and_final_answer_stay_in_the_model_turn():
    messages = SEED_MESSAGES + [
        {"role": "tool", "name": "search_knowledge_base", "content": {"limit": 50, "currency": "USD"}},
        {"role": "assistant", "content": "The limit is 50 USD."},
    ]
    text = render(messages, SEED_TOOLS, add_generation_prompt=False)
    assert text == (
        GOLDEN.removesuffix("<start_function_response>")
        + "<start_function_response>response:search_knowledge_base{limit:50,currency:<escape>USD<escape>}"
        "<end_function_response>The limit is 50 USD.<end_of_turn>\n"
    )
