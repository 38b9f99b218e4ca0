"""NEFTune, the recipe's `neftune_noise_alpha` (transformers' own hook on the input embeddings):
in training it reaches every embedding the loss reads, the shared prefix that runs without gradient
and the control tokens' trained rows included; outside training it changes nothing."""

from __future__ import annotations

import math

import tiny
import torch
from test_embeddings import EMBEDDINGS, changed_rows, prepared_base, trained_weights  # noqa: F401 (a fixture)
from test_fast_paths import mixed_batches
from transformers.integrations.neftune import activate_neftune, deactivate_neftune

from pytest_toolsel.functiongemma.chat_format import FUNCTIONGEMMA_TOKEN_IDS
from pytest_toolsel.training.embeddings import ControlRows
from pytest_toolsel.training.loss import weighted_answer_loss

ALPHA = 5.0


def recorded_embeddings(model, calls: list):
    """Record each embedding call's ids and output as the model reads it (after every earlier hook)."""
    def record(module, inputs, output):
        calls.append((inputs[0].detach().clone(), output.detach().clone()))
    return model.get_input_embeddings().register_forward_hook(record)


def test_noise_reaches_the_prefix_and_the_control_rows_in_training_and_nothing_in_evaluation(tiny_tokenizer):
    ids, mask, labels = mixed_batches(tiny_tokenizer)[0]
    model = tiny.build_model(tiny_tokenizer, seed=5, sliding_window=1024)
    control = sorted(set(ids[0, 1:4].tolist()))  # tokens every row starts with play the control tokens
    ControlRows(model, control)
    embeddings = model.get_input_embeddings()
    handle = activate_neftune(model, ALPHA)  # registered after ControlRows' hook, as Trainer.train does
    calls: list = []
    recorder = recorded_embeddings(model, calls)

    def loss() -> float:
        return weighted_answer_loss(model, ids, mask, labels, 4, 5.0, prefix_gradient=False).item()

    model.train()
    noisy = [loss(), loss()]
    recorder.remove()
    assert noisy[0] != noisy[1]
    # The prefix ran on its own call (without gradient), and the rows' suffixes on theirs: both noised.
    assert len(calls) >= 4 and min(seen.size(1) for _, seen in calls) < ids.size(1)
    model.eval()
    with torch.no_grad():
        for call_ids, seen in calls:
            clean = embeddings(call_ids)  # eval mode: the hook adds nothing
            noise = seen - clean
            bound = ALPHA / math.sqrt(seen.size(1) * seen.size(2))  # NEFTune's uniform(-bound, bound)
            # Noise at every position, the control rows' too (their values come first, then the noise).
            assert bool((noise != 0).all()) and float(noise.abs().max()) <= bound * (1 + 1e-5)
    assert any(bool(torch.isin(call_ids, torch.tensor(control)).any()) for call_ids, _ in calls)
    assert loss() == loss()  # evaluation: no noise
    deactivate_neftune(model, handle)
    model.train()
    assert loss() == loss()  # the hook is gone after training: generation from this model is exact


def test_toolsel_train_with_noise_trains_other_weights_and_leaves_the_base_rows_alone(tmp_path, plain_tiny_base,
                                                                                    prepared_base):
    plain = trained_weights(tmp_path, plain_tiny_base, "neftune_noise_alpha=null")
    noisy = trained_weights(tmp_path, plain_tiny_base, "neftune_noise_alpha=50")
    changed = [name for name, tensor in plain.items() if not torch.equal(noisy[name], tensor)]
    assert len(changed) > len(plain) // 2, changed  # the noise reached training
    # The noise is added to the embedding layer's output, never to the matrix: the base's rows stay.
    assert changed_rows(prepared_base[EMBEDDINGS], noisy[EMBEDDINGS]) <= set(FUNCTIONGEMMA_TOKEN_IDS.values())
