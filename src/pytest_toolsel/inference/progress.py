"""How far a batched evaluation has got: cases answered out of the total, and the time left.

Ten minutes of generation without a word look like a hang. Whoever asks for answers may pass a
`ProgressSink`; it is shown a line when generation starts and after every chunk of the batched
pass, and told which line is the last (a terminal rewrites one line in place, a log keeps a line per
chunk: that choice is the sink's).
"""

from __future__ import annotations

import time
from typing import Callable

ProgressSink = Callable[[str, bool], None]  # (line, whether it is the last)


class Progress:
    """Counts the cases answered, and estimates the time left from the pace so far."""

    def __init__(self, total: int, show: ProgressSink, clock: Callable[[], float] = time.monotonic):
        self.total = total
        self.done = 0
        self.show = show
        self.clock = clock
        self.started = clock()
        show(self.line(), False)

    def answered(self, count: int) -> None:
        self.done += count
        self.show(self.line(), self.done >= self.total)

    def line(self) -> str:
        elapsed = self.clock() - self.started
        if self.done >= self.total:
            return f"{self.total}/{self.total} cases answered in {duration(elapsed)}"
        if not self.done:
            return f"0/{self.total} cases answered"
        # Chunks go longest prompts first within each group, so the estimate errs on the long side.
        left = elapsed / self.done * (self.total - self.done)
        return f"{self.done}/{self.total} cases answered, about {duration(left)} left"


def duration(seconds: float) -> str:
    """`42s`, `3m05s`, `1h02m`: as precise as a wait needs."""
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02}m"
