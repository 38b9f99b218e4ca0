"""Models: loading a causal LM, and running its forward pass in the pieces both inference and training use.

    loading.py   the model under test and the before model: local directories, hub ids, the
                 embedded base; checkpoint metadata (toolsel.json)
    embedded.py  the embedded default base (Gemma 3 270M from GGUF), converted once into a cache
    prefix.py    the shared prompt prefix run once and its KV cache reused
    logits.py    the output layer applied only where needed; answer tokens' log-probabilities

prefix.py and logits.py are here rather than in inference/ because training's loss uses them as
much as generation and scoring do: both depend on models/, neither on the other. It imports only
functiongemma (the template a model without one is given).
"""
