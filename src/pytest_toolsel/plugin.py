"""pytest hooks: case files become tests, one evaluation per session, reports at the end."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from .casefile import Case, CaseFileError, Suite, load_suite, looks_like_case_file, normalise_prompt
from .cli import default_recipe_path
from .embedded import EMBEDDED_ALIAS
from .evaluation import Outcome, RunResult, evaluate, outcome_key
from .generation import GenerationSettings
from .modeling import ModelLoadError, is_local_target, load_model, pick_device, read_metadata
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
    group.addoption("--batch-size", dest="toolsel_batch_size", type=_positive, default=8,
                    help="prompts generated together (default: 8)")
    group.addoption("--max-new-tokens", dest="toolsel_max_new_tokens", type=_positive, default=64,
                    help="generation budget per answer (default: 64)")
    group.addoption("--min-accuracy", dest="toolsel_min_accuracy", type=_fraction, default=None, metavar="X",
                    help="misses become xfail; the session fails only when accuracy is below X (0..1)")
    group.addoption("--report-dir", dest="toolsel_report_dir", default="reports",
                    help="where results.json and accuracy.md are written (default: reports/)")
    group.addoption("--retrain", dest="toolsel_retrain", action="store_true",
                    help="train --model again from the base model, replacing it when done")
    group.addoption("--recipe", dest="toolsel_recipe", default=None, metavar="YAML",
                    help="training recipe (default: tuning/recipe.yaml under the rootdir, else built-in defaults)")
    group.addoption("--recipe-set", dest="toolsel_recipe_overrides", action="append", default=[],
                    metavar="KEY=VALUE", help="override one recipe setting, e.g. --recipe-set epochs=2 (repeatable)")


def pytest_configure(config: pytest.Config) -> None:
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
        if outcome.passed:
            return
        miss = ToolSelectionMiss(outcome, state.candidate.model)
        bar = state.accuracy_bar(self.suite)
        if bar is not None:
            pytest.xfail(f"tool-selection miss, counted against min accuracy {bar:.0%}: {describe_miss(miss)}")
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
    return "; ".join(miss.outcome.verdict.reasons)


def format_miss(miss: ToolSelectionMiss) -> str:
    outcome = miss.outcome
    calls = [f"{call.name}({json.dumps(call.arguments, ensure_ascii=False)})" for call in outcome.parsed.calls]
    lines = [
        f"tool selection failed: {describe_miss(miss)}",
        f"  prompt:     {outcome.case.prompt!r}",
        f"  expected:   {outcome.case.expect_label}",
        f"  called:     {', '.join(calls) or 'no tool'}",
        f"  raw output: {outcome.output!r}",
        f"  model:      {miss.model}",
    ]
    return "\n".join(lines)


class ToolselSession:
    """Session state: the suites collected, the one candidate run, the baseline run, the reports."""

    def __init__(self, config: pytest.Config):
        self.config = config
        self.suites: list[Suite] = []
        self.candidate: RunResult | None = None
        self.baseline: RunResult | None = None
        self.notes: list[str] = []
        self._outcomes: dict[tuple[str, str], Outcome] = {}
        self.report_paths: list[Path] = []
        self._load_error: ModelLoadError | None = None

    @property
    def options(self) -> Options:
        return Options.from_config(self.config)

    def accuracy_bar(self, suite: Suite) -> float | None:
        return suite.min_accuracy if suite.min_accuracy is not None else self.options.min_accuracy

    def selected_cases(self, session: pytest.Session) -> list[tuple[Suite, Case]]:
        return [(item.suite, item.case) for item in session.items if isinstance(item, CaseItem)]

    def outcome_for(self, item: CaseItem) -> Outcome:
        if self._load_error is not None:
            raise self._load_error
        if self.candidate is None:
            try:
                self.candidate = self.run(self.options.model, self.selected_cases(item.session), candidate=True)
            except ModelLoadError as problem:
                self._load_error = problem
                item.session.shouldfail = "the model under test could not be loaded"
                raise
            self._outcomes = self.candidate.by_key()
        return self._outcomes[outcome_key(item.suite, item.case)]

    def run(self, model: str, cases: list[tuple[Suite, Case]], *, candidate: bool) -> RunResult:
        options = self.options
        loaded = load_model(model, pick_device(options.device), require_template=candidate)
        return evaluate(loaded, cases, options.generation)

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
        warning = staleness(self.options.model, self.suites)
        if warning:
            self.notes.append(warning)

    def finish(self, session: pytest.Session) -> None:
        if self.candidate is None:
            return
        options = self.options
        if options.baseline:
            base = self.base_model()
            cases = [(o.suite, o.case) for o in self.candidate.outcomes]
            try:
                self.baseline = self.run(base, cases, candidate=False)
            except Exception as problem:  # the candidate's results must still be written
                self.notes.append(f"the before model {base} could not be evaluated: {problem}")
        self.report_paths = write_reports(
            options.report_dir, self.candidate, self.baseline, options.generation.as_dict()
        )
        failed_bars = self.failed_bars()
        if failed_bars:
            self.notes.extend(failed_bars)
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def failed_bars(self) -> list[str]:
        problems = []
        options = self.options
        if options.min_accuracy is not None and self.candidate.accuracy < options.min_accuracy:
            problems.append(
                f"FAILED: accuracy {self.candidate.accuracy:.1%} ({self.candidate.passed}/{self.candidate.total}) "
                f"is below --min-accuracy {options.min_accuracy:.0%}"
            )
        for suite in self.suites:
            if suite.min_accuracy is None:
                continue
            outcomes = [o for o in self.candidate.outcomes if o.suite is suite]
            passed = sum(o.passed for o in outcomes)
            if outcomes and passed / len(outcomes) < suite.min_accuracy:
                problems.append(
                    f"FAILED: suite {suite.policy} ({suite.path}) scored {passed}/{len(outcomes)}, "
                    f"below its min_accuracy {suite.min_accuracy:.0%}"
                )
        return problems


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
    if hasattr(config, "workerinput"):  # xdist workers evaluate; training is the controller's job
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
    for note in state.notes:
        terminalreporter.write_line(note, red=note.startswith("FAILED"), yellow=not note.startswith("FAILED"))
    for path in state.report_paths:
        terminalreporter.write_line(f"report written to {path}")


@pytest.fixture(scope="session")
def toolsel_session(request: pytest.FixtureRequest) -> ToolselSession:
    """The session's pytest-toolsel state: suites collected, candidate and baseline runs."""
    return request.config.stash[SESSION_KEY]
