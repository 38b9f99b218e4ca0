"""Base preparation: a plain Gemma 3 base gets FunctionGemma's vocabulary, template and stops."""

from __future__ import annotations

import json

import pytest
from transformers import AutoTokenizer

import tiny
from conftest import CORPUS, GOLDENS
from pytest_toolsel.functiongemma.base_prep import prepare_for_function_calling, token_words
from pytest_toolsel.functiongemma.chat_format import CONTROL_TOKENS, ESCAPE, FUNCTIONGEMMA_TOKEN_IDS, START_RESPONSE, chat_template, render
from pytest_toolsel.models.loading import load_tokenizer


@pytest.fixture()
def plain_base():
    tokenizer = tiny.build_tokenizer(CORPUS, plain_base=True)
    return tiny.build_model(tokenizer), tokenizer


def test_the_tiny_plain_base_is_laid_out_like_gemma3(plain_base):
    _, tokenizer = plain_base
    assert tokenizer.convert_ids_to_tokens(list(range(46, 53))) == [f"<unused{i}>" for i in range(40, 47)]
    assert not any(token in tokenizer.get_vocab() for token in CONTROL_TOKENS)


def test_control_tokens_take_functiongemma_ids_without_new_rows(plain_base):
    model, tokenizer = plain_base
    size, rows = len(tokenizer), model.get_input_embeddings().weight.shape[0]
    placed = prepare_for_function_calling(model, tokenizer)
    assert placed == {token: 46 + offset for offset, token in enumerate(CONTROL_TOKENS)} == FUNCTIONGEMMA_TOKEN_IDS
    assert len(tokenizer) == size and model.get_input_embeddings().weight.shape[0] == rows
    assert not any(f"<unused{i}>" in tokenizer.get_vocab() for i in range(40, 47))
    assert tokenizer.convert_tokens_to_ids("<unused39>") == 45 and tokenizer.convert_tokens_to_ids("<unused0>") == 6
    embeddings = model.get_input_embeddings().weight
    for token, row in placed.items():
        word_ids = tokenizer.encode(token_words(token), add_special_tokens=False)
        assert embeddings[row].tolist() == pytest.approx(embeddings[word_ids].mean(dim=0).tolist(), abs=1e-6)
    assert tokenizer.chat_template == chat_template()
    assert FUNCTIONGEMMA_TOKEN_IDS[START_RESPONSE] in model.generation_config.eos_token_id
    assert prepare_for_function_calling(model, tokenizer) == {}  # idempotent


def test_quote_init_starts_escape_as_the_quotation_mark_and_the_rest_as_their_words(plain_base):
    model, tokenizer = plain_base
    words = tiny.build_model(tokenizer).get_input_embeddings().weight.detach().clone()
    placed = prepare_for_function_calling(model, tokenizer, init="quote")
    embeddings = model.get_input_embeddings().weight
    quote_ids = tokenizer.encode('"', add_special_tokens=False)
    assert embeddings[placed[ESCAPE]].tolist() == pytest.approx(words[quote_ids].mean(dim=0).tolist(), abs=1e-6)
    for token, row in placed.items():
        if token != ESCAPE:
            word_ids = tokenizer.encode(token_words(token), add_special_tokens=False)
            assert embeddings[row].tolist() == pytest.approx(words[word_ids].mean(dim=0).tolist(), abs=1e-6)
    assert embeddings[placed[ESCAPE]].tolist() != pytest.approx(words[tokenizer.encode("escape", add_special_tokens=False)].mean(dim=0).tolist(), abs=1e-6)


def test_renamed_tokens_encode_whole_and_survive_a_save(plain_base, tmp_path):
    model, tokenizer = plain_base
    prepare_for_function_calling(model, tokenizer)
    tokenizer.save_pretrained(tmp_path)
    (tmp_path / "toolsel.json").write_text("{}")  # as in a checkpoint trained here: the fast loading path
    for loaded in (AutoTokenizer.from_pretrained(tmp_path), load_tokenizer(str(tmp_path))):
        assert len(loaded) == len(tokenizer)
        assert {token: loaded.convert_tokens_to_ids(token) for token in CONTROL_TOKENS} == FUNCTIONGEMMA_TOKEN_IDS
        for golden in GOLDENS:
            ids = loaded.encode(golden["expected"], add_special_tokens=False)
            assert loaded.decode(ids) == golden["expected"]
            for token, index in FUNCTIONGEMMA_TOKEN_IDS.items():
                assert ids.count(index) == golden["expected"].count(token)
    written = json.loads((tmp_path / "tokenizer.json").read_text())
    added = {entry["id"]: entry for entry in written["added_tokens"]}
    assert all(added[index]["content"] == token and added[index]["special"] for token, index in FUNCTIONGEMMA_TOKEN_IDS.items())


def test_the_prepared_tokenizer_renders_the_goldens(plain_base):
    model, tokenizer = plain_base
    prepare_for_function_calling(model, tokenizer)
    for golden in GOLDENS:
        kwargs = dict(tools=golden["tools"], add_generation_prompt=golden["add_generation_prompt"], tokenize=False)
        assert tokenizer.apply_chat_template(golden["messages"], **kwargs) == golden["expected"]
        assert render(golden["messages"], golden["tools"], add_generation_prompt=golden["add_generation_prompt"]) == golden["expected"]
