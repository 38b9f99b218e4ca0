"""Batched greedy generation with the FunctionGemma stop sequences."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from .chat_format import STOP_STRINGS
from .modeling import LoadedModel


@dataclass(frozen=True)
class GenerationSettings:
    batch_size: int = 8
    max_new_tokens: int = 64

    def as_dict(self) -> dict:
        return {"batch_size": self.batch_size, "max_new_tokens": self.max_new_tokens, "do_sample": False}


def stop_token_ids(tokenizer) -> list[int]:
    """Ids that end an answer: the stop sequences where they are single tokens, plus EOS."""
    ids = []
    for text in STOP_STRINGS:
        encoded = tokenizer.encode(text, add_special_tokens=False)
        if len(encoded) == 1:
            ids.append(encoded[0])
    if tokenizer.eos_token_id is not None:
        ids.append(tokenizer.eos_token_id)
    return sorted(set(ids))


def truncate_at_stop(text: str) -> str:
    """Cut after the first stop sequence (kept, so the raw output shows why generation ended)."""
    cut = len(text)
    for stop in STOP_STRINGS:
        at = text.find(stop)
        if at >= 0:
            cut = min(cut, at + len(stop))
    return text[:cut]


def generate(loaded: LoadedModel, prompts: Sequence[str], settings: GenerationSettings) -> list[str]:
    """Greedy answers to fully rendered prompts, in the prompts' order.

    Prompts are batched longest first, so each batch pads to similar lengths (left padding).
    """
    import torch
    from transformers import GenerationConfig

    tokenizer, model = loaded.tokenizer, loaded.model
    encoded = [tokenizer.encode(prompt, add_special_tokens=False) for prompt in prompts]
    order = sorted(range(len(prompts)), key=lambda i: -len(encoded[i]))
    stops = stop_token_ids(tokenizer)
    config = GenerationConfig(
        do_sample=False,
        max_new_tokens=settings.max_new_tokens,
        eos_token_id=stops,
        pad_token_id=tokenizer.pad_token_id,
        # Stop sequences that this tokenizer splits into several pieces are matched as strings.
        stop_strings=[s for s in STOP_STRINGS if len(tokenizer.encode(s, add_special_tokens=False)) > 1] or None,
    )
    answers: list[str] = [""] * len(prompts)
    for start in range(0, len(order), settings.batch_size):
        batch = order[start : start + settings.batch_size]
        padded = tokenizer.pad({"input_ids": [encoded[i] for i in batch]}, padding=True, return_tensors="pt")
        padded = {key: value.to(loaded.device) for key, value in padded.items()}
        with torch.inference_mode():
            output = model.generate(**padded, generation_config=config, tokenizer=tokenizer)
        new_tokens = output[:, padded["input_ids"].shape[1] :]
        for row, index in zip(new_tokens.tolist(), batch):
            answers[index] = decode_answer(tokenizer, row, stops)
    return answers


def decode_answer(tokenizer, token_ids: list[int], stops: list[int]) -> str:
    for position, token in enumerate(token_ids):
        if token in stops:
            token_ids = token_ids[: position + 1]
            break
    text = tokenizer.decode(token_ids, skip_special_tokens=False)
    if tokenizer.eos_token:
        text = text.removesuffix(tokenizer.eos_token)
    return truncate_at_stop(text)
