"""A greedy decoding loop for evaluation: exact argmax, finished rows leave the batch.

`model.generate` keeps every row of a batch until the longest answer ends, copies the whole KV
cache at every token and projects each new position onto the whole vocabulary in the model's
dtype. Here rows that have stopped are dropped from the batch (and from its KV cache), the cache
grows in place, and the greedy choice is screened in bfloat16 (`screening`).

The loop applies no logits processors, so it is used only for models where greedy `generate` applies
none either (see `supports`); other models go through `generate`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from .screening import greedy_head

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


@dataclass
class Rows:
    """Prompts part-way through the model: their KV cache and what the next forward pass needs."""

    cache: object
    mask: object  # [rows, tokens so far], 0 on padding
    next_position: object  # [rows], the position of each row's next token (padding not counted)
    last_hidden: object  # [rows, width], the backbone's output at each row's last token
    by_position: bool = False  # the cache keeps every token; masks follow real positions (models.window_masks)

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
        return Rows(cache, self.mask, self.next_position, self.last_hidden, self.by_position)


PREFILL_GROUP = 16  # rows prefilled together; a whole batch would pad short user turns to the longest


def start(model, tokenizer, prefix: list[int], prefix_cache, suffixes: Sequence[list[int]], by_position: bool = False) -> Rows:
    """Run `prefix + suffix` for each suffix, the prefix from its one-row KV cache (None: no prefix).

    `by_position`: the prefix cache came from `prefix_cache(..., by_position=True)`, and every
    forward attends by real positions (for prompts longer than a sliding window).

    Suffixes are left-padded to one width between prefix and suffix; positions count real tokens
    only, as `generate` counts them. With a shared prefix, consecutive groups of rows (give them
    sorted by length) are prefilled at their own width and then padded to the batch's, since padding
    in the cache costs nothing while padding fed through the model costs as much as real tokens.
    """
    if prefix_cache is None:
        return _prefill(model, tokenizer, prefix, prefix_cache, suffixes)
    parts = [
        _prefill(model, tokenizer, prefix, prefix_cache, suffixes[begin : begin + PREFILL_GROUP], by_position)
        for begin in range(0, len(suffixes), PREFILL_GROUP)
    ]
    rows = parts[0] if len(parts) == 1 else _stack(parts, len(prefix))
    for layer in rows.cache.layers:
        layer.__class__ = _growing(type(layer))
    return rows


def _prefill(model, tokenizer, prefix: list[int], prefix_cache, suffixes: Sequence[list[int]], by_position: bool = False) -> Rows:
    import torch

    from ..models.prefix import repeated_cache

    device = model.device
    width = max(len(suffix) for suffix in suffixes)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    ids = torch.tensor([[pad] * (width - len(s)) + list(s) for s in suffixes], device=device)
    mask = torch.tensor([[1] * len(prefix) + [0] * (width - len(s)) + [1] * len(s) for s in suffixes], device=device)
    positions = (mask.cumsum(dim=1) - 1).clamp(min=0)[:, len(prefix):]
    cache = None if prefix_cache is None else repeated_cache(prefix_cache, len(suffixes))
    rows = Rows(cache, mask[:, : len(prefix)], None, None, by_position)
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
        parts[0].by_position,
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

    from ..models.prefix import cache_argument, returned_cache
    from ..models.window_masks import layer_masks

    backbone = model.base_model
    token_mask = torch.ones_like(tokens) if token_mask is None else token_mask
    rows.mask = torch.cat([rows.mask, token_mask], dim=1)
    if positions is None:
        positions = rows.next_position.unsqueeze(1) + torch.arange(tokens.size(1), device=tokens.device)
    attention = layer_masks(backbone, rows.mask, positions) if rows.by_position else rows.mask
    out = backbone(input_ids=tokens, attention_mask=attention, position_ids=positions, use_cache=True,
                   **{cache_argument(backbone): rows.cache})
    rows.cache = returned_cache(out)
    rows.next_position = torch.where(token_mask.bool(), positions, -1).amax(dim=1) + 1
    return out.last_hidden_state


def greedy(model, tokenizer, rows: Rows, max_new_tokens: int, stop: StopRule, after_choice=None,
           choose=None) -> list[list[int]]:
    """Greedy answers (token ids, stop token included), one per row; `rows` is used up.

    `after_choice(step, rows, alive, answers, tokens)`, when given, sees each step's choice before it
    is taken: `alive` maps the batch's rows to answer indices, `answers` holds the tokens so far
    (`rows.last_hidden` follows them) and `tokens` the ones chosen now. `choose(hidden, alive)`, when
    given, picks the tokens instead of the argmax (sampled trials: sampling.TokenSampler).
    """
    import torch

    if choose is None:
        head = greedy_head(model)
        choose = lambda hidden, alive: head(hidden)  # noqa: E731
    answers: list[list[int]] = [[] for _ in range(rows.mask.size(0))]
    alive = list(range(len(answers)))
    for step in range(max_new_tokens):
        tokens = choose(rows.last_hidden, alive)
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
