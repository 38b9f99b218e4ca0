"""Training speed: seconds of training per training example, recipe against recipe, in one run.

Every contender trains the same examples (the shipped case files' `train:` entries, the first
`--examples` of each policy) from the same base, one after the other on this machine, with
`pytest_toolsel.training.train` as `pytest cases/` runs it; the time is the whole call (model load,
training, eval loss, saving) divided by the examples it trained on. Contenders:

- each `--recipe` file, on this code (default: tuning/recipe.yaml);
- with `--previous-code REV`, the code of git revision REV with that revision's own
  tuning/recipe.yaml, in a subprocess: what training cost before this code's speed-ups.

The first contender is the one measured; every other is a baseline, and the ratio printed for each
is baseline seconds per example / measured seconds per example.

    python benchmarks/train_speed.py --examples 48 --previous-code fc4e8b2
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
import yaml
from tabulate import tabulate

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_RECIPES = [ROOT / "tuning" / "recipe.yaml"]

# Run inside the contender's own code (cwd: its checkout): train the case files given, print the metadata.
TRAIN_SCRIPT = """
import json, sys
from pathlib import Path
from pytest_toolsel.cases.yaml_source import load_suite
from pytest_toolsel.training.recipe import load_recipe
from pytest_toolsel.training.trainer import train
import pytest_toolsel
suites = [load_suite(Path(path)) for path in sys.argv[3:]]
result = train(suites, sys.argv[1], Path(sys.argv[2]), load_recipe(Path("tuning/recipe.yaml")))
print("RESULT " + json.dumps({"seconds": result.metadata["train_seconds"], "examples": result.metadata["train_examples"],
                              "code": pytest_toolsel.__file__}))
"""


def subset_case_files(directory: Path, examples: int) -> list[Path]:
    """The shipped case files with the first `examples` training examples of each (all held-out cases kept)."""
    written = []
    for source in sorted((ROOT / "cases").glob("*.yaml")):
        document = yaml.safe_load(source.read_text(encoding="utf-8"))
        document["train"] = document.get("train", [])[:examples]
        target = directory / source.name
        target.write_text(yaml.safe_dump(document, sort_keys=False, allow_unicode=True), encoding="utf-8")
        written.append(target)
    return written


def train_here(recipe: Path, case_files: list[Path], base_model: str, output: Path) -> dict:
    from pytest_toolsel.cases.yaml_source import load_suite
    from pytest_toolsel.training.recipe import load_recipe
    from pytest_toolsel.training.trainer import train

    result = train([load_suite(path) for path in case_files], base_model, output, load_recipe(recipe))
    return {"seconds": result.metadata["train_seconds"], "examples": result.metadata["train_examples"]}


def train_previous_code(revision: str, case_files: list[Path], base_model: str, output: Path, workdir: Path) -> dict:
    """Train with the code and default recipe of `revision`, in a subprocess that imports that code."""
    checkout = workdir / f"code-{revision}"
    checkout.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", revision, "src", "tuning"], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(checkout)], input=archive.stdout, check=True)
    env = {**os.environ, "PYTHONPATH": str(checkout / "src")}
    done = subprocess.run([sys.executable, "-c", TRAIN_SCRIPT, base_model, str(output), *map(str, case_files)],
                          cwd=checkout, env=env, capture_output=True, text=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode or not lines:
        raise RuntimeError(f"training with the code of {revision} failed:\n{done.stderr[-3000:]}")
    result = json.loads(lines[-1].removeprefix("RESULT "))
    if not result.pop("code").startswith(str(checkout)):
        raise RuntimeError(f"the subprocess did not import the code of {revision}")
    return result


def main() -> None:
    from pytest_toolsel.models.embedded import EMBEDDED_ALIAS
    from pytest_toolsel.models.loading import pick_device, resolve

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe", type=Path, action="append", help="a recipe file (repeatable; the first is measured)")
    parser.add_argument("--previous-code", metavar="REV", help="also train with the code and default recipe of git revision REV")
    parser.add_argument("--examples", type=int, default=48, help="training examples of each policy (default 48)")
    parser.add_argument("--base-model", default=EMBEDDED_ALIAS)
    args = parser.parse_args()
    base_model = resolve(args.base_model)  # the embedded base's one-time conversion is no contender's time
    print(f"device: {pick_device(None)}, torch threads: {torch.get_num_threads()}, "
          f"examples per policy: {args.examples}")
    workdir = Path(tempfile.mkdtemp(prefix="train-speed-"))
    rows = []
    try:
        case_files = subset_case_files(workdir, args.examples)
        for index, recipe in enumerate(args.recipe or DEFAULT_RECIPES):
            found = train_here(recipe, case_files, base_model, workdir / f"checkpoint-{index}")
            rows.append((f"{recipe.relative_to(ROOT) if recipe.is_relative_to(ROOT) else recipe} (this code)", found))
            print(rows[-1], flush=True)
        if args.previous_code:
            found = train_previous_code(args.previous_code, case_files, base_model, workdir / "checkpoint-previous", workdir)
            rows.append((f"default recipe and code of {args.previous_code}", found))
            print(rows[-1], flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    measured = rows[0][1]["seconds"] / rows[0][1]["examples"]
    table = [[name, found["examples"], f"{found['seconds']:.0f}", f"{found['seconds'] / found['examples']:.2f}",
              f"{found['seconds'] / found['examples'] / measured:.2f}x"] for name, found in rows]
    print(tabulate(table, headers=["contender", "examples trained", "wall s", "s per example",
                                   f"vs {rows[0][0]}"], tablefmt="github"))


if __name__ == "__main__":
    main()
