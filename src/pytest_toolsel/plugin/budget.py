"""The session's generation budget when --max-new-tokens is not given: it follows the collected case files."""

from __future__ import annotations

from typing import Iterator, Sequence

from ..cases.suite import Suite
from ..functiongemma.chat_format import call_message
from ..inference.budget import Budget, data_budget
from ..models.loading import EMBEDDED, GGUF, ModelLoadError, ModelRef, first_line, load_tokenizer
from ..training.data import example_record
from ..verdicts.judge import expected_calls


def case_file_answers(suites: Sequence[Suite]) -> Iterator[dict]:
    """Every answer the case files spell out: training answers, and held-out cases' reference calls
    (expected calls with every argument given; a case that expects no call shows no answer's length)."""
    for suite in suites:
        for example in suite.train:
            yield example_record(suite, example)["completion"][0]
        for case in suite.cases:
            calls = expected_calls(case, suite.tools)
            if calls:
                yield call_message(calls)


def session_budget(suites: Sequence[Suite], model: ModelRef) -> Budget:
    """The budget for the session's answers, in the model under test's tokens (its tokenizer alone is
    loaded: a run whose answers are all cached loads no weights)."""
    source = model.source()
    try:
        tokenizer = load_tokenizer(source, written_here=model.kind in (EMBEDDED, GGUF))
    except Exception as problem:  # transformers raises many types for a tokenizer it cannot read or fetch
        raise ModelLoadError(f"could not load the tokenizer of {model}: {first_line(problem)}") from None
    return data_budget(tokenizer, case_file_answers(suites))
