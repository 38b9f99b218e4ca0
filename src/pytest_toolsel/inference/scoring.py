"""Scores of token continuations of prompts (the tools' calls), from the generation pass itself.

The tool-choice confidence needs, per prompt, log p(call of tool | prompt) for every declared tool.
The calls share their first tokens (`<start_function_call>call:` and whatever the names share),
which greedy decoding feeds anyway when the answer is a tool call; the tool it goes on with is fed
by it too. Only the other tools' remaining tokens need forward passes of their own.
"""

from __future__ import annotations

from typing import Sequence

from ..models.logits import output_logits, target_log_probs
from ..models.prefix import common_prefix_length
from .decoding import Rows, StopRule, extend, greedy

Allowed = Sequence[frozenset[int]] | None  # per row, the continuations it is scored for; None: all


def greedy_and_scores(model, tokenizer, rows: Rows, max_new_tokens: int, stop: StopRule,
                      continuations: Sequence[list[int]], allowed: Allowed = None) -> tuple[list[list[int]], list[list[float]]]:
    """`greedy` answers and `continuation_scores`, sharing the forward passes they have in common.

    An answer that starts with the continuations' common tokens (a tool call starts with
    `<start_function_call>call:`) has fed them by the step after them, where the continuations
    part; and the continuation that greedy decoding goes on with is fed by it too. Only the others
    are fed separately, from a copy of the batch at the parting step. Rows whose answers do not
    start that way are scored from their prompts.

    `allowed` (per row, the indices of the continuations it needs; None: all) lets rows with tool
    sets of their own share a batch: each row is fed only its own tools' calls, and its scores of
    the others are left meaningless (only the parting logit), for the caller to ignore.
    """
    scoring = _ScoringAlongside(model, rows, continuations, allowed)
    answers = greedy(model, tokenizer, rows, max_new_tokens, stop, after_choice=scoring.after_choice)
    return answers, scoring.finish()


class _ScoringAlongside:
    """The state of `greedy_and_scores`: the scores under way and what they still need.

    Every position whose log-softmax is needed is kept as (hidden state, answer, continuation,
    target) and all of them are computed together at the end: each one reads the whole output layer,
    which is far cheaper in one large product than in many small ones.
    """

    def __init__(self, model, rows: Rows, continuations: Sequence[list[int]], allowed: Allowed = None):
        self.model, self.continuations, self.allowed = model, continuations, allowed
        self.common = _parting_point(continuations)
        self.scores: list = [None] * rows.mask.size(0)
        self.partial: dict = {}  # answer index -> parting logits, one per continuation
        self.positions: list[tuple] = []  # (hidden [n, width], answers, continuations, targets)
        self.following: dict[int, int] = {}  # answer index -> the continuation its greedy answer feeds
        self.followed: list[tuple] = []  # positions fed by greedy decoding, kept if it goes to the end
        self.completed: set[int] = set()
        self.parting = None  # the batch at the parting step, while some answer is still followed
        self.parting_slot: dict[int, int] = {}
        self.prompts, self.prompt_rows = rows.copy(), list(range(rows.mask.size(0)))

    def after_choice(self, step, rows, alive, answers, tokens) -> None:
        if step == self.common:
            self._part(rows, alive, answers, tokens)
        elif step > self.common and self.following:
            self._follow(step, rows, alive, answers)

    def finish(self) -> list[list[float]]:
        import torch

        for row, index in list(self.following.items()):  # answers that ended before the continuation did
            self._feed_from_parting([row], index)
        self.following.clear()
        for hidden, rows, indices, targets in self.followed:
            kept = [i for i, row in enumerate(rows) if row in self.completed]
            if kept:
                self.positions.append((hidden[kept], [rows[i] for i in kept], [indices[i] for i in kept],
                                       [targets[i] for i in kept]))
        if self.positions:
            hidden = torch.cat([hidden for hidden, _, _, _ in self.positions])
            targets = torch.tensor([t for _, _, _, ts in self.positions for t in ts], device=hidden.device)
            where = [(row, index) for _, rows, indices, _ in self.positions for row, index in zip(rows, indices)]
            for (row, index), value in zip(where, target_log_probs(self.model, hidden, targets).cpu()):
                self.partial[row][index] += value
        for row, found in self.partial.items():
            self.scores[row] = found.tolist()
        self._release_scored_prompts()
        if self.prompt_rows:
            allowed = [self.allowed[row] for row in self.prompt_rows] if self.allowed is not None else None
            for row, found in zip(self.prompt_rows, continuation_scores(self.model, self.prompts, self.continuations, allowed)):
                self.scores[row] = found
        return self.scores

    def _part(self, rows, alive, answers, tokens) -> None:
        import torch

        common, continuations = self.common, self.continuations
        slots = [slot for slot, row in enumerate(alive) if answers[row] == continuations[0][:common]]
        if slots:
            device = rows.mask.device
            parting = torch.tensor([call[common] for call in continuations], device=device)
            logits = output_logits(self.model, rows.last_hidden[slots], parting).float().cpu()
            self.parting = rows.copy()
            for slot, row_logits, token in zip(slots, logits, tokens[slots].tolist()):
                row = alive[slot]
                self.partial[row] = row_logits
                self.parting_slot[row] = slot
                followed = [i for i, call in enumerate(continuations) if call[common] == token and self.allows(row, i)]
                if len(followed) == 1 and len(continuations[followed[0]]) > common + 1:
                    self.following[row] = followed[0]
            for index, call in enumerate(continuations):
                if len(call) > common + 1:
                    feed = [alive[s] for s in slots if self.following.get(alive[s]) != index and self.allows(alive[s], index)]
                    self._feed_from_parting(feed, index)
        self._release_scored_prompts()
        if not self.following:
            self.parting = None

    def allows(self, row: int, index: int) -> bool:
        return self.allowed is None or index in self.allowed[row]

    def _follow(self, step, rows, alive, answers) -> None:
        slot_of = {row: slot for slot, row in enumerate(alive)}
        slots, fed_rows, indices, targets = [], [], [], []
        for row, index in list(self.following.items()):
            call = self.continuations[index]
            if row in slot_of and answers[row] == call[:step]:
                slots.append(slot_of[row])
                fed_rows.append(row)
                indices.append(index)
                targets.append(call[step])
                if step == len(call) - 1:
                    self.completed.add(row)
                    del self.following[row]
            else:  # the answer left the continuation: feed it from the parting step instead
                del self.following[row]
                self._feed_from_parting([row], index)
        if slots:
            self.followed.append((rows.last_hidden[slots], fed_rows, indices, targets))
        if not self.following:
            self.parting = None

    def _feed_from_parting(self, rows_to_feed: list[int], index: int) -> None:
        import torch

        if not rows_to_feed:
            return
        slots = torch.tensor([self.parting_slot[row] for row in rows_to_feed], device=self.parting.mask.device)
        tail = self.continuations[index][self.common :]
        hidden = _tail_hidden(self.model, self.parting, slots, tail)
        self.positions.append((
            hidden.flatten(0, 1),
            [row for row in rows_to_feed for _ in tail[1:]],
            [index] * hidden.size(0) * hidden.size(1),
            tail[1:] * len(rows_to_feed),
        ))

    def _release_scored_prompts(self) -> None:
        """Only the rows that nothing scores need their prompts' cache any longer."""
        import torch

        keep = [slot for slot, row in enumerate(self.prompt_rows) if row not in self.partial]
        if len(keep) < len(self.prompt_rows):
            self.prompt_rows = [self.prompt_rows[slot] for slot in keep]
            if keep:
                self.prompts.keep(torch.tensor(keep, device=self.prompts.mask.device))
            else:
                self.prompts = None


def continuation_scores(model, rows: Rows, continuations: Sequence[list[int]], allowed: Allowed = None) -> list[list[float]]:
    """Per row, log p(continuation | row) of each continuation, up to one constant per row.

    The continuations' common first tokens have the same probability for all of them, so they are
    fed once and not scored; at the first token where they part, the softmax denominator is shared
    too, so the raw logits of the parting tokens are enough; only later tokens need full log-softmaxes.
    Normalising the scores over the continuations gives their exact probabilities. `rows` is unchanged.
    With `allowed` (see `greedy_and_scores`) a row is fed only the continuations it needs.
    """
    import torch

    common = _parting_point(continuations)
    work = rows.copy()
    device = work.mask.device
    if common:
        shared = torch.tensor([continuations[0][:common]], device=device).expand(work.mask.size(0), -1)
        work.last_hidden = extend(model, work, shared)[:, -1]
    parting = torch.tensor([tokens[common] for tokens in continuations], device=device)
    scores = output_logits(model, work.last_hidden, parting).float()  # [rows, continuations]
    for index, tokens in enumerate(continuations):
        needed = [row for row in range(work.mask.size(0)) if allowed is None or index in allowed[row]]
        if len(tokens) > common + 1 and needed:  # each continuation on its own, so that none is padded to the longest
            slots = torch.tensor(needed, device=device)
            scores[slots, index] += _tail_log_probs(model, work, slots, tokens[common:])
    return scores.cpu().tolist()


def _tail_hidden(model, rows: Rows, slots, tail: list[int]):
    """Hidden states [len(slots), len(tail) - 1, width] of `tail[:-1]` fed after `rows[slots]` (whose
    next token is `tail[0]`), predicting `tail[1:]`. `rows` is unchanged."""
    import torch

    work = rows.copy()
    if not torch.equal(slots.cpu(), torch.arange(rows.mask.size(0))):
        work.keep(slots)
    fed = torch.tensor([tail[:-1]], device=rows.mask.device).expand(len(slots), -1)
    return extend(model, work, fed)


def _tail_log_probs(model, rows: Rows, slots, tail: list[int]):
    """Sum of log p(tail[1:]) after `tail[0]`, for `rows[slots]`. `rows` is unchanged."""
    import torch

    hidden = _tail_hidden(model, rows, slots, tail).flatten(0, 1)
    targets = torch.tensor(tail[1:], device=rows.mask.device).repeat(len(slots))
    return target_log_probs(model, hidden, targets).view(len(slots), -1).sum(dim=1)


def _parting_point(continuations: Sequence[list[int]]) -> int:
    """How many first tokens all continuations share (each must go on past them)."""
    common = common_prefix_length(continuations)
    if any(len(tokens) <= common for tokens in continuations):
        raise ValueError("a continuation is a prefix of another; the scores would not be comparable")
    return common
