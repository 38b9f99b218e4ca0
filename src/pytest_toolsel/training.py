"""Fine-tune a base model on the case files' training examples with TRL's SFTTrainer.

The checkpoint is written into a staging directory beside the target and renamed into place only
when complete, so a killed run never leaves a directory that `--model` would load.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

from .base_prep import prepare_for_function_calling
from .casefile import Suite
from .modeling import METADATA_FILE, pick_device, read_metadata, resolve
from .recipe import Recipe
from .training_data import data_hash, split, training_records
from .training_loss import answer_head_weights, weighted_answer_loss


class TrainingError(Exception):
    pass


@dataclass(frozen=True)
class TrainingResult:
    checkpoint: Path
    metadata: dict
    loss_curve: Path | None


def staleness(checkpoint: str, suites: Sequence[Suite]) -> str | None:
    """A warning when the checkpoint was trained on other data than the case files hold now."""
    recorded = read_metadata(checkpoint).get("data_hash")
    records = training_records(suites)
    # Case files without training examples (a separate evaluation set) say nothing about staleness.
    if recorded is None or not records:
        return None
    current = data_hash(records)
    if recorded == current:
        return None
    return (
        f"stale checkpoint: {checkpoint} was trained on other training examples than the collected case files "
        f"now hold (data hash {recorded[:12]} vs {current[:12]}); retrain with --retrain"
    )


def sft_config(recipe: Recipe, output_dir: Path, has_eval: bool, device):
    import torch
    from trl import SFTConfig

    on_cuda = device.type == "cuda"
    return SFTConfig(
        output_dir=str(output_dir),
        num_train_epochs=recipe.epochs,
        per_device_train_batch_size=recipe.batch_size,
        per_device_eval_batch_size=recipe.batch_size,
        gradient_accumulation_steps=recipe.gradient_accumulation_steps,
        learning_rate=recipe.learning_rate,
        lr_scheduler_type=recipe.lr_scheduler,
        warmup_steps=recipe.warmup_ratio,  # a float below 1 is a ratio of all steps
        weight_decay=recipe.weight_decay,
        neftune_noise_alpha=recipe.neftune_noise_alpha,
        max_length=recipe.max_length,
        seed=recipe.seed,
        data_seed=recipe.seed,
        completion_only_loss=True,
        # At 270M parameters activations fit easily; recomputing them would only cost time.
        activation_checkpointing=False,
        bf16=on_cuda and torch.cuda.is_bf16_supported(),
        use_cpu=not on_cuda,
        optim="adamw_torch_fused" if on_cuda else "adamw_torch",
        save_strategy="no",
        eval_strategy="epoch" if has_eval else "no",
        logging_steps=1,
        report_to="none",  # TensorBoard is attached as a callback writing to reports/
        push_to_hub=False,
        dataloader_num_workers=0,
        # Every parameter takes part in every step; searching for unused ones costs a graph walk per step.
        ddp_find_unused_parameters=False,
    )


def _weighted_trainer_class():
    from trl import SFTTrainer

    class ToolChoiceSFTTrainer(SFTTrainer):
        """SFTTrainer whose loss weights the tool-choice tokens (see Recipe.tool_name_weight)."""

        def __init__(self, *args, recipe: Recipe, **kwargs):
            super().__init__(*args, **kwargs)
            self.recipe = recipe

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            if return_outputs:  # evaluation: TRL's own loss and metrics
                return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            head = (self.recipe.tool_name_tokens, self.recipe.tool_name_weight)
            if self.accelerator.unwrap_model(model) is model:
                ids, labels = inputs["input_ids"], inputs["labels"]
                return weighted_answer_loss(model, ids, inputs.get("attention_mask", ids.new_ones(ids.shape)), labels, *head)
            # Wrapped for distributed training: gradients are synchronised only through the
            # wrapper's forward, which runs every row in full.
            inputs["use_cache"] = False
            outputs = model(**inputs, fused_lm_head=True)
            weights = answer_head_weights(inputs["labels"][:, 1:], *head).to(outputs.log_probs.dtype)
            return -(outputs.log_probs * weights).sum() / weights.sum().clamp(min=1)

    return ToolChoiceSFTTrainer


def train(
    suites: Sequence[Suite],
    base_model: str,
    output_dir: Path,
    recipe: Recipe,
    *,
    report_dir: Path | None = None,
    device: str | None = None,
) -> TrainingResult:
    import torch
    import transformers
    import trl
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, set_seed
    from . import __version__

    records = training_records(suites)
    if not records:
        names = ", ".join(str(suite.path) for suite in suites) or "no case files"
        raise TrainingError(f"nothing to train on: the collected case files ({names}) have no 'train:' examples")
    set_seed(recipe.seed)
    target = Path(output_dir)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_abandoned_staging(target)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-{os.getpid()}-", dir=target.parent))
    started = time.perf_counter()
    try:
        source = resolve(base_model)
        tokenizer = AutoTokenizer.from_pretrained(source)
        model = AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32)
        added = prepare_for_function_calling(model, tokenizer, recipe.token_init)
        train_records, eval_records = split(records, recipe.eval_fraction, recipe.seed)
        config = sft_config(recipe, staging / "trainer", bool(eval_records), pick_device(device))
        trainer = _weighted_trainer_class()(
            recipe=recipe,
            model=model,
            args=config,
            train_dataset=Dataset.from_list(train_records),
            eval_dataset=Dataset.from_list(eval_records) if eval_records else None,
            processing_class=tokenizer,
            callbacks=_tensorboard(report_dir),
        )
        trainer.train()
        if not trainer.is_world_process_zero():  # under `accelerate launch`, rank 0 alone saves
            return TrainingResult(checkpoint=target, metadata={}, loss_curve=None)
        shutil.rmtree(staging / "trainer", ignore_errors=True)
        trainer.model.generation_config.do_sample = False
        trainer.model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        metadata = {
            "base_model": base_model,
            "data_hash": data_hash(records),
            "train_examples": len(train_records),
            "eval_examples": len(eval_records),
            "suites": [str(suite.path) for suite in suites if suite.train],
            "added_tokens": added,
            "recipe": recipe.as_dict(),
            "train_seconds": round(time.perf_counter() - started, 1),
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "device": config.device.type,
            "versions": {
                "pytest_toolsel": __version__,
                "torch": torch.__version__,
                "transformers": transformers.__version__,
                "trl": trl.__version__,
            },
            "log_history": trainer.state.log_history,
        }
        (staging / METADATA_FILE).write_text(json.dumps(metadata, indent=2) + "\n", encoding="utf-8")
        _publish(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    curve = _plot_loss(metadata["log_history"], report_dir / "loss_curve.png") if report_dir else None
    return TrainingResult(checkpoint=target, metadata=metadata, loss_curve=curve)


def remove_abandoned_staging(target: Path) -> None:
    """Delete staging directories of runs that were killed (their process is gone): they are
    never loadable as a checkpoint, but for a real model each holds a gigabyte."""
    for staging in target.parent.glob(f".{target.name}.partial-*"):
        pid = staging.name.removeprefix(f".{target.name}.partial-").split("-")[0]
        if pid.isdigit() and not _process_alive(int(pid)):
            shutil.rmtree(staging, ignore_errors=True)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _publish(staging: Path, target: Path) -> None:
    """Swap the finished checkpoint into place; an older one is removed only after the swap."""
    retired = None
    if target.exists():
        retired = target.with_name(f".{target.name}.old-{os.getpid()}")
        os.replace(target, retired)
    os.replace(staging, target)
    if retired is not None:
        shutil.rmtree(retired, ignore_errors=True)


def _tensorboard(report_dir: Path | None) -> list:
    if report_dir is None:
        return []
    try:
        from torch.utils.tensorboard import SummaryWriter
        from transformers.integrations import TensorBoardCallback
    except ImportError:  # tensorboard is optional: the PNG curve is always written
        return []
    log_dir = report_dir / "tensorboard" / datetime.now().strftime("%Y%m%d-%H%M%S")
    return [TensorBoardCallback(tb_writer=SummaryWriter(log_dir=str(log_dir)))]


def _plot_loss(log_history: list[dict], path: Path) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    train = [(entry["epoch"], entry["loss"]) for entry in log_history if "loss" in entry]
    evals = [(entry["epoch"], entry["eval_loss"]) for entry in log_history if "eval_loss" in entry]
    figure, axes = plt.subplots(figsize=(6, 3.5))
    if train:
        axes.plot(*zip(*train), label="train loss", linewidth=1)
    if evals:
        axes.plot(*zip(*evals), "o-", label="eval loss (held-back training examples)")
    axes.set_xlabel("epoch")
    axes.set_ylabel("loss (answer tokens)")
    axes.set_yscale("log")
    axes.legend()
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path
