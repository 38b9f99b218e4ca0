"""pytest-toolsel: tool-selection regression tests for function-calling models.

What users rely on, kept stable:

- the pytest plugin, registered as the `pytest11` entry point `pytest_toolsel.plugin`: case files
  (YAML with a top-level `cases:`, and JSON Lines datasets in the Hugging Face conversational
  format) become tests, with its command-line options (`pytest --help`);
- the `toolsel_model` fixture (pytest_toolsel.plugin): the model under test for tests written in
  Python (ask, ask_many, assert_selects);
- the `toolsel_session` fixture (pytest_toolsel.plugin): the session's suites, candidate and
  baseline runs;
- `toolsel-train` (pytest_toolsel.cli:main, also `python -m pytest_toolsel.cli`);
- FunctionGemma's chat template, `pytest_toolsel.functiongemma.chat_format.chat_template()`;
- reading a case file outside pytest, `pytest_toolsel.cases.sources.load_suites` (a YAML file:
  also `pytest_toolsel.cases.yaml_source.load_suite`; CaseFileError in pytest_toolsel.cases.suite).

Everything else is internal. The packages follow the pipeline, each importing only those before it:

    functiongemma  the format; imports nothing of the package
    cases          case sources -> Suite; imports functiongemma
    models         loading, and the forward pass in pieces; imports functiongemma
    inference      answers and tool probabilities; imports functiongemma, cases, models
    verdicts       answers judged, runs of many cases; imports the four above
    reporting      results.json, accuracy.md; imports verdicts and cases
    training       beside the evaluation: the fine-tune; imports functiongemma, cases, models
    plugin, cli    the two faces (pytest, toolsel-train) on top; nothing imports them

Nothing is re-exported here, so that importing the package stays cheap (torch and transformers are
imported only inside the functions that use them).
"""

__version__ = "0.1.0"
