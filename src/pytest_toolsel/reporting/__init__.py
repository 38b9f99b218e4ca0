"""Reporting: a run (and its before run) written for machines and people.

    reports.py           the results document (results.json), accuracy.md and the terminal summary
    report_files.py      the files: results.json first, each rendering on its own, none half-written
    where_calls_went.py  which tool went where, per policy: the tables that stay readable at any size
    confusion.py         tool-by-tool tables, capped at the most frequent tools
    outcome_kinds.py     tables by kind of outcome, for datasets whose rows bring their own tools
    heatmap.py           those tables drawn (confusion.png)
    invariance.py        invariance variants: per policy and variant, the cases that keep their verdict and those that flip
    sampled.py           sampled trials: each case's pass rate and the tools its trials chose
    stats.py             Wilson intervals and McNemar's exact test

It reads verdicts (Outcome, RunResult) and case data only; nothing here runs a model.
"""
