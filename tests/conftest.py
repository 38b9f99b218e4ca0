from __future__ import annotations

import json
import textwrap
from pathlib import Path

# pytester's in-process runs drop and re-import every module the outer session had not imported.
# Import these once here: datasets cannot be imported twice (pyarrow extension types), trl's lazy
# top-level module would hand out classes of a previous import, and re-imports cost seconds (pyplot:
# every session's reports draw the confusion heatmap).
import datasets  # noqa: F401
import hypothesis  # noqa: F401
import matplotlib.pyplot  # noqa: F401
import pytest
from trl import SFTConfig, SFTTrainer  # noqa: F401

import tiny
import tiny_gguf
from pytest_toolsel.functiongemma.chat_format import as_function_tool, prompt_messages, render

pytest_plugins = ["pytester"]
# tests/data holds datasets in the format pytest-toolsel collects (JSONL rows): data for the tests,
# not cases of this test session.
collect_ignore = ["data"]

WEATHER = as_function_tool(
    "get_weather",
    "Current weather for a city.",
    {"type": "object", "properties": {"city": {"type": "string", "description": "city name"}}, "required": ["city"]},
)
STOCKS = as_function_tool(
    "get_stock_price",
    "Latest stock price for a ticker.",
    {"type": "object", "properties": {"ticker": {"type": "string", "description": "ticker symbol"}}, "required": ["ticker"]},
)
TOOLS = [WEATHER, STOCKS]

# What the tiny checkpoint is taught. The case files below expect these answers, or deliberately
# the wrong tool, so a test can count on a pass and on a miss.
LESSONS: list[tiny.Lesson] = [
    ("What is the weather in Paris?", [("get_weather", {"city": "Paris"})]),
    ("Is it raining in Oslo today?", [("get_weather", {"city": "Oslo"})]),
    ("How much is ACME stock?", [("get_stock_price", {"ticker": "ACME"})]),
    ("Price of GLOBEX shares please", [("get_stock_price", {"ticker": "GLOBEX"})]),
    ("Weather in Rome and the price of ACME?", [("get_weather", {"city": "Rome"}), ("get_stock_price", {"ticker": "ACME"})]),
    ("Tell me a joke.", []),
]
# Prompts to generate: the taught ones and a few the tiny model never saw, of very different lengths.
PROMPTS = [prompt for prompt, _ in LESSONS] + [
    "weather?",
    "Could you please look up what the weather will be like in Paris and in Oslo over the next few days?",
    "ACME",
    "What is the price of a GLOBEX share today, and is it raining in Rome?",
]

# Conversations rendered by the real FunctionGemma chat template (see functiongemma/test_chat_format.py).
GOLDENS = [json.loads(line) for line in (Path(__file__).parent / "data" / "format-goldens.jsonl").read_text().splitlines()]
# The vocabulary of a tiny plain base (laid out like Gemma 3: placeholders, no control tokens).
CORPUS = [golden["expected"].replace("<escape>", " ") for golden in GOLDENS] + ["start function call end declaration"] * 3

TOOLS_YAML = """\
tools:
  - name: get_weather
    description: Current weather for a city.
    parameters:
      type: object
      properties:
        city: {type: string, description: city name}
      required: [city]
  - name: get_stock_price
    description: Latest stock price for a ticker.
    parameters:
      type: object
      properties:
        ticker: {type: string, description: ticker symbol}
      required: [ticker]
"""


def case_file(cases: str, extra: str = "", tools: str = TOOLS_YAML) -> str:
    """A case file with the tiny policy's tools; `cases` is the YAML list under `cases:`."""
    return tools + extra + "cases:\n" + textwrap.indent(textwrap.dedent(cases).strip("\n"), "  ") + "\n"


@pytest.fixture(scope="session")
def tiny_tokenizer():
    corpus = [render(prompt_messages(prompt), TOOLS, add_generation_prompt=True) for prompt, _ in LESSONS]
    corpus += [answer for _, answer in tiny.lesson_texts(LESSONS, TOOLS)]
    return tiny.build_tokenizer(corpus)


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory, tiny_tokenizer) -> Path:
    """A tiny Gemma 3 taught LESSONS: its greedy answers are the taught calls."""
    model = tiny.build_model(tiny_tokenizer, seed=0)
    tiny.teach(model, tiny_tokenizer, tiny.lesson_texts(LESSONS, TOOLS))
    return tiny.save(model, tiny_tokenizer, tmp_path_factory.mktemp("tiny-checkpoint"))


@pytest.fixture(scope="session")
def wide_window_checkpoint(tmp_path_factory, tiny_tokenizer) -> Path:
    """The tiny checkpoint's twin whose sliding window covers every prompt, so prefixes are shared."""
    model = tiny.build_model(tiny_tokenizer, seed=0, sliding_window=1024)
    tiny.teach(model, tiny_tokenizer, tiny.lesson_texts(LESSONS, TOOLS))
    return tiny.save(model, tiny_tokenizer, tmp_path_factory.mktemp("wide-window"))


@pytest.fixture(scope="module", params=["window-64", "window-1024"])
def loaded_either_window(request, tiny_checkpoint, wide_window_checkpoint):
    """The tiny checkpoint loaded (its 64-token window is shorter than the prompts, so the prefix is
    not shared), then its wide-window twin (so it is): each code path once."""
    import torch

    from pytest_toolsel.models.loading import load_model

    checkpoint = tiny_checkpoint if request.param == "window-64" else wide_window_checkpoint
    return load_model(str(checkpoint), torch.device("cpu"))


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory, tiny_tokenizer) -> Path:
    """The same architecture, untaught: a 'before' model that calls nothing sensible."""
    model = tiny.build_model(tiny_tokenizer, seed=1)
    return tiny.save(model, tiny_tokenizer, tmp_path_factory.mktemp("tiny-base"))


@pytest.fixture(scope="session")
def plain_tiny_base(tmp_path_factory):
    """A tiny base laid out like plain Gemma 3: placeholders at ids 46-52, no template, so training
    places the control tokens as it does for the embedded base."""
    tokenizer = tiny.build_tokenizer(CORPUS, plain_base=True)
    return tiny.save(tiny.build_model(tokenizer), tokenizer, tmp_path_factory.mktemp("plain-base"))


@pytest.fixture(scope="session")
def exportable_checkpoint(tmp_path_factory, tiny_tokenizer) -> Path:
    """A tiny Gemma 3 laid out as a GGUF records it, taught LESSONS, with weights an F16 GGUF holds
    exactly: the checkpoint the GGUF export tests write their files from (tiny_gguf)."""
    model = tiny_gguf.exportable_model(tiny_tokenizer, tiny.lesson_texts(LESSONS, TOOLS))
    return tiny.save(model, tiny_tokenizer, tmp_path_factory.mktemp("exportable"))


def runs_without_and_with_xdist(pytester, *args: str) -> dict[str, tuple[dict, str, object]]:
    """The same session as a plain run ("0") and on two xdist workers ("2"): per run, results.json
    (less its time stamp), accuracy.md and pytester's result."""
    runs = {}
    for workers in ("0", "2"):
        result = pytester.runpytest_subprocess(
            f"--rootdir={pytester.path}", "-p", "no:cacheprovider", "-n", workers, "--report-dir", f"reports-{workers}", *args
        )
        reports = pytester.path / f"reports-{workers}"
        document = json.loads((reports / "results.json").read_text())
        document.pop("created")
        runs[workers] = (document, (reports / "accuracy.md").read_text(), result)
    return runs
