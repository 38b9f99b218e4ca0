"""Before the first verdict: train the model under test when it is missing (or --retrain), else say
whether it is stale (trained on other examples, or in an older format)."""

from __future__ import annotations

from ..cases.suite import Suite
from ..models.loading import EMBEDDED_BASE, old_format_warning
from ..training.recipe import load_recipe, parse_override
from ..training.trainer import staleness, train
from .options import Options


class Checkpoint:
    """The --model checkpoint, trained from --base-model on every collected suite's examples.

    `suites` fill up while pytest collects; `notes` are the session's lines for the terminal summary.
    """

    def __init__(self, options: Options, suites: list[Suite], notes: list[str]):
        self.options = options
        self.suites = suites
        self.notes = notes

    def needs_training(self) -> bool:
        """A local --model directory that is missing (one to train into), or --retrain."""
        model = self.options.model
        return model.is_local and (self.options.retrain or not model.path.exists())

    def train(self, terminal) -> None:
        """Fine-tune --model from the base on every collected suite's training examples."""
        options = self.options
        recipe = load_recipe(options.recipe, dict(map(parse_override, options.recipe_overrides)))
        base = options.base_model or EMBEDDED_BASE
        terminal.section("pytest-toolsel: training", sep="=")
        terminal.write_line(
            f"training {options.model} from {base} on {sum(len(s.train) for s in self.suites)} examples "
            f"(recipe: {options.recipe or 'built-in defaults'})"
        )
        result = train(self.suites, base.text, options.model.path, recipe, report_dir=options.report_dir,
                       device=options.device)
        terminal.write_line(f"checkpoint written to {result.checkpoint} in {result.metadata['train_seconds']} s")
        self.notes.append(f"trained {result.checkpoint} this session ({result.metadata['train_seconds']} s)")

    def check_staleness(self) -> None:
        model = self.options.model
        if not model.is_local:  # a hub model or the embedded base: pytest-toolsel did not train it
            return
        for warning in (old_format_warning(model.text), staleness(model.text, self.suites)):
            if warning:
                self.notes.append(warning)
