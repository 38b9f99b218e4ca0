"""Loading the model under test (and the "before" model): local directories, hub ids, the embedded base.

Loading problems are turned into one `ModelLoadError` sentence that says what is wrong and what to
do, instead of a stack of transformers internals.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..functiongemma.chat_format import FORMAT_VERSION, chat_template
from .embedded import embedded_base_dir, is_embedded

WEIGHT_PATTERNS = ("*.safetensors", "pytorch_model*.bin", "model*.bin")
METADATA_FILE = "toolsel.json"


class ModelLoadError(Exception):
    pass


@dataclass
class LoadedModel:
    name: str  # as the user named it: a path, a hub id or the embedded alias
    model: Any
    tokenizer: Any
    device: Any

    @property
    def dtype(self):
        return self.model.dtype


def pick_device(requested: str | None = None):
    import torch

    if requested:
        try:
            device = torch.device(requested)
        except RuntimeError as problem:
            raise ModelLoadError(f"--device {requested!r} is not a torch device ({problem})") from None
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ModelLoadError(f"--device {requested} was asked for, but CUDA is not available here")
        return device
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def pick_dtype(device):
    import torch

    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


def resolve(spec: str) -> str:
    """The path or hub id that transformers should open for a --model / --base-model value."""
    if is_embedded(spec):
        return str(embedded_base_dir())
    if looks_like_hub_id(spec):
        return spec
    path = Path(spec).expanduser()
    check_local_dir(path)
    return str(path)


def local_directory(spec: str) -> Path | None:
    """The directory holding the model's files, when they are on this machine (not for hub ids)."""
    if looks_like_hub_id(spec):
        return None
    try:
        return Path(resolve(spec))
    except ModelLoadError:
        return None


def looks_like_hub_id(spec: str) -> bool:
    """`org/name` that is not a local path, such as google/functiongemma-270m-it."""
    return (
        spec.count("/") == 1
        and not spec.startswith((".", "/", "~"))
        and not Path(spec).expanduser().exists()
    )


def is_local_target(spec: str) -> bool:
    """A --model value naming a local directory (existing or to be trained into)."""
    return not is_embedded(spec) and not looks_like_hub_id(spec)


def check_local_dir(path: Path) -> None:
    if not path.exists():
        raise ModelLoadError(f"model directory {path} does not exist")
    if not path.is_dir():
        raise ModelLoadError(f"{path} is a file; --model takes a Hugging Face model directory or a hub id")
    if not (path / "config.json").exists():
        contents = ", ".join(sorted(p.name for p in path.iterdir())[:8]) or "it is empty"
        raise ModelLoadError(f"{path} is not a Hugging Face model directory: no config.json ({contents})")
    if not any(any(path.glob(pattern)) for pattern in WEIGHT_PATTERNS):
        raise ModelLoadError(f"{path} has a config.json but no weights (*.safetensors or pytorch_model.bin)")


def read_metadata(spec: str) -> dict:
    """pytest-toolsel's own record in a checkpoint (base model, data hash, recipe), if any."""
    path = Path(spec).expanduser() / METADATA_FILE
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def old_format_warning(checkpoint: str) -> str | None:
    """A warning when a checkpoint pytest-toolsel trained speaks an older format than this version.

    Checkpoints of format 1 (no `format_version` recorded) speak pytest-toolsel's early FunctionGemma
    dialect: they are tested in it, consistently, since their own template renders their prompts,
    but deployed with FunctionGemma's tooling they would see a format they were never trained on.
    """
    metadata = read_metadata(checkpoint)
    if not metadata:  # not trained by pytest-toolsel: its format is its own business
        return None
    version = metadata.get("format_version", 1)
    if version >= FORMAT_VERSION:
        return None
    return (
        f"old format: {checkpoint} was trained in pytest-toolsel's format {version}, not the real FunctionGemma "
        f"format (format {FORMAT_VERSION}: byte-exact template, control tokens at ids 46-52); it is tested in "
        "its own format, but FunctionGemma's tooling would prompt it differently; retrain with --retrain"
    )


def load_model(spec: str, device=None, *, require_template: bool = True) -> LoadedModel:
    """Load a causal LM and its tokenizer for greedy evaluation.

    A model without a chat template is refused when it is the candidate (it would be evaluated in a
    format it may never have seen); a "before" model gets the FunctionGemma template instead.
    """
    from transformers import AutoModelForCausalLM

    source = resolve(spec)
    device = device or pick_device()
    try:
        tokenizer = load_tokenizer(source, written_here=is_embedded(spec))
    except Exception as problem:  # transformers raises many types for a broken tokenizer
        raise ModelLoadError(f"could not load the tokenizer of {spec}: {_first_line(problem)}") from None
    if tokenizer.chat_template is None:
        if require_template:
            raise ModelLoadError(
                f"the tokenizer of {spec} has no chat template, so prompts cannot be rendered in its format; "
                "save the tokenizer with the FunctionGemma template (pytest_toolsel.functiongemma.chat_format.chat_template()) "
                "or train a checkpoint with pytest-toolsel"
            )
        tokenizer.chat_template = chat_template()
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    try:
        model = AutoModelForCausalLM.from_pretrained(source, dtype=pick_dtype(device))
    except Exception as problem:
        raise ModelLoadError(f"could not load the weights of {spec}: {_first_line(problem)}") from None
    model.to(device)
    model.eval()
    return LoadedModel(name=spec, model=model, tokenizer=tokenizer, device=device)


def load_tokenizer(source: str, *, written_here: bool = False):
    """The tokenizer of a model directory or hub id.

    A tokenizer that pytest-toolsel saved itself (a checkpoint it trained, marked by toolsel.json, or
    the embedded base it converted: `written_here`) was saved from the tokenizer class its config
    names, so its tokenizer.json is the whole tokenizer and is read as it is (about half a second
    faster here than letting the class rebuild itself from the vocabulary; the same tokens either
    way, tested). Its added tokens are in that file too: an empty `added_tokens_decoder` stops
    transformers from also parsing the 33 MB file in Python to look for them there (another second,
    most of it garbage collection of the parsed objects). Other models get the class they name,
    which may rebuild differently from their file.
    """
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    directory = Path(source)
    written_here = written_here or (directory / METADATA_FILE).is_file()
    if written_here and (directory / "tokenizer.json").is_file():
        return PreTrainedTokenizerFast.from_pretrained(source, added_tokens_decoder={})
    return AutoTokenizer.from_pretrained(source)


def _first_line(problem: BaseException) -> str:
    text = str(problem).strip() or type(problem).__name__
    return text.splitlines()[0][:300]
