"""pytest-toolsel: tool-selection regression tests for function-calling models.

What users rely on, kept stable:

- the pytest plugin, registered as the `pytest11` entry point `pytest_toolsel.plugin`: case files
  (YAML with a top-level `cases:`) become tests, with its command-line options (`pytest --help`);
- the `toolsel_session` fixture (pytest_toolsel.plugin): the session's suites, candidate and
  baseline runs;
- `toolsel-train` (pytest_toolsel.cli:main, also `python -m pytest_toolsel.cli`);
- FunctionGemma's chat template, `pytest_toolsel.functiongemma.chat_format.chat_template()`;
- reading a case file outside pytest, `pytest_toolsel.cases.yaml_source.load_suite` (CaseFileError
  in pytest_toolsel.cases.suite).

Everything else is internal. The packages follow the pipeline, each importing only those before it:
functiongemma (the format) <- cases (case sources) <- models <- inference <- verdicts <- reporting,
with training beside the evaluation (it uses functiongemma, cases and models), and the two faces on
top: plugin (pytest) and cli (toolsel-train). Nothing is re-exported here, so that importing the
package stays cheap (torch and transformers are imported only where they are used).
"""

__version__ = "0.1.0"
