"""`toolsel-train` spells its options as pytest does: --recipe-set (--set, its old spelling, still works)."""

from __future__ import annotations

import pytest
from conftest import case_file

from pytest_toolsel.cli import main as toolsel_train
from pytest_toolsel.cli import parser


def test_recipe_set_and_its_old_spelling_both_add_an_override():
    args = parser().parse_args(["--recipe-set", "epochs=2", "--set", "learning_rate=1e-4"])
    assert args.overrides == ["epochs=2", "learning_rate=1e-4"]


@pytest.mark.parametrize("spelling", ["--recipe-set", "--set"])
def test_an_override_reaches_the_recipe_before_anything_trains(tmp_path, capsys, spelling):
    (tmp_path / "p.yaml").write_text(case_file("- prompt: x\n  expect: get_weather\n"))
    assert toolsel_train([str(tmp_path / "p.yaml"), "--output", str(tmp_path / "out"), spelling, "epoch=1"]) == 2
    assert "unknown recipe key 'epoch'" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_a_base_model_that_names_nothing_clear_is_one_error_naming_the_option(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "p.yaml").write_text(case_file("- prompt: x\n  expect: get_weather\n"))
    assert toolsel_train(["p.yaml", "--base-model", "runs/2024/base"]) == 2
    assert "toolsel-train: --base-model runs/2024/base: names neither a path here" in capsys.readouterr().err
    assert toolsel_train(["p.yaml", "--base-model", "./runs/base"]) == 2
    assert capsys.readouterr().err.startswith("toolsel-train: nothing to train on")  # a path: read, then the data


def test_a_missing_base_directory_is_one_error_not_a_traceback(tmp_path, capsys):
    train = "train:\n  - prompt: Weather in Lima?\n    call: get_weather\n    args: {city: Lima}\n"
    (tmp_path / "p.yaml").write_text(case_file("- prompt: held out\n  expect: get_weather\n", extra=train))
    code = toolsel_train([str(tmp_path / "p.yaml"), "--output", str(tmp_path / "out"),
                          "--base-model", str(tmp_path / "no-base"), "--report-dir", str(tmp_path / "reports")])
    assert code == 2
    assert f"toolsel-train: model directory {tmp_path / 'no-base'} does not exist" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
