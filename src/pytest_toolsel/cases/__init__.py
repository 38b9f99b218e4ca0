"""Case sources: the case files a policy is written in, read into a `Suite` and validated.

    suite.py        what a case file declares (Suite, Tool, TrainExample, Case, ArgCheck) and CaseFileError
    sources.py      which files are case files (is_case_file) and reading one (load_suites), whatever the format
    yaml_source.py  a YAML case file: load_suite, looks_like_case_file, the top level of the document
    jsonl_source.py a JSON Lines dataset in the Hugging Face conversational format: a suite per tool set
    reader.py       what the readers of its parts share (errors with lines, unknown keys)
    tools.py        `tools:` and their JSON schemas
    examples.py     `train:` examples
    heldout.py      held-out `cases:` and their argument checks
    conversation.py a conversation so far (earlier turns, calls, tool responses), as a case may give it
    leakage.py      the guard against a held-out prompt that is also a training prompt
    variants.py     invariance variants of a case (its tools shuffled, or distractors added), and the keys asking for them

The first stage of the pipeline, and one reads its files without reading the rest: it imports only
`functiongemma` (the tool-declaration form a schema is rendered in), never inference, models,
training, reporting or the pytest plugin.
"""
