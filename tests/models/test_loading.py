"""Loading: a checkpoint trained here reads its tokenizer file as it is."""

from __future__ import annotations

from conftest import PROMPTS, TOOLS

from pytest_toolsel.functiongemma.chat_format import prompt_messages, render


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
