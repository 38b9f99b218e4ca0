"""Loading the model under test (and the "before" model): local directories, hub ids, GGUF files,
the embedded base.

A --model / --base-model value is read once into a `ModelRef`, which says which of these it names;
loading and the plugin take that object, not the text again.

Loading problems are turned into one `ModelLoadError` sentence that says what is wrong and what to
do, instead of a stack of transformers internals.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..functiongemma.chat_format import FORMAT_VERSION, chat_template
from .embedded import EMBEDDED_ALIAS, embedded_base_dir, is_embedded
from .errors import ModelLoadError
from .gguf_exports import converted_export_dir, names_gguf_file, prepare_export

WEIGHT_PATTERNS = ("*.safetensors", "pytorch_model*.bin", "model*.bin")
METADATA_FILE = "toolsel.json"


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


# What a --model / --base-model value names (ModelRef.kind).
EMBEDDED, HUB, LOCAL, GGUF = "embedded", "hub", "local", "gguf"
# owner/name, in the characters the hub allows in repository ids
_HUB_ID = re.compile(r"[\w.-]+/[\w.-]+")
# A value starting so is a path whatever else it looks like.
_PATH_PREFIXES = ("./", "../", "/", "~")


@dataclass(frozen=True)
class ModelRef:
    """A --model / --base-model value, read once (`model_reference`) into what it names: the embedded
    base, a hub id, a GGUF file, or a local directory: one to load, or one to train into while it is
    missing."""

    text: str  # as the user wrote it: reports, messages and checkpoints' records name the model so
    kind: str  # EMBEDDED, HUB, LOCAL or GGUF
    path: Path | None = None  # LOCAL: the directory, GGUF: the file; ~ expanded

    def __str__(self) -> str:
        return self.text

    @property
    def is_local(self) -> bool:
        return self.kind == LOCAL

    def source(self) -> str:
        """What transformers opens: the embedded base's or a GGUF file's converted directory (converted
        on first use), the hub id, or the local directory once checked to hold a model."""
        if self.kind == EMBEDDED:
            return str(embedded_base_dir())
        if self.kind == GGUF:
            return str(converted_export_dir(self.path))
        if self.kind == HUB:
            return self.text
        check_local_dir(self.path)
        return str(self.path)

    def files_here(self) -> Path | None:
        """The directory holding the model's files, when they are on this machine (never for a hub id)."""
        if self.kind == HUB:
            return None
        try:
            return Path(self.source())
        except ModelLoadError:
            return None


EMBEDDED_BASE = ModelRef(EMBEDDED_ALIAS, EMBEDDED)


def model_reference(text: str) -> ModelRef:
    """What a --model / --base-model value names, by one rule:

    - the embedded base's alias (gemma3-270m);
    - a name ending in .gguf: a GGUF export of a Gemma 3 model, which must exist;
    - a path that exists, one written as a path (./ ../ / ~), or a relative path whose parent
      directory exists: a local directory, to train into while it is missing (ckpts/v2 beside ckpts/);
    - owner/name whose owner is no directory here: a hub id (google/functiongemma-270m-it).

    Anything else could be either, and is refused with how to write each; the message starts with the
    value, for the caller to put the option's name before it.
    """
    if is_embedded(text):
        return EMBEDDED_BASE
    if not text.strip():
        raise ModelLoadError(f"{text!r}: names no model; give a local directory or a hub id (owner/name)")
    path = Path(text).expanduser()
    if names_gguf_file(path):
        if not path.is_file():
            raise ModelLoadError(f"{text}: there is no GGUF file {path}")
        return ModelRef(text, GGUF, path)
    if path.exists() or text.startswith(_PATH_PREFIXES) or path.parent.is_dir():
        return ModelRef(text, LOCAL, path)
    if _HUB_ID.fullmatch(text):
        return ModelRef(text, HUB)
    raise ModelLoadError(
        f"{text}: names neither a path here (there is no directory {path.parent}) nor a hub id (owner/name); "
        f"write ./{text} for a local directory (trained into while it is missing), or owner/name for a model "
        "on the Hugging Face hub"
    )


def resolve(spec: str) -> str:
    """What transformers should open for a --model / --base-model value held as text (training, benchmarks)."""
    return model_reference(spec).source()


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


def read_metadata(spec: str | Path) -> dict:
    """pytest-toolsel's own record in a checkpoint directory (base model, data hash, recipe), if any."""
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


def load_model(spec: str | ModelRef, device=None, *, require_template: bool = True) -> LoadedModel:
    """Load a causal LM and its tokenizer for greedy evaluation (`spec`: a ModelRef, or the text of one).

    A model without a chat template is refused when it is the candidate (it would be evaluated in a
    format it may never have seen); a "before" model gets the FunctionGemma template instead. A GGUF
    export that lacks the format (a plain Gemma 3 base) is prepared as training prepares a base.
    """
    from transformers import AutoModelForCausalLM

    spec = spec if isinstance(spec, ModelRef) else model_reference(spec)
    source = spec.source()
    device = device or pick_device()
    try:
        tokenizer = load_tokenizer(source, written_here=spec.kind in (EMBEDDED, GGUF))
    except Exception as problem:  # transformers raises many types for a broken tokenizer
        raise ModelLoadError(f"could not load the tokenizer of {spec}: {first_line(problem)}") from None
    if tokenizer.chat_template is None and spec.kind != GGUF:  # an export gets it from prepare_export
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
        raise ModelLoadError(f"could not load the weights of {spec}: {first_line(problem)}") from None
    if spec.kind == GGUF:
        prepare_export(model, tokenizer)
    model.to(device)
    model.eval()
    return LoadedModel(name=spec.text, model=model, tokenizer=tokenizer, device=device)


def load_tokenizer(source: str, *, written_here: bool = False):
    """The tokenizer of a model directory or hub id.

    A tokenizer that pytest-toolsel saved itself (a checkpoint it trained, marked by toolsel.json, or
    the embedded base or a GGUF file it converted: `written_here`) was saved from the tokenizer class its config
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


def first_line(problem: BaseException) -> str:
    text = str(problem).strip() or type(problem).__name__
    return text.splitlines()[0][:300]
