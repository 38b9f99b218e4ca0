"""Run: the model under test answers the selected cases, and the before model the same cases.

All the selected cases are generated in one pass, on the first case pytest runs (an xdist worker:
its share); each test then reads its outcome.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from ..cases.suite import Case, Suite
from ..inference.answers import cached_answers
from ..inference.results_cache import Answer, AnswerCache, model_fingerprint
from ..models.embedded import EMBEDDED_ALIAS
from ..models.loading import LoadedModel, ModelLoadError, load_model, local_directory, pick_device, read_metadata
from ..verdicts.evaluation import Outcome, RunResult, evaluate, outcome_key, report_order
from .items import CaseItem
from .xdist import is_worker, queued_items, worker_device

if TYPE_CHECKING:
    from .session import ToolselSession


class Runs:
    """The candidate's and the baseline's runs, and the models loaded for them."""

    def __init__(self, session: ToolselSession):
        self.session = session
        self.config = session.config
        self.candidate_runs: list[RunResult] = []
        self.baseline_runs: list[RunResult] = []
        self._outcomes: dict[tuple[str, str], Outcome] = {}
        self.recorded: list[Outcome] = []  # judged in Python tests (toolsel_model)
        self._loaded: dict[str, LoadedModel] = {}
        self._load_error: ModelLoadError | None = None

    @property
    def candidate(self) -> RunResult | None:
        return merged(self.candidate_runs)

    @property
    def baseline(self) -> RunResult | None:
        return merged(self.baseline_runs)

    def adopt(self, candidate: RunResult | None, baseline: RunResult | None) -> None:
        """Take over the runs merged from xdist workers."""
        self.candidate_runs = [candidate] if candidate else []
        self.baseline_runs = [baseline] if baseline else []

    def outcome_for(self, item: CaseItem) -> Outcome:
        if self._load_error is not None:
            raise self._load_error
        key = outcome_key(item.suite, item.case)
        if key not in self._outcomes:
            try:
                run = self.run(self.session.options.model, self.cases_to_generate(item), candidate=True)
            except ModelLoadError as problem:
                self._load_error = problem
                item.session.shouldfail = "the model under test could not be loaded"
                raise
            self.candidate_runs.append(run)
            self._outcomes.update(run.by_key())
            if self.session.options.regressions_only:  # verdicts need the before model's answers now
                self.baseline_runs.append(self.run(self.base_model(), run.cases(), candidate=False))
        return self._outcomes[key]

    def before_passed(self, suite: Suite, case: Case) -> bool:
        """Whether the before model passed the case (answered now when it has not answered it yet)."""
        key = outcome_key(suite, case)
        before = self.baseline
        if before is None or key not in before.by_key():  # a case asked from Python (toolsel_model)
            self.baseline_runs.append(self.run(self.base_model(), [(suite, case)], candidate=False))
            before = self.baseline
        return before.by_key()[key].passes(self.session.options.strict_calls)

    def candidate_answers(self, cases: list[tuple[Suite, Case]], *, confidence: bool) -> tuple[list[Answer], set[int]]:
        """The model under test's answers to cases asked from Python tests, and which were generated."""
        if self._load_error is not None:
            raise self._load_error
        model = self.session.options.model
        load, cache = self.source(model, candidate=True, confidence=confidence)
        answers, generated = cached_answers(load, cases, self.session.options.generation, confidence=confidence, cache=cache)
        return answers, set(generated)

    def record(self, outcome: Outcome, *, reused: bool) -> None:
        """An outcome judged in a Python test: it joins the candidate's run, for the reports."""
        self.recorded.append(outcome)
        self.candidate_runs.append(RunResult(self.session.options.model, (outcome,), reused=int(reused)))

    def cases_to_generate(self, item: CaseItem) -> list[tuple[Suite, Case]]:
        """All selected cases in one pass; an xdist worker only has the share it was sent."""
        items = [item, *queued_items(item.session)] if is_worker(self.config) else item.session.items
        cases = [(i.suite, i.case) for i in items if isinstance(i, CaseItem)]
        return [(suite, case) for suite, case in cases if outcome_key(suite, case) not in self._outcomes]

    def run(self, model: str, cases: list[tuple[Suite, Case]], *, candidate: bool) -> RunResult:
        confidence = candidate and self.session.options.confidence
        load, cache = self.source(model, candidate=candidate, confidence=confidence)
        return evaluate(model, load, cases, self.session.options.generation, confidence=confidence, cache=cache)

    def source(self, model: str, *, candidate: bool, confidence: bool) -> tuple[Callable[[], LoadedModel], AnswerCache | None]:
        """How a model's answers are had: loading it (once, on the session's device), and its cached answers."""
        device = pick_device(self.session.options.device or worker_device(self.config))
        cache = self.answer_cache(model, {"device": device.type, "confidence": confidence})
        return (lambda: self.load(model, device, candidate=candidate)), cache

    def load(self, model: str, device, *, candidate: bool) -> LoadedModel:
        if model not in self._loaded:
            if candidate and is_worker(self.config) and self.session.checkpoint.needs_training():
                raise ModelLoadError(
                    f"{model} does not exist, and pytest-xdist workers do not train: train it first with "
                    "`pytest cases/` (without -n) or toolsel-train"
                )
            self._loaded[model] = load_model(model, device, require_template=candidate)
        return self._loaded[model]

    def answer_cache(self, model: str, conditions: dict) -> AnswerCache | None:
        """Answers of earlier runs, for a model whose files are here (None with -p no:cacheprovider)."""
        cache = getattr(self.config, "cache", None)
        directory = local_directory(model)
        if cache is None or directory is None:
            return None
        fingerprint = model_fingerprint(directory, cache)
        return AnswerCache(cache, fingerprint, {**self.session.options.generation.as_dict(), **conditions})

    def base_model(self) -> str:
        options = self.session.options
        return options.base_model or read_metadata(options.model).get("base_model") or EMBEDDED_ALIAS

    def evaluate_baseline(self) -> None:
        candidate = self.candidate
        if candidate is None or not self.session.options.baseline or self.baseline_runs:
            return
        base = self.base_model()
        try:
            self.baseline_runs.append(self.run(base, [(o.suite, o.case) for o in candidate.outcomes], candidate=False))
        except Exception as problem:  # the candidate's results must still be written
            self.session.notes.append(f"the before model {base} could not be evaluated: {problem}")


def merged(runs: list[RunResult]) -> RunResult | None:
    """Runs of one model over parts of the cases (chunks, xdist shares) as one run, in report order."""
    if not runs:
        return None
    outcomes = sorted((o for run in runs for o in run.outcomes), key=report_order)
    return RunResult(model=runs[0].model, outcomes=tuple(outcomes), reused=sum(run.reused for run in runs))
