"""Reuse answers across pytest runs, in pytest's own cache (`config.cache`).

An answer is reused only when the model files, the case (prompt or conversation, system text, tools) and the
generation settings are all unchanged: the key hashes each of them. `--cache-clear` or
`-p no:cacheprovider` gives a cold run.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..cases.suite import Case, Suite
from .confidence import ToolChoice

ANSWERS_KEY = "toolsel/answers/"
DIGESTS_KEY = "toolsel/file-digests"


@dataclass(frozen=True)
class Answer:
    output: str
    choice: ToolChoice | None = None
    cut_at: int | None = None  # the generation budget, when it ended the answer before any stop
    # Sampled trials (sampling.py): every trial's answer, `output` being the first's; empty: greedy.
    trials: tuple["Answer", ...] = ()

    def as_json(self) -> dict:
        found = {"output": self.output, "tool_probabilities": self.choice.probabilities if self.choice else None}
        found = {**found, "cut_at": self.cut_at} if self.cut_at is not None else found
        return {**found, "trials": [trial.as_json() for trial in self.trials]} if self.trials else found

    @classmethod
    def from_json(cls, data: dict) -> "Answer":
        probabilities = data.get("tool_probabilities")
        return cls(data["output"], ToolChoice(probabilities) if probabilities is not None else None, data.get("cut_at"),
                   tuple(cls.from_json(trial) for trial in data.get("trials", ())))


def model_fingerprint(model_dir: Path, cache) -> str:
    """Hash of every file of a model directory (weights, tokenizer, template, configs).

    File digests are remembered by size and modification time, so an unchanged gigabyte of
    weights is not read again on every run.
    """
    known: dict[str, str] = cache.get(DIGESTS_KEY, {})
    overall = hashlib.sha256()
    for path in sorted(p for p in model_dir.iterdir() if p.is_file() and not p.name.startswith(".")):
        stat = path.stat()
        memo = f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"
        if memo not in known:
            known[memo] = _file_digest(path)
        overall.update(f"{path.name}\0{known[memo]}\n".encode())
    cache.set(DIGESTS_KEY, known)
    return overall.hexdigest()


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def case_key(suite: Suite, case: Case) -> str:
    what = {"prompt": case.prompt, "system": suite.system, "tools": suite.tool_schemas}
    if case.conversation:  # only then, so that single-prompt cases keep the keys they had
        what["conversation"] = list(case.conversation)
    return hashlib.sha256(json.dumps(what, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


class AnswerCache:
    """The cached answers of one model under one set of generation settings."""

    def __init__(self, cache, fingerprint: str, settings: dict[str, Any]):
        self._cache = cache
        scope = json.dumps({"model": fingerprint, "settings": settings}, sort_keys=True)
        self._key = ANSWERS_KEY + hashlib.sha256(scope.encode()).hexdigest()[:32]
        self._answers: dict[str, dict] = cache.get(self._key, {})

    def get(self, suite: Suite, case: Case) -> Answer | None:
        data = self._answers.get(case_key(suite, case))
        return Answer.from_json(data) if data is not None else None

    def put(self, suite: Suite, case: Case, answer: Answer) -> None:
        self._answers[case_key(suite, case)] = answer.as_json()

    def save(self) -> None:
        self._cache.set(self._key, self._answers)
