"""Loading: what a --model value names, and a checkpoint trained here reads its tokenizer file as it is."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import PROMPTS, TOOLS

from pytest_toolsel.functiongemma.chat_format import prompt_messages, render
from pytest_toolsel.models.loading import EMBEDDED, HUB, LOCAL, ModelLoadError, model_reference


@pytest.fixture
def project(tmp_path, monkeypatch) -> Path:
    """A working directory with a ckpts/ folder holding one checkpoint directory, v1."""
    (tmp_path / "ckpts" / "v1").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("gemma3-270m", EMBEDDED),
        ("ckpts/v1", LOCAL),  # exists
        ("ckpts/v2", LOCAL),  # missing, in a directory that exists: to train into
        ("checkpoint", LOCAL),  # missing, in the working directory
        ("./runs/v2", LOCAL),  # written as a path: trained into, parents and all
        ("../elsewhere/v2", LOCAL),
        ("/no/such/dir", LOCAL),
        ("~/ckpt", LOCAL),
        ("google/functiongemma-270m-it", HUB),  # owner/name, and no google/ here
    ],
)
def test_a_model_value_names_one_kind_of_model(project, text, kind):
    reference = model_reference(text)
    assert (reference.kind, reference.text, str(reference)) == (kind, text, text)
    assert (reference.path is not None) == (kind == LOCAL)
    if kind == LOCAL:
        assert reference.path == Path(text).expanduser()


def test_owner_name_is_a_local_directory_when_the_owner_is_one(project):
    (project / "google").mkdir()
    assert model_reference("google/functiongemma-270m-it").kind == LOCAL
    assert model_reference("./google/functiongemma-270m-it").kind == LOCAL


def test_a_hub_id_is_opened_by_its_id_and_has_no_files_here(project):
    reference = model_reference("google/functiongemma-270m-it")
    assert reference.source() == "google/functiongemma-270m-it"  # transformers looks it up; nothing here does
    assert reference.files_here() is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("runs/2024/v2", "runs/2024/v2: names neither a path here (there is no directory runs/2024) nor a hub id "
                         "(owner/name); write ./runs/2024/v2 for a local directory (trained into while it is missing), "
                         "or owner/name for a model on the Hugging Face hub"),
        ("my models/v2", "write ./my models/v2 for a local directory"),
        ("", "names no model"),
    ],
)
def test_a_value_that_could_be_either_is_refused_with_how_to_write_each(project, text, message):
    with pytest.raises(ModelLoadError) as refused:
        model_reference(text)
    assert message in str(refused.value)


def test_a_checkpoint_trained_here_reads_its_tokenizer_file_as_the_class_would_rebuild_it(tmp_path, tiny_tokenizer):
    """Checkpoints with toolsel.json skip the tokenizer class's rebuild; the tokens must not change."""
    import json

    from transformers import AutoTokenizer, GemmaTokenizer

    from pytest_toolsel.functiongemma.chat_format import chat_template
    from pytest_toolsel.models.loading import METADATA_FILE, load_tokenizer

    model = json.loads(tiny_tokenizer.backend_tokenizer.to_str())["model"]
    gemma = GemmaTokenizer(vocab=model["vocab"], merges=[tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in model["merges"]])
    gemma.add_special_tokens({"additional_special_tokens": ["<start_function_call>", "<end_function_call>", "<escape>"]})
    gemma.chat_template = chat_template()
    gemma.save_pretrained(tmp_path)
    reference = AutoTokenizer.from_pretrained(tmp_path)
    assert type(load_tokenizer(str(tmp_path))) is type(reference) is GemmaTokenizer  # no toolsel.json: the class
    (tmp_path / METADATA_FILE).write_text("{}")
    fast = load_tokenizer(str(tmp_path))
    assert type(fast) is not GemmaTokenizer
    texts = [render(prompt_messages(p), TOOLS, add_generation_prompt=True) for p in PROMPTS] + [
        "<start_function_call>call:get_weather{city:<escape>Zürich<escape>}<end_function_call>",
        "  two  spaces, tabs\tand\nnew lines; 日本語 ✓",
    ]
    for text in texts:
        assert fast.encode(text, add_special_tokens=False) == reference.encode(text, add_special_tokens=False)
        assert fast.encode(text) == reference.encode(text)
    every_id = list(range(len(reference)))
    assert fast.decode(every_id) == reference.decode(every_id)
    assert fast.convert_ids_to_tokens(every_id) == reference.convert_ids_to_tokens(every_id)
    assert fast.chat_template == reference.chat_template
    assert fast.added_tokens_decoder == reference.added_tokens_decoder
    assert fast.special_tokens_map == reference.special_tokens_map
    assert fast.all_special_ids == reference.all_special_ids
    assert (fast.pad_token_id, fast.eos_token_id, fast.bos_token_id) == (reference.pad_token_id, reference.eos_token_id, reference.bos_token_id)
