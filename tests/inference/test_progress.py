"""Progress of the batched pass: cases answered out of the total and the time left, chunk by chunk."""

from __future__ import annotations

import itertools

import torch
from conftest import PROMPTS, TOOLS

from pytest_toolsel.functiongemma.chat_format import prompt_messages, render
from pytest_toolsel.inference.generation import GenerationSettings, generate
from pytest_toolsel.inference.progress import Progress, duration
from pytest_toolsel.models.loading import load_model


def test_the_time_left_comes_from_the_pace_so_far():
    lines = []
    clock = iter([0.0, 0.0, 30.0, 150.0, 200.0]).__next__  # started, then one reading per line
    progress = Progress(10, lambda line, last: lines.append((line, last)), clock=clock)
    progress.answered(2)
    progress.answered(6)
    progress.answered(2)
    assert lines == [
        ("0/10 cases answered", False),
        ("2/10 cases answered, about 2m00s left", False),  # 30 s for 2: 15 s a case, 8 to go
        ("8/10 cases answered, about 38s left", False),
        ("10/10 cases answered in 3m20s", True),
    ]


def test_durations_read_as_a_wait_does():
    assert [duration(s) for s in (0.4, 59, 61, 3599, 3600, 7384)] == ["0s", "59s", "1m01s", "59m59s", "1h00m", "2h03m"]


def test_the_batched_pass_reports_every_chunk(tiny_checkpoint):
    loaded = load_model(str(tiny_checkpoint), torch.device("cpu"))
    prompts = [render(prompt_messages(prompt), TOOLS, add_generation_prompt=True) for prompt in PROMPTS]
    lines = []
    progress = Progress(len(prompts), lambda line, last: lines.append((line, last)), clock=itertools.count().__next__)
    generate(loaded, prompts, GenerationSettings(batch_size=4, max_new_tokens=4), progress.answered)
    assert [line.split(",")[0] for line, _ in lines] == [
        "0/10 cases answered", "4/10 cases answered", "8/10 cases answered", "10/10 cases answered in 4s",
    ]
    assert [last for _, last in lines] == [False, False, False, True]
