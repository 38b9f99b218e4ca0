"""Training examples of the collected case files -> the tokenized rows TRL trains on.

Each example is kept as a conversational prompt-completion record (what `data_hash` fingerprints)
and tokenized here, with the tokenizer's own chat template, into `input_ids` and a
`completion_mask`. TRL is handed only those lists of ints: from records it would build one Arrow
schema for all rows, giving every call the argument names of every other tool, set to None, and
render them into the training targets.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Sequence

from ..cases.suite import Suite, TrainExample
from ..functiongemma.chat_format import call_message, prompt_messages
from ..models.prefix import common_prefix_length


def example_record(suite: Suite, example: TrainExample) -> dict:
    if example.calls:
        answer = call_message([(call.name, call.args) for call in example.calls])
    else:
        answer = {"role": "assistant", "content": example.answer}
    return {
        "prompt": prompt_messages(example.prompt, suite.system, example.conversation),
        "completion": [answer],
        # Stored as JSON text: Arrow needs one schema for every row, and tools differ between policies.
        "tools": json.dumps(suite.tool_schemas, ensure_ascii=False),
    }


@dataclass(frozen=True)
class SourcedRecord:
    """A training record and the case file entry it was read from, for messages to the user."""

    record: dict
    suite: Suite
    index: int  # in suite.train

    @property
    def location(self) -> str:
        lines = self.suite.train_lines
        line = lines[self.index] if self.index < len(lines) else None
        return f"{self.suite.path}:{line}" if line else f"{self.suite.path} train[{self.index}]"


def sourced_records(suites: Sequence[Suite]) -> list[SourcedRecord]:
    return [
        SourcedRecord(example_record(suite, example), suite, index)
        for suite in suites
        for index, example in enumerate(suite.train)
    ]


def training_records(suites: Sequence[Suite]) -> list[dict]:
    return [sourced.record for sourced in sourced_records(suites)]


def tokenized_row(tokenizer, record: dict) -> dict[str, list[int]]:
    """`input_ids` of the whole conversation and a `completion_mask` that is 1 on the answer tokens,
    tokenized as TRL's own `tokenize_fn` does (the chat template, prompt then prompt + completion)."""
    tools = json.loads(record["tools"])
    prompt_ids = _chat_ids(tokenizer, record["prompt"], tools, add_generation_prompt=True)
    full_ids = _chat_ids(tokenizer, record["prompt"] + record["completion"], tools, add_generation_prompt=False)
    # The answer starts where the two diverge: a template may end the prompt differently on its own.
    answer_start = common_prefix_length([prompt_ids, full_ids])
    return {
        "input_ids": full_ids,
        "completion_mask": [0] * answer_start + [1] * (len(full_ids) - answer_start),
    }


def _chat_ids(tokenizer, messages: list[dict], tools: list[dict], *, add_generation_prompt: bool) -> list[int]:
    encoded = tokenizer.apply_chat_template(
        messages, tools=tools, add_generation_prompt=add_generation_prompt, tokenize=True, return_dict=True
    )
    return list(encoded["input_ids"])


def data_hash(records: Sequence[dict]) -> str:
    """Fingerprint of the training data: what the checkpoint was trained on, order-insensitive."""
    lines = sorted(json.dumps(record, sort_keys=True, ensure_ascii=False) for record in records)
    return hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()


def split(records: list, eval_fraction: float, seed: int) -> tuple[list, list]:
    """A held-back slice of the training examples for the eval loss curve (never the held-out cases)."""
    import random

    if eval_fraction <= 0 or len(records) < 10:
        return records, []
    shuffled = records[:]
    random.Random(seed).shuffle(shuffled)
    cut = max(1, round(len(shuffled) * eval_fraction))
    return shuffled[cut:], shuffled[:cut]
