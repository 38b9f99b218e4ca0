"""Training step speed on long prompts: the prefix-shared loss vs the plain forward it replaces.

One batch of 8 training rows of one policy, tokenized as training tokenizes them; the loss and its
backward pass timed with the developer turn run once per batch (what training does: rows are
right-padded, so the reuse is exact even where the prefix is longer than Gemma 3's 512-token
sliding window) and with every row run in full (what training did before for rows past the window),
and with the prefix run once without gradient (the recipe's `prefix_gradient: false`), that last
also under bf16 autocast (the recipe's `precision: bf16`) and with the answers' log-softmax as the
composed ops it replaced. The losses are printed, and must agree (bf16's to its rounding, about
1e-3). The embedding matrix is frozen but for the control tokens' rows, as training has it. The
default policy, Mobile Actions, has ~650-token prompts.

    python benchmarks/train_step_speed.py                      # embedded Gemma 3 270M base
    python benchmarks/train_step_speed.py --case-file cases/search_policy.yaml
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from pytest_toolsel.cases.yaml_source import load_suite
from pytest_toolsel.functiongemma.base_prep import prepare_for_function_calling
from pytest_toolsel.models import logits
from pytest_toolsel.models.embedded import EMBEDDED_ALIAS
from pytest_toolsel.models.loading import resolve
from pytest_toolsel.training import loss as training_loss
from pytest_toolsel.training.data import tokenized_row, training_records
from pytest_toolsel.training.embeddings import ControlRows

ROOT = Path(__file__).resolve().parents[1]


def batch(tokenizer, rows: list[dict]):
    """Right-padded input_ids, attention mask and labels, as TRL's collator builds them."""
    width = max(len(row["input_ids"]) for row in rows)
    pad = tokenizer.pad_token_id
    ids = torch.tensor([row["input_ids"] + [pad] * (width - len(row["input_ids"])) for row in rows])
    mask = torch.tensor([[1] * len(row["input_ids"]) + [0] * (width - len(row["input_ids"])) for row in rows])
    labels = torch.tensor([[t if m else -100 for t, m in zip(row["input_ids"], row["completion_mask"])]
                           + [-100] * (width - len(row["input_ids"])) for row in rows])
    return ids, mask, labels


def timed_step(model, ids, mask, labels, repeats: int, prefix_gradient: bool = True, bf16: bool = False) -> tuple[float, float]:
    """Best wall time of loss + backward over `repeats` tries, and the loss; `bf16`: under bf16 autocast, as
    training runs with `precision: bf16`."""
    best, loss = float("inf"), None
    for _ in range(repeats):
        model.zero_grad(set_to_none=True)
        started = time.perf_counter()
        with torch.autocast(ids.device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = training_loss.weighted_answer_loss(model, ids, mask, labels, 8, 5.0, prefix_gradient=prefix_gradient)
        loss.backward()
        best = min(best, time.perf_counter() - started)
    return best, loss.item()


def main() -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base-model", default=EMBEDDED_ALIAS)
    parser.add_argument("--case-file", type=Path, default=ROOT / "cases" / "mobile_actions.yaml")
    parser.add_argument("--rows", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    source = resolve(args.base_model)
    tokenizer = AutoTokenizer.from_pretrained(source)
    model = AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32)
    added = prepare_for_function_calling(model, tokenizer)
    # As training does with `train_embeddings: control`: the embedding matrix frozen, its new rows trained.
    ControlRows(model, added.values())
    model.train()
    records = training_records([load_suite(args.case_file)])[: args.rows]
    ids, mask, labels = batch(tokenizer, [tokenized_row(tokenizer, record) for record in records])
    prompt = min(training_loss.prompt_lengths(labels))
    window = model.config.get_text_config().sliding_window
    print(f"{args.rows} rows of {args.case_file.name}, {ids.size(1)} tokens wide, prompts from {prompt} tokens; "
          f"sliding window {window}; torch threads {torch.get_num_threads()}")
    shared, shared_loss = timed_step(model, ids, mask, labels, args.repeats)
    # The recipe's `prefix_gradient: false`: the same loss, the prefix's backward left out.
    constant, constant_loss = timed_step(model, ids, mask, labels, args.repeats, prefix_gradient=False)
    # The recipe's `precision: bf16`: the same step with the matrix products in bfloat16.
    bf16, bf16_loss = timed_step(model, ids, mask, labels, args.repeats, prefix_gradient=False, bf16=True)
    # The answers' log-softmax as composed ops (log_softmax, then gather), as training ran it before.
    fused_log_softmax = logits._picked_log_softmax
    logits._picked_log_softmax = lambda values, targets: torch.log_softmax(values, -1).gather(-1, targets[:, None])[:, 0]
    composed, composed_loss = timed_step(model, ids, mask, labels, args.repeats, prefix_gradient=False)
    logits._picked_log_softmax = fused_log_softmax
    # The rule training used before: rows past the window ran in full.
    training_loss.right_padded = lambda attention_mask: False
    plain, plain_loss = timed_step(model, ids, mask, labels, args.repeats)
    print(f"loss + backward, prefix run once per batch: {shared:.1f} s (loss {shared_loss:.6f})")
    print(f"loss + backward, every row in full:          {plain:.1f} s (loss {plain_loss:.6f})")
    print(f"loss + backward, prefix once and without gradient (prefix_gradient: false): {constant:.1f} s "
          f"(loss {constant_loss:.6f}) = {shared / constant:.2f}x the prefix-shared step")
    print(f"the same under bf16 autocast (precision: bf16): {bf16:.1f} s (loss {bf16_loss:.6f}) = "
          f"{constant / bf16:.2f}x the float32 step")
    print(f"the same with the log-softmax as composed ops: {composed:.1f} s (loss {composed_loss:.6f}); "
          f"the one-node log-softmax {composed / constant:.2f}x")
    print(f"speed-up: {plain / shared:.1f}x; losses differ by {abs(plain_loss - shared_loss):.2e}")


if __name__ == "__main__":
    main()
