"""Datasets as case files, run as users run them: `pytest rows.jsonl --model ./checkpoint`."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from conftest import TOOLS, runs_without_and_with_xdist

DATA = Path(__file__).resolve().parents[1] / "data"


def run(pytester, *args):
    return pytester.runpytest(f"--rootdir={pytester.path}", "-p", "no:cacheprovider", *args)


def copy_datasets(pytester) -> None:
    for name in ("bfcl_sample.jsonl", "mobile_actions_row.jsonl"):
        shutil.copy(DATA / name, pytester.path / name)


def write_rows(pytester, name: str, rows: list) -> Path:
    path = pytester.path / name
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def results(pytester, report_dir="reports") -> dict:
    return json.loads((pytester.path / report_dir / "results.json").read_text())


def test_every_row_of_a_dataset_is_a_test_with_reports_as_for_yaml(pytester, tiny_checkpoint, tiny_base):
    copy_datasets(pytester)
    result = run(pytester, "--model", str(tiny_checkpoint), "--base-model", str(tiny_base), "-v")
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed", 0) + outcomes.get("failed", 0) == 21
    result.stdout.fnmatch_lines(["*bfcl_sample.jsonl::multiple_190 *", "*bfcl_sample.jsonl::irrelevance_*",
                                 "*mobile_actions_row.jsonl::line-1 *"])
    # Accepted as published, with a word: BFCL declares arguments named `type`, which the template drops.
    result.stdout.fnmatch_lines(["*bfcl_sample.jsonl:2: row 2 (id 'multiple_191'): tools?1? (get_personality_traits): "
                                 "property 'parameters.properties.type' is left out by FunctionGemma's template*"])
    document = results(pytester)
    candidate, baseline = document["candidate"], document["baseline"]
    assert candidate["total"] == baseline["total"] == 21
    assert [case["id"] for case in candidate["cases"]][:2] == ["multiple_190", "multiple_191"]
    # Every row gives its expected calls whole, so every row counts in exact-call accuracy.
    assert candidate["exact_calls"]["cases_with_expected_calls"] == 21
    assert {case["suite"] for case in candidate["cases"]} == {"bfcl_sample", "mobile_actions_row"}
    no_call = [case for case in candidate["cases"] if case["id"].startswith("irrelevance")]
    assert len(no_call) == 10 and all(case["expected"] == [] for case in no_call)
    assert "| bfcl_sample" in (pytester.path / "reports" / "accuracy.md").read_text()


def test_bad_rows_are_one_collection_error_that_lists_each(pytester, tiny_checkpoint):
    good = {"messages": [{"role": "user", "content": "Weather in Oslo?"},
                         {"role": "assistant", "tool_calls": [{"function": {"name": "get_weather", "arguments": {"city": "Oslo"}}}]}],
            "tools": TOOLS}
    write_rows(pytester, "data.jsonl", [good, "{oops", {**good, "metdata": "train"}, good])
    result = run(pytester, "--model", str(tiny_checkpoint), "--no-baseline")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    output = result.stdout.str()
    assert "data.jsonl:2: row 2: not valid JSON" in output
    assert "data.jsonl:3: row 3: unknown key 'metdata'; did you mean 'metadata'?" in output
    assert "Traceback" not in output


def test_the_leakage_guard_covers_dataset_rows(pytester, tiny_checkpoint):
    user = {"role": "user", "content": "Weather in Oslo?"}
    answer = {"role": "assistant", "tool_calls": [{"function": {"name": "get_weather", "arguments": {"city": "Oslo"}}}]}
    write_rows(pytester, "data.jsonl", [
        {"messages": [user, answer], "tools": TOOLS, "metadata": "train"},
        {"id": "oslo", "messages": [{"role": "user", "content": "weather in  OSLO?"}, answer], "tools": TOOLS},
    ])
    result = run(pytester, "--model", str(tiny_checkpoint), "--no-baseline")
    assert ("data.jsonl: row 2 (id 'oslo'): field 'prompt': 'weather in  OSLO?' is also a training prompt "
            "(data.jsonl row 1)") in result.stdout.str()


def test_a_missing_model_is_trained_from_the_dataset_train_rows(pytester, tiny_base):
    def row(city: str, **extra) -> dict:
        return {"messages": [{"role": "user", "content": f"Weather in {city}?"},
                             {"role": "assistant", "tool_calls": [{"function": {"name": "get_weather", "arguments": {"city": city}}}]}],
                "tools": TOOLS, **extra}

    write_rows(pytester, "data.jsonl", [row("Lima", metadata="train"), row("Quito", split="train"), row("Oslo", id="oslo")])
    result = run(pytester, "--model", "ckpt", "--base-model", str(tiny_base), "--no-baseline",
                 "--recipe-set", "epochs=1", "--recipe-set", "eval_fraction=0")
    result.stdout.fnmatch_lines(["training ckpt from *tiny-base* on 2 examples*", "checkpoint written to ckpt in *"])
    assert json.loads((pytester.path / "ckpt" / "toolsel.json").read_text())["train_examples"] == 2
    assert [case["id"] for case in results(pytester)["candidate"]["cases"]] == ["oslo"]


def test_xdist_workers_share_a_dataset_and_the_report_is_the_same(pytester, tiny_checkpoint, tiny_base):
    copy_datasets(pytester)
    runs = runs_without_and_with_xdist(pytester, "--model", str(tiny_checkpoint), "--base-model", str(tiny_base))
    assert re.search(r"pytest-xdist: gw0 answered \d+, gw1 answered \d+ of 21 cases", runs["2"][2].stdout.str())
    assert runs["2"][:2] == runs["0"][:2]


def test_a_dataset_outside_the_rootdir_is_named_by_its_path_in_reports_and_notes(pytester, tiny_checkpoint):
    # pytest names such a file in node ids by the collection argument ('.' for the file itself);
    # reports and notes must still say which file a row came from.
    project = pytester.mkdir("project")
    outside = pytester.mkdir("datasets") / "bfcl_sample.jsonl"
    shutil.copy(DATA / "bfcl_sample.jsonl", outside)
    result = pytester.runpytest(f"--rootdir={project}", "-p", "no:cacheprovider", str(outside),
                                "--model", str(tiny_checkpoint), "--no-baseline", "--report-dir", "reports")
    assert result.parseoutcomes().get("passed", 0) + result.parseoutcomes().get("failed", 0) == 20
    result.stdout.fnmatch_lines([f"*{outside}:2: row 2 (id 'multiple_191'): tools?1? (get_personality_traits)*"])
    assert ".:2:" not in result.stdout.str()
    assert {case["file"] for case in results(pytester)["candidate"]["cases"]} == {str(outside)}
