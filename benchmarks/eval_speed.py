"""Evaluation speed: the seed tutorial's scoring loop vs a cold `pytest` run of the product.

Both are measured end to end in this process's machine, one after the other, on the same
checkpoint and prompts, each including its own model load:

- seed loop: load with transformers, then for each prompt alone `generate(max_new_tokens=128)`,
  as the FunctionGemma tutorial scores its test split;
- product: `pytest CASE_FILES --model DIR --no-baseline -p no:cacheprovider` in a subprocess
  (a cold run: no results cache), once with the tool-choice confidence and once without.

It prints prompts/s, the speed-up ratio, the parity of parsed calls and raw outputs between the seed
loop's answers (batch size 1, no shared prefix) and the product's (they must be identical), whether
the product's raw outputs and verdicts are identical across its runs (batch sizes 128 and 8), how long
one forward pass over each prompt alone takes (the bound that prompts sharing no prefix put on any
speed-up: their tokens must each go through the model once), whether
the tool probabilities it reports (scored from the generation pass) equal those of teacher-forcing
each tool's call on its own, and the time to load the model.

    python benchmarks/eval_speed.py --model ./checkpoint
    python benchmarks/eval_speed.py --model ./checkpoint benchmarks/data/per_row_tools.jsonl   # every row its own tools
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from tabulate import tabulate

from pytest_toolsel.cases.sources import load_suites
from pytest_toolsel.functiongemma.chat_format import prompt_messages
from pytest_toolsel.functiongemma.parsing import parse_output
from pytest_toolsel.functiongemma.chat_format import STOP_STRINGS
from pytest_toolsel.inference.generation import truncate_at_stop

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CASES = [ROOT / "cases" / "search_policy.yaml", ROOT / "benchmarks" / "data" / "search_policy_generalisation.yaml"]


def tutorial_inputs(tokenizer, suite, case) -> dict:
    """One prompt rendered as the tutorial renders it: the checkpoint's chat template, the policy's tools."""
    return tokenizer.apply_chat_template(
        prompt_messages(case.prompt, suite.system, case.conversation), tools=suite.tool_schemas, add_generation_prompt=True,
        return_dict=True, return_tensors="pt",
    )


def seed_loop(model_dir: str, cases) -> tuple[float, float, list[str]]:
    """The tutorial's loop: one prompt at a time, max_new_tokens=128. Returns (load s, total s, outputs)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    started = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    loaded = time.perf_counter()
    outputs = []
    for suite, case in cases:
        inputs = tutorial_inputs(tokenizer, suite, case)
        with torch.inference_mode():
            generated = model.generate(**inputs, max_new_tokens=128, do_sample=False)
        outputs.append(tokenizer.decode(generated[0, inputs["input_ids"].shape[1] :], skip_special_tokens=False))
    return loaded - started, time.perf_counter() - started, outputs


def prompt_pass(model_dir: str, cases) -> tuple[int, float]:
    """(prompt tokens, seconds) of one forward pass over each prompt alone through the model body,
    no answer: the part of the work that nothing but a prefix shared between prompts can save, so
    that seed-loop seconds over these seconds bounds the speed-up of an exact evaluation."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    tokens, seconds = 0, 0.0
    for suite, case in cases:
        inputs = tutorial_inputs(tokenizer, suite, case)
        started = time.perf_counter()
        with torch.inference_mode():
            model.base_model(**inputs)
        seconds += time.perf_counter() - started
        tokens += inputs["input_ids"].size(1)
    return tokens, seconds


def product_load_seconds(spec: str) -> float:
    """pytest-toolsel's own load of a model (tokenizer + weights), in this process."""
    from pytest_toolsel.models.embedded import EMBEDDED_ALIAS, embedded_base_dir
    from pytest_toolsel.models.loading import load_model

    if spec == EMBEDDED_ALIAS:
        embedded_base_dir()  # converts on the very first use only; that one-time cost is not a load
    started = time.perf_counter()
    load_model(spec, require_template=spec != EMBEDDED_ALIAS)
    return time.perf_counter() - started


def confidence_parity(model_dir: str, suites, run: dict) -> int:
    """Cases whose reported tool probabilities equal the plain way of computing them: every tool's
    call scored by teacher forcing on its own (`confidence.tool_choices`), not from the generation pass."""
    from pytest_toolsel.inference.answers import render_prompt
    from pytest_toolsel.inference.confidence import tool_choices
    from pytest_toolsel.models.loading import load_model

    loaded = load_model(model_dir)
    same = 0
    for suite in suites:
        prompts = [render_prompt(loaded.tokenizer, suite, case) for case in suite.cases]
        choices = tool_choices(loaded, prompts, [[tool.name for tool in suite.tools]] * len(prompts))
        same += sum(run[(suite.policy, case.id)]["tool_probabilities"] == choice.probabilities
                    for case, choice in zip(suite.cases, choices))
    return same


def product_run(model_dir: str, files: list[Path], *extra: str) -> tuple[float, dict]:
    with tempfile.TemporaryDirectory() as reports:
        # hypothesis comes with the test extra, not with the product; its plugin imports itself at the
        # end of every session (about a second), so it is left out of the measurement.
        command = [sys.executable, "-m", "pytest", *map(str, files), "--model", model_dir, "--no-baseline",
                   "-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-q", "--report-dir", reports,
                   "--rootdir", str(ROOT), *extra]
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
        elapsed = time.perf_counter() - started
        if done.returncode not in (0, 1):
            sys.exit(f"pytest failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
        return elapsed, json.loads((Path(reports) / "results.json").read_text())


PRODUCT_RUNS = [
    ("pytest-toolsel cold run", ()),
    ("pytest-toolsel cold run, --no-confidence", ("--no-confidence",)),
    ("pytest-toolsel cold run, --no-confidence --batch-size 8", ("--no-confidence", "--batch-size", "8")),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="checkpoint directory (trained by pytest-toolsel)")
    parser.add_argument("cases", nargs="*", type=Path, default=DEFAULT_CASES, help="case files: YAML or JSONL datasets")
    parser.add_argument("--product-runs", type=int, default=len(PRODUCT_RUNS),
                        help=f"how many of the {len(PRODUCT_RUNS)} product runs to time, in the order of the table")
    args = parser.parse_args()
    suites = [suite for path in args.cases for suite in load_suites(path)]
    cases = [(suite, case) for suite in suites for case in suite.cases]
    count = len(cases)
    print(f"{count} prompts from {', '.join(str(p) for p in args.cases)}; torch threads: {torch.get_num_threads()}")

    load_s, seed_s, seed_outputs = seed_loop(args.model, cases)
    rows = [["seed loop (one at a time, max_new_tokens=128)", f"{seed_s:.1f}", f"{count / seed_s:.2f}", "1.0"]]
    runs = {}
    for label, extra in PRODUCT_RUNS[: args.product_runs]:
        elapsed, results = product_run(args.model, args.cases, *extra)
        rows.append([label, f"{elapsed:.1f}", f"{count / elapsed:.2f}", f"{seed_s / elapsed:.1f}"])
        runs[label] = {(c["suite"], c["id"]): c for c in results["candidate"]["cases"]}
    print(tabulate(rows, headers=["evaluation", "wall s (incl. load)", "prompts/s", "speed-up"], tablefmt="github"))
    tokens, pass_s = prompt_pass(args.model, cases)
    print(f"reading every prompt once, one forward pass each, no answer: {tokens:,} prompt tokens in {pass_s:.1f} s; "
          f"so an exact evaluation that reads each prompt in full, sharing no prefix, reaches about {seed_s / pass_s:.1f}x "
          "the seed loop here at most")
    print(f"model load in the seed loop (tokenizer + weights, transformers' Auto classes): {load_s:.1f} s")
    print(f"checkpoint load by pytest-toolsel: {product_load_seconds(args.model):.1f} s")
    from pytest_toolsel.models.embedded import EMBEDDED_ALIAS

    print(f"embedded base load by pytest-toolsel after its one-time conversion: {product_load_seconds(EMBEDDED_ALIAS):.1f} s")

    seed_answers = {(suite.policy, case.id): truncate_at_stop(output) for (suite, case), output in zip(cases, seed_outputs)}
    seed_calls = {key: [call.as_dict() for call in parse_output(output).calls] for key, output in seed_answers.items()}
    reference_label, reference = next(iter(runs.items()))
    for label, run in runs.items():
        same_calls = sum(run[key]["calls"] == calls for key, calls in seed_calls.items())
        same_raw = sum(run[key]["output"] == output for key, output in seed_answers.items())
        # The seed loop writes up to 128 new tokens, the product up to --max-new-tokens (64): an answer
        # still going at 64 tokens is the seed loop's, cut there.
        cut = sum(run[key]["output"] != output and output.startswith(run[key]["output"])
                  and not run[key]["output"].endswith(STOP_STRINGS) for key, output in seed_answers.items())
        print(f"parsed calls identical to the seed loop's (batch 1, no prefix reuse): {same_calls}/{count}, "
              f"raw outputs: {same_raw}/{count}, the others' first tokens with no stop by the product's "
              f"max_new_tokens: {cut} ({label})")
        if label != reference_label:
            same_outputs = sum(run[key]["output"] == case["output"] for key, case in reference.items())
            same_verdicts = sum(run[key]["passed"] == case["passed"] for key, case in reference.items())
            print(f"raw outputs identical to the first run's: {same_outputs}/{count}, verdicts: {same_verdicts}/{count} ({label})")
    print(f"tool probabilities identical to teacher-forced scoring of each tool name: "
          f"{confidence_parity(args.model, suites, reference)}/{count} ({reference_label})")
    by_suite: dict[str, list[bool]] = {}
    for case in reference.values():
        by_suite.setdefault(case["suite"], []).append(case["passed"])
    for suite, verdicts in by_suite.items():
        print(f"strict accuracy, {suite}: {sum(verdicts)}/{len(verdicts)}")

if __name__ == "__main__":
    main()
