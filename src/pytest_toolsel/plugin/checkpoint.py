"""Before the first verdict: train the model under test when it is missing (or --retrain), else say
whether it is stale (trained on other examples, or in an older format)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from ..models.embedded import EMBEDDED_ALIAS
from ..models.loading import is_local_target, old_format_warning
from ..training.recipe import load_recipe, parse_override
from ..training.trainer import staleness, train

if TYPE_CHECKING:
    from .session import ToolselSession


class Checkpoint:
    """The --model checkpoint, trained from --base-model on every collected suite's examples."""

    def __init__(self, session: ToolselSession):
        self.session = session

    def needs_training(self) -> bool:
        options = self.session.options
        if not is_local_target(options.model):
            if options.retrain:
                raise pytest.UsageError(f"--retrain needs a local --model directory, not {options.model}")
            return False
        return options.retrain or not Path(options.model).expanduser().exists()

    def train(self, terminal) -> None:
        """Fine-tune --model from the base on every collected suite's training examples."""
        options = self.session.options
        suites = self.session.suites
        recipe = load_recipe(options.recipe, dict(map(parse_override, options.recipe_overrides)))
        base = options.base_model or EMBEDDED_ALIAS
        terminal.section("pytest-toolsel: training", sep="=")
        terminal.write_line(
            f"training {options.model} from {base} on {sum(len(s.train) for s in suites)} examples "
            f"(recipe: {options.recipe or 'built-in defaults'})"
        )
        result = train(suites, base, Path(options.model), recipe, report_dir=options.report_dir,
                       device=options.device)
        terminal.write_line(f"checkpoint written to {result.checkpoint} in {result.metadata['train_seconds']} s")
        self.session.notes.append(f"trained {result.checkpoint} this session ({result.metadata['train_seconds']} s)")

    def check_staleness(self) -> None:
        model = self.session.options.model
        for warning in (old_format_warning(model), staleness(model, self.session.suites)):
            if warning:
                self.session.notes.append(warning)
