"""One training progress line a person can read, instead of Trainer's bars and per-step dicts.

On a terminal the line is rewritten in place after every step (step, epoch, loss, time left); where
the output is no terminal (CI logs) it is written once per epoch, so a log has a line per epoch
rather than one per step. The full per-step log stays in TensorBoard and toolsel.json.
"""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager
from typing import TextIO

from ..inference.progress import duration


def progress_callback(stream: TextIO | None = None, interactive: bool | None = None):
    """A `TrainerCallback` writing the progress line to `stream` (stderr by default)."""
    from transformers import TrainerCallback

    class TrainingProgress(TrainerCallback):
        def __init__(self):
            self.stream = stream or sys.stderr
            self.interactive = self.stream.isatty() if interactive is None else interactive
            self.started = time.perf_counter()
            self.loss: float | None = None
            self.eval_loss: float | None = None

        def on_train_begin(self, args, state, control, **kwargs):
            self.started = time.perf_counter()
            self.state = state
            # The recipe's epochs as given (3.5); state.num_train_epochs is rounded up to whole ones.
            self.epochs = args.num_train_epochs

        def on_log(self, args, state, control, logs=None, **kwargs):
            logs = logs or {}
            self.loss = logs.get("loss", self.loss)
            self.eval_loss = logs.get("eval_loss", self.eval_loss)

        def line(self, state) -> str:
            elapsed = time.perf_counter() - self.started
            left = elapsed / state.global_step * (state.max_steps - state.global_step) if state.global_step else 0.0
            parts = [f"training: step {state.global_step}/{state.max_steps}",
                     f"epoch {state.epoch or 0:.2f}/{self.epochs:g}"]
            if self.loss is not None:
                parts.append(f"loss {self.loss:.4f}")
            if self.eval_loss is not None:
                parts.append(f"eval loss {self.eval_loss:.4f}")
            parts.append(f"{duration(elapsed)} elapsed, {duration(left)} left")
            return " | ".join(parts)

        def on_step_end(self, args, state, control, **kwargs):
            if self.interactive:
                self.stream.write("\r\x1b[K" + self.line(state))
                self.stream.flush()

        def on_evaluate(self, args, state, control, metrics=None, **kwargs):
            self.eval_loss = (metrics or {}).get("eval_loss", self.eval_loss)
            self.epoch_line()  # evaluation ends each epoch where there is one: its line carries the eval loss

        def on_epoch_end(self, args, state, control, **kwargs):
            if args.eval_strategy != "epoch":  # IntervalStrategy is a str enum
                self.epoch_line()

        def epoch_line(self) -> None:
            if not self.interactive:
                self.stream.write(self.line(self.state) + "\n")
                self.stream.flush()

        def on_train_end(self, args, state, control, **kwargs):
            if self.interactive:
                self.stream.write("\r\x1b[K" + self.line(state) + "\n")
                self.stream.flush()

    return TrainingProgress()


@contextmanager
def library_bars_hidden():
    """Hide the libraries' own progress bars ("Loading weights", "Truncating train dataset", ...)
    while training runs, and give them back as they were afterwards."""
    import datasets.utils.logging as datasets_logging
    import transformers.utils.logging as transformers_logging

    shown = (transformers_logging.is_progress_bar_enabled(), datasets_logging.is_progress_bar_enabled())
    transformers_logging.disable_progress_bar()
    datasets_logging.disable_progress_bar()
    try:
        yield
    finally:
        if shown[0]:
            transformers_logging.enable_progress_bar()
        if shown[1]:
            datasets_logging.enable_progress_bar()
