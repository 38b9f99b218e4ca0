"""Sampled trials: each case answered N times by seeded sampling, in the batched pass greedy answers take.

Apps sample (Gemma's defaults: temperature 1.0, top-k 64, top-p 0.95), and one greedy answer says
nothing of how often a sampled one picks another tool. Every trial is a row of the batched pass
with a torch.Generator of its own, seeded from (seed, the case, the trial's number) and drawing
the numbers of that row's tokens only: the same seed gives the same trials whatever the batch size,
the other rows of the batch, or the xdist worker that answers the case (on one kind of device: CPU
and CUDA generators draw different numbers). The case is its content (prompt,
system text, tools as declared), not its id, because the results cache keys answers by content:
two cases asking the same question must draw the same trials whether they were cached or not.

A step's token follows transformers' order: temperature, then top-k, then top-p; it is drawn by the
Gumbel-max trick with a uniform number per token id from the row's generator (see `draw`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Sequence

from ..cases.suite import Case, Suite
from ..models.loading import LoadedModel
from ..models.logits import output_logits
from . import decoding
from .confidence import tool_choices
from .generation import ChunkDone, GenerationSettings, generate
from .results_cache import Answer, case_key


@dataclass(frozen=True)
class Sampling:
    samples: int  # trials per case
    temperature: float = 1.0
    top_k: int = 64  # 0: no limit
    top_p: float = 0.95  # 1.0: no limit
    seed: int = 0

    def as_dict(self) -> dict:
        return {"do_sample": True, "samples": self.samples, "temperature": self.temperature, "top_k": self.top_k,
                "top_p": self.top_p, "seed": self.seed}


def trial_seed(seed: int, question: str, trial: int) -> int:
    """A 64-bit seed for one trial of one question (a case's `case_key`)."""
    digest = hashlib.sha256(f"{seed}\0{question}\0{trial}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


@dataclass(frozen=True)
class SeededRows:
    """What generation needs to sample a list of prompts: the settings, and each prompt's seed."""

    sampling: Sampling
    seeds: tuple[int, ...]

    def rows(self, which: slice | Sequence[int]) -> "SeededRows":
        """The seeds of some of the prompts (a batch, or half of one), in that order."""
        seeds = self.seeds[which] if isinstance(which, slice) else tuple(self.seeds[i] for i in which)
        return SeededRows(self.sampling, seeds)

    def chooser(self, model) -> "TokenSampler":
        return TokenSampler(model, self.sampling, self.seeds)


class TokenSampler:
    """Picks each decoding step's tokens (`decoding.greedy`'s `choose`), every row from its own generator
    (on the model's device, so that no vocabulary's worth of numbers crosses to it at every step)."""

    def __init__(self, model, sampling: Sampling, seeds: Sequence[int]):
        import torch

        self.model, self.sampling = model, sampling
        self.generators = [torch.Generator(device=model.device).manual_seed(seed) for seed in seeds]

    def __call__(self, hidden, alive: Sequence[int]):
        """Tokens for the rows still decoding; `alive[slot]` is the batch row in that slot."""
        import torch

        logits = output_logits(self.model, hidden).float() / self.sampling.temperature
        noise = torch.stack([torch.rand(logits.size(-1), generator=self.generators[row], device=logits.device)
                             for row in alive])
        return draw(logits, noise, self.sampling.top_k, self.sampling.top_p)


def draw(logits, noise, top_k: int, top_p: float):
    """Per row, a token of the distribution that top-k and top-p leave of softmax(logits) (the most
    likely token always stays), drawn by the Gumbel-max trick with the row's `noise`: a uniform number
    per token id.

    Batching moves logits by float rounding (~1e-6). An inverse-CDF draw changes when the row's one
    number lies that close to any of the vocabulary's many boundaries (on the tests' tiny model at
    temperature 1.5, one trial in thirty changed with the batch size); here the token changes only when
    the two best perturbed scores lie that close, far rarer (none of 240 such trials, each at three batch
    sizes). The noise goes with the token id, not its rank, so two nearly tied tokens that swap places
    keep their numbers.
    """
    import torch

    if top_k and top_k < logits.size(-1):
        values, ids = logits.topk(top_k, dim=-1)  # largest first
    elif top_p < 1:
        values, ids = logits.sort(dim=-1, descending=True, stable=True)
    else:
        values, ids = logits, torch.arange(logits.size(-1), device=logits.device).expand_as(logits)
    perturbed = values - torch.log(-torch.log(noise.gather(1, ids)))
    if top_p < 1:
        probabilities = torch.softmax(values.double(), dim=-1)
        outside = probabilities.cumsum(dim=-1) - probabilities >= top_p  # past the fewest tokens that reach top_p
        perturbed = perturbed.masked_fill(outside, float("-inf"))
    return ids.gather(1, perturbed.argmax(dim=-1, keepdim=True)).squeeze(1)


def sampled_answers(
    loaded: LoadedModel, cases: Sequence[tuple[Suite, Case]], texts: Sequence[str], settings: GenerationSettings,
    sampling: Sampling, *, confidence: bool, on_chunk: ChunkDone | None = None,
) -> list[Answer]:
    """Each case's trials (`texts`: its rendered prompt), as one Answer per case: the trials in
    `trials`, the first of them as its own output, the tool choice (scored once, from the prompt)."""
    if not decoding.supports(loaded.model):
        raise ValueError(f"{loaded.name}: sampled trials need pytest-toolsel's own decoding loop, which does not "
                         f"support this model ({loaded.model.config.model_type}); run it without --samples")
    count = sampling.samples
    rows = [text for text in texts for _ in range(count)]
    seeds = tuple(trial_seed(sampling.seed, case_key(*pair), trial) for pair in cases for trial in range(count))
    generated = generate(loaded, rows, settings, _cases_done(on_chunk, count), SeededRows(sampling, seeds))
    choices = (tool_choices(loaded, texts, [suite.tool_names for suite, _ in cases], settings.batch_size)
               if confidence else [None] * len(texts))
    answers = []
    for index, choice in enumerate(choices):
        trials = tuple(Answer(g.text, cut_at=g.cut_at) for g in generated[index * count : (index + 1) * count])
        answers.append(Answer(trials[0].output, choice, trials[0].cut_at, trials=trials))
    return answers


def _cases_done(on_chunk: ChunkDone | None, trials: int) -> ChunkDone | None:
    """Progress counts cases: tells `on_chunk` of the cases whose last trial a chunk answered (a
    case's trials are neighbours in the pass, since they have one length)."""
    if on_chunk is None:
        return None
    rows = 0

    def answered(count: int) -> None:
        nonlocal rows
        before, rows = rows // trials, rows + count
        if rows // trials > before:
            on_chunk(rows // trials - before)

    return answered
