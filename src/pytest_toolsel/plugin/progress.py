"""Progress of the batched pass on pytest's terminal: ten minutes of generation must not look like a hang.

On a terminal one line is rewritten in place; in a log (not a TTY, or under CI) each chunk gets a
line of its own, which a log keeps and a CI page shows as it comes.
"""

from __future__ import annotations

import os
from contextlib import nullcontext

import pytest

from ..inference.progress import ProgressSink

CI_VARIABLES = ("CI", "BUILD_NUMBER")  # as pytest tells CI apart


class TerminalProgress:
    """Gives each model's evaluation a sink that writes to pytest's terminal, past output capturing
    (the pass runs inside the first test)."""

    def __init__(self, config: pytest.Config):
        self.config = config  # its terminal reporter is looked up when a pass starts: it configures after us

    def sink(self, model: str) -> ProgressSink | None:
        plugins = self.config.pluginmanager
        terminal = plugins.get_plugin("terminalreporter")
        if terminal is None:  # -p no:terminal
            return None
        capture = plugins.get_plugin("capturemanager")
        in_place = bool(terminal.isatty()) and not any(os.environ.get(name) for name in CI_VARIABLES)

        def show(line: str, last: bool) -> None:
            text = f"pytest-toolsel: {model}: {line}"
            with capture.global_and_fixture_disabled() if capture else nullcontext():
                if not in_place:
                    terminal.write_line(text)
                    return
                terminal.ensure_newline()  # off the line of test results pytest has begun
                terminal.rewrite(text, erase=True)
                if last:
                    terminal.write("\n")

        return show
