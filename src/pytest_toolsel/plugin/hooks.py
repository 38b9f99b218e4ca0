"""pytest hooks: case files become tests, one evaluation per session, reports at the end.

In the order pytest calls them, as in pytest's example of tests in YAML files: configure, collect
(`CaseFile`, `CaseItem` in items.py, and the leakage guard), run (training before the first
verdict; each `CaseItem.runtest` reads its outcome), report (the reports and the terminal summary).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ..cases.leakage import leak_message, training_prompts
from ..cases.suite import CaseFileError, normalise_prompt
from ..cases.sources import is_case_file
from ..models.loading import ModelLoadError
from ..reporting.reports import terminal_summary
from ..training.recipe import RecipeError
from ..training.trainer import TrainingError
from .items import CaseFile, CaseItem
from .model_fixture import ToolselModel
from .options import Options, add_options
from .session import SESSION_KEY, ToolselSession
from .variants import add_variant_items
from .xdist import WORKER_OUTPUT_KEY, is_worker, make_share_scheduler

# configure ---------------------------------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    """The options read once, and the session's state kept where the items and fixtures find it."""
    config.stash[SESSION_KEY] = ToolselSession(Options.from_config(config), config)
    config.addinivalue_line("markers", "toolsel: a tool-selection case collected from a case file")


# collect -----------------------------------------------------------------------------------------


def pytest_collect_file(file_path: Path, parent: pytest.Collector):
    if is_case_file(file_path):
        return CaseFile.from_parent(parent, path=file_path)
    return None


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list) -> None:
    """Leakage guard: a held-out prompt that is also a training prompt is a collection error. Then the
    remaining cases' invariance variants, before pytest's own selection (-k) sees the items."""
    state = config.stash[SESSION_KEY]
    _report_collection_errors(config, _remove_leaked(state.suites, items))
    added, problems = add_variant_items(items, state.suites, state.options, state.notes)
    for collector, variants in added.items():
        # pytest counts the tests its collectors report ("collected N items"): these come after collection.
        config.hook.pytest_collectreport(report=pytest.CollectReport(collector.nodeid, "passed", None, variants))
    _report_collection_errors(config, problems)


def _remove_leaked(suites, items: list) -> dict[pytest.Collector, list[str]]:
    trained = training_prompts(suites)
    leaked = {}
    for item in items:
        if isinstance(item, CaseItem) and normalise_prompt(item.case.prompt) in trained:
            leaked[item] = trained[normalise_prompt(item.case.prompt)]
    by_file: dict[pytest.Collector, list[str]] = {}
    for item, source in leaked.items():
        by_file.setdefault(item.parent, []).append(leak_message(item.suite, item.case, source))
    items[:] = [item for item in items if item not in leaked]
    return by_file


def _report_collection_errors(config: pytest.Config, by_file: dict[pytest.Collector, list[str]]) -> None:
    for collector, messages in by_file.items():
        report = pytest.CollectReport(collector.nodeid, "failed", "\n".join(messages), [])
        config.hook.pytest_collectreport(report=report)


# run ---------------------------------------------------------------------------------------------


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session: pytest.Session) -> None:
    """Train the checkpoint when it is missing (or --retrain), before the first verdict."""
    config = session.config
    state = config.stash[SESSION_KEY]
    if config.option.collectonly or not any(uses_the_model(item) for item in session.items):
        return
    if is_worker(config):  # training needs the whole collection, which only a plain session has
        state.checkpoint.check_staleness()
        return
    if state.checkpoint.needs_training():
        terminal = config.pluginmanager.get_plugin("terminalreporter")
        capture = config.pluginmanager.get_plugin("capturemanager")
        try:
            with capture.global_and_fixture_disabled():
                state.checkpoint.train(terminal)
        except (RecipeError, TrainingError, ModelLoadError, CaseFileError) as problem:
            raise pytest.UsageError(f"pytest-toolsel could not train {state.options.model}: {problem}") from None
    else:
        state.checkpoint.check_staleness()


def uses_the_model(item: pytest.Item) -> bool:
    """A case file's case, or a Python test that asks the model (through the `toolsel_model` fixture)."""
    return isinstance(item, CaseItem) or "toolsel_model" in getattr(item, "fixturenames", ())


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem):
    state = item.config.stash[SESSION_KEY]
    state.current_item = item
    try:
        return (yield)
    finally:
        state.current_item = None


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    if config.getvalue("dist") == "load":  # what `-n N` uses unless --dist says otherwise
        return make_share_scheduler(config, log)
    return None


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error) -> None:
    payload = getattr(node, "workeroutput", {}).get(WORKER_OUTPUT_KEY)
    if payload is not None:
        node.config.stash[SESSION_KEY].report.worker_payloads.append(payload)


# report ------------------------------------------------------------------------------------------


def pytest_sessionfinish(session: pytest.Session) -> None:
    state = session.config.stash.get(SESSION_KEY, None)
    if state is not None:
        state.report.finish(session)


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
    for path in state.report.report_paths:
        terminalreporter.write_line(f"report written to {path}")


@pytest.fixture(scope="session")
def toolsel_model(request: pytest.FixtureRequest) -> ToolselModel:
    """The model under test, for tests written in Python: the same model, device, generation settings
    and results cache as the case files' tests; trained first when --model is missing, loaded once.

    `ask(prompt, policy=... | tools=..., system=...)` and `ask_many(prompts, ...)` answer a prompt or a
    conversation (parsed calls, raw output, tool probabilities with confidence=True);
    `assert_selects(prompt_or_answer, expect, args=...)` judges it as a case file's case, fails with
    the same report, and counts it in reports/ beside the case files' cases, before and after.
    """
    return ToolselModel(request.config.stash[SESSION_KEY])


@pytest.fixture(scope="session")
def toolsel_session(request: pytest.FixtureRequest) -> ToolselSession:
    """The session's pytest-toolsel state: suites collected, candidate and baseline runs."""
    return request.config.stash[SESSION_KEY]
