"""A greedy decoding loop for evaluation: exact argmax, finished rows leave the batch.

`model.generate` keeps every row of a batch until the longest answer ends and projects each new
position onto the whole 262k-entry vocabulary in the model's dtype. On a CPU in float32 that
projection is most of the cost of a token. Here it is screened in bfloat16, with a proven bound on
the rounding error, and only the tokens the bound cannot rule out are scored again in float32: the
chosen token is the float32 argmax, as in `generate` (to the last bit of float32 rounding, which the
order of a dot product's additions moves, as changing the batch size does). Rows that have stopped
are dropped from the batch (and from its KV cache) instead of being carried along as padding.

The loop applies no logits processors, so it is used only for models where greedy `generate` applies
none either (see `supports`); other models go through `generate`.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Sequence

# Causal LMs whose logits are the output layer applied to the backbone's last hidden state, followed
# at most by a monotonic transform (Gemma's soft-capping), so that the argmax is the layer's argmax.
PLAIN_HEAD_MODELS = frozenset({"gemma", "gemma2", "gemma3_text", "llama", "mistral", "qwen2", "qwen3"})

# Generation-config fields that make greedy `generate` choose something other than the argmax.
_PROCESSOR_DEFAULTS = {
    "repetition_penalty": (None, 1.0),
    "no_repeat_ngram_size": (None, 0),
    "encoder_no_repeat_ngram_size": (None, 0),
    "bad_words_ids": (None,),
    "suppress_tokens": (None,),
    "begin_suppress_tokens": (None,),
    "forced_bos_token_id": (None,),
    "forced_eos_token_id": (None,),
    "sequence_bias": (None,),
    "min_new_tokens": (None, 0),
    "min_length": (None, 0),
    "exponential_decay_length_penalty": (None,),
    "renormalize_logits": (None, False),
}


def supports(model) -> bool:
    """Whether `greedy` gives what greedy `model.generate` gives for this model."""
    import torch

    head = model.get_output_embeddings()
    if model.config.model_type not in PLAIN_HEAD_MODELS or not isinstance(head, torch.nn.Linear):
        return False
    defaults = getattr(model, "generation_config", None)
    return all(getattr(defaults, field, None) in allowed for field, allowed in _PROCESSOR_DEFAULTS.items())


@dataclass(frozen=True)
class StopRule:
    token_ids: frozenset[int]
    strings: tuple[str, ...] = ()  # stop sequences the tokenizer splits into several tokens

    def reached(self, tokenizer, answer: list[int]) -> bool:
        if answer[-1] in self.token_ids:
            return True
        return bool(self.strings) and any(stop in tokenizer.decode(answer) for stop in self.strings)


class GreedyHead:
    """The argmax of the output layer over hidden states, computed cheaply and exactly."""

    def __init__(self, output_layer):
        import torch

        self.weight = output_layer.weight
        self.bias = output_layer.bias
        self.screen = None
        if self.weight.device.type == "cpu" and self.weight.dtype == torch.float32 and self.bias is None:
            self.screen = self.weight.detach().to(torch.bfloat16)
            self.largest_row_norm = float(self.weight.detach().norm(dim=1).max())

    def __call__(self, hidden):
        import torch

        if self.screen is None:
            return torch.nn.functional.linear(hidden, self.weight, self.bias).argmax(dim=-1)
        approx = torch.nn.functional.linear(hidden.to(torch.bfloat16), self.screen)
        top = approx.amax(dim=-1).float()
        floor = top - screening_slack(hidden.norm(dim=-1) * self.largest_row_norm, top.abs(), hidden.size(-1))
        # Lowered by a bfloat16 step first, so that rounding it to bfloat16 cannot raise it.
        floor = (floor - floor.abs() * 2.0**-7).to(torch.bfloat16)
        rows, tokens = (approx >= floor.unsqueeze(1)).nonzero(as_tuple=True)
        exact = (self.weight[tokens] * hidden[rows]).sum(dim=-1)
        chosen = first_best(rows, tokens, exact, hidden.size(0), self.weight.size(0))
        unscreened = chosen == self.weight.size(0)  # no candidate: a NaN or infinite hidden state
        if unscreened.any():
            chosen[unscreened] = torch.nn.functional.linear(hidden[unscreened], self.weight).argmax(dim=-1)
        return chosen


_HEADS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def greedy_head(model) -> GreedyHead:
    """The model's GreedyHead, built once per model and weight version (the bfloat16 copy takes a
    moment, and must not outlive a change of the weights)."""
    weight = model.get_output_embeddings().weight
    version = (weight.data_ptr(), weight._version)
    if model not in _HEADS or _HEADS[model][0] != version:
        _HEADS[model] = (version, GreedyHead(model.get_output_embeddings()))
    return _HEADS[model][1]


def screening_slack(norm_products, top_magnitudes, width: int):
    """How far below the best bfloat16 logit a token's bfloat16 logit can be and still win in float32.

    Rounding hidden state and weights to bfloat16 (unit roundoff u = 2^-8) moves each product by at
    most (2u + u^2) |h_i w_i|; float32 accumulation adds at most width * 2^-24 of the sum of |h_i w_i|;
    rounding the result to bfloat16 adds u |logit|. Sum |h_i w_i| <= |h| |w| (Cauchy-Schwarz). A token
    t can beat the screened winner w only if approx_w - approx_t <= err_w + err_t, which, with
    |approx_t| <= |approx_w| + (approx_w - approx_t), gives the bound returned here. It is doubled
    against kernels that round less carefully than this assumes.
    """
    u = 2.0**-8
    accumulation = width * 2.0**-24 / (1 - width * 2.0**-24)
    per_product = 2 * u + u * u + accumulation * (1 + u) ** 2
    per_result = u / (1 - u)
    bound = (2 * per_product * norm_products + 2 * per_result * top_magnitudes) / (1 - per_result)
    return 2 * bound


def first_best(rows, tokens, scores, batch: int, vocabulary: int):
    """Per row, the lowest token id among the highest scores (torch.argmax's choice on a full row)."""
    import torch

    best = torch.full((batch,), float("-inf"), dtype=scores.dtype, device=scores.device)
    best = best.scatter_reduce(0, rows, scores, "amax")
    winners = scores == best[rows]
    return torch.full((batch,), vocabulary, dtype=tokens.dtype, device=tokens.device).scatter_reduce(
        0, rows[winners], tokens[winners], "amin"
    )


@dataclass
class Rows:
    """Prompts part-way through the model: their KV cache and what the next forward pass needs."""

    cache: object
    mask: object  # [rows, tokens so far], 0 on padding
    next_position: object  # [rows], the position of each row's next token (padding not counted)
    last_hidden: object  # [rows, width], the backbone's output at each row's last token

    def keep(self, slots) -> None:
        """Only these rows go on (finished ones leave the batch and its cache)."""
        self.cache.batch_select_indices(slots)
        self.mask, self.next_position, self.last_hidden = (
            self.mask[slots], self.next_position[slots], self.last_hidden[slots]
        )

    def copy(self) -> "Rows":
        """Rows that can go on independently of these ones.

        A DynamicCache layer never writes into its tensors (it concatenates, indexes and repeats
        into new ones), and a growing layer (`_growing`) writes only past the tokens it holds, so
        the copy shares them instead of duplicating gigabytes.
        """
        import copy

        cache = copy.copy(self.cache)
        cache.layers = [copy.copy(layer) for layer in self.cache.layers]
        for layer in cache.layers:
            layer.__dict__.pop("_room", None)  # a growing layer's copy writes into a buffer of its own
        return Rows(cache, self.mask, self.next_position, self.last_hidden)


PREFILL_GROUP = 16  # rows prefilled together; a whole batch would pad short user turns to the longest


def start(model, tokenizer, prefix: list[int], prefix_cache, suffixes: Sequence[list[int]]) -> Rows:
    """Run `prefix + suffix` for each suffix, the prefix from its one-row KV cache (None: no prefix).

    Suffixes are left-padded to one width between prefix and suffix; positions count real tokens
    only, as `generate` counts them. With a shared prefix, consecutive groups of rows (give them
    sorted by length) are prefilled at their own width and then padded to the batch's, since padding
    in the cache costs nothing while padding fed through the model costs as much as real tokens.
    """
    if prefix_cache is None:
        return _prefill(model, tokenizer, prefix, prefix_cache, suffixes)
    if len(suffixes) <= PREFILL_GROUP:
        rows = _prefill(model, tokenizer, prefix, prefix_cache, suffixes)
        for layer in rows.cache.layers:
            layer.__class__ = _growing(type(layer))
        return rows
    parts = [
        _prefill(model, tokenizer, prefix, prefix_cache, suffixes[begin : begin + PREFILL_GROUP])
        for begin in range(0, len(suffixes), PREFILL_GROUP)
    ]
    rows = _stack(parts, len(prefix))
    for layer in rows.cache.layers:
        layer.__class__ = _growing(type(layer))
    return rows


def _prefill(model, tokenizer, prefix: list[int], prefix_cache, suffixes: Sequence[list[int]]) -> Rows:
    import copy

    import torch

    device = model.device
    width = max(len(suffix) for suffix in suffixes)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    ids = torch.tensor([[pad] * (width - len(s)) + list(s) for s in suffixes], device=device)
    mask = torch.tensor([[1] * len(prefix) + [0] * (width - len(s)) + [1] * len(s) for s in suffixes], device=device)
    positions = (mask.cumsum(dim=1) - 1).clamp(min=0)[:, len(prefix):]
    cache = None
    if prefix_cache is not None:
        cache = copy.deepcopy(prefix_cache)
        cache.batch_repeat_interleave(len(suffixes))
    rows = Rows(cache, mask[:, : len(prefix)], None, None)
    rows.last_hidden = extend(model, rows, ids, mask[:, len(prefix):], positions)[:, -1]
    return rows


def _stack(parts: Sequence[Rows], prefix_length: int) -> Rows:
    """One batch of the parts' rows, each part's padding widened (between prefix and suffix) to the widest."""
    import torch

    length = max(part.mask.size(1) for part in parts)
    cache = parts[0].cache
    for index, layer in enumerate(cache.layers):
        for name in ("keys", "values"):
            pieces = [getattr(part.cache.layers[index], name) for part in parts]
            first = pieces[0]
            stacked = first.new_zeros(sum(p.size(0) for p in pieces), first.size(1), length, first.size(3))
            row = 0
            for piece in pieces:
                stacked[row : row + piece.size(0), :, :prefix_length] = piece[:, :, :prefix_length]
                suffix = piece.size(2) - prefix_length
                stacked[row : row + piece.size(0), :, length - suffix :] = piece[:, :, prefix_length:]
                row += piece.size(0)
            setattr(layer, name, stacked)
        if hasattr(layer, "cumulative_length"):
            layer.cumulative_length = length
    masks = []
    for part in parts:
        gap = part.mask.new_zeros(part.mask.size(0), length - part.mask.size(1))
        masks.append(torch.cat([part.mask[:, :prefix_length], gap, part.mask[:, prefix_length:]], dim=1))
    return Rows(
        cache,
        torch.cat(masks),
        torch.cat([part.next_position for part in parts]),
        torch.cat([part.last_hidden for part in parts]),
    )


_GROWING: dict = {}
ROOM = 64  # tokens of spare capacity a growing layer allocates at a time


def _growing(layer_class):
    """`layer_class` (a transformers DynamicCache layer) with tokens written into spare room.

    The stock layer concatenates every new token onto a fresh copy of the whole cache; with a
    hundred rows that copying is a tenth of the decoding time. This one keeps spare room behind the
    tokens and writes new ones into it; `keys`/`values` are views of the filled part. Only for
    caches whose sliding windows cover every token (a window would drop old tokens instead).
    Anything else that replaces `keys` (selecting rows, repeating them) makes the next update
    allocate afresh, and so does a copy (`Rows.copy` drops the copy's `_room`).
    """
    if layer_class in _GROWING.values():
        return layer_class
    if layer_class not in _GROWING:

        def update(self, key_states, value_states, *args, **kwargs):
            import torch

            new = key_states.size(-2)
            length = self.keys.size(-2)
            room = self.__dict__.get("_room")
            if room is None or room[2] is not self.keys or room[0].size(-2) < length + new:
                shape = (*self.keys.shape[:2], length + new + ROOM, self.keys.size(-1))
                room = [torch.empty(shape, dtype=self.keys.dtype, device=self.keys.device),
                        torch.empty(shape, dtype=self.values.dtype, device=self.values.device), None]
                room[0][:, :, :length] = self.keys
                room[1][:, :, :length] = self.values
            room[0][:, :, length : length + new] = key_states
            room[1][:, :, length : length + new] = value_states
            self.keys, self.values = room[0][:, :, : length + new], room[1][:, :, : length + new]
            room[2] = self.keys
            self._room = room
            if hasattr(self, "cumulative_length"):
                self.cumulative_length += new
            return self.keys, self.values

        _GROWING[layer_class] = type(f"Growing{layer_class.__name__}", (layer_class,), {"update": update})
    return _GROWING[layer_class]


def extend(model, rows: Rows, tokens, token_mask=None, positions=None):
    """Feed `tokens` ([rows, n], right after each row's last token) and return their hidden states.

    `token_mask` marks padding with 0. Right padding needs no `positions`: padded tokens come after a
    row's real ones, so no real token attends to them.
    """
    import torch

    from .prefix import cache_argument

    backbone = model.base_model
    token_mask = torch.ones_like(tokens) if token_mask is None else token_mask
    rows.mask = torch.cat([rows.mask, token_mask], dim=1)
    if positions is None:
        positions = rows.next_position.unsqueeze(1) + torch.arange(tokens.size(1), device=tokens.device)
    out = backbone(input_ids=tokens, attention_mask=rows.mask, position_ids=positions, use_cache=True,
                   **{cache_argument(backbone): rows.cache})
    rows.cache = getattr(out, "cache", None) or out.past_key_values
    rows.next_position = torch.where(token_mask.bool(), positions, -1).amax(dim=1) + 1
    return out.last_hidden_state


def greedy(model, tokenizer, rows: Rows, max_new_tokens: int, stop: StopRule, after_choice=None) -> list[list[int]]:
    """Greedy answers (token ids, stop token included), one per row; `rows` is used up.

    `after_choice(step, rows, alive, answers, tokens)`, when given, sees each step's choice before it
    is taken: `alive` maps the batch's rows to answer indices, `answers` holds the tokens so far
    (`rows.last_hidden` follows them) and `tokens` the ones chosen now.
    """
    import torch

    head = greedy_head(model)
    answers: list[list[int]] = [[] for _ in range(rows.mask.size(0))]
    alive = list(range(len(answers)))
    for step in range(max_new_tokens):
        tokens = head(rows.last_hidden)
        if after_choice is not None:
            after_choice(step, rows, alive, answers, tokens)
        going = []
        for slot, token in enumerate(tokens.tolist()):
            answer = answers[alive[slot]]
            answer.append(token)
            if not stop.reached(tokenizer, answer):
                going.append(slot)
        if not going or step == max_new_tokens - 1:
            break
        if len(going) < len(alive):
            slots = torch.tensor(going, device=tokens.device)
            rows.keep(slots)
            tokens = tokens[slots]
            alive = [alive[slot] for slot in going]
        rows.last_hidden = extend(model, rows, tokens.unsqueeze(1))[:, -1]
    return answers


def greedy_and_scores(model, tokenizer, rows: Rows, max_new_tokens: int, stop: StopRule,
                      continuations: Sequence[list[int]]) -> tuple[list[list[int]], list[list[float]]]:
    """`greedy` answers and `continuation_scores`, sharing the forward passes they have in common.

    An answer that starts with the continuations' common tokens (a tool call starts with
    `<start_function_call>call:`) has fed them by the step after them, where the continuations
    part; and the continuation that greedy decoding goes on with is fed by it too. Only the others
    are fed separately, from a copy of the batch at the parting step. Rows whose answers do not
    start that way are scored from their prompts.
    """
    scoring = _ScoringAlongside(model, rows, continuations)
    answers = greedy(model, tokenizer, rows, max_new_tokens, stop, after_choice=scoring.after_choice)
    return answers, scoring.finish()


class _ScoringAlongside:
    """The state of `greedy_and_scores`: the scores under way and what they still need.

    Every position whose log-softmax is needed is kept as (hidden state, answer, continuation,
    target) and all of them are computed together at the end: each one reads the whole output layer,
    which is far cheaper in one large product than in many small ones.
    """

    def __init__(self, model, rows: Rows, continuations: Sequence[list[int]]):
        self.model, self.continuations = model, continuations
        self.common = _common_length(continuations)
        if any(len(tokens) <= self.common for tokens in continuations):
            raise ValueError("a continuation is a prefix of another; the scores would not be comparable")
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
            for (row, index), value in zip(where, _log_probs_of(self.model, hidden, targets).cpu()):
                self.partial[row][index] += value
        for row, found in self.partial.items():
            self.scores[row] = found.tolist()
        self._release_scored_prompts()
        if self.prompt_rows:
            for row, found in zip(self.prompt_rows, continuation_scores(self.model, self.prompts, self.continuations)):
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
                followed = [i for i, call in enumerate(continuations) if call[common] == token]
                if len(followed) == 1 and len(continuations[followed[0]]) > common + 1:
                    self.following[row] = followed[0]
            for index, call in enumerate(continuations):
                if len(call) > common + 1:
                    self._feed_from_parting([alive[s] for s in slots if self.following.get(alive[s]) != index], index)
        self._release_scored_prompts()
        if not self.following:
            self.parting = None

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


def continuation_scores(model, rows: Rows, continuations: Sequence[list[int]]) -> list[list[float]]:
    """Per row, log p(continuation | row) of each continuation, up to one constant per row.

    The continuations' common first tokens have the same probability for all of them, so they are
    fed once and not scored; at the first token where they part, the softmax denominator is shared
    too, so the raw logits of the parting tokens are enough; only later tokens need full log-softmaxes.
    Normalising the scores over the continuations gives their exact probabilities. `rows` is unchanged.
    """
    import torch

    common = _common_length(continuations)
    if any(len(tokens) <= common for tokens in continuations):
        raise ValueError("a continuation is a prefix of another; the scores would not be comparable")
    work = rows.copy()
    device = work.mask.device
    if common:
        shared = torch.tensor([continuations[0][:common]], device=device).expand(work.mask.size(0), -1)
        work.last_hidden = extend(model, work, shared)[:, -1]
    parting = torch.tensor([tokens[common] for tokens in continuations], device=device)
    scores = output_logits(model, work.last_hidden, parting).float()  # [rows, continuations]
    every_row = torch.arange(work.mask.size(0), device=device)
    for index, tokens in enumerate(continuations):
        if len(tokens) > common + 1:  # each continuation on its own, so that none is padded to the longest
            scores[:, index] += _tail_log_probs(model, work, every_row, tokens[common:])
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
    return _log_probs_of(model, hidden, targets).view(len(slots), -1).sum(dim=1)


def output_logits(model, hidden, token_ids=None):
    """The model's logits (over `token_ids` only, when given), soft-capped as its forward caps them."""
    import torch

    head = model.get_output_embeddings()
    weight = head.weight if token_ids is None else head.weight[token_ids]
    bias = head.bias if head.bias is None or token_ids is None else head.bias[token_ids]
    logits = torch.nn.functional.linear(hidden, weight, bias)
    cap = getattr(model.config, "final_logit_softcapping", None)
    return torch.tanh(logits / cap) * cap if cap else logits


def _log_probs_of(model, hidden, targets, chunk: int = 256):
    """log p(target) at each of the positions (in float32, a chunk of positions at a time: bigger
    chunks read the 262k-row output layer fewer times)."""
    import torch

    pieces = []
    for begin in range(0, hidden.size(0), chunk):
        logits = output_logits(model, hidden[begin : begin + chunk]).float()
        pieces.append(torch.log_softmax(logits, dim=-1).gather(1, targets[begin : begin + chunk, None])[:, 0])
    return torch.cat(pieces) if pieces else hidden.new_zeros(0)


def _common_length(sequences: Sequence[list[int]]) -> int:
    length = 0
    while all(len(s) > length for s in sequences) and len({s[length] for s in sequences}) == 1:
        length += 1
    return length
