"""The command-line options of pytest-toolsel, and the `Options` a session reads from them once, at
configure time (the session hands them to each part that needs them)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from ..cases.suite import Suite
from ..inference.generation import GenerationSettings
from ..models.embedded import EMBEDDED_ALIAS
from ..models.loading import ModelLoadError, ModelRef, model_reference
from ..training.recipe import default_recipe_path

DEFAULT_MODEL = "checkpoint"


@dataclass(frozen=True)
class Options:
    model: ModelRef
    base_model: ModelRef | None
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
        """The session's options; a value or a combination that cannot work is a usage error naming it."""
        option = config.option
        if option.toolsel_regressions_only and option.toolsel_no_baseline:
            raise pytest.UsageError("--regressions-only compares with the before model; it cannot be used with --no-baseline")
        model = _model_option("--model", option.toolsel_model)
        if option.toolsel_retrain and not model.is_local:
            raise pytest.UsageError(f"--retrain needs a local --model directory, not {model}")
        base_model = option.toolsel_base_model
        return cls(
            model=model,
            base_model=_model_option("--base-model", base_model) if base_model is not None else None,
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

    def accuracy_bar(self, suite: Suite) -> float | None:
        """What a suite must score: its case file's own min_accuracy, else --min-accuracy."""
        return suite.min_accuracy if suite.min_accuracy is not None else self.min_accuracy


def _model_option(name: str, value: str) -> ModelRef:
    try:
        return model_reference(value)
    except ModelLoadError as problem:
        raise pytest.UsageError(f"{name} {problem}") from None


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


def add_options(parser: pytest.Parser) -> None:
    """pytest-toolsel's command-line options (pytest_addoption)."""
    group = parser.getgroup("toolsel", "tool-selection regression tests (pytest-toolsel)")
    group.addoption("--model", dest="toolsel_model", default=DEFAULT_MODEL, metavar="DIR_OR_HUB_ID",
                    help="model under test: a local Hugging Face directory, trained first when missing, or a hub id "
                         "owner/name (default: ./checkpoint)")
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
