"""What a GGUF file says about itself, read from its header alone, and the checks made before it is
converted: a GGUF file at all, whole (not cut short), and a Gemma 3 model.

The header is read here rather than with the `gguf` package's GGUFReader, which parses every
metadata array into numpy objects: 12 s for Gemma 3's 262,144-token vocabulary, against a fraction
of a second to step over it. Layout (GGUF v2/v3, little-endian): magic, version, tensor count,
metadata count, the metadata key/value pairs, the tensor table, then the tensor data at the next
alignment boundary.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

from .errors import ModelLoadError

MAGIC = b"GGUF"
VERSIONS = (2, 3)
ARCHITECTURE = "gemma3"  # llama.cpp's name for Gemma 3, FunctionGemma included
# Metadata value types (gguf.GGUFValueType): fixed-width scalars, then string (8) and array (9).
_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9


@dataclass(frozen=True)
class GgufHeader:
    metadata: dict  # scalars and strings; an array is kept as its length
    tensors: list[tuple[str, tuple[int, ...], int, int]]  # (name, ggml dims, ggml type, offset in the data)
    data_start: int

    @property
    def architecture(self) -> str | None:
        return self.metadata.get("general.architecture")

    def bytes_needed(self) -> int:
        """Where the last tensor's data ends: a whole file is at least this long."""
        from gguf import GGML_QUANT_SIZES, GGMLQuantizationType

        end = self.data_start
        for _, dims, ggml_type, offset in self.tensors:
            block, block_bytes = GGML_QUANT_SIZES[GGMLQuantizationType(ggml_type)]
            elements = 1
            for dim in dims:
                elements *= dim
            end = max(end, self.data_start + offset + elements // block * block_bytes)
        return end


class _Cursor:
    """Reads values one after another from the file's bytes; running past the end is truncation."""

    def __init__(self, data: bytes):
        self.data, self.at = data, 0

    def unpack(self, fmt: str):
        values = struct.unpack_from(fmt, self.data, self.at)
        self.at += struct.calcsize(fmt)
        return values[0] if len(values) == 1 else values

    def string(self) -> str:
        length = self.unpack("<Q")
        if self.at + length > len(self.data):
            raise struct.error("string past the end of the file")
        text = self.data[self.at : self.at + length].decode("utf-8")
        self.at += length
        return text

    def value(self, kind: int):
        if kind in _SCALARS:
            return self.unpack(_SCALARS[kind])
        if kind == _STRING:
            return self.string()
        if kind != _ARRAY:
            raise ValueError(f"unknown metadata value type {kind}")
        element_kind, count = self.unpack("<IQ")
        # Stepped over, not decoded (a vocabulary is 262,144 strings): only their number is kept.
        if element_kind in _SCALARS:
            self.at += count * struct.calcsize(_SCALARS[element_kind])
        elif element_kind == _STRING:
            for _ in range(count):
                self.at += 8 + self.unpack("<Q")
        else:
            for _ in range(count):
                self.value(element_kind)
        if self.at > len(self.data):
            raise struct.error("array past the end of the file")
        return count


def read_header(path: Path) -> GgufHeader:
    """The metadata and tensor table of a GGUF file; ModelLoadError naming the file when it is not
    one, or is cut short or damaged."""
    import mmap

    with path.open("rb") as handle:
        if handle.read(4) != MAGIC:
            raise ModelLoadError(f"{path} is not a GGUF file: it does not start with the bytes 'GGUF'")
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
            try:
                return _parse(_Cursor(data), path)
            except (struct.error, ValueError, UnicodeDecodeError, OverflowError) as problem:
                raise ModelLoadError(
                    f"{path} is truncated or damaged: its GGUF header cannot be read ({problem}); "
                    "export or download it again"
                ) from None


def _parse(cursor: _Cursor, path: Path) -> GgufHeader:
    cursor.at = 4
    version, tensor_count, metadata_count = cursor.unpack("<IQQ")
    if version not in VERSIONS:
        raise ModelLoadError(f"{path} is GGUF version {version}; versions {' and '.join(map(str, VERSIONS))} can be read")
    metadata = {}
    for _ in range(metadata_count):
        key = cursor.string()
        metadata[key] = cursor.value(cursor.unpack("<I"))
    tensors = []
    for _ in range(tensor_count):
        name = cursor.string()
        dims = cursor.unpack(f"<{cursor.unpack('<I')}Q")
        ggml_type, offset = cursor.unpack("<IQ")
        tensors.append((name, dims if isinstance(dims, tuple) else (dims,), ggml_type, offset))
    alignment = metadata.get("general.alignment", 32)  # llama.cpp's default
    data_start = (cursor.at + alignment - 1) // alignment * alignment
    return GgufHeader(metadata, tensors, data_start)


def check_gemma3_export(path: Path) -> GgufHeader:
    """The header of a whole GGUF file of a Gemma 3 model, else ModelLoadError naming the file."""
    if not path.is_file():
        raise ModelLoadError(f"no GGUF file {path}" + (" (it is a directory)" if path.is_dir() else ""))
    header = read_header(path)
    if header.architecture != ARCHITECTURE:
        name = header.metadata.get("general.name")
        raise ModelLoadError(
            f"{path} holds a model of architecture {header.architecture!r}" + (f" ({name})" if name else "")
            + f"; GGUF files are tested as Gemma 3 / FunctionGemma exports (architecture {ARCHITECTURE!r})"
        )
    try:
        needed, size = header.bytes_needed(), path.stat().st_size
    except (KeyError, ValueError) as problem:  # a tensor type gguf does not know
        raise ModelLoadError(f"{path} is damaged or too new to read: unknown tensor type ({problem})") from None
    if size < needed:
        raise ModelLoadError(
            f"{path} is truncated: its tensors end at byte {needed:,}, but the file has {size:,} bytes; "
            "export or download it again"
        )
    return header
