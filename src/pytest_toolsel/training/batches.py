"""The order of training rows: each batch holds rows of one policy.

The loss runs a batch's shared prompt prefix once (loss.py); rows of one policy share the
whole developer turn, hundreds of tokens with seven declarations, rows of two policies almost
nothing. A plain random order mixes policies in most batches, and each batch then pays one prefix
per policy in it. Here every policy's rows are shuffled and cut into batches of its own; the batches
are shuffled together, so the order of policies is still random, step by step.
"""

from __future__ import annotations

import random
from typing import Hashable, Iterator, Mapping, Sequence


class PolicyBatchSampler:
    """Row indices in batches of one policy each (a `torch.utils.data.Sampler` of indices).

    A policy's rows that do not fill a whole batch are pooled with the other policies' remainders
    into the last batches, so no row is dropped; the one short batch, if any, comes last, so that
    every other batch the data loader cuts from this order is whole and of one policy. Each epoch
    shuffles anew, from `seed` and the epoch number: runs are repeatable. A group named in `passes`
    has its rows that many times an epoch, each pass shuffled on its own.
    """

    def __init__(self, groups: Sequence[Hashable], batch_size: int, seed: int, passes: Mapping[Hashable, int] | None = None):
        self.groups = list(groups)
        self.batch_size = batch_size
        self.seed = seed
        self.passes = dict(passes or {})
        self.epochs = 0

    def __len__(self) -> int:
        return sum(self.passes.get(group, 1) for group in self.groups)

    def __iter__(self) -> Iterator[int]:
        rng = random.Random(f"{self.seed}-{self.epochs}")
        self.epochs += 1
        return iter([row for batch in self.batches(rng) for row in batch])

    def batches(self, rng: random.Random) -> list[list[int]]:
        members: dict[Hashable, list[int]] = {}
        for row, group in enumerate(self.groups):
            members.setdefault(group, []).append(row)
        size = self.batch_size
        whole, remainders = [], []
        for group, rows in members.items():
            rows = [row for _ in range(self.passes.get(group, 1)) for row in _shuffled(rows, rng)]
            cut = len(rows) - len(rows) % size
            whole += [rows[start : start + size] for start in range(0, cut, size)]
            remainders += rows[cut:]
        rng.shuffle(whole)
        return whole + [remainders[start : start + size] for start in range(0, len(remainders), size)]


def _shuffled(rows: list[int], rng: random.Random) -> list[int]:
    rows = rows[:]
    rng.shuffle(rows)
    return rows
