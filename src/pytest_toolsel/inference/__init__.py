"""Inference: a loaded model answers prompts, and says how likely it found each declared tool.

    answers.py        cases rendered as prompts and answered, one batch per policy
    generation.py     batched greedy generation with the format's stop sequences
    decoding.py       the custom decoding loop (finished rows leave the batch)
    sampling.py       sampled trials: each case answered N times, every trial from its own seed
    screening.py      the greedy token found from a bfloat16 screen of the output layer, proven exact
    scoring.py        the tools' calls scored alongside generation, from the same pass
    confidence.py     the tool choice: a probability per declared tool
    results_cache.py  answers reused across runs from pytest's cache, keyed by model files, case and settings

The engine can be read on its own: it imports functiongemma, models and the case data (cases.suite),
never verdicts, reporting, training or the plugin. The results cache is here, not in the plugin,
because it stores answers: it needs only an object with pytest's `cache.get/set`, and the
evaluation outside pytest (benchmarks) takes it as well.
"""
