"""The generation budget: by default it follows the data, as training's max_length does.

A budget shorter than an answer cuts the answer off (reported as cut, never as malformed: see
`cut_reason`); a budget far above every answer lets a model that does not stop write on for every
case. The collected case files say how long answers get: their training answers and the reference
calls of the held-out cases that spell out every argument. A phone request's e-mail with a
three-sentence body is ~90 tokens, more than the 64 that once were the fixed default.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping

from ..functiongemma.chat_format import render
from ..models.prefix import common_prefix_length

# Headroom above the longest answer: at least this many tokens, or a quarter of the answer.
MIN_MARGIN = 16
# The budget when no collected case shows an answer to measure (tool names without arguments only).
FALLBACK_BUDGET = 64


@dataclass(frozen=True)
class Budget:
    tokens: int
    longest_answer: int | None  # tokens of the longest answer measured; None: none was (the fallback)

    def describe(self) -> str:
        if self.longest_answer is None:
            return f"{self.tokens} tokens (no answer in the case files to measure)"
        return f"{self.tokens} tokens (longest answer in the case files: {self.longest_answer} tokens, plus a margin)"


def answer_tokens(tokenizer, message: Mapping) -> int:
    """Tokens of an assistant turn as the FunctionGemma template renders it, stop included."""
    turn = [{"role": "user", "content": "."}]
    prompt = tokenizer.encode(render(turn, None, add_generation_prompt=True), add_special_tokens=False)
    full = tokenizer.encode(render([*turn, dict(message)], None, add_generation_prompt=False), add_special_tokens=False)
    return len(full) - common_prefix_length([prompt, full])


def data_budget(tokenizer, answers: Iterable[Mapping]) -> Budget:
    """The budget that fits every answer given (assistant messages) with room to spare."""
    lengths = [answer_tokens(tokenizer, message) for message in answers]
    if not lengths:
        return Budget(FALLBACK_BUDGET, None)
    longest = max(lengths)
    return Budget(longest + max(MIN_MARGIN, longest // 4), longest)


def cut_at(tokens: list[int], text: str, budget: int, stops: Iterable[int], stop_strings: Iterable[str]) -> int | None:
    """The budget, when it ended the answer (`tokens` generated, `text` decoded) before any stop did."""
    if len(tokens) < budget or any(token in stops for token in tokens) or any(s in text for s in stop_strings):
        return None
    return budget


def cut_reason(tokens: int) -> str:
    return (f"answer cut at {tokens} tokens by the generation budget before it ended; "
            "raise --max-new-tokens to see the whole answer")
