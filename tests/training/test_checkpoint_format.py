"""Checkpoints trained here speak FunctionGemma: its vocabulary and template, and a recorded format
version, so that checkpoints of the older dialect are recognised."""

from __future__ import annotations

import json

import pytest
from transformers import AutoTokenizer

from conftest import case_file
from pytest_toolsel.cli import main as toolsel_train
from pytest_toolsel.functiongemma.chat_format import CONTROL_TOKENS, FORMAT_VERSION, FUNCTIONGEMMA_TOKEN_IDS, chat_template

TRAIN = "train:\n  - prompt: Weather in Lima?\n    call: get_weather\n    args: {city: Lima}\n"
CASE = "- prompt: What is the weather in Paris?\n  expect: get_weather\n"


@pytest.fixture(scope="module")
def trained_from_plain_base(plain_tiny_base, tmp_path_factory):
    directory = tmp_path_factory.mktemp("from-plain")
    (directory / "p.yaml").write_text(case_file(CASE, extra=TRAIN))
    output = directory / "ckpt"
    code = toolsel_train([str(directory / "p.yaml"), "--output", str(output), "--base-model", str(plain_tiny_base),
                          "--set", "epochs=1", "--report-dir", str(directory / "reports")])
    assert code == 0
    return output


def test_a_checkpoint_trained_from_a_plain_base_has_functiongemmas_vocabulary(trained_from_plain_base, plain_tiny_base):
    base = AutoTokenizer.from_pretrained(plain_tiny_base)
    tokenizer = AutoTokenizer.from_pretrained(trained_from_plain_base)
    assert len(tokenizer) == len(base)
    assert {token: tokenizer.convert_tokens_to_ids(token) for token in CONTROL_TOKENS} == FUNCTIONGEMMA_TOKEN_IDS
    renamed = {FUNCTIONGEMMA_TOKEN_IDS[token] for token in CONTROL_TOKENS}
    assert all(tokenizer.convert_ids_to_tokens(i) == base.convert_ids_to_tokens(i) for i in range(len(base)) if i not in renamed)
    assert tokenizer.chat_template == chat_template()
    config = json.loads((trained_from_plain_base / "config.json").read_text())
    assert config["vocab_size"] == len(base)
    metadata = json.loads((trained_from_plain_base / "toolsel.json").read_text())
    assert metadata["format_version"] == FORMAT_VERSION
    assert metadata["control_tokens"] == FUNCTIONGEMMA_TOKEN_IDS


def test_a_checkpoint_of_the_old_dialect_is_reported_with_how_to_retrain(pytester, tiny_base):
    pytester.makefile(".yaml", policy=case_file(CASE, extra=TRAIN))
    args = ["-p", "no:cacheprovider", "--model", "ckpt", "--no-baseline", "--base-model", str(tiny_base),
            "--recipe-set", "epochs=1"]
    trained = pytester.runpytest(*args)
    assert "old format" not in trained.stdout.str()
    current = pytester.runpytest(*args)
    assert "old format" not in current.stdout.str()

    metadata_file = pytester.path / "ckpt" / "toolsel.json"
    metadata = json.loads(metadata_file.read_text())
    del metadata["format_version"]  # as checkpoints of pytest-toolsel's first dialect were written
    metadata_file.write_text(json.dumps(metadata))
    old = pytester.runpytest(*args)
    old.stdout.fnmatch_lines(["*old format: ckpt was trained in pytest-toolsel's format 1, not the real FunctionGemma*"
                              "*retrain with --retrain*"])
    retrained = pytester.runpytest(*args, "--retrain")
    assert "old format" not in retrained.stdout.str()
    assert json.loads(metadata_file.read_text())["format_version"] == FORMAT_VERSION
