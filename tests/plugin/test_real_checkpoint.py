"""Checks on a real trained checkpoint (marked slow: run `pytest tests/ -m slow` after `pytest cases/`).

The checkpoint is ./checkpoint, or the directory in $TOOLSEL_CHECKPOINT.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest
from conftest import GOLDENS
from transformers import AutoTokenizer, GenerationConfig

from pytest_toolsel.functiongemma.chat_format import CONTROL_TOKENS, FORMAT_VERSION, FUNCTIONGEMMA_TOKEN_IDS, STOP_STRINGS
from pytest_toolsel.models.loading import METADATA_FILE, check_local_dir

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
CHECKPOINT = Path(os.environ.get("TOOLSEL_CHECKPOINT", ROOT / "checkpoint"))


@pytest.fixture(scope="module")
def checkpoint() -> Path:
    if not CHECKPOINT.is_dir():
        pytest.skip(f"no trained checkpoint at {CHECKPOINT} (run `pytest cases/` first)")
    check_local_dir(CHECKPOINT)
    return CHECKPOINT


@pytest.mark.parametrize("golden", GOLDENS, ids=lambda golden: golden["name"][:40])
def test_every_golden_renders_byte_for_byte_through_the_saved_tokenizer(checkpoint, golden):
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    rendered = tokenizer.apply_chat_template(
        golden["messages"], tools=golden["tools"], add_generation_prompt=golden["add_generation_prompt"], tokenize=False
    )
    assert rendered == golden["expected"]


def test_the_vocabulary_is_functiongemmas(checkpoint):
    """Gemma 3's 262,144 tokens with <unused40>..<unused46> renamed: the control tokens at ids 46-52."""
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    assert len(tokenizer) == 262_144
    assert {token: tokenizer.convert_tokens_to_ids(token) for token in CONTROL_TOKENS} == FUNCTIONGEMMA_TOKEN_IDS
    for token, index in FUNCTIONGEMMA_TOKEN_IDS.items():
        assert tokenizer.encode(token, add_special_tokens=False) == [index], token
    config = json.loads((checkpoint / "config.json").read_text())
    assert config.get("vocab_size", config.get("text_config", {}).get("vocab_size")) == 262_144


def test_generation_config_is_greedy_and_stops_at_the_format_stops(checkpoint):
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    config = GenerationConfig.from_pretrained(checkpoint)
    assert config.do_sample is False
    stops = config.eos_token_id if isinstance(config.eos_token_id, list) else [config.eos_token_id]
    for text in STOP_STRINGS:
        assert tokenizer.convert_tokens_to_ids(text) in stops, text


def test_metadata_records_base_data_recipe_and_versions(checkpoint):
    metadata = json.loads((checkpoint / METADATA_FILE).read_text())
    assert {"base_model", "data_hash", "recipe", "versions", "created", "log_history"} <= set(metadata)
    assert len(metadata["data_hash"]) == 64
    assert metadata["format_version"] == FORMAT_VERSION


@pytest.mark.parametrize("which", ["checkpoint", "embedded base"])
def test_tokenizers_written_here_load_from_their_file_as_their_class_rebuilds_them(which, request):
    """load_model reads these tokenizer.json files directly; the tokens must be the class's."""
    from pytest_toolsel.models.embedded import EMBEDDED_ALIAS, embedded_base_dir
    from pytest_toolsel.models.loading import load_model

    if which == "checkpoint":
        directory = request.getfixturevalue("checkpoint")
        read = load_model(str(directory)).tokenizer
    else:
        directory = embedded_base_dir()
        read = load_model(EMBEDDED_ALIAS, require_template=False).tokenizer
    rebuilt = AutoTokenizer.from_pretrained(directory)
    assert type(read) is not type(rebuilt)  # the file was read as it is, not through the class
    assert read.backend_tokenizer.to_str() == rebuilt.backend_tokenizer.to_str()
    text = GOLDENS[0]["expected"] + " 日本語 ✓\t" + "".join(CONTROL_TOKENS)
    assert read.encode(text) == rebuilt.encode(text)
    assert read.all_special_ids == rebuilt.all_special_ids
    assert read.added_tokens_decoder == rebuilt.added_tokens_decoder


def test_the_readme_example_of_toolsel_model_passes(checkpoint, pytester):
    """The README's Python tests, run as it says (with the shipped case files), on the trained checkpoint."""
    readme = (ROOT / "README.md").read_text()
    example = re.search(r"## Tests written in Python.*?```python\n(.*?)```", readme, re.S).group(1)
    shutil.copytree(ROOT / "cases", pytester.path / "cases")
    pytester.makepyfile(test_catalogue=example)
    result = pytester.runpytest(
        f"--rootdir={pytester.path}", "cases", "test_catalogue.py", f"--model={checkpoint}", "--no-baseline",
        "-p", "no:cacheprovider", "-k", "test_catalogue",
    )
    result.assert_outcomes(passed=5)
    recorded = json.loads((pytester.path / "reports" / "results.json").read_text())["candidate"]["cases"]
    assert len(recorded) == 7 and all(case["passed"] for case in recorded)
    assert all(case["test"].startswith("test_catalogue.py::test_") for case in recorded)
