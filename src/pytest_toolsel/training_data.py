"""Training examples of the collected case files -> the conversational prompt-completion dataset TRL reads."""

from __future__ import annotations

import hashlib
import json
from typing import Sequence

from .casefile import Suite, TrainExample
from .chat_format import call_message, prompt_messages


def example_record(suite: Suite, example: TrainExample) -> dict:
    if example.calls:
        answer = call_message([(call.name, call.args) for call in example.calls])
    else:
        answer = {"role": "assistant", "content": example.answer}
    return {
        "prompt": prompt_messages(example.prompt, suite.system),
        "completion": [answer],
        # Stored as JSON text: Arrow needs one schema for every row, and tools differ between policies.
        "tools": json.dumps(suite.tool_schemas, ensure_ascii=False),
    }


def training_records(suites: Sequence[Suite]) -> list[dict]:
    return [example_record(suite, example) for suite in suites for example in suite.train]


def data_hash(records: Sequence[dict]) -> str:
    """Fingerprint of the training data: what the checkpoint was trained on, order-insensitive."""
    lines = sorted(json.dumps(record, sort_keys=True, ensure_ascii=False) for record in records)
    return hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()


def split(records: list[dict], eval_fraction: float, seed: int) -> tuple[list[dict], list[dict]]:
    """A held-back slice of the training examples for the eval loss curve (never the held-out cases)."""
    import random

    if eval_fraction <= 0 or len(records) < 10:
        return records, []
    shuffled = records[:]
    random.Random(seed).shuffle(shuffled)
    cut = max(1, round(len(shuffled) * eval_fraction))
    return shuffled[cut:], shuffled[:cut]
