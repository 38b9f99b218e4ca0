"""Training progress: one line per epoch in a log, one line rewritten in place on a terminal; no
per-step dicts and no library bars in between."""

from __future__ import annotations

import io

import pytest
from conftest import case_file

from pytest_toolsel.cases.yaml_source import load_suite
from pytest_toolsel.training import progress
from pytest_toolsel.training.recipe import load_recipe
from pytest_toolsel.training.trainer import train

TRAIN = "".join(f"  - prompt: Weather in city {n}?\n    call: get_weather\n    args: {{city: C{n}}}\n" for n in range(12))


def progress_written(tmp_path, tiny_base, monkeypatch, interactive: bool, recipe_keys: dict) -> str:
    """What a real tiny training writes to stderr, as on a terminal or in a log."""
    stream = io.StringIO()
    monkeypatch.setattr(progress.sys, "stderr", stream)
    monkeypatch.setattr(stream, "isatty", lambda: interactive)
    (tmp_path / "p.yaml").write_text(case_file("- prompt: held out\n  expect: get_weather\n", extra="train:\n" + TRAIN))
    train([load_suite(tmp_path / "p.yaml")], str(tiny_base), tmp_path / "ckpt", load_recipe(None, recipe_keys))
    return stream.getvalue()


@pytest.mark.parametrize("interactive", [False, True], ids=["log", "terminal"])
def test_training_writes_one_readable_progress_line(tmp_path, tiny_base, monkeypatch, capfd, interactive):
    written = progress_written(tmp_path, tiny_base, monkeypatch, interactive,
                               {"epochs": 2, "batch_size": 4, "eval_fraction": 0.2})
    if interactive:
        assert written.count("\r") >= 6 and written.endswith("\n")
        last = written.rsplit("\r\x1b[K", 1)[1]
        assert last.startswith("training: step 6/6 | epoch 2.00/2 | loss ") and "eval loss" in last and " left" in last
    else:
        lines = written.splitlines()
        assert [line.split(" | ")[:2] for line in lines] == [["training: step 3/6", "epoch 1.00/2"],
                                                            ["training: step 6/6", "epoch 2.00/2"]]
        assert all("eval loss" in line for line in lines)
    out, err = capfd.readouterr()
    assert "{'loss'" not in out + err and "Loading weights" not in out + err and "Truncating" not in out + err


def test_progress_shows_a_fractional_epoch_count_as_the_recipe_gives_it(tmp_path, tiny_base, monkeypatch):
    written = progress_written(tmp_path, tiny_base, monkeypatch, False, {"epochs": 1.5, "batch_size": 2, "eval_fraction": 0})
    lines = written.splitlines()
    assert [line.split(" | ")[:2] for line in lines] == [["training: step 6/9", "epoch 1.00/1.5"],
                                                        ["training: step 9/9", "epoch 1.50/1.5"]]
