"""GGUF files as models under test (`--model model.gguf`, `--base-model model.gguf`).

A GGUF export is dequantised into a plain Hugging Face directory by transformers' GGUF loader, the
converter the embedded base goes through, once per file content: the cache directory is named by
the file's SHA-256, so a re-exported file is converted again and a copied or renamed one is not.
The directory holds the file as it is; what it lacks to speak FunctionGemma's format is added when
it is loaded (`prepare_export`), so that training from a GGUF base starts, like training from the
embedded base, from the unprepared model and places the control tokens itself.

What is measured: the file's weights, dequantised and computed in float by PyTorch; not the
runtime's own kernels (llama.cpp's quantized matrix products, its sampler), which round differently.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from .conversion_cache import cache_root, convert_once
from .errors import ModelLoadError
from .gguf_file import check_gemma3_export

SUFFIX = ".gguf"
# (resolved path, size, mtime) -> SHA-256: a session names the same file many times (loading, the
# answers cache, the baseline); it is read once.
_digests: dict[tuple[str, int, int], str] = {}


def names_gguf_file(path: Path) -> bool:
    """Whether a --model value is meant as a GGUF file: its name ends in .gguf (a directory so
    named is a Hugging Face directory like any other)."""
    return path.suffix.lower() == SUFFIX and not path.is_dir()


def file_digest(path: Path) -> str:
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _digests:
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            while chunk := handle.read(1 << 22):
                digest.update(chunk)
        _digests[key] = digest.hexdigest()
    return _digests[key]


def converted_export_dir(path: Path) -> Path:
    """The Hugging Face directory of a GGUF export, converted into the user cache on first use.

    The file is checked (a whole GGUF file of a Gemma 3 model) before converting; problems are a
    ModelLoadError naming it.
    """
    if not path.is_file():
        check_gemma3_export(path)  # raises, saying whether nothing or a directory is there
    target = cache_root() / f"gguf-{file_digest(path)[:16]}"
    return convert_once(target, lambda staging: _convert_checked(path, staging))


def _convert_checked(path: Path, directory: Path) -> None:
    check_gemma3_export(path)
    try:
        dequantise_gguf(path, directory, path.name)
    except Exception as problem:  # transformers raises many types for a file it cannot read
        first = (str(problem).strip() or type(problem).__name__).splitlines()[0][:300]
        raise ModelLoadError(f"could not convert the GGUF file {path}: {first}") from None


def dequantise_gguf(gguf: Path, directory: Path, name: str) -> None:
    """Write the model and tokenizer of a GGUF file into `directory` as a plain HF model."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    # Dequantised weights are plain float tensors; drop the GGUF marker so they can be saved.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.config.name_or_path = name
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)


def lacks_function_calling_format(tokenizer) -> bool:
    """A plain Gemma 3 export (placeholders where FunctionGemma has its control tokens, no chat
    template), as against a FunctionGemma export, which has both."""
    from ..functiongemma.base_prep import missing_control_tokens

    return bool(missing_control_tokens(tokenizer)) or tokenizer.chat_template is None


def prepare_export(model, tokenizer) -> bool:
    """Give a loaded GGUF export what it lacks of FunctionGemma's format, as training prepares a
    base (control tokens in the placeholders' slots, their embeddings, template, stops); an export
    that has them all is left exactly as it is. Returns whether anything was prepared."""
    if not lacks_function_calling_format(tokenizer):
        return False
    from ..functiongemma.base_prep import prepare_for_function_calling

    prepare_for_function_calling(model, tokenizer)
    return True
