"""LoRA through peft: low-rank adapters on the base's linear layers, merged before saving.

The saved checkpoint is then a plain Hugging Face model with FunctionGemma's vocabulary and
template, as a full fine-tune's is: `--model` and any FunctionGemma tooling load it as it is.
"""

from __future__ import annotations

import warnings


def with_adapters(model, recipe):
    """`model` wrapped with LoRA adapters when the recipe asks for them (lora_rank > 0), else as it is."""
    if not recipe.lora_rank:
        return model
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(
        r=recipe.lora_rank,
        lora_alpha=recipe.lora_alpha,
        lora_dropout=recipe.lora_dropout,
        target_modules=recipe.lora_target_modules,
        task_type="CAUSAL_LM",
    )
    with warnings.catch_warnings():
        # peft reads transformers' deprecated `is_gradient_checkpointing` property; nothing of ours to change.
        warnings.filterwarnings("ignore", "`is_gradient_checkpointing` is deprecated", FutureWarning)
        return get_peft_model(model, config)


def unwrapped_peft(model):
    """The transformers model under a peft wrapper (adapters still in place), or `model` itself:
    the loss calls the model's own backbone and output layer, which a PeftModel does not expose."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def merged(model):
    """A plain transformers model: LoRA adapters merged into the weights they adapt."""
    return model.merge_and_unload() if hasattr(model, "merge_and_unload") else model
