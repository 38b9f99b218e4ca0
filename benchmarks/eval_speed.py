"""Evaluation speed: the seed tutorial's scoring loop vs a cold `pytest` run of the product.

Both are measured end to end in this process's machine, one after the other, on the same
checkpoint and prompts, each including its own model load:

- seed loop: load with transformers, then for each prompt alone `generate(max_new_tokens=128)`,
  as the FunctionGemma tutorial scores its test split;
- product: `pytest CASE_FILES --model DIR --no-baseline -p no:cacheprovider` in a subprocess
  (a cold run: no results cache), once with the tool-choice confidence and once without.

It prints prompts/s, the speed-up ratio, and the parity of parsed calls between the seed loop's
answers and the product's (they must be identical), plus the time to load the model.

    python benchmarks/eval_speed.py --model ./checkpoint
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

from pytest_toolsel.casefile import load_suite
from pytest_toolsel.chat_format import prompt_messages
from pytest_toolsel.parsing import parse_output

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CASES = [ROOT / "cases" / "search_policy.yaml", ROOT / "benchmarks" / "data" / "search_policy_generalisation.yaml"]


def seed_loop(model_dir: str, cases) -> tuple[float, float, list[str]]:
    """The tutorial's loop: one prompt at a time, max_new_tokens=128. Returns (load s, total s, outputs)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    started = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    loaded = time.perf_counter()
    outputs = []
    for suite, case in cases:
        inputs = tokenizer.apply_chat_template(
            prompt_messages(case.prompt, suite.system), tools=suite.tool_schemas, add_generation_prompt=True,
            return_dict=True, return_tensors="pt",
        )
        with torch.inference_mode():
            generated = model.generate(**inputs, max_new_tokens=128, do_sample=False)
        outputs.append(tokenizer.decode(generated[0, inputs["input_ids"].shape[1] :], skip_special_tokens=False))
    return loaded - started, time.perf_counter() - started, outputs


def product_run(model_dir: str, files: list[Path], *extra: str) -> tuple[float, dict]:
    with tempfile.TemporaryDirectory() as reports:
        command = [sys.executable, "-m", "pytest", *map(str, files), "--model", model_dir, "--no-baseline",
                   "-p", "no:cacheprovider", "-q", "--report-dir", reports, "--rootdir", str(ROOT), *extra]
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
        elapsed = time.perf_counter() - started
        if done.returncode not in (0, 1):
            sys.exit(f"pytest failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
        return elapsed, json.loads((Path(reports) / "results.json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="checkpoint directory (trained by pytest-toolsel)")
    parser.add_argument("cases", nargs="*", type=Path, default=DEFAULT_CASES)
    args = parser.parse_args()
    suites = [load_suite(path) for path in args.cases]
    cases = [(suite, case) for suite in suites for case in suite.cases]
    count = len(cases)
    print(f"{count} prompts from {', '.join(str(p) for p in args.cases)}; torch threads: {torch.get_num_threads()}")

    load_s, seed_s, seed_outputs = seed_loop(args.model, cases)
    rows = [["seed loop (one at a time, max_new_tokens=128)", f"{seed_s:.1f}", f"{count / seed_s:.2f}", "1.0"]]
    parity = {}
    for label, extra in [("pytest-toolsel cold run", ()), ("pytest-toolsel cold run, --no-confidence", ("--no-confidence",))]:
        elapsed, results = product_run(args.model, args.cases, *extra)
        rows.append([label, f"{elapsed:.1f}", f"{count / elapsed:.2f}", f"{seed_s / elapsed:.1f}"])
        product_calls = {(c["suite"], c["id"]): c["calls"] for c in results["candidate"]["cases"]}
        same = sum(
            [call.as_dict() for call in parse_output(output).calls] == product_calls[(suite.policy, case.id)]
            for (suite, case), output in zip(cases, seed_outputs)
        )
        parity[label] = same
        accuracy = results["candidate"]
    by_suite: dict[str, list[bool]] = {}
    for case in accuracy["cases"]:
        by_suite.setdefault(case["suite"], []).append(case["passed"])
    print(tabulate(rows, headers=["evaluation", "wall s (incl. load)", "prompts/s", "speed-up"], tablefmt="github"))
    for label, same in parity.items():
        print(f"parsed calls identical to the seed loop's: {same}/{count} ({label})")
    print(f"model load (tokenizer + weights, transformers): {load_s:.1f} s")
    for suite, verdicts in by_suite.items():
        print(f"strict accuracy, {suite}: {sum(verdicts)}/{len(verdicts)}")


if __name__ == "__main__":
    main()
