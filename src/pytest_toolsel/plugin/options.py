"""The command-line options of pytest-toolsel, and the `Options` a session reads from them once, at
configure time (the session hands them to each part that needs them)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import pytest

from ..cases.suite import Suite
from ..cases.variants import VARIANTS, unknown_variant
from ..inference.generation import GenerationSettings
from ..inference.sampling import Sampling
from ..models.embedded import EMBEDDED_ALIAS
from ..models.loading import ModelLoadError, ModelRef, model_reference
from ..training.recipe import default_recipe_path
from ..verdicts.trials import Judge, judge_for

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
    variants: tuple[str, ...] = ()  # invariance variants every selected case gets (--variants)
    distractor_count: int = 3
    variant_seed: int = 0
    sampling: Sampling | None = None  # sampled trials (--samples N); None: one greedy answer per case
    min_pass_rate: float = 1.0  # the share of a case's trials that must pass

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
            variants=option.toolsel_variants,
            distractor_count=option.toolsel_distractor_count,
            variant_seed=option.toolsel_variant_seed,
            sampling=_sampling(option),
            min_pass_rate=1.0 if option.toolsel_min_pass_rate is None else option.toolsel_min_pass_rate,
        )

    def accuracy_bar(self, suite: Suite) -> float | None:
        """What a suite must score: its case file's own min_accuracy, else --min-accuracy."""
        return suite.min_accuracy if suite.min_accuracy is not None else self.min_accuracy

    @property
    def judge_answer(self) -> Judge:
        """How a case's answer is judged: alone, or its sampled trials together (--min-pass-rate)."""
        return judge_for(self.min_pass_rate)

    def sampling_record(self) -> dict:
        """The sampling settings, for the reports and the results cache (nothing when greedy)."""
        return {**self.sampling.as_dict(), "min_pass_rate": self.min_pass_rate} if self.sampling else {}


# Options that only mean something with --samples N: (option, its dest, the default it then takes).
SAMPLING_OPTIONS = (
    ("--temperature", "toolsel_temperature", 1.0),
    ("--top-k", "toolsel_top_k", 64),
    ("--top-p", "toolsel_top_p", 0.95),
    ("--sample-seed", "toolsel_sample_seed", 0),
    ("--min-pass-rate", "toolsel_min_pass_rate", None),
)


def _sampling(option) -> Sampling | None:
    """--samples N and its settings (Gemma's sampling defaults where not given); a setting given
    without --samples is a usage error rather than quietly ignored."""
    values = {name: getattr(option, dest) for name, dest, _ in SAMPLING_OPTIONS}
    if option.toolsel_samples is None:
        given = [name for name, value in values.items() if value is not None]
        if given:
            raise pytest.UsageError(f"{', '.join(given)} only applies to sampled trials: add --samples N")
        return None
    value = {name: default if values[name] is None else values[name] for name, _, default in SAMPLING_OPTIONS}
    return Sampling(option.toolsel_samples, value["--temperature"], value["--top-k"], value["--top-p"],
                    value["--sample-seed"])


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


def _checked(kind: type, allowed, wanted: str):
    """An argparse type: `kind(value)` where `allowed(number)`, else an error saying it must be `wanted`."""

    def read(value: str):
        try:
            number = kind(value)
        except ValueError:
            number = None
        if number is None or not allowed(number):
            raise argparse.ArgumentTypeError(f"must be {wanted}, got {value!r}")
        return number

    return read


def _variant_names(value: str) -> tuple[str, ...]:
    """`shuffled,distractors`: the variants asked for, in their own order."""
    names = [name.strip() for name in value.split(",") if name.strip()]
    for name in names:
        problem = unknown_variant(name)
        if problem:
            raise argparse.ArgumentTypeError(problem)
    return tuple(name for name in VARIANTS if name in names)


def add_options(parser: pytest.Parser) -> None:
    """pytest-toolsel's command-line options (pytest_addoption)."""
    group = parser.getgroup("toolsel", "tool-selection regression tests (pytest-toolsel)")
    group.addoption("--model", dest="toolsel_model", default=DEFAULT_MODEL, metavar="DIR_OR_HUB_ID",
                    help="model under test: a local Hugging Face directory, trained first when missing, a hub id "
                         "owner/name, or a GGUF export of a Gemma 3 model (*.gguf) (default: ./checkpoint)")
    group.addoption("--base-model", dest="toolsel_base_model", default=None, metavar="DIR_OR_HUB_ID",
                    help="the 'before' model of the report (default: the base recorded in the checkpoint, "
                    f"else the embedded {EMBEDDED_ALIAS})")
    group.addoption("--no-baseline", dest="toolsel_no_baseline", action="store_true",
                    help="skip the 'before' model: report the candidate alone")
    group.addoption("--device", dest="toolsel_device", default=None,
                    help="torch device for generation (default: cuda when available, else cpu)")
    group.addoption("--batch-size", dest="toolsel_batch_size", type=_positive, default=128,
                    help="prompts generated together (default: 128)")
    group.addoption("--max-new-tokens", dest="toolsel_max_new_tokens", type=_positive, default=None,
                    help="generation budget per answer, in tokens (default: the longest answer of the collected case "
                         "files' training examples and reference calls, plus a margin; 64 when they have none)")
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
    _add_variant_options(group)
    _add_sampling_options(group)


def _add_variant_options(group) -> None:
    group.addoption("--variants", dest="toolsel_variants", type=_variant_names, default=(), metavar="NAMES",
                    help="also test every selected case with its tools declared otherwise, each variant a test of its "
                         "own (case[variant]): shuffled (another seeded order), distractors (other tools added); "
                         "comma-separated, e.g. --variants shuffled,distractors")
    group.addoption("--distractor-count", dest="toolsel_distractor_count", metavar="K", default=3,
                    type=_checked(int, lambda k: k >= 1, "a whole number of at least 1"),
                    help="tools the distractors variant adds to a case's own (default: 3)")
    group.addoption("--variant-seed", dest="toolsel_variant_seed", metavar="N", default=0,
                    type=_checked(int, lambda n: n >= 0, "a whole number of at least 0"),
                    help="seed of the variants' orders and distractors (default: 0)")


def _add_sampling_options(group) -> None:
    group.addoption("--samples", dest="toolsel_samples", metavar="N", default=None,
                    type=_checked(int, lambda n: n >= 1, "a whole number of at least 1"),
                    help="answer every case N times by seeded sampling, in one batched pass; a case passes only when "
                         "every trial passes (or --min-pass-rate of them). Default: one greedy answer")
    group.addoption("--temperature", dest="toolsel_temperature", metavar="T", default=None,
                    type=_checked(float, lambda t: 0 < t < float("inf"), "a number above 0"),
                    help="sampling temperature (with --samples; default 1.0, Gemma's)")
    group.addoption("--top-k", dest="toolsel_top_k", metavar="K", default=None,
                    type=_checked(int, lambda k: k >= 0, "a whole number of at least 0 (0: no limit)"),
                    help="sample among the K most likely tokens (with --samples; default 64, Gemma's; 0: no limit)")
    group.addoption("--top-p", dest="toolsel_top_p", metavar="P", default=None,
                    type=_checked(float, lambda p: 0 < p <= 1, "a number above 0 and at most 1"),
                    help="sample among the most likely tokens that make up P of the probability (with --samples; "
                         "default 0.95, Gemma's; 1: no limit)")
    group.addoption("--sample-seed", dest="toolsel_sample_seed", metavar="N", default=None,
                    type=_checked(int, lambda n: n >= 0, "a whole number of at least 0"),
                    help="seed of the sampled trials (with --samples; default 0): the same seed gives the same "
                         "trials at any batch size and under pytest-xdist")
    group.addoption("--min-pass-rate", dest="toolsel_min_pass_rate", metavar="R", default=None,
                    type=_checked(float, lambda r: 0 < r <= 1, "a number above 0 and at most 1"),
                    help="with --samples: a case passes when at least R of its trials pass (default: every trial)")
