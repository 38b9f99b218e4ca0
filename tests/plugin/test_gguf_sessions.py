"""GGUF exports in pytest sessions: an export tested against its source (and its source against it)
answers every case as the source does, a plain Gemma 3 export runs as the model under test, and a
bad file is an error that names it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import case_file

import tiny_gguf

# The taught checkpoint passes the first two and calls get_weather for Oslo, so the third is a miss.
CASES = """\
- prompt: What is the weather in Paris?
  expect: get_weather
  id: paris
- prompt: How much is ACME stock?
  expect: get_stock_price
  id: acme
- prompt: Is it raining in Oslo today?
  expect: get_stock_price
  id: oslo-wrong
"""


@pytest.fixture
def session(pytester, monkeypatch):
    """Runs pytest on the case file above, converting into a cache of the test's own; returns the
    result and results.json."""
    monkeypatch.setenv("PYTEST_TOOLSEL_CACHE", str(pytester.path / "cache"))
    pytester.makefile(".yaml", policy=case_file(CASES))

    def run(*args: str):
        result = pytester.runpytest("-p", "no:cacheprovider", *args)
        results = pytester.path / "reports" / "results.json"
        return result, json.loads(results.read_text()) if results.exists() else None

    return run


def outputs(run: dict) -> dict[str, str]:
    return {case["id"]: case["output"] for case in run["cases"]}


@pytest.mark.parametrize("export_is", ["--model", "--base-model"])
def test_an_export_and_its_source_answer_alike_before_and_after(pytester, session, exportable_checkpoint, export_is):
    gguf = tiny_gguf.export(exportable_checkpoint, pytester.path / "exported.gguf", f16=True)
    source = str(exportable_checkpoint)
    model, base = ("exported.gguf", source) if export_is == "--model" else (source, "exported.gguf")

    result, document = session("--model", model, "--base-model", base)

    result.assert_outcomes(passed=2, failed=1)
    assert "Traceback" not in result.stdout.str()
    candidate, baseline = document["candidate"], document["baseline"]
    assert (candidate["model"], baseline["model"]) == (model, base)
    assert outputs(candidate) == outputs(baseline)
    assert outputs(candidate)["paris"].startswith("<start_function_call>call:get_weather{")
    assert document["comparison"] == {"fixed": [], "regressed": [], "mcnemar_p": 1.0}
    report = (pytester.path / "reports" / "accuracy.md").read_text()
    assert f"| before | {base}" in report and f"| after  | {model}" in report
    assert "Fixed 0, regressed 0" in report
    assert gguf.is_file()


def test_a_plain_gemma3_export_runs_as_the_model_under_test(pytester, session, plain_tiny_base):
    tiny_gguf.export(plain_tiny_base, pytester.path / "plain.gguf")

    result, document = session("--model", "plain.gguf", "--no-baseline", "--max-new-tokens", "8")

    outcomes = result.parseoutcomes()
    assert (outcomes.get("passed", 0) + outcomes.get("failed", 0), outcomes.get("errors", 0)) == (3, 0)
    assert "could not load" not in result.stdout.str()
    assert document["candidate"]["model"] == "plain.gguf" and len(document["candidate"]["cases"]) == 3


def test_a_missing_gguf_file_is_a_usage_error_naming_it(pytester, session):
    result, _ = session("--model", "missing.gguf")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--model missing.gguf: there is no GGUF file missing.gguf*"])


def test_a_truncated_export_under_test_fails_every_case_naming_the_file(pytester, session, exportable_checkpoint):
    whole = tiny_gguf.export(exportable_checkpoint, pytester.path / "whole.gguf").read_bytes()
    (pytester.path / "cut.gguf").write_bytes(whole[: len(whole) // 3])

    result, _ = session("--model", "cut.gguf", "--no-baseline")

    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*pytest-toolsel could not load a model: cut.gguf is truncated: its tensors end at byte*"])


def test_a_before_model_that_is_no_gemma3_is_a_note_naming_it(pytester, session, exportable_checkpoint):
    tiny_gguf.write_other_architecture(pytester.path / "llama.gguf")

    result, document = session("--model", str(exportable_checkpoint), "--base-model", "llama.gguf")

    result.assert_outcomes(passed=2, failed=1)  # the model under test is still judged
    result.stdout.fnmatch_lines(["*the before model llama.gguf could not be evaluated: llama.gguf holds a model of "
                                 "architecture 'llama' (tiny llama)*"])
    assert document["baseline"] is None
