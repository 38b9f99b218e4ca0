"""Reporting: a run (and its before run) written for machines and people.

    reports.py    results.json, accuracy.md and the terminal summary
    confusion.py  which tool was called for which expected one: tables and the heatmap
    stats.py      Wilson intervals and McNemar's exact test

It reads verdicts (Outcome, RunResult) and case data only; nothing here runs a model.
"""
