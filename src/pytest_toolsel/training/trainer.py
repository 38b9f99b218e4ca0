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
import warnings
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

from ..cases.suite import Suite
from ..functiongemma.base_prep import prepare_for_function_calling
from ..functiongemma.chat_format import FORMAT_VERSION
from ..models.loading import METADATA_FILE, pick_device, read_metadata, resolve
from .averaging import weight_average_callback
from .batches import PolicyBatchSampler
from .data import SourcedRecord, data_hash, sourced_records, split, tokenized_row, training_records
from .adapters import merged, unwrapped_peft, with_adapters
from .embeddings import ControlRows
from .loss import answer_head_weights, loss_emphases, weighted_answer_loss
from .precision import uses_bf16
from .progress import library_bars_hidden, progress_callback
from .recipe import Recipe


# Headroom above the longest row when the recipe leaves max_length to the data, as Google's
# FunctionGemma notebook does. The rows are tokenized exactly before TRL sees them, so it covers
# no estimate; it only keeps TRL's own limit clear of every row.
LENGTH_MARGIN = 16


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


def sequence_length(recipe: Recipe, sourced: Sequence[SourcedRecord], rows: Sequence[dict]) -> int:
    """The max_length handed to TRL: the recipe's, which every row must fit (TRL would cut a longer
    row from the end, answer first, without a word), or the longest row plus a margin."""
    lengths = [len(row["input_ids"]) for row in rows]
    if recipe.max_length is None:
        return max(lengths) + LENGTH_MARGIN
    too_long = [index for index, length in enumerate(lengths) if length > recipe.max_length]
    if not too_long:
        return recipe.max_length
    longest = max(too_long, key=lengths.__getitem__)
    example = sourced[longest]
    others = f"; {len(too_long) - 1} more examples do not fit either" if len(too_long) > 1 else ""
    raise TrainingError(
        f"{example.location}: this training example of policy '{example.suite.policy}' is {lengths[longest]} tokens "
        f"long, longer than the recipe's max_length {recipe.max_length}, and training would cut off its answer{others}. "
        f"Raise max_length to at least {lengths[longest]}, or set it to null to follow the longest example"
    )


def batch_group(suite: Suite) -> str:
    """The group a suite's rows are batched in: its case file (two files may name one policy, but each
    has its own tools and so its own developer turn, the prefix a batch shares)."""
    return str(suite.path)


def passes_by_case_file(recipe: Recipe, suites: Sequence[Suite]) -> dict[str, int]:
    """The recipe's `policy_passes`, keyed as the rows' groups are (by case file). A policy the recipe
    names that no collected file declares is a warning, not an error: running one case file of a
    project whose recipe tunes several is ordinary, but a misspelt name should not go unseen."""
    declared = {suite.policy for suite in suites if suite.train}
    unknown = sorted(set(recipe.policy_passes) - declared)
    if unknown:
        warnings.warn(
            f"recipe key policy_passes names {', '.join(map(repr, unknown))}, which no collected case file with training "
            f"examples declares as its policy (declared: {', '.join(map(repr, sorted(declared)))}); "
            "those passes are not used",
            stacklevel=2,
        )
    return {batch_group(suite): recipe.policy_passes.get(suite.policy, 1) for suite in suites if suite.train}


def sft_config(recipe: Recipe, max_length: int, output_dir: Path, has_eval: bool, device):
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
        # Every row fits max_length (see sequence_length), so TRL's truncation keeps each one whole;
        # packing would split rows into max_length chunks, and padding-free mode is only safe with it.
        max_length=max_length,
        packing=False,
        padding_free=False,
        seed=recipe.seed,
        data_seed=recipe.seed,
        completion_only_loss=True,
        # At 270M parameters activations fit easily; recomputing them would only cost time.
        activation_checkpointing=False,
        bf16=uses_bf16(recipe.precision, device),
        use_cpu=not on_cuda,
        # One kernel over all parameters, on the CPU as on CUDA (torch >= 2.4), instead of a loop.
        optim="adamw_torch_fused",
        save_strategy="no",
        eval_strategy="epoch" if has_eval else "no",
        # The eval loss is all the curve uses: no logits are gathered for metrics.
        prediction_loss_only=True,
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

        def __init__(self, *args, recipe: Recipe, row_policies: Sequence[str], policy_passes: dict[str, int], **kwargs):
            super().__init__(*args, **kwargs)
            self.recipe = recipe
            self.row_policies = row_policies
            self.policy_passes = policy_passes
            self.emphases = loss_emphases(recipe, self.processing_class)

        def _get_train_sampler(self, train_dataset=None):
            # Batches of one policy each, so that the loss runs each batch's prefix once.
            return PolicyBatchSampler(self.row_policies, self._train_batch_size, self.args.seed, self.policy_passes)

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            if return_outputs:
                return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            # Evaluation scores the plain answer likelihood (TRL's loss), through the same prefix-shared path.
            head = (self.recipe.tool_name_tokens, self.recipe.tool_name_weight, self.emphases) if model.training else (0, 1.0, ())
            if self.accelerator.unwrap_model(model) is model:
                ids, labels = inputs["input_ids"], inputs["labels"]
                mask = inputs.get("attention_mask", ids.new_ones(ids.shape))
                # The loss runs the model's parts itself, outside the forward that accelerate wraps in autocast.
                with self.accelerator.autocast():
                    return weighted_answer_loss(
                        unwrapped_peft(model), ids, mask, labels, *head, prefix_gradient=self.recipe.prefix_gradient
                    )
            # Wrapped for distributed training: gradients are synchronised only through the
            # wrapper's forward, which runs every row in full.
            inputs["use_cache"] = False
            outputs = model(**inputs, fused_lm_head=True)
            weights = answer_head_weights(inputs["labels"][:, 1:], *head).to(outputs.log_probs.dtype)
            return -(outputs.log_probs * weights).sum() / weights.sum().clamp(min=1)

    return ToolChoiceSFTTrainer


@library_bars_hidden()
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
    from transformers.trainer_callback import PrinterCallback, ProgressCallback
    from .. import __version__

    sourced = sourced_records(suites)
    records = [example.record for example in sourced]
    if not records:
        names = ", ".join(dict.fromkeys(str(suite.path) for suite in suites)) or "no case files"
        raise TrainingError(
            f"nothing to train on: the collected case files ({names}) have no training examples "
            "('train:' in YAML, rows with metadata or split 'train' in JSONL)"
        )
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
        model = with_adapters(model, recipe)
        control_rows = ControlRows(model, added.values()) if recipe.train_embeddings == "control" else None
        # Tokenized here, with the control tokens in place: TRL skips its own tokenization for rows
        # that carry input_ids, and Arrow then stores nothing but lists of ints.
        rows = [tokenized_row(tokenizer, example.record) for example in sourced]
        max_length = sequence_length(recipe, sourced, rows)
        policies = [batch_group(example.suite) for example in sourced]
        train_pairs, eval_pairs = split(list(zip(rows, policies)), recipe.eval_fraction, recipe.seed)
        train_rows, eval_rows = [row for row, _ in train_pairs], [row for row, _ in eval_pairs]
        config = sft_config(recipe, max_length, staging / "trainer", bool(eval_rows), pick_device(device))
        trainer = _weighted_trainer_class()(
            recipe=recipe,
            row_policies=[policy for _, policy in train_pairs],
            policy_passes=passes_by_case_file(recipe, suites),
            model=model,
            args=config,
            train_dataset=Dataset.from_list(train_rows),
            eval_dataset=Dataset.from_list(eval_rows) if eval_rows else None,
            processing_class=tokenizer,
            callbacks=[*_tensorboard(report_dir), *_weight_average(recipe), progress_callback()],
        )
        # Our progress line replaces Trainer's bar and the per-step dicts it prints.
        trainer.remove_callback(ProgressCallback)
        trainer.remove_callback(PrinterCallback)
        trainer.train()
        if not trainer.is_world_process_zero():  # under `accelerate launch`, rank 0 alone saves
            return TrainingResult(checkpoint=target, metadata={}, loss_curve=None)
        shutil.rmtree(staging / "trainer", ignore_errors=True)
        if control_rows is not None:
            control_rows.merge()
        model = merged(trainer.model)
        model.generation_config.do_sample = False
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        metadata = {
            "base_model": base_model,
            "data_hash": data_hash(records),
            "train_examples": len(train_rows),
            "eval_examples": len(eval_rows),
            "suites": [str(suite.path) for suite in suites if suite.train],
            "format_version": FORMAT_VERSION,
            "control_tokens": added,  # {token: id} placed by base preparation; {} when the base had them
            "recipe": recipe.as_dict(),
            "train_seconds": round(time.perf_counter() - started, 1),
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "device": config.device.type,
            "bf16": config.bf16,
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


def _weight_average(recipe: Recipe) -> list:
    if recipe.average_weights_from is None:
        return []
    return [weight_average_callback(recipe.average_weights_from)]


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
