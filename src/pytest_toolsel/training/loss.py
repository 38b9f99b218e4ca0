"""The fine-tuning loss, computed only where it is needed.

Every training row of a policy starts with the same developer turn (the ~200 tokens that declare
the tools); only the user turn and the answer differ, and only answer tokens carry a loss. A plain
forward pass repeats the prefix for every row and projects every position through the 262k-entry
output layer. Here the prefix of each group of rows that share one goes through the model once,
its KV cache is repeated for the rows (autograd adds up the gradients of the copies, so the loss
and gradients equal the plain forward's), and only the answer positions are projected.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..functiongemma.chat_format import ESCAPE
from ..models.logits import IGNORED, answer_log_probs
from ..models.prefix import attends_to_everything, common_prefix_length

MIN_SHARED = 32  # tokens; policies' developer turns are hundreds of tokens long


def answer_head_weights(labels, head_tokens: int, weight: float, emphases: tuple = ()):
    """Per-position loss weights for next-token labels (already shifted): `weight` on each answer's
    first `head_tokens` label positions, 1 elsewhere, 0 where the label is ignored; each of
    `emphases` (DigitWeight) raises the weights of its own positions to at least its
    weight, never lowering the head's."""
    import torch

    answer = labels != IGNORED
    rank = torch.cumsum(answer.long(), dim=1)  # 1 for the first answer token, 2 for the next, ...
    weights = torch.where(rank <= head_tokens, torch.full_like(labels, 0, dtype=torch.float32) + weight, 1.0)
    for emphasis in emphases:
        weights = torch.where(emphasis.positions(labels), weights.clamp(min=emphasis.weight), weights)
    return weights * answer


@dataclass(frozen=True)
class DigitWeight:
    """Extra loss weight on digit tokens: a time, date or number in an argument is a handful of
    single-digit tokens (Gemma's tokenizer splits numbers into digits), and one wrong digit makes
    the call wrong ("4:00 PM" written as 15:00), while the loss counts it as one token in forty."""

    token_ids: tuple[int, ...]
    weight: float

    def positions(self, labels):
        import torch

        return torch.isin(labels, torch.tensor(self.token_ids, device=labels.device))


@dataclass(frozen=True)
class ArgumentEndWeight:
    """Extra loss weight on the token right after a string argument's closing `<escape>`: `,` when
    another argument follows, `}` when the call ends there. Which of its arguments a call carries is
    decided at these tokens, one each, and they were where contacts lost the phone number their
    request gave: the call ended after `last_name` (keys are sorted, so `phone_number` comes last).
    A value that itself begins with `,` or `}` gets the weight on that character too."""

    escape_id: int
    end_ids: tuple[int, ...]
    weight: float

    def positions(self, labels):
        import torch

        after_escape = torch.zeros_like(labels, dtype=torch.bool)
        after_escape[:, 1:] = labels[:, :-1] == self.escape_id
        return after_escape & torch.isin(labels, torch.tensor(self.end_ids, device=labels.device))


def loss_emphases(recipe, tokenizer) -> tuple:
    """The recipe's extra loss weights that are on (a weight of 1 adds nothing)."""
    emphases = []
    if recipe.digit_weight != 1.0:
        emphases.append(DigitWeight(digit_token_ids(tokenizer), recipe.digit_weight))
    if recipe.argument_end_weight != 1.0:
        escape, *ends = (known_token_id(tokenizer, token) for token in (ESCAPE, ",", "}"))
        emphases.append(ArgumentEndWeight(escape, tuple(ends), recipe.argument_end_weight))
    return tuple(emphases)


def known_token_id(tokenizer, token: str) -> int:
    """The id of a token that the tokenizer must have as one token of its vocabulary."""
    found = token_id(tokenizer, token)
    if found is None:
        raise ValueError(f"the tokenizer has no token {token!r}, which argument_end_weight needs")
    return found


def digit_token_ids(tokenizer) -> tuple[int, ...]:
    """The ids of the tokens "0" to "9" that the tokenizer has (each digit its own token)."""
    return tuple(found for found in (token_id(tokenizer, digit) for digit in "0123456789") if found is not None)


def token_id(tokenizer, token: str) -> int | None:
    """The id of `token` as one token of the vocabulary, None if the tokenizer has no such token."""
    found = tokenizer.convert_tokens_to_ids(token)
    return found if isinstance(found, int) and found != tokenizer.unk_token_id else None


@dataclass(frozen=True)
class PrefixGroup:
    rows: list[int]
    prefix_length: int  # tokens run once for the whole group


def prompt_lengths(labels) -> list[int]:
    """Tokens before each row's first answer token (the whole row when it has none)."""
    answer = labels != IGNORED
    first = answer.int().argmax(dim=1)
    return [int(f) if a else labels.size(1) for f, a in zip(first, answer.any(dim=1))]


def prefix_groups(input_ids, labels) -> list[PrefixGroup]:
    """Rows grouped by a shared prompt prefix.

    A row joins the first group whose first row shares a real stretch of its prompt with it (rows of
    one policy share the whole developer turn; rows of different policies a few tokens at most). The
    prefix stops one token before the earliest answer so that its positions predict no answer token.
    """
    lengths = prompt_lengths(labels)
    rows = input_ids.tolist()
    members: list[list[int]] = []
    shared: list[int] = []
    for row, ids in enumerate(rows):
        for index, group in enumerate(members):
            first = group[0]
            limit = min(lengths[first], lengths[row]) - 1
            common = common_prefix_length([rows[first], ids], limit)
            if common >= max(1, min(MIN_SHARED, lengths[row] // 2)):
                group.append(row)
                shared[index] = min(shared[index], common)
                break
        else:
            members.append([row])
            shared.append(max(lengths[row] - 1, 0))
    return [PrefixGroup(group, length if len(group) > 1 else 0) for group, length in zip(members, shared)]


def right_padded(attention_mask) -> bool:
    """Whether every row's real tokens come first and padding only after them.

    Then no padding sits between a shared prefix and the rest of a row, and the prefix's KV cache
    continues each row exactly, whatever the sliding window: a sliding layer's cache keeps the last
    window's worth of prefix positions, which is all that the next positions can attend to. TRL's
    collator pads on the right; rows longer than Gemma 3's 512-token window (seven tool declarations
    are ~600 tokens) then keep the prefix saving (tested against the plain forward, window 16).
    """
    import torch

    return bool(torch.all(attention_mask[:, 1:] <= attention_mask[:, :-1]))


def keeps_prefix_gradient(prefix_gradient: bool | int, prefix_length: int) -> bool:
    """The recipe's `prefix_gradient` for one shared prefix: True or False for all, or a token count
    up to which a prefix keeps its gradient."""
    if isinstance(prefix_gradient, bool):
        return prefix_gradient
    return prefix_length <= prefix_gradient


def weighted_answer_loss(
    model, input_ids, attention_mask, labels, head_tokens: int, head_weight: float, emphases: tuple = (),
    prefix_gradient: bool | int = True,
):
    """Weighted mean negative log-likelihood of the answer tokens (see `answer_head_weights`).

    `prefix_gradient` False: each group's shared prefix runs without gradient (see `answer_log_probs`);
    a number N: only prefixes longer than N tokens do."""
    import torch

    padded_right = right_padded(attention_mask)
    share = padded_right or attends_to_everything(model, input_ids.size(1))
    groups = prefix_groups(input_ids, labels) if share else [PrefixGroup(list(range(input_ids.size(0))), 0)]
    total = input_ids.new_zeros((), dtype=torch.float32)
    weight_sum = input_ids.new_zeros((), dtype=torch.float32)
    for group in groups:
        index = torch.tensor(group.rows, device=input_ids.device)
        ids, mask, group_labels = input_ids[index], attention_mask[index], labels[index]
        if padded_right:
            # Each group padded to its own longest row, not the batch's: a short policy's rows
            # batched with one long row would otherwise run hundreds of padding positions each.
            width = int(mask.sum(dim=1).max())
            ids, mask, group_labels = ids[:, :width], mask[:, :width], group_labels[:, :width]
        log_probs, targets = answer_log_probs(
            model, ids, mask, group_labels, group.prefix_length,
            prefix_gradient=keeps_prefix_gradient(prefix_gradient, group.prefix_length),
        )
        weights = answer_head_weights(targets, head_tokens, head_weight, emphases)
        total = total + (log_probs * weights[targets != IGNORED]).sum()
        weight_sum = weight_sum + weights.sum()
    return -total / weight_sum.clamp(min=1)
