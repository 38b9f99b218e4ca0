"""The FunctionGemma format: what every other part speaks, so it sits at the bottom of the pipeline.

    chat_format.py       control tokens, vocabulary ids, the chat template and prompt rendering
    functiongemma.jinja  the template itself (package data), the single source of truth for the format
    parsing.py           a model's answer read back into tool calls
    base_prep.py         a base model made to speak the format: control tokens, embeddings, template, stops

It imports nothing from the rest of pytest_toolsel; torch and transformers only inside the
functions that need them.
"""
