"""Seed sweep: train and evaluate recipes over several seeds, then print each recipe's mean and minimum.

One seed's figures move by 2-3 cases between seeds, as much as the gaps between recipes, so a
recipe is judged here by its mean and its worst seed over the held-out sets that `pytest cases/`
gates on, plus two sets that nothing is trained on:

- search: the search policy's held-out cases (cases/search_policy.yaml, 20);
- generalisation: benchmarks/data/search_policy_generalisation.yaml (80);
- Mobile Actions: cases/mobile_actions.yaml (47, passing = tool and argument checks), and its exact
  calls (the cases whose reference call fixes every argument);
- copying: benchmarks/data/mobile_actions_copying.yaml (40 e-mail addresses, the `to` argument
  alone: whether a value's first word is copied).

Each (recipe, seed) trains the shipped case files' examples with `pytest_toolsel.training.train`,
exactly as `pytest cases/` does, into a temporary directory, is scored, and is appended to the
results file at once: a sweep that is stopped resumes where it was (rows of the same settings, seed and
training case files already there are skipped).

    python benchmarks/seed_sweep.py --recipe tuning/recipe.yaml --seeds 42 7 1
    python benchmarks/seed_sweep.py --recipe tuning/recipe.yaml --recipe tuning/recipes/previous-default.yaml \\
        --variant "lora16: lora_rank=16,learning_rate=5e-4" --seeds 42 7 1
    python benchmarks/seed_sweep.py --table          # the table of what the results file holds
    python benchmarks/seed_sweep.py --score ./checkpoint --name default   # the main job's checkpoint as a seed
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from tabulate import tabulate

from pytest_toolsel.cases.yaml_source import load_suite
from pytest_toolsel.inference.generation import GenerationSettings
from pytest_toolsel.models.embedded import EMBEDDED_ALIAS
from pytest_toolsel.models.loading import METADATA_FILE, load_model, read_metadata, resolve
from pytest_toolsel.reporting.reports import exact_counts
from pytest_toolsel.training.recipe import Recipe, load_recipe, parse_override
from pytest_toolsel.training.trainer import train
from pytest_toolsel.verdicts.evaluation import evaluate

ROOT = Path(__file__).resolve().parents[1]
TRAIN_FILES = sorted((ROOT / "cases").glob("*.yaml"))  # every shipped policy, as `pytest cases/` trains them
HELD_OUT = {
    "search": ROOT / "cases" / "search_policy.yaml",
    "generalisation": ROOT / "benchmarks" / "data" / "search_policy_generalisation.yaml",
    "mobile_actions": ROOT / "cases" / "mobile_actions.yaml",
    # Copying e-mail addresses, 40 cases (scored since 2026-12-06: earlier rows have no such column).
    "copying": ROOT / "benchmarks" / "data" / "mobile_actions_copying.yaml",
}
COLUMNS = ("search", "generalisation", "mobile_actions", "mobile_exact", "copying")


def recipes(args) -> dict[str, object]:
    """Name -> Recipe: each --recipe file by its stem, each --variant as the default file plus overrides."""
    named = {Path(path).stem: load_recipe(Path(path)) for path in args.recipe}
    for variant in args.variant:
        name, _, settings = variant.partition(":")
        overrides = dict(parse_override(item.strip()) for item in settings.split(",") if item.strip())
        named[name.strip()] = load_recipe(ROOT / "tuning" / "recipe.yaml", overrides)
    return named


# Recipe keys added after the sweep's first rows, with the behaviour the code had before them: left
# out of a fingerprint at that value, so that a recipe keeps its fingerprint (and its earlier seeds)
# across the code that added them, whatever the built-in default becomes later.
LATER_KEYS = {"prefix_gradient": True, "policy_passes": {}, "average_weights_from": None}


def fingerprint(recipe) -> str:
    """The recipe's settings but the seed: rows of one fingerprint are seeds of one recipe."""
    settings = {
        key: value for key, value in recipe.as_dict().items()
        if key != "seed" and not (key in LATER_KEYS and value == LATER_KEYS[key])
    }
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]


def data_fingerprint(paths=TRAIN_FILES) -> str:
    """The case files the recipes train on: the same settings over other examples are another recipe."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def scores(checkpoint: Path) -> tuple[dict[str, list[int]], dict[str, dict[str, str]]]:
    """Passed and total cases per column, and each held-out set's misses (case id: the answer), so
    that runs can be compared miss by miss: the same cases missed by every seed are the recipe's,
    cases that come and go are the seed's."""
    suites = {name: load_suite(path) for name, path in HELD_OUT.items()}
    cases = [(suite, case) for suite in suites.values() for case in suite.cases]
    result = evaluate(str(checkpoint), lambda: load_model(str(checkpoint)), cases, GenerationSettings())
    found = {name: [0, 0] for name in COLUMNS}
    missed: dict[str, dict[str, str]] = {name: {} for name in HELD_OUT}
    for outcome in result.outcomes:
        name = next(key for key, suite in suites.items() if suite.path == outcome.suite.path)
        found[name][0] += outcome.passed
        found[name][1] += 1
        if not outcome.passed:
            missed[name][outcome.case.id] = outcome.output
    mobile = [o for o in result.outcomes if o.suite.path == suites["mobile_actions"].path]
    found["mobile_exact"] = list(exact_counts(mobile))
    return found, missed


def run_one(name: str, recipe, base_model: str, commit: str, data: str) -> dict:
    suites = [load_suite(path) for path in TRAIN_FILES]
    workdir = Path(tempfile.mkdtemp(prefix="seed-sweep-"))
    try:
        started = time.perf_counter()
        trained = train(suites, base_model, workdir / "checkpoint", recipe)
        seconds = time.perf_counter() - started
        started = time.perf_counter()
        found, missed = scores(trained.checkpoint)
        eval_seconds = time.perf_counter() - started
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return sweep_row(name, recipe, trained.metadata, seconds, found, missed, eval_seconds, commit, data)


def score_checkpoint(name: str, checkpoint: Path, commit: str) -> dict:
    """A row for a checkpoint trained elsewhere (the main job's `pytest cases/`, which trains the
    shipped case files exactly as `run_one` does), from the recipe and timings it records."""
    metadata = read_metadata(str(checkpoint))
    if "recipe" not in metadata:
        raise SystemExit(f"{checkpoint}: no training metadata ({METADATA_FILE}); only checkpoints trained by pytest-toolsel can be scored")
    recipe = Recipe().with_overrides(metadata["recipe"], str(checkpoint / METADATA_FILE))
    started = time.perf_counter()
    found, missed = scores(checkpoint)
    return sweep_row(name, recipe, metadata, metadata["train_seconds"], found, missed, time.perf_counter() - started, commit,
                     data_fingerprint())


def sweep_row(name: str, recipe, metadata: dict, train_seconds: float, found: dict, missed: dict, eval_seconds: float,
              commit: str, data: str) -> dict:
    history = metadata["log_history"]
    return {
        "recipe": name,
        "fingerprint": fingerprint(recipe),
        "data": data,
        "seed": recipe.seed,
        "settings": recipe.as_dict(),
        "train_seconds": round(train_seconds, 1),
        "eval_seconds": round(eval_seconds, 1),
        "train_examples": metadata["train_examples"],
        "steps": max((entry.get("step", 0) for entry in history), default=0),
        "eval_loss": [round(entry["eval_loss"], 4) for entry in history if "eval_loss" in entry],
        # The training loss at each logged step: two runs of one recipe, seed and data that differ here
        # did not train alike (the main job's checkpoint against the sweep's, say).
        "loss": [[entry["step"], round(entry["loss"], 4)] for entry in history if "loss" in entry],
        "scores": found,
        "missed": missed,
        "commit": commit,
        "bf16": metadata.get("bf16"),
    }


def _commit() -> str:
    try:
        return subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def read_rows(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def table(rows: list[dict]) -> str:
    """Per recipe (by settings and training case files): seeds, mean and minimum of each held-out set, mean training time."""
    groups: dict[tuple[str, str, str | None], list[dict]] = {}
    for row in rows:  # rows from before the data fingerprint carry none: they stay a group of their own
        groups.setdefault((row["recipe"], row["fingerprint"], row.get("data")), []).append(row)
    lines = []
    for (name, _, _), runs in groups.items():
        line = [name, " ".join(str(run["seed"]) for run in runs)]
        for column in COLUMNS:
            if any(column not in run["scores"] for run in runs):  # a set scored only since later rows
                line.append("-")
                continue
            passed = [run["scores"][column][0] for run in runs]
            total = runs[0]["scores"][column][1]
            line.append(f"{statistics.mean(passed):.1f} / {min(passed)} of {total}")
        line.append(f"{statistics.mean(run['train_seconds'] for run in runs):.0f}")
        lines.append(line)
    headers = ["recipe", "seeds", *(f"{column} mean / min" for column in COLUMNS), "train s (mean)"]
    return tabulate(lines, headers=headers, tablefmt="github")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe", action="append", default=[], help="a recipe file (repeatable)")
    parser.add_argument("--variant", action="append", default=[],
                        help="'name: key=value,key=value' on top of tuning/recipe.yaml (repeatable)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 7, 1])
    parser.add_argument("--base-model", default=EMBEDDED_ALIAS)
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results" / "seed-sweep.jsonl",
                        help="the results file, tracked in git so that the rows behind docs/results.md stay with the code")
    parser.add_argument("--table", action="store_true", help="only print the table of the results file")
    parser.add_argument("--score", type=Path, metavar="CHECKPOINT",
                        help="score a checkpoint trained by `pytest cases/` (a seed of its recipe) instead of training")
    parser.add_argument("--name", default="default", help="the recipe name of a --score row (default: default)")
    args = parser.parse_args()
    if args.score:
        row = score_checkpoint(args.name, args.score, _commit())
        args.results.parent.mkdir(parents=True, exist_ok=True)
        with args.results.open("a", encoding="utf-8") as results:
            results.write(json.dumps(row) + "\n")
        print(f"{args.name} seed {row['seed']}: {row['scores']} ({args.score}, trained in {row['train_seconds']:.0f} s)")
    elif not args.table:
        resolve(args.base_model)  # the embedded base's one-time conversion is no recipe's time
        data = data_fingerprint()  # at the start: case files edited while the sweep runs are not what it trains
        done = {(row["fingerprint"], row.get("data"), row["seed"]) for row in read_rows(args.results)}
        commit = _commit()  # the code this process imported, whatever is committed while it runs
        args.results.parent.mkdir(parents=True, exist_ok=True)
        for seed in args.seeds:  # seed-major: an interrupted sweep has every recipe at the same seeds
            for name, recipe in recipes(args).items():
                recipe = recipe.with_overrides({"seed": seed})
                if (fingerprint(recipe), data, seed) in done:
                    continue
                row = run_one(name, recipe, args.base_model, commit, data)
                with args.results.open("a", encoding="utf-8") as results:
                    results.write(json.dumps(row) + "\n")
                print(f"{name} seed {seed}: {row['scores']} in {row['train_seconds']:.0f} s", flush=True)
    print(f"seed sweep results: {args.results} (passed cases: mean over seeds / worst seed)")
    print(table(read_rows(args.results)))


if __name__ == "__main__":
    main()
