"""Writes per_row_tools.jsonl: held-out rows where every row has its own tool set, for
`benchmarks/eval_speed.py` (the speed of datasets in the Hugging Face conversational format).

- the 20 BFCL rows of tests/data/bfcl_sample.jsonl (each its own tools, as BFCL publishes them);
- the 47 held-out cases of cases/mobile_actions.yaml as Mobile Actions rows: its developer message,
  Google's seven tools in a different order in every row (as in Google's dataset; seed 0), the
  expected call with its arguments where the case gives every one as a plain value (else the tool
  name only, which leaves the row out of exact-call accuracy);
- the real Mobile Actions row of tests/data/mobile_actions_row.jsonl.

    python benchmarks/data/make_per_row_tools.py
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from pytest_toolsel.cases.suite import Case, Suite
from pytest_toolsel.cases.yaml_source import load_suite
from pytest_toolsel.verdicts.judge import expected_calls

ROOT = Path(__file__).resolve().parents[2]


def case_row(row_id: str, suite: Suite, case: Case, tools: list[dict]) -> dict:
    """A held-out case of a YAML policy as a dataset row that declares `tools` (schemas, in the row's
    order): the policy's system text as the developer message, the conversation, and the expected call
    with its arguments where the case gives every one as a plain value (else the tool name only, which
    leaves the row out of exact-call accuracy)."""
    known = expected_calls(case, suite.tools)
    if known is None:
        calls = [{"type": "function", "function": {"name": name}} for name in sorted(case.expect)]
    else:
        calls = [{"type": "function", "function": {"name": name, "arguments": args}} for name, args in known]
    answer = {"role": "assistant", "tool_calls": calls} if calls else {"role": "assistant", "content": "(no call)"}
    system = [{"role": "developer", "content": suite.system}] if suite.system else []
    turns = list(case.conversation) or [{"role": "user", "content": case.prompt}]
    return {"id": row_id, "messages": [*system, *turns, answer], "tools": tools}


def mobile_rows() -> list[dict]:
    suite = load_suite(ROOT / "cases" / "mobile_actions.yaml")
    shuffle = random.Random(0).shuffle
    rows = []
    for case in suite.cases:
        tools = list(suite.tool_schemas)
        shuffle(tools)
        rows.append(case_row(f"mobile-{case.id}", suite, case, tools))
    return rows


def main() -> None:
    data = ROOT / "tests" / "data"
    rows = [json.loads(line) for line in (data / "bfcl_sample.jsonl").read_text().splitlines()]
    rows += mobile_rows()
    rows += [{"id": "mobile-actions-real-row", **json.loads((data / "mobile_actions_row.jsonl").read_text())}]
    target = Path(__file__).with_name("per_row_tools.jsonl")
    target.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    print(f"{len(rows)} rows written to {target}")


if __name__ == "__main__":
    main()
