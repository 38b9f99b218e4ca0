"""GGUF exports of the tests' tiny Gemma 3 models, written with the `gguf` package's GGUFWriter.

What llama.cpp's converter writes for Gemma 3, for a model the tests build: the tensors under
llama.cpp's names (norm weights stored as 1 + w, as Gemma computes them), the hyperparameters under
`gemma3.*`, and the tokenizer as metadata (the tiny tokenizer is byte-level BPE: llama.cpp's
`gpt2` kind, with its merges; special tokens typed CONTROL). Unquantized F32 by default (F16 on
request), so a round trip through transformers' GGUF loader gives back the very weights.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

# llama.cpp's token types (gguf.TokenType): ordinary pieces, and the special tokens a tokenizer
# must keep whole.
NORMAL, CONTROL = 1, 3


def tiny_gemma3_config(tokenizer, layers: int = 6):
    """A tiny Gemma 3 laid out as GGUF can say it: the default layer pattern (a full-attention layer
    every 6th) and default scalars, since a GGUF records neither and the loader assumes the defaults."""
    from transformers import Gemma3TextConfig

    return Gemma3TextConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=layers,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=32,
        sliding_window=64,
        max_position_embeddings=1024,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )


def exportable_model(tokenizer, pairs, seed: int = 0):
    """A tiny Gemma 3 taught `pairs` (tiny.teach), with weights an F16 GGUF holds exactly: matrices
    rounded to float16, norms to what float32 gives back after storing 1 + w. The round trip then
    has nothing to round, so any difference in answers is the loader's, not the format's."""
    import torch
    from transformers import Gemma3ForCausalLM

    import tiny

    torch.manual_seed(seed)
    model = Gemma3ForCausalLM(tiny_gemma3_config(tokenizer))
    tiny.teach(model, tokenizer, pairs, seed=seed)
    with torch.no_grad():
        for name, weight in model.named_parameters():
            if name.endswith("norm.weight"):
                weight.copy_((weight + 1) - 1)
            else:
                weight.copy_(weight.half().float())
    return model


def export(checkpoint: Path, path: Path, **options) -> Path:
    """A saved checkpoint written as a GGUF file (write_gguf's options)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(checkpoint, dtype="float32")
    return write_gguf(model, AutoTokenizer.from_pretrained(checkpoint), path, **options)


def write_other_architecture(path: Path, architecture: str = "llama") -> Path:
    """A small, well-formed GGUF file of another model family."""
    from gguf import GGUFWriter

    writer = GGUFWriter(str(path), architecture)
    writer.add_name(f"tiny {architecture}")
    writer.add_tensor("token_embd.weight", np.zeros((8, 4), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def write_gguf(model, tokenizer, path: Path, *, f16: bool = False, chat_template: bool = True) -> Path:
    """`model` (a Gemma3ForCausalLM) and its tokenizer as one GGUF file at `path`; F16 matrices with
    `f16` (norms stay F32, as llama.cpp keeps them); `chat_template=False` leaves the template out."""
    from gguf import GGUFWriter

    writer = GGUFWriter(str(path), "gemma3")
    _write_hyperparameters(writer, model.config, f16)
    _write_tokenizer(writer, tokenizer, chat_template)
    for name, tensor in _gguf_tensors(model):
        writer.add_tensor(name, tensor.astype(np.float16) if f16 and tensor.ndim == 2 else tensor)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def _write_hyperparameters(writer, config, f16: bool) -> None:
    writer.add_name("tiny gemma 3")
    writer.add_file_type(1 if f16 else 0)  # llama.cpp's MOSTLY_F16 / ALL_F32
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_block_count(config.num_hidden_layers)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_head_count(config.num_attention_heads)
    writer.add_head_count_kv(config.num_key_value_heads)
    writer.add_key_length(config.head_dim)
    writer.add_value_length(config.head_dim)
    writer.add_layer_norm_rms_eps(config.rms_norm_eps)
    writer.add_rope_freq_base(config.rope_parameters["full_attention"]["rope_theta"])
    writer.add_sliding_window(config.sliding_window)


def _write_tokenizer(writer, tokenizer, chat_template: bool) -> None:
    document = json.loads(tokenizer.backend_tokenizer.to_str())
    tokens = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
    special = set(tokenizer.all_special_ids)
    merges = [merge if isinstance(merge, str) else " ".join(merge) for merge in document["model"]["merges"]]
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    writer.add_token_types([CONTROL if index in special else NORMAL for index in range(len(tokens))])
    writer.add_token_merges(merges)
    writer.add_bos_token_id(tokenizer.bos_token_id)
    writer.add_eos_token_id(tokenizer.eos_token_id)
    writer.add_pad_token_id(tokenizer.pad_token_id)
    writer.add_unk_token_id(tokenizer.unk_token_id)
    writer.add_add_bos_token(False)  # the tiny tokenizer adds none; the template writes <bos>
    if chat_template and tokenizer.chat_template:
        writer.add_chat_template(tokenizer.chat_template)


def _gguf_tensors(model):
    """(llama.cpp name, float32 array) for every weight; the tied output layer is not written."""
    from gguf import MODEL_ARCH, get_tensor_name_map

    names = get_tensor_name_map(MODEL_ARCH.GEMMA3, model.config.num_hidden_layers)
    for hf_name, tensor in model.state_dict().items():
        if hf_name == "lm_head.weight":
            continue
        name = names.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if name is None:
            raise KeyError(f"no GGUF name for {hf_name}")
        array = tensor.detach().float().numpy()
        # Gemma computes its norms as x * (1 + w); llama.cpp stores 1 + w, and the loader subtracts 1.
        yield name, array + 1 if hf_name.endswith("norm.weight") else array
