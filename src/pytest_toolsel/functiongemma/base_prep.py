"""Make a base model speak the FunctionGemma format: control tokens, their embeddings, template, stops.

FunctionGemma is Gemma 3 with the seven placeholders `<unused40>`..`<unused46>` (ids 46-52) renamed
to its control tokens. A Gemma 3 base gets exactly that: the same slots renamed, no new rows, so a
checkpoint trained here has FunctionGemma's tokenizer (every token at FunctionGemma's id, 262,144 in
all) and works with FunctionGemma's own tooling. A base without those placeholders (another model
family) gets the tokens appended instead. Either way each control token's embedding starts as the
mean embedding of its own words: in our trials random or global-mean rows never learned to be
emitted at the tutorial's learning rate, while word-mean rows were.
"""

from __future__ import annotations

import json
import re

from .chat_format import (
    CONTROL_TOKENS,
    END_OF_TURN,
    ESCAPE,
    FUNCTIONGEMMA_TOKEN_IDS,
    GEMMA3_PLACEHOLDERS,
    START_RESPONSE,
    chat_template,
)


def missing_control_tokens(tokenizer) -> list[str]:
    vocab = tokenizer.get_vocab()
    return [token for token in CONTROL_TOKENS if token not in vocab]


def token_words(token: str) -> str:
    """`<start_function_call>` -> 'start function call'."""
    return re.sub(r"[<>]", "", token).replace("_", " ")


# The text whose embedding a control token starts from under `token_init: quote`: `<escape>` opens
# and closes every string value in a call, as a quotation mark does in the text the base was
# trained on, after which it copies words from the context (see docs/results.md, "Why copying fails").
ROLE_TEXT = {ESCAPE: '"'}


def starting_text(token: str, init: str) -> str:
    """The text whose tokens' mean embedding `token` starts as (`words` and `quote` inits)."""
    if init == "quote":
        return ROLE_TEXT.get(token, token_words(token))
    return token_words(token)


def free_placeholders(tokenizer, tokens: list[str]) -> dict[str, str]:
    """The Gemma 3 placeholders that sit where FunctionGemma has these control tokens."""
    vocab = tokenizer.get_vocab()
    return {
        token: GEMMA3_PLACEHOLDERS[token]
        for token in tokens
        if vocab.get(GEMMA3_PLACEHOLDERS[token]) == FUNCTIONGEMMA_TOKEN_IDS[token]
    }


def rename_tokens(tokenizer, renames: dict[str, str]) -> None:
    """Rename vocabulary entries in place (old -> new), keeping every id and every token's flags."""
    from tokenizers import Tokenizer

    document = json.loads(tokenizer.backend_tokenizer.to_str())
    for added in document["added_tokens"]:
        added["content"] = renames.get(added["content"], added["content"])
    vocab = document["model"]["vocab"]
    if isinstance(vocab, dict):  # BPE / WordPiece: token -> id
        document["model"]["vocab"] = {renames.get(token, token): index for token, index in vocab.items()}
    else:  # Unigram: [token, score] pairs
        document["model"]["vocab"] = [[renames.get(token, token), score] for token, score in vocab]
    tokenizer._tokenizer = Tokenizer.from_str(json.dumps(document))
    # A tokenizer that lists the placeholders among its extra special tokens would otherwise save
    # them there, and add them back as new tokens when it is loaded again.
    extra = [str(token) for token in tokenizer.extra_special_tokens]
    if any(token in renames for token in extra):
        tokenizer.extra_special_tokens = [renames.get(token, token) for token in extra]


def add_control_tokens(model, tokenizer, init: str = "words") -> dict[str, int]:
    """Give the tokenizer the missing control tokens (single, special) and initialise their embedding
    rows; returns {token: id} of the tokens it placed."""
    import torch

    missing = missing_control_tokens(tokenizer)
    if not missing:
        return {}
    slots = free_placeholders(tokenizer, missing)
    if slots:
        rename_tokens(tokenizer, {placeholder: token for token, placeholder in slots.items()})
    appended = [token for token in missing if token not in slots]
    if appended:
        tokenizer.add_special_tokens({"additional_special_tokens": appended}, replace_extra_special_tokens=False)
    embeddings = model.get_input_embeddings().weight
    old_rows = embeddings.shape[0]
    if len(tokenizer) > old_rows:
        model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
        embeddings = model.get_input_embeddings().weight
    placed = {token: tokenizer.convert_tokens_to_ids(token) for token in missing}
    with torch.no_grad():
        overall_mean = embeddings[:old_rows].mean(dim=0)
        for token, row in placed.items():
            if init in ("words", "quote"):
                word_ids = tokenizer.encode(starting_text(token, init), add_special_tokens=False)
                embeddings[row] = embeddings[word_ids].mean(dim=0)
            else:
                embeddings[row] = overall_mean
    return placed


def prepare_for_function_calling(model, tokenizer, init: str = "words") -> dict[str, int]:
    """Control tokens, chat template and stop tokens: everything the format needs, idempotent."""
    placed = add_control_tokens(model, tokenizer, init)
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
    return placed
