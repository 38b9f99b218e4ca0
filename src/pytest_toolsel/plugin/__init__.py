"""The pytest face of pytest-toolsel: this package is the `pytest11` entry point (`pytest_toolsel.plugin`).

    hooks.py       the hooks, in the order pytest calls them: configure, collect, run, report
    options.py     the command-line options, read once at configure time into `Options`
    items.py       CaseFile and CaseItem: what pytest collects from a case file
    variants.py    each case's invariance variants (--variants, `variants:`), added as tests of their own
    misses.py      a test's verdict on an outcome (`settle`), and how a miss reads
    model_fixture.py  `toolsel_model`: the model under test for tests written in Python, and assert_selects
    questions.py     what such a test asks, made into a suite and a case as a case file gives them
    call_site.py     where in the test the fixture was called, and failing the test there
    session.py     the session's state in config.stash, one part per phase, each given what it uses:
    checkpoint.py    run: train the model under test when it is missing, or say that it is stale
    runs.py          run: the candidate's and the baseline's answers and verdicts
    report.py        report: the reports written, the workers' answers merged, the session's bars
    xdist.py       pytest-xdist: a share of the cases per worker, the answers sent back

The top of the pipeline: it may import every other package, and none of them imports it. Only the
hooks and the `toolsel_model` and `toolsel_session` fixtures are re-exported here, since pytest looks for them on the
module it registers.
"""

from .hooks import (
    pytest_addoption,
    pytest_collect_file,
    pytest_collection_modifyitems,
    pytest_configure,
    pytest_runtest_protocol,
    pytest_runtestloop,
    pytest_sessionfinish,
    pytest_terminal_summary,
    pytest_testnodedown,
    pytest_xdist_make_scheduler,
    toolsel_model,
    toolsel_session,
)

__all__ = [
    "pytest_addoption",
    "pytest_collect_file",
    "pytest_collection_modifyitems",
    "pytest_configure",
    "pytest_runtest_protocol",
    "pytest_runtestloop",
    "pytest_sessionfinish",
    "pytest_terminal_summary",
    "pytest_testnodedown",
    "pytest_xdist_make_scheduler",
    "toolsel_model",
    "toolsel_session",
]
