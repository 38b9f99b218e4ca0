"""Run: the model under test answers the selected cases, and the before model the same cases.

All the selected cases are generated in one pass, on the first case pytest runs (an xdist worker:
its share); each test then reads its outcome.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Callable

from ..cases.suite import Case, Suite
from ..inference.answers import cached_answers
from ..inference.budget import Budget
from ..inference.generation import GenerationSettings
from ..inference.results_cache import Answer, AnswerCache, model_fingerprint
from ..models.loading import (
    EMBEDDED_BASE,
    LoadedModel,
    ModelLoadError,
    ModelRef,
    load_model,
    model_reference,
    pick_device,
    read_metadata,
)
from ..verdicts.evaluation import Outcome, RunResult, evaluate, outcome_key, report_order
from .budget import session_budget
from .checkpoint import Checkpoint
from .options import Options
from .progress import TerminalProgress
from .xdist import worker_device


class Runs:
    """The candidate's and the baseline's runs, and the models loaded for them.

    `cache` is pytest's cache (None with -p no:cacheprovider); `worker` the xdist worker's index
    (None outside xdist workers, which alone train a missing checkpoint); `progress` shows how far
    each batched pass has got (None: nowhere).
    """

    def __init__(self, options: Options, notes: list[str], checkpoint: Checkpoint, *, cache, worker: int | None,
                 progress: TerminalProgress | None = None, suites: list[Suite] | None = None):
        self.options = options
        self.suites = suites if suites is not None else []  # the collected case files (the budget follows them)
        self._generation: GenerationSettings | None = None
        self.budget: Budget | None = None  # the budget followed the case files (no --max-new-tokens)
        self.workers_generation: dict | None = None  # an xdist controller's: what its workers used
        self.progress = progress
        self.notes = notes
        self.checkpoint = checkpoint
        self.cache = cache
        self.worker = worker
        self.candidate_runs: list[RunResult] = []
        self.baseline_runs: list[RunResult] = []
        self._outcomes: dict[tuple[str, str], Outcome] = {}
        self.recorded: list[Outcome] = []  # judged in Python tests (toolsel_model)
        self._loaded: dict[ModelRef, LoadedModel] = {}
        self.load_error: ModelLoadError | None = None  # the model under test's, once it failed to load

    @property
    def generation(self) -> GenerationSettings:
        """The generation settings; without --max-new-tokens the budget follows the case files, measured
        once, in the model under test's tokens, and used for the before model too."""
        if self._generation is None:
            settings = self.options.generation
            if settings.max_new_tokens is None:
                self.budget = session_budget(self.suites, self.options.model)
                settings = replace(settings, max_new_tokens=self.budget.tokens)
            self._generation = settings
        return self._generation

    def generation_reported(self) -> dict:
        """The generation settings for the reports (an xdist controller's: its workers'); as given when the model under test cannot be read."""
        if self.workers_generation is not None:
            return self.workers_generation
        try:
            settings = self.generation.as_dict()
        except ModelLoadError:
            settings = self.options.generation.as_dict()
        return {**settings, "budget": self.budget.describe()} if self.budget else settings

    @property
    def candidate(self) -> RunResult | None:
        return merged(self.candidate_runs)

    @property
    def baseline(self) -> RunResult | None:
        return merged(self.baseline_runs)

    def adopt(self, candidate: RunResult | None, baseline: RunResult | None, generation: dict | None = None) -> None:
        """Take over the runs merged from xdist workers, and the generation settings they used."""
        self.workers_generation = generation
        self.candidate_runs = [candidate] if candidate else []
        self.baseline_runs = [baseline] if baseline else []

    def outcome_for(self, suite: Suite, case: Case, selected: Callable[[], list[tuple[Suite, Case]]]) -> Outcome:
        """The model under test's outcome on a case; the first call answers every `selected()` case
        not answered yet, in one pass."""
        if self.load_error is not None:
            raise self.load_error
        key = outcome_key(suite, case)
        if key not in self._outcomes:
            pending = [(s, c) for s, c in selected() if outcome_key(s, c) not in self._outcomes]
            try:
                run = self.run(self.options.model, pending, candidate=True)
            except ModelLoadError as problem:
                self.load_error = problem
                raise
            self.candidate_runs.append(run)
            self._outcomes.update(run.by_key())
            if self.options.regressions_only:  # verdicts need the before model's answers now
                self.baseline_runs.append(self.run(self.base_model(), run.cases(), candidate=False))
        return self._outcomes[key]

    def before_passed(self, suite: Suite, case: Case) -> bool:
        """Whether the before model passed the case (answered now when it has not answered it yet)."""
        key = outcome_key(suite, case)
        before = self.baseline
        if before is None or key not in before.by_key():  # a case asked from Python (toolsel_model)
            self.baseline_runs.append(self.run(self.base_model(), [(suite, case)], candidate=False))
            before = self.baseline
        return before.by_key()[key].passes(self.options.strict_calls)

    def candidate_answers(self, cases: list[tuple[Suite, Case]], *, confidence: bool) -> tuple[list[Answer], set[int]]:
        """The model under test's answers to cases asked from Python tests, and which were generated."""
        if self.load_error is not None:
            raise self.load_error
        load, cache = self.source(self.options.model, candidate=True, confidence=confidence)
        answers, generated = cached_answers(load, cases, self.generation, confidence=confidence, cache=cache)
        return answers, set(generated)

    def record(self, outcome: Outcome, *, reused: bool) -> None:
        """An outcome judged in a Python test: it joins the candidate's run, for the reports."""
        self.recorded.append(outcome)
        self.candidate_runs.append(RunResult(self.options.model.text, (outcome,), reused=int(reused)))

    def run(self, model: ModelRef, cases: list[tuple[Suite, Case]], *, candidate: bool) -> RunResult:
        """A model's run over cases; with --samples, sampled trials, but for the cases asked from Python
        tests, which the before model answers greedily as `toolsel_model` does."""
        asked = {outcome.key for outcome in self.recorded}
        if self.options.sampling is None or not any(outcome_key(*pair) in asked for pair in cases):
            return self._evaluate(model, cases, candidate=candidate, sampled=self.options.sampling is not None)
        parts = [[pair for pair in cases if (outcome_key(*pair) in asked) == greedy] for greedy in (False, True)]
        return merged([self._evaluate(model, part, candidate=candidate, sampled=not greedy)
                       for part, greedy in zip(parts, (False, True)) if part])

    def _evaluate(self, model: ModelRef, cases: list[tuple[Suite, Case]], *, candidate: bool,
                  sampled: bool) -> RunResult:
        confidence = candidate and self.options.confidence
        load, cache = self.source(model, candidate=candidate, confidence=confidence, sampled=sampled)
        progress = self.progress.sink(model.text) if self.progress else None
        return evaluate(model.text, load, cases, self.generation, confidence=confidence, cache=cache, progress=progress,
                        sampling=self.options.sampling if sampled else None, judge_answer=self.options.judge_answer)

    def source(self, model: ModelRef, *, candidate: bool, confidence: bool,
               sampled: bool = False) -> tuple[Callable[[], LoadedModel], AnswerCache | None]:
        """How a model's answers are had: loading it (once, on the session's device), and its cached
        answers (sampled trials kept apart, by their settings)."""
        device = pick_device(self.options.device or worker_device(self.worker))
        conditions = {"device": device.type, "confidence": confidence}
        if sampled and self.options.sampling is not None:
            conditions["sampling"] = self.options.sampling.as_dict()
        cache = self.answer_cache(model, conditions)
        return (lambda: self.load(model, device, candidate=candidate)), cache

    def load(self, model: ModelRef, device, *, candidate: bool) -> LoadedModel:
        if model not in self._loaded:
            if candidate and self.worker is not None and self.checkpoint.needs_training():
                raise ModelLoadError(
                    f"{model} does not exist, and pytest-xdist workers do not train: train it first with "
                    "`pytest cases/` (without -n) or toolsel-train"
                )
            self._loaded[model] = load_model(model, device, require_template=candidate)
        return self._loaded[model]

    def answer_cache(self, model: ModelRef, conditions: dict) -> AnswerCache | None:
        """Answers of earlier runs, for a model whose files are here (None with -p no:cacheprovider)."""
        directory = model.files_here()
        if self.cache is None or directory is None:
            return None
        fingerprint = model_fingerprint(directory, self.cache)
        return AnswerCache(self.cache, fingerprint, {**self.generation.as_dict(), **conditions})

    def base_model(self) -> ModelRef:
        """--base-model, else the base the checkpoint records it was trained from, else the embedded base."""
        options = self.options
        if options.base_model is not None:
            return options.base_model
        recorded = read_metadata(options.model.path).get("base_model") if options.model.is_local else None
        return model_reference(recorded) if recorded else EMBEDDED_BASE

    def evaluate_baseline(self) -> None:
        candidate = self.candidate
        if candidate is None or not self.options.baseline or self.baseline_runs:
            return
        try:
            base = self.base_model()
        except ModelLoadError as problem:  # the checkpoint records a base that names nothing here
            self.notes.append(f"the before model could not be evaluated: {problem}")
            return
        try:
            self.baseline_runs.append(self.run(base, [(o.suite, o.case) for o in candidate.outcomes], candidate=False))
        except Exception as problem:  # the candidate's results must still be written
            self.notes.append(f"the before model {base} could not be evaluated: {problem}")


def merged(runs: list[RunResult]) -> RunResult | None:
    """Runs of one model over parts of the cases (chunks, xdist shares) as one run, in report order."""
    if not runs:
        return None
    outcomes = sorted((o for run in runs for o in run.outcomes), key=report_order)
    return RunResult(model=runs[0].model, outcomes=tuple(outcomes), reused=sum(run.reused for run in runs))
