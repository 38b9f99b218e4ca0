"""Tool-choice confidence: how much probability the model puts on each declared tool's name.

Greedy decoding only shows the winner. Scoring every declared name right after
`<start_function_call>call:` shows how close the runner-up was, so a passing case that is about to
flip can be seen before it does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

from ..functiongemma.chat_format import START_CALL
from ..models.loading import LoadedModel
from ..models.prefix import attends_to_everything, common_prefix_length, prefix_cache, shared_prefix_length


PRECISION = 4  # decimals kept of each probability


@dataclass(frozen=True)
class ToolChoice:
    """Probabilities over the declared tools (they sum to 1, to 4 decimals), given that the model calls one."""

    probabilities: dict[str, float]

    def margin(self, expected: Sequence[str]) -> float | None:
        """Probability of the best expected tool minus that of the best other tool (None when not defined)."""
        wanted = [self.probabilities[name] for name in expected if name in self.probabilities]
        others = [p for name, p in self.probabilities.items() if name not in expected]
        if not wanted or not others:
            return None
        return round(max(wanted) - max(others), PRECISION)

    @property
    def top(self) -> str | None:
        return max(self.probabilities, key=self.probabilities.get) if self.probabilities else None


def call_prefix(tool_name: str) -> str:
    # `{` closes the name, so a tool whose name is a prefix of another's is not credited with it.
    return f"{START_CALL}call:{tool_name}{{"


def tool_call_tokens(tokenizer, prompts: Sequence[str], names: Sequence[str]) -> list[list[int]] | None:
    """The tokens of `call_prefix(name)` for each name, as they follow every one of the prompts.

    None when they do not follow each prompt in the same way (the tokenizer merges across the
    boundary); `tool_choices` then scores each prompt on its own.
    """
    found = None
    for prompt in prompts:
        prompt_ids, called = _encoded_calls(tokenizer, prompt, names)
        if any(full[: len(prompt_ids)] != prompt_ids for full in called):
            return None
        calls = [full[len(prompt_ids) :] for full in called]
        if found is not None and calls != found:
            return None
        found = calls
    return found


def choice_from_scores(names: Sequence[str], scores: Sequence[float]) -> ToolChoice:
    """A ToolChoice from log-probabilities of the names' calls (up to a constant shared by all of them)."""
    return ToolChoice(_normalise(dict(zip(names, scores))))


def tool_choices(
    loaded: LoadedModel, prompts: Sequence[str], tool_names: Sequence[Sequence[str]], batch_size: int = 16
) -> list[ToolChoice]:
    """One ToolChoice per rendered prompt, scoring each of that prompt's tool names by teacher forcing.

    Prompts are scored `batch_size` at a time: each one's tokens are held once per tool, so a whole
    policy's at once would hold the dataset several times over."""
    choices = []
    for begin in range(0, len(prompts), batch_size):
        chunk = slice(begin, begin + batch_size)
        choices += _scored_choices(loaded, prompts[chunk], tool_names[chunk], batch_size)
    return choices


def _scored_choices(
    loaded: LoadedModel, prompts: Sequence[str], tool_names: Sequence[Sequence[str]], batch_size: int
) -> list[ToolChoice]:
    rows = []  # (prompt index, tool name, token ids, number of prompt tokens)
    for index, (prompt, names) in enumerate(zip(prompts, tool_names)):
        prompt_ids, called = _encoded_calls(loaded.tokenizer, prompt, names)
        for name, full in zip(names, called):
            rows.append((index, name, full, common_prefix_length([prompt_ids, full])))
    scores = _sequence_log_probs(loaded, [(ids, start) for _, _, ids, start in rows], batch_size)
    per_prompt: list[dict[str, float]] = [{} for _ in prompts]
    for (index, name, _, _), score in zip(rows, scores):
        per_prompt[index][name] = score
    return [ToolChoice(_normalise(log_probs)) for log_probs in per_prompt]


def _encoded_calls(tokenizer, prompt: str, names: Sequence[str]) -> tuple[list[int], list[list[int]]]:
    """The prompt's tokens, and those of the prompt followed by each name's call."""
    prompt_ids = tokenizer.encode(prompt, add_special_tokens=False)
    return prompt_ids, [tokenizer.encode(prompt + call_prefix(name), add_special_tokens=False) for name in names]


def _normalise(log_probs: dict[str, float]) -> dict[str, float]:
    if not log_probs:
        return {}
    peak = max(log_probs.values())
    weights = {name: math.exp(value - peak) for name, value in log_probs.items()}
    total = sum(weights.values())
    # Rounded: how prompts are batched moves these by ~1e-8, which must not show in the reports.
    return {name: round(weight / total, PRECISION) for name, weight in weights.items()}


def _sequence_log_probs(loaded: LoadedModel, rows: Sequence[tuple[list[int], int]], batch_size: int) -> list[float]:
    """Sum of log p(token) over each row's tokens from position `start` on.

    The rows' common prefix (one policy's developer turn) goes through the model once and its KV
    cache continues every row, as in generation; only the scored positions are projected onto the
    (large) vocabulary. Rows are right-padded, so padding never sits between prefix and text.
    """
    import copy

    import torch

    from ..models.logits import IGNORED, answer_log_probs

    model = loaded.model
    shared = _scorable_prefix_length(model, rows)
    pad = loaded.tokenizer.pad_token_id or 0
    order = sorted(range(len(rows)), key=lambda i: -len(rows[i][0]))
    totals = [0.0] * len(rows)
    with torch.inference_mode():
        cache = prefix_cache(model.base_model, torch.tensor([rows[0][0][:shared]], device=loaded.device)) if shared else None
        for begin in range(0, len(order), batch_size):
            batch = order[begin : begin + batch_size]
            width = max(len(rows[i][0]) for i in batch)
            ids = torch.full((len(batch), width), pad, dtype=torch.long)
            mask = torch.zeros_like(ids)
            labels = torch.full_like(ids, IGNORED)
            for row, i in enumerate(batch):
                tokens, start = rows[i]
                ids[row, : len(tokens)] = torch.tensor(tokens)
                mask[row, : len(tokens)] = 1
                labels[row, start : len(tokens)] = ids[row, start : len(tokens)]
            ids, mask, labels = ids.to(loaded.device), mask.to(loaded.device), labels.to(loaded.device)
            scores, targets = answer_log_probs(model, ids, mask, labels, shared, copy.deepcopy(cache))
            scores = scores.cpu()
            for i, piece in zip(batch, scores.split((targets != IGNORED).sum(dim=1).tolist())):
                totals[i] = float(piece.sum())
    return totals


def _scorable_prefix_length(model, rows: Sequence[tuple[list[int], int]]) -> int:
    """Tokens all rows start with that predict no scored token (0 where a sliding window forbids reuse)."""
    if not attends_to_everything(model, max(len(tokens) for tokens, _ in rows)):
        return 0
    shared = min(shared_prefix_length([tokens for tokens, _ in rows]), min(start for _, start in rows) - 1)
    return max(shared, 0)
