"""What TRL actually trains on: the rows reaching the loss, rendered, masked and never cut.

Each test fine-tunes the tiny base through the real `train` (real transformers, real TRL) and
records the batches its loss function receives, then compares every row with the rendering of
the case file's own example.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from transformers import AutoTokenizer

from conftest import TOOLS, case_file
from pytest_toolsel.cases.yaml_source import load_suite
from pytest_toolsel.cli import main as toolsel_train
from pytest_toolsel.functiongemma.chat_format import as_function_tool, call_message, prompt_messages, render
from pytest_toolsel.training import trainer
from pytest_toolsel.training.data import tokenized_row, training_records
from pytest_toolsel.training.recipe import Recipe, RecipeError, load_recipe

ROOT = Path(__file__).resolve().parents[2]
IGNORED = -100

CONTACT_TOOLS_YAML = """\
policy: contacts
tools:
  - name: create_contact
    description: Add a person to the address book.
    parameters:
      type: object
      properties:
        first_name: {type: string, description: given name}
        phone_number: {type: string, description: phone number}
      required: [first_name, phone_number]
"""
CREATE_CONTACT = as_function_tool(
    "create_contact",
    "Add a person to the address book.",
    {
        "type": "object",
        "properties": {
            "first_name": {"type": "string", "description": "given name"},
            "phone_number": {"type": "string", "description": "phone number"},
        },
        "required": ["first_name", "phone_number"],
    },
)


@pytest.fixture
def trained_rows(monkeypatch):
    """Every (input_ids, labels) row the training loss receives, padding removed, as lists."""
    rows: list[tuple[list[int], list[int]]] = []
    real_loss = trainer.weighted_answer_loss

    def recording_loss(model, input_ids, attention_mask, labels, *head, **options):
        for ids, mask, row_labels in zip(input_ids, attention_mask, labels):
            keep = mask.bool()
            rows.append((ids[keep].tolist(), row_labels[keep].tolist()))
        return real_loss(model, input_ids, attention_mask, labels, *head, **options)

    monkeypatch.setattr(trainer, "weighted_answer_loss", recording_loss)
    return rows


def rendered(prompt: str, answer: dict, tools: list[dict]) -> tuple[str, str]:
    """(prompt text, answer text) as the chat template renders the example for generation."""
    messages = prompt_messages(prompt)
    start = render(messages, tools, add_generation_prompt=True)
    full = render(messages + [answer], tools, add_generation_prompt=False)
    assert full.startswith(start)
    return start, full[len(start) :]


def as_text(tokenizer, rows) -> list[tuple[str, str]]:
    """Each row as (prompt text, answer text): the tokens before the first labelled one, and the
    labelled ones, which must run to the end of the row (the loss covers the whole answer, nothing else)."""
    texts = []
    for ids, labels in rows:
        answer = [position for position, label in enumerate(labels) if label != IGNORED]
        assert answer, f"a row without loss reached the trainer: {tokenizer.decode(ids)!r}"
        first = answer[0]
        assert answer == list(range(first, len(ids))), "the loss mask is not exactly the answer at the end of the row"
        assert labels[first:] == ids[first:]
        texts.append((tokenizer.decode(ids[:first]), tokenizer.decode(ids[first:])))
    return texts


def fast_recipe(**overrides) -> Recipe:
    """The shipped recipe, one optimiser step over everything (one batch)."""
    return load_recipe(ROOT / "tuning" / "recipe.yaml", {"epochs": 1, "batch_size": 16, **overrides})


def test_each_policy_trains_on_exactly_its_own_calls(tmp_path, tiny_base, trained_rows):
    weather = tmp_path / "weather.yaml"
    weather.write_text(case_file(
        "- prompt: held out\n  expect: get_weather\n",
        extra="train:\n"
        "  - prompt: Weather in Lima?\n    call: get_weather\n    args: {city: Lima}\n"
        "  - prompt: ACME and Rome\n    call:\n"
        "      - {name: get_stock_price, args: {ticker: ACME}}\n"
        "      - {name: get_weather, args: {city: Rome}}\n"
        "  - prompt: Hi there\n    call: none\n    answer: Hello!\n",
    ))
    contacts = tmp_path / "contacts.yaml"
    contacts.write_text(case_file(
        "- prompt: held out\n  expect: create_contact\n",
        extra="train:\n"
        "  - prompt: Save Ana, her number is 555 0101\n    call: create_contact\n"
        "    args: {first_name: Ana, phone_number: '555 0101'}\n",
        tools=CONTACT_TOOLS_YAML,
    ))
    trainer.train([load_suite(weather), load_suite(contacts)], str(tiny_base), tmp_path / "ckpt", fast_recipe())

    expected = [
        rendered("Weather in Lima?", call_message([("get_weather", {"city": "Lima"})]), TOOLS),
        rendered("ACME and Rome", call_message([("get_stock_price", {"ticker": "ACME"}), ("get_weather", {"city": "Rome"})]), TOOLS),
        rendered("Hi there", {"role": "assistant", "content": "Hello!"}, TOOLS),
        rendered("Save Ana, her number is 555 0101",
                 call_message([("create_contact", {"first_name": "Ana", "phone_number": "555 0101"})]), [CREATE_CONTACT]),
    ]
    texts = as_text(AutoTokenizer.from_pretrained(tiny_base), trained_rows)
    answers = sorted(answer for _, answer in texts)
    for answer in answers:  # no argument of another policy's tools leaks in, as None or null
        assert "None" not in answer and "null" not in answer, answer
    assert answers == sorted(answer for _, answer in expected)
    assert sorted(texts) == sorted(expected)


LONG_PROMPT = "File R-77 for the audit"
LONG_ANSWER = call_message([("records_6", {"reference_6": "R-77"})])


def long_policy(path: Path) -> tuple[list[dict], int]:
    """A policy of seven tools whose training row is longer than the old 512-token limit (shorter
    than the tiny model's 1024 positions); returns its tools and the line of its training example."""
    tools = [
        as_function_tool(
            f"records_{number}",
            f"Records office tool {number}: files the documents of department {number}.",
            {"type": "object", "properties": {f"reference_{number}": {"type": "string", "description": "document reference"}},
             "required": [f"reference_{number}"]},
        )
        for number in range(7)
    ]
    header = yaml.safe_dump({"policy": "records", "tools": [tool["function"] for tool in tools]}, sort_keys=False)
    example = f"  - prompt: {LONG_PROMPT}\n    call: records_6\n    args: {{reference_6: R-77}}\n"
    path.write_text(case_file("- prompt: held out\n  expect: records_0\n", extra="train:\n" + example, tools=header))
    return tools, header.count("\n") + 2


@pytest.mark.parametrize("limit", ["shipped: null, follows the data", "set: exactly the row's length"])
def test_a_prompt_longer_than_the_old_512_token_limit_is_trained_whole(tmp_path, tiny_base, trained_rows, limit):
    tools, _ = long_policy(tmp_path / "records.yaml")
    tokenizer = AutoTokenizer.from_pretrained(tiny_base)
    prompt, answer = rendered(LONG_PROMPT, LONG_ANSWER, tools)
    length = len(tokenizer(prompt + answer, add_special_tokens=False)["input_ids"])
    assert 512 < length <= 1024

    recipe = fast_recipe() if limit.startswith("shipped") else fast_recipe(max_length=length)
    trainer.train([load_suite(tmp_path / "records.yaml")], str(tiny_base), tmp_path / "ckpt", recipe)
    assert as_text(tokenizer, trained_rows) == [(prompt, answer)]


def test_an_explicit_max_length_that_an_example_exceeds_names_its_file_line_and_length(tmp_path, tiny_base, capsys):
    tools, line = long_policy(tmp_path / "records.yaml")
    prompt, answer = rendered(LONG_PROMPT, LONG_ANSWER, tools)
    length = len(AutoTokenizer.from_pretrained(tiny_base)(prompt + answer, add_special_tokens=False)["input_ids"])
    assert (tmp_path / "records.yaml").read_text().splitlines()[line - 1].startswith("  - prompt: File R-77")

    code = toolsel_train([str(tmp_path / "records.yaml"), "--output", str(tmp_path / "ckpt"),
                          "--base-model", str(tiny_base), "--set", "max_length=512", "--set", "epochs=1"])
    error = capsys.readouterr().err
    assert code == 2, error
    assert f"{tmp_path / 'records.yaml'}:{line}" in error
    assert "'records'" in error and f"{length} tokens" in error and "max_length 512" in error
    assert not (tmp_path / "ckpt").exists()


def test_the_shipped_recipe_lets_the_sequence_length_follow_the_data():
    assert load_recipe(ROOT / "tuning" / "recipe.yaml").max_length is None
    assert Recipe().max_length is None
    assert load_recipe(None, {"max_length": 768}).max_length == 768
    for bad in ("long", 0, -5, 1.5):
        with pytest.raises(RecipeError, match="max_length"):
            load_recipe(None, {"max_length": bad})


def test_training_rows_are_the_chat_template_rendering_with_the_answer_masked(tmp_path, tiny_base):
    """The rows built before TRL sees them: the tokenizer's own rendering, the loss mask on the answer."""
    contacts = tmp_path / "contacts.yaml"
    contacts.write_text(case_file(
        "- prompt: held out\n  expect: create_contact\n",
        extra="train:\n  - prompt: Save Ana\n    call: create_contact\n    args: {first_name: Ana, phone_number: '1'}\n",
        tools=CONTACT_TOOLS_YAML,
    ))
    tokenizer = AutoTokenizer.from_pretrained(tiny_base)
    [record] = training_records([load_suite(contacts)])
    row = tokenized_row(tokenizer, record)

    prompt, answer = rendered("Save Ana", call_message([("create_contact", {"first_name": "Ana", "phone_number": "1"})]),
                              [CREATE_CONTACT])
    assert set(row) == {"input_ids", "completion_mask"}
    first = row["completion_mask"].index(1)
    assert row["completion_mask"] == [0] * first + [1] * (len(row["input_ids"]) - first)
    assert (tokenizer.decode(row["input_ids"][:first]), tokenizer.decode(row["input_ids"][first:])) == (prompt, answer)


def rendered_turns(messages: list[dict], answer: dict, tools: list[dict], system: str | None = None) -> tuple[str, str]:
    """`rendered` for a conversation: (the conversation so far, the last answer) as the template renders them."""
    messages = ([{"role": "developer", "content": system}] if system else []) + messages
    start = render(messages, tools, add_generation_prompt=True)
    full = render(messages + [answer], tools, add_generation_prompt=False)
    assert full.startswith(start)
    return start, full[len(start) :]


def test_conversations_from_jsonl_and_yaml_train_on_their_last_answer_only(tmp_path, tiny_base, trained_rows):
    """Multi-turn training examples: the loss covers the final assistant message, the earlier calls
    and the tools' responses are context."""
    import json

    from pytest_toolsel.cases.sources import load_suites

    def function(name, **arguments):
        return {"type": "function", "function": {"name": name, "arguments": arguments}}

    user = {"role": "user", "content": "Weather in Lima?"}
    calls_lima = {"role": "assistant", "tool_calls": [function("get_weather", city="Lima")]}
    response = {"role": "tool", "name": "get_weather", "content": {"temperature": 18}}
    follow_up = {"role": "user", "content": "And ACME?"}
    calls_acme = {"role": "assistant", "tool_calls": [function("get_stock_price", ticker="ACME")]}
    in_text = {"role": "assistant", "content": "It is 18 degrees in Lima."}
    rows = [
        {"messages": [user, calls_lima], "tools": TOOLS, "metadata": "train"},
        {"messages": [{"role": "developer", "content": "Today is Monday."}, user, calls_lima, response, follow_up, calls_acme],
         "tools": TOOLS, "split": "train"},
        {"messages": [user, calls_lima, response, in_text], "tools": TOOLS, "metadata": "train"},
        {"messages": [follow_up, calls_acme], "tools": TOOLS, "id": "held-out"},
    ]
    dataset = tmp_path / "data.jsonl"
    dataset.write_text("".join(json.dumps(r) + "\n" for r in rows))
    policy = tmp_path / "policy.yaml"
    policy.write_text(case_file(
        "- prompt: held out\n  expect: get_weather\n",
        extra="train:\n"
        "  - messages:\n      - {role: user, content: 'Weather in Lima, then the price of ACME'}\n"
        "      - role: assistant\n        tool_calls: [{function: {name: get_weather, arguments: {city: Lima}}}]\n"
        "      - {role: tool, name: get_weather, content: {temperature: 18}}\n"
        "    call: get_stock_price\n    args: {ticker: ACME}\n",
    ))
    suites = [*load_suites(dataset), load_suite(policy)]
    trainer.train(suites, str(tiny_base), tmp_path / "ckpt", fast_recipe())

    expected = [
        rendered_turns([user], calls_lima, TOOLS),
        rendered_turns([user, calls_lima, response, follow_up], calls_acme, TOOLS, system="Today is Monday."),
        rendered_turns([user, calls_lima, response], in_text, TOOLS),
        rendered_turns([{"role": "user", "content": "Weather in Lima, then the price of ACME"}, calls_lima, response],
                       calls_acme, TOOLS),
    ]
    # After a tool's response the model's turn goes on: the follow-up and the answers stay in it.
    assert "<end_function_response>And ACME?" in expected[1][0]
    assert expected[2][1] == "It is 18 degrees in Lima.<end_of_turn>\n"
    texts = as_text(AutoTokenizer.from_pretrained(tiny_base), trained_rows)
    assert sorted(texts) == sorted(expected)
