"""Verdicts: each answer judged against its case, and one model's run over many cases.

    judge.py        did the model call exactly the expected tools (and pass the argument checks)?
    call_schema.py  do the calls fit their tools' JSON schemas? (reported; fails only under --strict-calls)
    evaluation.py   case -> answer (inference, or the results cache) -> verdict: Outcome and RunResult
    trials.py       sampled trials judged together: pass^k, or a minimum pass rate

After inference in the pipeline, before the reports: it imports cases, functiongemma, inference and
models, and nothing from reporting, training or the plugin.
"""
