"""GGUF files as models: what a .gguf value names, the checks a file must pass, conversion once per
content, and loading: an export is its source's weights and tokenizer, a plain Gemma 3 export is
prepared as training prepares a base, a FunctionGemma export is left as it is."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from conftest import PROMPTS, TOOLS

import tiny_gguf
from pytest_toolsel.functiongemma import base_prep
from pytest_toolsel.functiongemma.chat_format import CONTROL_TOKENS, FUNCTIONGEMMA_TOKEN_IDS, chat_template, prompt_messages, render
from pytest_toolsel.models import gguf_exports
from pytest_toolsel.models.loading import GGUF, LOCAL, ModelLoadError, load_model, model_reference

CPU = torch.device("cpu")


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch) -> Path:
    """Conversions go to a cache of the test's own, never the user's."""
    monkeypatch.setenv("PYTEST_TOOLSEL_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def conversions(monkeypatch) -> list[Path]:
    """The GGUF files converted during the test, in order."""
    converted = []
    real = gguf_exports.dequantise_gguf

    def counted(gguf, directory, name):
        converted.append(gguf)
        real(gguf, directory, name)

    monkeypatch.setattr(gguf_exports, "dequantise_gguf", counted)
    return converted


@pytest.fixture
def preparations(monkeypatch) -> list[object]:
    """The tokenizers base preparation was applied to during the test."""
    prepared = []
    real = base_prep.prepare_for_function_calling

    def counted(model, tokenizer, *args, **kwargs):
        prepared.append(tokenizer)
        return real(model, tokenizer, *args, **kwargs)

    monkeypatch.setattr(base_prep, "prepare_for_function_calling", counted)
    return prepared


def test_a_value_ending_in_gguf_names_the_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "export.gguf").write_bytes(b"GGUF")
    (tmp_path / "Model.GGUF").write_bytes(b"GGUF")
    (tmp_path / "folder.gguf").mkdir()
    for text, kind in [("export.gguf", GGUF), ("./Model.GGUF", GGUF), (str(tmp_path / "export.gguf"), GGUF), ("folder.gguf", LOCAL)]:
        reference = model_reference(text)
        assert (reference.kind, reference.path, reference.is_local) == (kind, Path(text), kind == LOCAL)
    with pytest.raises(ModelLoadError, match=r"^missing\.gguf: there is no GGUF file missing\.gguf$"):
        model_reference("missing.gguf")  # never a directory to train into


@pytest.mark.parametrize("damage", ["not GGUF", "truncated tensors", "truncated header", "llama"])
def test_a_bad_file_is_refused_naming_the_file_and_what_is_wrong(tmp_path, exportable_checkpoint, cache, damage):
    whole = tiny_gguf.export(exportable_checkpoint, tmp_path / "whole.gguf").read_bytes()
    bad = tmp_path / "bad.gguf"
    if damage == "not GGUF":
        bad.write_text("checkpoint: ./ckpts/v2\n")
    elif damage == "truncated tensors":
        bad.write_bytes(whole[: len(whole) // 2])
    elif damage == "truncated header":
        bad.write_bytes(whole[:300])
    else:
        tiny_gguf.write_other_architecture(bad, "llama")
    expected = {
        "not GGUF": f"{bad} is not a GGUF file: it does not start with the bytes 'GGUF'",
        "truncated tensors": f"{bad} is truncated: its tensors end at byte {len(whole):,}, but the file has {len(whole) // 2:,} bytes",
        "truncated header": f"{bad} is truncated or damaged: its GGUF header cannot be read",
        "llama": f"{bad} holds a model of architecture 'llama' (tiny llama); GGUF files are tested as Gemma 3 / "
                 "FunctionGemma exports (architecture 'gemma3')",
    }[damage]
    with pytest.raises(ModelLoadError) as refused:
        load_model(model_reference(str(bad)), CPU)
    assert expected in str(refused.value)
    assert not [p for p in cache.glob("gguf-*") if p.is_dir()]  # nothing half-converted left to reuse


def test_an_export_is_converted_once_per_content(tmp_path, exportable_checkpoint, conversions):
    f32 = tiny_gguf.export(exportable_checkpoint, tmp_path / "export.gguf")
    copy = shutil.copy(f32, tmp_path / "renamed.gguf")
    f16 = tiny_gguf.export(exportable_checkpoint, tmp_path / "export-f16.gguf", f16=True)

    first = model_reference(str(f32)).source()
    assert model_reference(str(f32)).source() == first
    assert model_reference(str(copy)).source() == first  # same bytes, another name: not converted again
    assert model_reference(str(f16)).source() != first
    assert conversions == [f32, f16]
    assert model_reference(str(f32)).files_here() == Path(first)  # where its answers are cached by


@pytest.mark.parametrize("f16", [False, True], ids=["f32", "f16"])
def test_a_functiongemma_export_loads_as_its_source_untouched(tmp_path, exportable_checkpoint, preparations, f16):
    source = load_model(str(exportable_checkpoint), CPU)
    exported = load_model(model_reference(str(tiny_gguf.export(exportable_checkpoint, tmp_path / "x.gguf", f16=f16))), CPU)

    assert preparations == []  # it has the control tokens and its template: nothing to prepare
    weights, round_trip = source.model.state_dict(), exported.model.state_dict()
    assert weights.keys() == round_trip.keys()
    assert [name for name in weights if not torch.equal(weights[name], round_trip[name])] == []
    assert exported.tokenizer.chat_template == source.tokenizer.chat_template
    texts = [render(prompt_messages(prompt), TOOLS, add_generation_prompt=True) for prompt in PROMPTS]
    assert [exported.tokenizer.encode(t, add_special_tokens=False) for t in texts] == [
        source.tokenizer.encode(t, add_special_tokens=False) for t in texts
    ]


def test_an_export_without_its_template_gets_the_functiongemma_template_and_nothing_else(
    tmp_path, exportable_checkpoint, preparations
):
    source = load_model(str(exportable_checkpoint), CPU)
    gguf = tiny_gguf.export(exportable_checkpoint, tmp_path / "x.gguf", chat_template=False)
    exported = load_model(model_reference(str(gguf)), CPU)

    assert len(preparations) == 1
    assert exported.tokenizer.chat_template == chat_template()
    ids = [exported.tokenizer.convert_tokens_to_ids(token) for token in CONTROL_TOKENS]
    assert ids == [source.tokenizer.convert_tokens_to_ids(token) for token in CONTROL_TOKENS]
    assert torch.equal(exported.model.get_input_embeddings().weight, source.model.get_input_embeddings().weight)


def test_a_plain_gemma3_export_is_prepared_as_training_prepares_a_base(tmp_path, plain_tiny_base, preparations):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from pytest_toolsel.models.loading import load_tokenizer

    reference = model_reference(str(tiny_gguf.export(plain_tiny_base, tmp_path / "plain.gguf")))
    loaded = load_model(reference, CPU)  # as the model under test: it must get a template

    assert len(preparations) == 1
    tokenizer = loaded.tokenizer
    assert {token: tokenizer.convert_tokens_to_ids(token) for token in CONTROL_TOKENS} == FUNCTIONGEMMA_TOKEN_IDS
    assert tokenizer.chat_template == chat_template()
    # The cache holds the file as it is: training from it places the control tokens itself.
    converted = Path(reference.source())
    unprepared = load_tokenizer(str(converted), written_here=True)  # its tokenizer.json, read as load_model reads it
    assert base_prep.missing_control_tokens(unprepared) == list(CONTROL_TOKENS)
    expected = AutoModelForCausalLM.from_pretrained(converted, dtype=torch.float32)
    base_prep.prepare_for_function_calling(expected, unprepared)
    # The rows of the file's own vocabulary. transformers' reader of byte-level (gpt2-kind) files, as
    # the tiny ones are, adds a token <|endoftext|> of its own, whose row preparation draws at random.
    rows = AutoTokenizer.from_pretrained(plain_tiny_base).vocab_size
    assert torch.equal(loaded.model.get_input_embeddings().weight[:rows], expected.get_input_embeddings().weight[:rows])
