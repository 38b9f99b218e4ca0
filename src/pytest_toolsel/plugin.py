"""pytest hooks: case files become tests, one evaluation per session, reports at the end."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from .casefile import Case, CaseFileError, Suite, load_suite, looks_like_case_file, normalise_prompt
from .cli import default_recipe_path
from .embedded import EMBEDDED_ALIAS
from .confidence import ToolChoice
from .results_cache import AnswerCache, model_fingerprint
from .sharding import (
    WORKER_OUTPUT_KEY,
    is_worker,
    make_share_scheduler,
    merge_runs,
    queued_items,
    run_payload,
    worker_device,
)
from .evaluation import Outcome, RunResult, evaluate, outcome_key, report_order
from .generation import GenerationSettings
from .modeling import (
    LoadedModel,
    ModelLoadError,
    is_local_target,
    load_model,
    local_directory,
    old_format_warning,
    pick_device,
    read_metadata,
)
from .recipe import RecipeError, load_recipe, parse_override
from .reports import terminal_summary, write_reports
from .training import TrainingError, staleness, train

DEFAULT_MODEL = "checkpoint"


@dataclass(frozen=True)
class Options:
    model: str
    base_model: str | None
    baseline: bool
    device: str | None
    generation: GenerationSettings
    min_accuracy: float | None
    regressions_only: bool
    strict_calls: bool
    confidence: bool
    fragile_margin: float
    report_dir: Path
    retrain: bool
    recipe: Path | None
    recipe_overrides: tuple[str, ...]

    @classmethod
    def from_config(cls, config: pytest.Config) -> "Options":
        option = config.option
        return cls(
            model=option.toolsel_model,
            base_model=option.toolsel_base_model,
            baseline=not option.toolsel_no_baseline,
            device=option.toolsel_device,
            generation=GenerationSettings(
                batch_size=option.toolsel_batch_size, max_new_tokens=option.toolsel_max_new_tokens
            ),
            min_accuracy=option.toolsel_min_accuracy,
            regressions_only=option.toolsel_regressions_only,
            strict_calls=option.toolsel_strict_calls,
            confidence=not option.toolsel_no_confidence,
            fragile_margin=option.toolsel_fragile_margin,
            report_dir=Path(option.toolsel_report_dir),
            retrain=option.toolsel_retrain,
            recipe=Path(option.toolsel_recipe) if option.toolsel_recipe else default_recipe_path(config.rootpath),
            recipe_overrides=tuple(option.toolsel_recipe_overrides),
        )


def _fraction(value: str) -> float:
    number = float(value)
    if not 0 <= number <= 1:
        raise ValueError(value)
    return number


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise ValueError(value)
    return number


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("toolsel", "tool-selection regression tests (pytest-toolsel)")
    group.addoption("--model", dest="toolsel_model", default=DEFAULT_MODEL, metavar="DIR_OR_HUB_ID",
                    help="model under test: a local Hugging Face directory or a hub id (default: ./checkpoint)")
    group.addoption("--base-model", dest="toolsel_base_model", default=None, metavar="DIR_OR_HUB_ID",
                    help="the 'before' model of the report (default: the base recorded in the checkpoint, "
                    f"else the embedded {EMBEDDED_ALIAS})")
    group.addoption("--no-baseline", dest="toolsel_no_baseline", action="store_true",
                    help="skip the 'before' model: report the candidate alone")
    group.addoption("--device", dest="toolsel_device", default=None,
                    help="torch device for generation (default: cuda when available, else cpu)")
    group.addoption("--batch-size", dest="toolsel_batch_size", type=_positive, default=128,
                    help="prompts generated together (default: 128)")
    group.addoption("--max-new-tokens", dest="toolsel_max_new_tokens", type=_positive, default=64,
                    help="generation budget per answer (default: 64)")
    group.addoption("--min-accuracy", dest="toolsel_min_accuracy", type=_fraction, default=None, metavar="X",
                    help="misses become xfail; the session fails only when accuracy is below X (0..1)")
    group.addoption("--regressions-only", dest="toolsel_regressions_only", action="store_true",
                    help="fail only cases the before model (--base-model) passed and the model under test misses; "
                         "other misses are xfail")
    group.addoption("--strict-calls", dest="toolsel_strict_calls", action="store_true",
                    help="also fail cases whose calls do not fit their tool's schema (undeclared tool or argument, "
                         "missing required argument, wrong type or enum value); by default these are reported only")
    group.addoption("--no-confidence", dest="toolsel_no_confidence", action="store_true",
                    help="skip scoring each declared tool's probability (the tool-choice confidence)")
    group.addoption("--fragile-margin", dest="toolsel_fragile_margin", type=_fraction, default=0.3, metavar="X",
                    help="flag passes whose expected tool leads the next tool by less than X probability (default 0.3)")
    group.addoption("--report-dir", dest="toolsel_report_dir", default="reports",
                    help="where results.json and accuracy.md are written (default: reports/)")
    group.addoption("--retrain", dest="toolsel_retrain", action="store_true",
                    help="train --model again from the base model, replacing it when done")
    group.addoption("--recipe", dest="toolsel_recipe", default=None, metavar="YAML",
                    help="training recipe (default: tuning/recipe.yaml under the rootdir, else built-in defaults)")
    group.addoption("--recipe-set", dest="toolsel_recipe_overrides", action="append", default=[],
                    metavar="KEY=VALUE", help="override one recipe setting, e.g. --recipe-set epochs=2 (repeatable)")


def pytest_configure(config: pytest.Config) -> None:
    if config.option.toolsel_regressions_only and config.option.toolsel_no_baseline:
        raise pytest.UsageError("--regressions-only compares with the before model; it cannot be used with --no-baseline")
    config.stash[SESSION_KEY] = ToolselSession(config)
    config.addinivalue_line("markers", "toolsel: a tool-selection case collected from a case file")


def pytest_collect_file(file_path: Path, parent: pytest.Collector):
    if looks_like_case_file(file_path):
        return CaseFile.from_parent(parent, path=file_path)
    return None


class CaseFile(pytest.File):
    def collect(self):
        display = Path(self.nodeid.split("::")[0])
        try:
            suite = load_suite(self.path, display=display)
        except CaseFileError as problem:
            raise self.CollectError(str(problem)) from None
        self.config.stash[SESSION_KEY].suites.append(suite)
        for case in suite.cases:
            item = CaseItem.from_parent(self, name=case.id, suite=suite, case=case)
            item.add_marker(pytest.mark.toolsel)
            if case.xfail:
                item.add_marker(pytest.mark.xfail(reason=case.xfail))
            yield item


class ToolSelectionMiss(Exception):
    """A failed case: the wrong tool choice, or (under --strict-calls) calls that do not fit their schemas."""

    def __init__(self, outcome: Outcome, model: str):
        super().__init__(outcome.case.id)
        self.outcome = outcome
        self.model = model


class CaseItem(pytest.Item):
    def __init__(self, *, suite: Suite, case: Case, **kwargs):
        super().__init__(**kwargs)
        self.suite = suite
        self.case = case

    def runtest(self) -> None:
        state = self.config.stash[SESSION_KEY]
        outcome = state.outcome_for(self)
        if outcome.passes(state.options.strict_calls):
            return
        miss = ToolSelectionMiss(outcome, state.candidate.model)
        if state.options.regressions_only and not state.before_passed(self):
            pytest.xfail(f"not a regression: the before model {state.base_model()} missed it too: {describe_miss(miss)}")
        bar = state.accuracy_bar(self.suite)
        if bar is not None:
            kind = "tool-selection miss" if outcome.verdict.reasons else "invalid call"  # the latter: --strict-calls
            pytest.xfail(f"{kind}, counted against min accuracy {bar:.0%}: {describe_miss(miss)}")
        raise miss

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, ToolSelectionMiss):
            return format_miss(excinfo.value)
        if isinstance(excinfo.value, ModelLoadError):
            return f"pytest-toolsel could not load a model: {excinfo.value}"
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self):
        return self.path, (self.case.line or 1) - 1, f"{self.suite.policy}: {self.case.id}"


def describe_miss(miss: ToolSelectionMiss) -> str:
    verdict = miss.outcome.verdict
    if verdict.reasons:
        return "; ".join(verdict.reasons)
    # Only --strict-calls fails a case with the right tools.
    return "calls do not fit their tool's schema (--strict-calls): " + "; ".join(verdict.schema_problems)


def describe_choice(choice: ToolChoice) -> str:
    ranked = sorted(choice.probabilities.items(), key=lambda item: -item[1])
    return ", ".join(f"{name} {probability:.2f}" for name, probability in ranked)


def format_miss(miss: ToolSelectionMiss) -> str:
    outcome = miss.outcome
    calls = [f"{call.name}({json.dumps(call.arguments, ensure_ascii=False)})" for call in outcome.parsed.calls]
    problems = outcome.verdict.schema_problems
    lines = [
        f"tool selection failed: {describe_miss(miss)}" if outcome.verdict.reasons
        else "tool selection passed, but the calls do not fit their tool's schema (--strict-calls)",
        f"  prompt:     {outcome.case.prompt!r}",
        f"  expected:   {outcome.case.expect_label}",
        f"  called:     {', '.join(calls) or 'no tool'}",
        *([f"  schema:     {'; '.join(problems)}"] if problems else []),
        f"  raw output: {outcome.output!r}",
        *([f"  tool probabilities: {describe_choice(outcome.choice)}"] if outcome.choice else []),
        f"  model:      {miss.model}",
    ]
    return "\n".join(lines)


class ToolselSession:
    """Session state: the suites collected, the candidate and baseline runs, the reports.

    Under pytest-xdist each worker generates the cases it was given and sends its answers to the
    controller, which merges them and writes the reports.
    """

    def __init__(self, config: pytest.Config):
        self.config = config
        self.suites: list[Suite] = []
        self.notes: list[str] = []
        self.report_paths: list[Path] = []
        self._candidate_runs: list[RunResult] = []
        self._baseline_runs: list[RunResult] = []
        self._outcomes: dict[tuple[str, str], Outcome] = {}
        self._loaded: dict[str, LoadedModel] = {}
        self._load_error: ModelLoadError | None = None
        self.worker_payloads: list[dict] = []

    @property
    def options(self) -> Options:
        return Options.from_config(self.config)

    @property
    def candidate(self) -> RunResult | None:
        return merged(self._candidate_runs)

    @property
    def baseline(self) -> RunResult | None:
        return merged(self._baseline_runs)

    def accuracy_bar(self, suite: Suite) -> float | None:
        return suite.min_accuracy if suite.min_accuracy is not None else self.options.min_accuracy

    def outcome_for(self, item: CaseItem) -> Outcome:
        if self._load_error is not None:
            raise self._load_error
        key = outcome_key(item.suite, item.case)
        if key not in self._outcomes:
            try:
                run = self.run(self.options.model, self.cases_to_generate(item), candidate=True)
            except ModelLoadError as problem:
                self._load_error = problem
                item.session.shouldfail = "the model under test could not be loaded"
                raise
            self._candidate_runs.append(run)
            self._outcomes.update(run.by_key())
            if self.options.regressions_only:  # verdicts need the before model's answers now
                self._baseline_runs.append(self.run(self.base_model(), run.cases(), candidate=False))
        return self._outcomes[key]

    def before_passed(self, item: CaseItem) -> bool:
        before = self.baseline
        outcome = before.by_key().get(outcome_key(item.suite, item.case)) if before else None
        return outcome is not None and outcome.passes(self.options.strict_calls)

    def cases_to_generate(self, item: CaseItem) -> list[tuple[Suite, Case]]:
        """All selected cases in one pass; an xdist worker only has the share it was sent."""
        items = [item, *queued_items(item.session)] if is_worker(self.config) else item.session.items
        cases = [(i.suite, i.case) for i in items if isinstance(i, CaseItem)]
        return [(suite, case) for suite, case in cases if outcome_key(suite, case) not in self._outcomes]

    def run(self, model: str, cases: list[tuple[Suite, Case]], *, candidate: bool) -> RunResult:
        options = self.options
        device = pick_device(options.device or worker_device(self.config))
        confidence = candidate and options.confidence
        return evaluate(
            model,
            lambda: self.load(model, device, candidate=candidate),
            cases,
            options.generation,
            confidence=confidence,
            cache=self.answer_cache(model, {"device": device.type, "confidence": confidence}),
        )

    def load(self, model: str, device, *, candidate: bool) -> LoadedModel:
        if model not in self._loaded:
            if candidate and is_worker(self.config) and self.needs_training():
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
        return AnswerCache(cache, fingerprint, {**self.options.generation.as_dict(), **conditions})

    def base_model(self) -> str:
        options = self.options
        return options.base_model or read_metadata(options.model).get("base_model") or EMBEDDED_ALIAS

    def needs_training(self) -> bool:
        options = self.options
        if not is_local_target(options.model):
            if options.retrain:
                raise pytest.UsageError(f"--retrain needs a local --model directory, not {options.model}")
            return False
        return options.retrain or not Path(options.model).expanduser().exists()

    def train_checkpoint(self, terminal) -> None:
        """Fine-tune --model from the base on every collected suite's training examples."""
        options = self.options
        recipe = load_recipe(options.recipe, dict(map(parse_override, options.recipe_overrides)))
        base = options.base_model or EMBEDDED_ALIAS
        terminal.section("pytest-toolsel: training", sep="=")
        terminal.write_line(
            f"training {options.model} from {base} on {sum(len(s.train) for s in self.suites)} examples "
            f"(recipe: {options.recipe or 'built-in defaults'})"
        )
        result = train(self.suites, base, Path(options.model), recipe, report_dir=options.report_dir,
                       device=options.device)
        terminal.write_line(f"checkpoint written to {result.checkpoint} in {result.metadata['train_seconds']} s")
        self.notes.append(f"trained {result.checkpoint} this session ({result.metadata['train_seconds']} s)")

    def check_staleness(self) -> None:
        for warning in (old_format_warning(self.options.model), staleness(self.options.model, self.suites)):
            if warning:
                self.notes.append(warning)

    def evaluate_baseline(self) -> None:
        candidate = self.candidate
        if candidate is None or not self.options.baseline or self._baseline_runs:
            return
        base = self.base_model()
        try:
            self._baseline_runs.append(self.run(base, [(o.suite, o.case) for o in candidate.outcomes], candidate=False))
        except Exception as problem:  # the candidate's results must still be written
            self.notes.append(f"the before model {base} could not be evaluated: {problem}")

    def finish(self, session: pytest.Session) -> None:
        if is_worker(self.config):
            self.evaluate_baseline()
            if self.candidate is not None:
                self.config.workeroutput[WORKER_OUTPUT_KEY] = {
                    "candidate": run_payload(self.candidate),
                    "baseline": run_payload(self.baseline) if self.baseline else None,
                    "notes": self.notes,
                    "worker": self.config.workerinput["workerid"],
                }
            return
        if self.worker_payloads:
            self.merge_workers()
        else:
            self.evaluate_baseline()
        candidate = self.candidate
        if candidate is None:
            return
        options = self.options
        self.report_paths = write_reports(
            options.report_dir, candidate, self.baseline, options.generation.as_dict(), options.fragile_margin
        )
        note = self.schema_note()
        if note:
            self.notes.append(note)
        failed_bars = self.failed_bars()
        if failed_bars:
            self.notes.extend(failed_bars)
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def merge_workers(self) -> None:
        rootpath = self.config.rootpath
        payloads = self.worker_payloads
        candidate = merge_runs([p["candidate"] for p in payloads], rootpath)
        self._candidate_runs = [candidate] if candidate else []
        baseline = merge_runs([p["baseline"] for p in payloads if p["baseline"]], rootpath)
        self._baseline_runs = [baseline] if baseline else []
        shares = ", ".join(
            f"{p['worker']} answered {len(p['candidate']['answers'])}" for p in sorted(payloads, key=lambda p: p["worker"])
        )
        self.notes.append(f"pytest-xdist: {shares} of {len(candidate.outcomes) if candidate else 0} cases")
        for note in (note for p in payloads for note in p["notes"]):
            if note not in self.notes:
                self.notes.append(note)

    def failed_bars(self) -> list[str]:
        problems = []
        options = self.options
        candidate = self.candidate
        strict = options.strict_calls
        counted = " with --strict-calls" if strict else ""  # the bars count what the tests count
        passed = sum(o.passes(strict) for o in candidate.outcomes)
        if options.min_accuracy is not None and passed / candidate.total < options.min_accuracy:
            problems.append(
                f"FAILED: accuracy{counted} {passed / candidate.total:.1%} ({passed}/{candidate.total}) "
                f"is below --min-accuracy {options.min_accuracy:.0%}"
            )
        for outcomes in candidate.grouped(lambda outcome: str(outcome.suite.path)).values():
            suite = outcomes[0].suite
            if suite.min_accuracy is None:
                continue
            passed = sum(o.passes(strict) for o in outcomes)
            if passed / len(outcomes) < suite.min_accuracy:
                problems.append(
                    f"FAILED: suite {suite.policy} ({suite.path}) scored {passed}/{len(outcomes)}{counted}, "
                    f"below its min_accuracy {suite.min_accuracy:.0%}"
                )
        return problems

    def schema_note(self) -> str | None:
        """Schema problems that did not fail any test still deserve a line in the summary."""
        invalid = [o for o in self.candidate.outcomes if o.verdict.schema_problems]
        if not invalid or self.options.strict_calls:
            return None
        made = sum(o.made_call for o in self.candidate.outcomes)
        return (
            f"{len(invalid)} of {made} cases with calls called a tool in a way its schema does not allow "
            "(listed in accuracy.md and results.json); --strict-calls fails them"
        )


def merged(runs: list[RunResult]) -> RunResult | None:
    """Runs of one model over parts of the cases (chunks, xdist shares) as one run, in report order."""
    if not runs:
        return None
    outcomes = sorted((o for run in runs for o in run.outcomes), key=report_order)
    return RunResult(model=runs[0].model, outcomes=tuple(outcomes), reused=sum(run.reused for run in runs))


SESSION_KEY = pytest.StashKey[ToolselSession]()


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list) -> None:
    """Leakage guard: a held-out prompt that is also a training prompt is a collection error."""
    state = config.stash[SESSION_KEY]
    trained: dict[str, str] = {}
    for suite in state.suites:
        for index, example in enumerate(suite.train):
            trained.setdefault(normalise_prompt(example.prompt), f"{suite.path} train[{index}]")
    leaked = {}
    for item in items:
        if isinstance(item, CaseItem) and normalise_prompt(item.case.prompt) in trained:
            leaked[item] = trained[normalise_prompt(item.case.prompt)]
    if not leaked:
        return
    by_file: dict[pytest.Collector, list[str]] = {}
    for item, source in leaked.items():
        by_file.setdefault(item.parent, []).append(
            f"{item.suite.path}: cases[{item.case.index}] (id '{item.case.id}'): field 'prompt': "
            f"{item.case.prompt!r} is also a training prompt ({source}); "
            "a model cannot be graded on what it was trained on"
        )
    for collector, messages in by_file.items():
        report = pytest.CollectReport(collector.nodeid, "failed", "\n".join(messages), [])
        config.hook.pytest_collectreport(report=report)
    items[:] = [item for item in items if item not in leaked]


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session: pytest.Session) -> None:
    """Train the checkpoint when it is missing (or --retrain), before the first verdict."""
    config = session.config
    state = config.stash[SESSION_KEY]
    if config.option.collectonly or not any(isinstance(item, CaseItem) for item in session.items):
        return
    if is_worker(config):  # training needs the whole collection, which only a plain session has
        state.check_staleness()
        return
    if state.needs_training():
        terminal = config.pluginmanager.get_plugin("terminalreporter")
        capture = config.pluginmanager.get_plugin("capturemanager")
        try:
            with capture.global_and_fixture_disabled():
                state.train_checkpoint(terminal)
        except (RecipeError, TrainingError, ModelLoadError, CaseFileError) as problem:
            raise pytest.UsageError(f"pytest-toolsel could not train {state.options.model}: {problem}") from None
    else:
        state.check_staleness()


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    if config.getvalue("dist") == "load":  # what `-n N` uses unless --dist says otherwise
        return make_share_scheduler(config, log)
    return None


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error) -> None:
    payload = getattr(node, "workeroutput", {}).get(WORKER_OUTPUT_KEY)
    if payload is not None:
        node.config.stash[SESSION_KEY].worker_payloads.append(payload)


def pytest_sessionfinish(session: pytest.Session) -> None:
    state = session.config.stash.get(SESSION_KEY, None)
    if state is not None:
        state.finish(session)


def pytest_terminal_summary(terminalreporter, exitstatus, config: pytest.Config) -> None:
    state = config.stash.get(SESSION_KEY, None)
    if state is None or state.candidate is None:
        return
    terminalreporter.section("pytest-toolsel: tool-selection accuracy")
    terminalreporter.write_line(terminal_summary(state.candidate, state.baseline))
    for run in (state.candidate, state.baseline):
        if run is not None and run.reused:
            terminalreporter.write_line(
                f"{run.reused}/{run.total} answers of {run.model} reused from pytest's cache "
                "(same model files, cases and settings; --cache-clear for a cold run)"
            )
    for note in state.notes:
        terminalreporter.write_line(note, red=note.startswith("FAILED"), yellow=not note.startswith("FAILED"))
    for path in state.report_paths:
        terminalreporter.write_line(f"report written to {path}")


@pytest.fixture(scope="session")
def toolsel_session(request: pytest.FixtureRequest) -> ToolselSession:
    """The session's pytest-toolsel state: suites collected, candidate and baseline runs."""
    return request.config.stash[SESSION_KEY]
