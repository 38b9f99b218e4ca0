"""Training recipes: the few numbers that decide a fine-tune, read from YAML (tuning/*.yaml)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import yaml

from .embeddings import CHOICES as EMBEDDING_CHOICES
from .precision import CHOICES as PRECISIONS

DEFAULT_RECIPE = Path("tuning") / "recipe.yaml"
# The recipe keys that name one of a few ways of doing something.
CHOICES = {"token_init": ("words", "quote", "mean"), "train_embeddings": EMBEDDING_CHOICES, "precision": PRECISIONS}
# The recipe keys that are a positive number of tokens or null.
TOKEN_COUNTS = ("max_length",)
# The recipe keys that are a fraction of the training steps, from 0 up to (not including) 1, or null.
FRACTIONS = ("average_weights_from",)
# Keys that take true, false or a number of tokens.
TRUE_FALSE_OR_TOKENS = ("prefix_gradient",)
# Keys that recipes once had, with why they are gone: a recipe that still sets one is told so.
REMOVED = {
    "value_weight": "extra loss weight on argument values measured worse on every setting tried (docs/results.md)",
    "value_tokens": "it went with value_weight, which measured worse on every setting tried (docs/results.md)",
}


class RecipeError(ValueError):
    pass


@dataclass(frozen=True)
class Recipe:
    learning_rate: float = 5e-5
    epochs: float = 3.5  # see tuning/recipe.yaml for why
    batch_size: int = 8
    gradient_accumulation_steps: int = 1
    # Tokens per training row. None: the longest row plus a margin. A row longer than a set limit is
    # an error, never cut (cutting a row from the end drops its answer, so it teaches nothing).
    max_length: int | None = None
    lr_scheduler: str = "cosine"
    warmup_ratio: float = 0.1
    weight_decay: float = 0.0
    neftune_noise_alpha: float | None = None
    # "words": each new control token starts as the mean embedding of its words ("start function
    # call"); "mean": the mean of all embeddings. Only used when the base lacks the tokens.
    token_init: str = "words"
    # "control": only the new control tokens' embedding rows train, the rest stay the base's (see
    # training/embeddings.py and tuning/recipe.yaml); "all": every row. "control" needs weight_decay 0.
    train_embeddings: str = "control"
    # The tool choice is one or two tokens among the ~25 of an answer, most of them query text; these
    # weight the loss on the first `tool_name_tokens` answer tokens (the call opener and tool name).
    tool_name_weight: float = 10.0
    tool_name_tokens: int = 8
    # Loss weight of digit tokens in answers (times, dates, numbers in arguments); 1: no extra weight.
    digit_weight: float = 3.0
    # Loss weight of the token after each string argument (`,`: another follows; `}`: the call ends);
    # 1: no extra weight. See loss.ArgumentEndWeight.
    argument_end_weight: float = 1.0
    eval_fraction: float = 0.0
    seed: int = 42
    # "auto": bf16 mixed precision on a GPU or CPU with bf16 instructions, fp32 elsewhere (see training/precision.py);
    # "bf16" or "fp32" to choose. Weights stay fp32 either way.
    precision: str = "auto"
    # LoRA (peft) instead of a full fine-tune when lora_rank > 0: the base's layers stay frozen and
    # low-rank adapters train on `lora_target_modules`; merged into the saved checkpoint.
    lora_rank: int = 0
    lora_alpha: float = 32.0
    lora_dropout: float = 0.0
    lora_target_modules: str = "all-linear"  # peft's name for every linear layer but the output layer
    # False: a batch's shared prompt prefix (a policy's developer turn) runs without gradient, its KV
    # cache a constant of the step; the loss is unchanged, the gradient stops at the prefix's keys and
    # values. Saves the prefix's backward pass (whole runs on a 2-core CPU: 1.17x; docs/performance.md).
    # A whole number N: prefixes of at most N tokens keep their gradient, longer ones run without it
    # (a short developer turn costs little backward; a long one, seven tool declarations, costs most).
    prefix_gradient: bool | int = False
    # Passes per epoch over one policy's rows, by the policy's name (a case file's `policy:`); a policy
    # not named takes one. Each pass is shuffled anew. Lets a policy of short, cheap rows take more
    # passes than one whose long prompts cost most of a step, without more epochs over both.
    policy_passes: dict[str, int] = field(default_factory=dict)
    # null: the checkpoint holds the weights after the last step. A fraction f in [0, 1): it holds the
    # mean of the trainable weights after every step from f of training on (training/averaging.py).
    average_weights_from: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def with_overrides(self, overrides: dict[str, Any], source: str = "overrides") -> "Recipe":
        return _consistent(replace(self, **_checked(overrides, source)), source)


def _checked(values: dict[str, Any], source: str) -> dict[str, Any]:
    types = {f.name: f.type for f in fields(Recipe)}
    checked = {}
    for key, value in values.items():
        if key in REMOVED:
            raise RecipeError(f"{source}: recipe key '{key}' was removed: {REMOVED[key]}; delete it from the recipe")
        if key not in types:
            raise RecipeError(f"{source}: unknown recipe key '{key}' (known: {', '.join(types)})")
        default = getattr(Recipe(), key)
        if key in TRUE_FALSE_OR_TOKENS:
            checked[key] = _true_false_or_tokens(key, value, source)
        elif isinstance(default, bool):
            if not isinstance(value, bool):
                raise RecipeError(f"{source}: recipe key '{key}' must be true or false, got {value!r}")
            checked[key] = value
        elif isinstance(default, dict):
            checked[key] = _passes_by_policy(key, value, source)
        elif key in TOKEN_COUNTS:
            checked[key] = _tokens_or_null(key, value, source)
        elif key in FRACTIONS:
            checked[key] = _fraction_or_null(key, value, source)
        elif default is None or isinstance(default, str):
            checked[key] = value
        elif isinstance(default, int) and not isinstance(value, bool):
            try:
                whole = float(value) == int(value)  # 8, 8.0 and "8"; not 8.5, "eight" or null
            except (TypeError, ValueError):
                whole = False
            if not whole:
                raise RecipeError(f"{source}: recipe key '{key}' must be like {default!r}, got {value!r}")
            checked[key] = int(value)
        elif isinstance(default, float) and not isinstance(value, bool):
            try:
                checked[key] = float(value)
            except (TypeError, ValueError):
                raise RecipeError(f"{source}: recipe key '{key}' must be a number, got {value!r}") from None
        else:
            raise RecipeError(f"{source}: recipe key '{key}' must be like {default!r}, got {value!r}")
    for key, choices in CHOICES.items():
        if key in checked and checked[key] not in choices:
            raise RecipeError(f"{source}: {key} must be one of {', '.join(choices)}, got {checked[key]!r}")
    return checked


def _consistent(recipe: "Recipe", source: str) -> "Recipe":
    if recipe.lora_rank < 0:
        raise RecipeError(f"{source}: lora_rank must be 0 (full fine-tune) or a positive rank, got {recipe.lora_rank}")
    if recipe.lora_rank and recipe.train_embeddings != "control":
        raise RecipeError(
            f"{source}: LoRA (lora_rank {recipe.lora_rank}) keeps the embedding matrix frozen; "
            "set train_embeddings to 'control' so that the control tokens' rows still train"
        )
    if recipe.train_embeddings == "control" and recipe.weight_decay:
        raise RecipeError(
            f"{source}: train_embeddings 'control' keeps the other embedding rows as the base has them, "
            f"but weight_decay {recipe.weight_decay} would shrink them every step; set weight_decay to 0"
        )
    return recipe


def _is_token_count(value: Any) -> bool:
    """A positive whole number (600 or 600.0), not true or false."""
    whole = isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    return whole and not isinstance(value, bool) and value > 0


def _true_false_or_tokens(key: str, value: Any, source: str) -> bool | int:
    if isinstance(value, bool):
        return value
    if _is_token_count(value):
        return int(value)
    raise RecipeError(f"{source}: recipe key '{key}' must be true, false or a positive number of tokens, got {value!r}")


def _tokens_or_null(key: str, value: Any, source: str) -> int | None:
    if value is None:
        return None
    if _is_token_count(value):
        return int(value)
    raise RecipeError(f"{source}: recipe key '{key}' must be a number of tokens or null, got {value!r}")


def _fraction_or_null(key: str, value: Any, source: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise RecipeError(
            f"{source}: recipe key '{key}' must be null (off) or a fraction of the training steps, "
            f"from 0 up to but not including 1, got {value!r}"
        )
    return float(value)


def _passes_by_policy(key: str, value: Any, source: str) -> dict[str, int]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise RecipeError(f"{source}: recipe key '{key}' must map policy names to passes, like {{my-policy: 2}}, got {value!r}")
    for policy, passes in value.items():
        if not isinstance(policy, str) or isinstance(passes, bool) or not isinstance(passes, int) or passes < 1:
            raise RecipeError(
                f"{source}: recipe key '{key}': policy {policy!r} must map to a whole number of passes of 1 or more, "
                f"got {passes!r}"
            )
    return dict(value)


def default_recipe_path(root: Path = Path(".")) -> Path | None:
    path = root / DEFAULT_RECIPE
    return path if path.is_file() else None


def load_recipe(path: Path | None, overrides: dict[str, Any] | None = None) -> Recipe:
    recipe = Recipe()
    if path is not None:
        try:
            document = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as problem:
            raise RecipeError(f"{path}: cannot read recipe ({problem})") from None
        if not isinstance(document, dict):
            raise RecipeError(f"{path}: a recipe must be a mapping of setting: value")
        recipe = recipe.with_overrides(document, str(path))
    return recipe.with_overrides(overrides or {}, "command line")


def parse_override(text: str) -> tuple[str, Any]:
    """`key=value` from the command line, the value read as YAML (so 1e-4, 3, true, null work)."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise RecipeError(f"recipe override {text!r} must look like key=value")
    return key.strip(), yaml.safe_load(value)
