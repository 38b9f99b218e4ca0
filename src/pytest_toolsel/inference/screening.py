"""The greedy choice over a 262k-entry vocabulary, cheaply and exactly.

Projecting a hidden state onto the whole vocabulary is most of the cost of a generated token on a
CPU in float32. Here the projection is screened in bfloat16 (about 3.5x faster on this hardware),
with a proven bound on the rounding error, and only the tokens the bound cannot rule out are scored
again in float32: the chosen token is the float32 argmax, as `generate` chooses it (to the last
bit of float32 rounding, which the order of a dot product's additions moves, as changing the batch
size does).
"""

from __future__ import annotations

import weakref

SCREEN_BLOCK = 1024  # tokens per block of the screen; a row's blocks whose top is far below its best are skipped whole


class GreedyHead:
    """The argmax of the output layer over hidden states, computed cheaply and exactly."""

    def __init__(self, output_layer):
        import torch

        self.weight = output_layer.weight
        self.bias = output_layer.bias
        self.screen = self._output = None
        if self.weight.device.type == "cpu" and self.weight.dtype == torch.float32 and self.bias is None:
            screen = self.weight.detach().to(torch.bfloat16)
            # Whole blocks first, the few tokens past the last one apart: a vocabulary of 262144 + 7
            # tokens in one product is ~10% slower than 262144 and 7 in two.
            self.blocked = (screen.size(0) // SCREEN_BLOCK) * SCREEN_BLOCK
            self.screen, self.screen_rest = screen[: self.blocked], screen[self.blocked :]
            self.largest_row_norm = float(self.weight.detach().norm(dim=1).max())

    def _screen_output(self, rows: int):
        """Room for `rows` rows of the screen, kept between calls: a fresh 50 MB every token would be
        new pages from the OS each time (glibc maps blocks this large afresh), 5-10% of the screen's time."""
        import torch

        if self._output is None or self._output.size(0) < rows:
            self._output = torch.empty(rows, self.blocked, dtype=torch.bfloat16)
        return self._output[:rows]

    def __call__(self, hidden):
        import torch

        if self.screen is None:
            return torch.nn.functional.linear(hidden, self.weight, self.bias).argmax(dim=-1)
        rows, tokens = self._candidates(hidden)
        exact = (self.weight[tokens] * hidden[rows]).sum(dim=-1)
        chosen = first_best(rows, tokens, exact, hidden.size(0), self.weight.size(0))
        unscreened = chosen == self.weight.size(0)  # no candidate: a NaN or infinite hidden state
        if unscreened.any():
            chosen[unscreened] = torch.nn.functional.linear(hidden[unscreened], self.weight).argmax(dim=-1)
        return chosen

    def _candidates(self, hidden):
        """(rows, tokens) whose bfloat16 logit is close enough to its row's best to win in float32."""
        import torch

        screened = hidden.to(torch.bfloat16)
        blocks = torch.mm(screened, self.screen.T, out=self._screen_output(hidden.size(0)))
        blocks = blocks.view(hidden.size(0), self.blocked // SCREEN_BLOCK, SCREEN_BLOCK)
        rest = torch.nn.functional.linear(screened, self.screen_rest)
        block_tops = blocks.amax(dim=-1)
        top = torch.cat([block_tops, rest], dim=1).amax(dim=-1).float()
        floor = top - screening_slack(hidden.norm(dim=-1) * self.largest_row_norm, top.abs(), hidden.size(-1))
        # Lowered by a bfloat16 step first, so that rounding it to bfloat16 cannot raise it.
        floor = (floor - floor.abs() * 2.0**-7).to(torch.bfloat16).unsqueeze(1)
        # Only blocks whose top reaches the floor can hold candidates.
        rows, block_ids = (block_tops >= floor).nonzero(as_tuple=True)
        within, offsets = (blocks[rows, block_ids] >= floor[rows]).nonzero(as_tuple=True)
        rest_rows, rest_ids = (rest >= floor).nonzero(as_tuple=True)
        rows = torch.cat([rows[within], rest_rows])
        return rows, torch.cat([block_ids[within] * SCREEN_BLOCK + offsets, rest_ids + self.blocked])


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
