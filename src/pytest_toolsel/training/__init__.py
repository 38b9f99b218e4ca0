"""Training: the fine-tune that `pytest cases/` and `toolsel-train` run on the suites' `train:` examples.

    trainer.py  train() and staleness(): from a base model to a published checkpoint
    recipe.py   the recipe (learning rate, epochs, ...) read from YAML, and where the default one lives
    data.py     the examples as chat records and tokenized rows
    batches.py  batches of one policy at a time, so that rows share their prompt prefix
    loss.py     the answer-only loss, each shared prefix run once

Beside the evaluation pipeline, not part of it: it imports cases, functiongemma and models (loading,
the prefix and output-layer pieces), never inference, verdicts, reporting or the plugin.
"""
