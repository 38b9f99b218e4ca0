"""`toolsel-train`: the same fine-tune that `pytest cases/` runs, without pytest.

    toolsel-train cases/ --output checkpoint --recipe tuning/recipe.yaml --recipe-set epochs=2

Options are spelled as pytest's: --base-model, --recipe, --recipe-set, --device, --report-dir.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .cases.suite import CaseFileError
from .cases.sources import is_case_file, load_suites
from .models.embedded import EMBEDDED_ALIAS
from .models.loading import ModelLoadError, model_reference
from .training.recipe import DEFAULT_RECIPE, RecipeError, default_recipe_path, load_recipe, parse_override
from .training.trainer import TrainingError, train


def case_files(paths: list[str]) -> list[Path]:
    found: list[Path] = []
    for name in paths:
        path = Path(name)
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if is_case_file(p))
        elif path.is_file():
            found.append(path)
        else:
            raise CaseFileError(path, "no such file or directory")
    return found


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="toolsel-train", description=__doc__.split("\n")[0])
    ap.add_argument("paths", nargs="*", default=["cases"], help="case files or directories (default: cases/)")
    ap.add_argument("--output", default="checkpoint", help="checkpoint directory to write (default: checkpoint)")
    ap.add_argument("--base-model", default=EMBEDDED_ALIAS, help=f"base model (default: the embedded {EMBEDDED_ALIAS})")
    ap.add_argument("--recipe", type=Path, default=None, help=f"recipe YAML (default: {DEFAULT_RECIPE} if present)")
    ap.add_argument("--recipe-set", "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="override one recipe setting, e.g. --recipe-set learning_rate=1e-4 (repeatable; "
                    "--set is its old spelling)")
    ap.add_argument("--device", default=None, help="torch device (default: cuda when available, else cpu)")
    ap.add_argument("--report-dir", type=Path, default=Path("reports"), help="where the loss curve goes")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        base = model_reference(args.base_model)
    except ModelLoadError as problem:
        print(f"toolsel-train: --base-model {problem}", file=sys.stderr)
        return 2
    try:
        recipe = load_recipe(args.recipe or default_recipe_path(), dict(map(parse_override, args.overrides)))
        suites = [suite for path in case_files(args.paths) for suite in load_suites(path)]
        result = train(suites, base.text, Path(args.output), recipe, report_dir=args.report_dir, device=args.device)
    except (CaseFileError, RecipeError, TrainingError, ModelLoadError) as problem:
        print(f"toolsel-train: {problem}", file=sys.stderr)
        return 2
    if not result.metadata:  # another process of an `accelerate launch` run saved the checkpoint
        return 0
    print(f"checkpoint written to {result.checkpoint} in {result.metadata['train_seconds']} s")
    if result.loss_curve:
        print(f"loss curve written to {result.loss_curve}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
