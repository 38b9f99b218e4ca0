"""Tiny Gemma 3 models that the tests build themselves: no hub, no real weights.

`build_tokenizer` trains a small byte-level BPE tokenizer that carries the FunctionGemma control
tokens as single special tokens and the FunctionGemma chat template. `teach` gives a randomly
initialised tiny Gemma 3 a few hundred optimiser steps on rendered conversations, so that greedy
generation really answers with the calls we taught (and a test can expect a pass or a miss).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import Gemma3ForCausalLM, Gemma3TextConfig, PreTrainedTokenizerFast

from pytest_toolsel.functiongemma.chat_format import (
    CONTROL_TOKENS,
    END_OF_TURN,
    START_OF_TURN,
    call_message,
    chat_template,
    prompt_messages,
    render,
)

SPECIAL_TOKENS = ["<pad>", "<eos>", "<bos>", "<unk>", START_OF_TURN, END_OF_TURN, *CONTROL_TOKENS]
# (prompt, [(tool, args), ...]) pairs; an empty call list means a plain text answer.
Lesson = tuple[str, Sequence[tuple[str, dict]]]


# A plain Gemma 3 vocabulary starts like this: FunctionGemma's control tokens take the slots of
# <unused40>..<unused46>, ids 46-52.
GEMMA3_HEAD = ["<pad>", "<eos>", "<bos>", "<unk>", "<mask>", "[multimodal]", *(f"<unused{i}>" for i in range(47))]


def build_tokenizer(corpus: Sequence[str], vocab_size: int = 600, *, plain_base: bool = False) -> PreTrainedTokenizerFast:
    """The test tokenizer; `plain_base=True` lays it out like plain Gemma 3 instead: placeholders at
    FunctionGemma's ids and no control tokens, as the embedded base has it."""
    specials = [*GEMMA3_HEAD, START_OF_TURN, END_OF_TURN] if plain_base else SPECIAL_TOKENS
    core = Tokenizer(models.BPE(unk_token=None))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    core.train_from_iterator(corpus, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token="<bos>",
        eos_token="<eos>",
        pad_token="<pad>",
        unk_token="<unk>",
        additional_special_tokens=specials[4:],
    )
    tokenizer.chat_template = None if plain_base else chat_template()
    return tokenizer


def build_model(tokenizer, seed: int = 0, sliding_window: int = 64) -> Gemma3ForCausalLM:
    torch.manual_seed(seed)
    config = Gemma3TextConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=32,
        sliding_window=sliding_window,
        layer_types=["sliding_attention", "full_attention"],
        max_position_embeddings=1024,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return Gemma3ForCausalLM(config)


def lesson_texts(lessons: Sequence[Lesson], tools: list[dict], system: str | None = None) -> list[tuple[str, str]]:
    """(prompt, answer) text pairs exactly as generation will see them."""
    pairs = []
    for prompt, calls in lessons:
        messages = prompt_messages(prompt, system)
        start = render(messages, tools, add_generation_prompt=True)
        if calls:
            full = render(messages + [call_message(calls)], tools, add_generation_prompt=False)
        else:
            full = render(messages + [{"role": "assistant", "content": "I cannot help."}], tools, add_generation_prompt=False)
        pairs.append((start, full[len(start) :]))
    return pairs


def answer_batch(tokenizer, pairs: Sequence[tuple[str, str]]):
    """(input_ids, attention_mask, labels): right-padded rows with prompt tokens ignored, as TRL's collator builds them."""
    rows = []
    for prompt, answer in pairs:
        prompt_ids = tokenizer.encode(prompt, add_special_tokens=False)
        answer_ids = tokenizer.encode(answer, add_special_tokens=False)
        rows.append((prompt_ids + answer_ids, [-100] * len(prompt_ids) + answer_ids))
    width = max(len(ids) for ids, _ in rows)
    input_ids = torch.tensor([ids + [tokenizer.pad_token_id] * (width - len(ids)) for ids, _ in rows])
    labels = torch.tensor([lab + [-100] * (width - len(lab)) for _, lab in rows])
    attention = torch.tensor([[1] * len(ids) + [0] * (width - len(ids)) for ids, _ in rows])
    return input_ids, attention, labels


def teach(model, tokenizer, pairs: Sequence[tuple[str, str]], steps: int = 300, seed: int = 0) -> None:
    """Fit the answers (loss on answer tokens only) until greedy decoding reproduces them."""
    torch.manual_seed(seed)
    input_ids, attention, labels = answer_batch(tokenizer, pairs)
    optimiser = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(steps):
        loss = model(input_ids=input_ids, attention_mask=attention, labels=labels).loss
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        if loss.item() < 0.01:
            break
    model.eval()


def save(model, tokenizer, directory: Path) -> Path:
    model.generation_config.do_sample = False
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory
