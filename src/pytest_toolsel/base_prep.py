"""Make a base model speak the FunctionGemma format: control tokens, their embeddings, template, stops.

A plain Gemma 3 tokenizer splits `<start_function_call>` into ordinary pieces. We add the seven
control tokens as single special tokens and start each embedding from the mean embedding of the
token's own words: in our trials random or global-mean rows never learned to be emitted at the
tutorial's learning rate, while word-mean rows were.
"""

from __future__ import annotations

import re

from .chat_format import CONTROL_TOKENS, END_OF_TURN, START_RESPONSE, chat_template


def missing_control_tokens(tokenizer) -> list[str]:
    vocab = tokenizer.get_vocab()
    return [token for token in CONTROL_TOKENS if token not in vocab]


def token_words(token: str) -> str:
    """`<start_function_call>` -> 'start function call'."""
    return re.sub(r"[<>]", "", token).replace("_", " ")


def add_control_tokens(model, tokenizer, init: str = "words") -> list[str]:
    """Add the missing control tokens (single, special) and initialise their embedding rows."""
    import torch

    missing = missing_control_tokens(tokenizer)
    if not missing:
        return []
    tokenizer.add_special_tokens({"additional_special_tokens": missing}, replace_extra_special_tokens=False)
    embeddings = model.get_input_embeddings().weight
    old_rows = embeddings.shape[0]
    if len(tokenizer) > old_rows:
        model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
        embeddings = model.get_input_embeddings().weight
    with torch.no_grad():
        overall_mean = embeddings[:old_rows].mean(dim=0)
        for token in missing:
            row = tokenizer.convert_tokens_to_ids(token)
            if init == "words":
                word_ids = tokenizer.encode(token_words(token), add_special_tokens=False)
                embeddings[row] = embeddings[word_ids].mean(dim=0)
            else:
                embeddings[row] = overall_mean
    return missing


def prepare_for_function_calling(model, tokenizer, init: str = "words") -> list[str]:
    """Control tokens, chat template and stop tokens: everything the format needs, idempotent."""
    added = add_control_tokens(model, tokenizer, init)
    if tokenizer.chat_template is None:
        tokenizer.chat_template = chat_template()
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    stops = [tokenizer.convert_tokens_to_ids(token) for token in (START_RESPONSE, END_OF_TURN)]
    stops.append(tokenizer.eos_token_id)
    model.generation_config.eos_token_id = sorted({i for i in stops if i is not None})
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.do_sample = False
    model.config.pad_token_id = tokenizer.pad_token_id
    return added
