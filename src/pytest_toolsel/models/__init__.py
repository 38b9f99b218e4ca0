"""Models: loading a causal LM, and running its forward pass in the pieces both inference and training use.

    loading.py   the model under test and the before model: local directories, hub ids, GGUF
                 files, the embedded base; checkpoint metadata (toolsel.json)
    errors.py    ModelLoadError, the one error of loading
    embedded.py  the embedded default base (Gemma 3 270M from GGUF), converted once into a cache
    gguf_exports.py  GGUF files as models: converted once per content, plain Gemma 3 prepared on load
    gguf_file.py     a GGUF file's header, and the checks made before converting it
    conversion_cache.py  the user cache of converted models: converted once, published atomically
    prefix.py    the shared prompt prefix run once and its KV cache reused
    logits.py    the output layer applied only where needed; answer tokens' log-probabilities

prefix.py and logits.py are here rather than in inference/ because training's loss uses them as
much as generation and scoring do: both depend on models/, neither on the other. It imports only
functiongemma (the template a model without one is given).
"""
