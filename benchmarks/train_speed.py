"""Training speed: the seed tutorial's recipe vs pytest-toolsel's default recipe.

Both fine-tune the same base on the same training examples (the `train:` entries of the case
files), on this machine, one after the other, and are then scored on the same held-out prompts
(the case files' `cases:` plus the generalisation set) by the product's strict verdict:

- seed recipe: TRL's SFTTrainer with the tutorial's SFTConfig (8 epochs, batch 4, learning rate
  5e-5 constant, fused AdamW, max length 512, bf16 where CUDA supports it) and TRL's own loss;
- default recipe: `pytest_toolsel.training.trainer.train` with tuning/recipe.yaml, i.e. what
  `pytest cases/` and `toolsel-train` run.

Both start from the same prepared base (control tokens added the same way), since the tutorial's
model already had them. Wall time covers model load, training and saving. It prints both rows and
the speed-up; `--only` runs one recipe (no ratio then).

    python benchmarks/train_speed.py                       # embedded Gemma 3 270M base, cases/
    python benchmarks/train_speed.py --base-model ./base --only default
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import torch
from tabulate import tabulate

from pytest_toolsel.cases.yaml_source import load_suite
from pytest_toolsel.functiongemma.base_prep import prepare_for_function_calling
from pytest_toolsel.inference.generation import GenerationSettings
from pytest_toolsel.models.embedded import EMBEDDED_ALIAS
from pytest_toolsel.models.loading import load_model, pick_device, resolve
from pytest_toolsel.training.data import split, tokenized_row, training_records
from pytest_toolsel.training.recipe import load_recipe
from pytest_toolsel.training.trainer import train
from pytest_toolsel.verdicts.evaluation import evaluate

ROOT = Path(__file__).resolve().parents[1]
TRAIN_FILES = sorted((ROOT / "cases").glob("*.yaml"))  # every shipped policy, as `pytest cases/` trains them
HELD_OUT_FILES = TRAIN_FILES + [ROOT / "benchmarks" / "data" / "search_policy_generalisation.yaml"]


def seed_config(output_dir: Path):
    """The tutorial's SFTConfig; fused AdamW and bf16 only where this torch/hardware supports them."""
    from trl import SFTConfig

    on_cuda = torch.cuda.is_available()
    return SFTConfig(
        output_dir=str(output_dir),
        num_train_epochs=8,
        per_device_train_batch_size=4,
        learning_rate=5e-5,
        lr_scheduler_type="constant",
        optim="adamw_torch_fused",
        # The tutorial's 512 would cut the seven-tool policy's rows (about 650 tokens) from the end,
        # answer first; both recipes train on the same whole rows instead.
        max_length=None,
        bf16=on_cuda and torch.cuda.is_bf16_supported(),
        use_cpu=not on_cuda,
        logging_steps=10,
        save_strategy="no",
        report_to="none",
        seed=42,
    )


def train_seed_recipe(suites, base_model: str, output: Path) -> None:
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTTrainer

    source = resolve(base_model)
    tokenizer = AutoTokenizer.from_pretrained(source)
    model = AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32)
    prepare_for_function_calling(model, tokenizer)
    # The same examples the default recipe trains on (it holds back a slice for its eval loss).
    # Tokenized as the default recipe does (see training_data.py: records would give every call the
    # argument names of every other policy).
    rows = [tokenized_row(tokenizer, record) for record in training_records(suites)]
    rows, _ = split(rows, load_recipe(ROOT / "tuning" / "recipe.yaml").eval_fraction, 42)
    trainer = SFTTrainer(model=model, args=seed_config(output / "trainer"), train_dataset=Dataset.from_list(rows),
                         processing_class=tokenizer)
    trainer.train()
    shutil.rmtree(output / "trainer", ignore_errors=True)
    trainer.model.generation_config.do_sample = False
    trainer.model.save_pretrained(output)
    tokenizer.save_pretrained(output)


def train_default_recipe(suites, base_model: str, output: Path) -> None:
    train(suites, base_model, output, load_recipe(ROOT / "tuning" / "recipe.yaml"))


def held_out_accuracy(checkpoint: Path) -> dict[str, tuple[int, int]]:
    suites = [load_suite(path) for path in HELD_OUT_FILES]
    cases = [(suite, case) for suite in suites for case in suite.cases]
    result = evaluate(str(checkpoint), lambda: load_model(str(checkpoint)), cases, GenerationSettings())
    scores: dict[str, tuple[int, int]] = {}
    for outcome in result.outcomes:
        passed, total = scores.get(outcome.suite.policy, (0, 0))
        scores[outcome.suite.policy] = (passed + outcome.passed, total + 1)
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base-model", default=EMBEDDED_ALIAS)
    parser.add_argument("--only", choices=["default", "seed"])
    parser.add_argument("--keep", type=Path, help="keep the checkpoints under this directory")
    args = parser.parse_args()
    resolve(args.base_model)  # the one-time conversion of the embedded base is not part of either run
    suites = [load_suite(path) for path in TRAIN_FILES]
    print(f"device: {pick_device(None)}, torch threads: {torch.get_num_threads()}, "
          f"training examples: {len(training_records(suites))}")
    recipes = {"default recipe (tuning/recipe.yaml)": train_default_recipe,
               "seed recipe (tutorial SFTConfig)": train_seed_recipe}
    if args.only:
        recipes = {name: run for name, run in recipes.items() if name.startswith(args.only)}
    workdir = Path(tempfile.mkdtemp(prefix="train-speed-"))
    rows, times = [], {}
    try:
        for name, run in recipes.items():
            checkpoint = (args.keep or workdir) / name.split()[0]
            started = time.perf_counter()
            run(suites, args.base_model, checkpoint)
            times[name] = time.perf_counter() - started
            scores = held_out_accuracy(checkpoint)
            rows.append([name, f"{times[name]:.0f}"] + [f"{p}/{t}" for p, t in scores.values()])
            print(f"{name}: {times[name]:.0f} s, held-out {scores}", flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    headers = ["recipe", "wall s (load+train+save)"] + [f"strict accuracy: {policy}" for policy in scores]
    print(tabulate(rows, headers=headers, tablefmt="github"))
    if len(times) == 2:
        default, seed = times.values()
        print(f"speed-up of the default recipe: {seed / default:.1f}x")


if __name__ == "__main__":
    main()
