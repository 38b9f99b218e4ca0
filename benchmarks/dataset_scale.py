"""Datasets at scale: a generated dataset whose rows each bring their own tools, run as a user runs it.

The issue this measures: 440 BFCL rows with their own tools grew pytest to 24 GB while writing the
reports, which then never came (a confusion table over every tool of every row: 1.1 MB of Markdown
and a 19,998 x 6,182 picture at 120 rows, growing with the square of the tools).

The dataset (written to a temporary directory, in the Hugging Face conversational format the plugin
reads, see README "Datasets"): `--rows` rows (default 1,000) cycling through the 20 BFCL rows of
tests/data/bfcl_sample.jsonl and the held-out cases of cases/*.yaml. Each row declares the tools its
expectation needs (a BFCL row without a call keeps its own tools) plus 1 to 6 others drawn from the
BFCL rows' and Mobile Actions' tools, shuffled; no two rows declare the same tool set. A drawn tool
is one of `--tool-variants` renamed copies of it (`book_hotel_17`), so that the dataset names new
tools row after row as BFCL does (about 1,900 distinct names in 1,000 rows), not the same 52. The
search policy's two tools are never added to another row: they fit any question. A drawn tool may
still fit a row's request now and then, so the accuracy printed is no measure of a model: the point
is memory, time and the size of the reports.

It runs `pytest ROWS.jsonl --model MODEL --no-baseline -p no:cacheprovider` in a subprocess (a cold
run, its output shown as it comes, progress lines included) and prints the wall time, the peak
memory of that process (ru_maxrss of the children), the size of each report and the pixel size of
confusion.png.

    python benchmarks/dataset_scale.py                                # the embedded base, 1,000 rows
    python benchmarks/dataset_scale.py --model ./checkpoint --rows 440 --max-new-tokens 64

The embedded base (`gemma3-270m`, the default) has no chat template; it is evaluated as pytest-toolsel
evaluates it as the before model, with FunctionGemma's template (a directory of links to its files
and its tokenizer saved with the template).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import random
import resource
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tabulate import tabulate

from pytest_toolsel.cases.yaml_source import load_suite

ROOT = Path(__file__).resolve().parents[1]
BFCL_SAMPLE = ROOT / "tests" / "data" / "bfcl_sample.jsonl"
ANY_QUESTION_POLICY = "search_policy.yaml"  # its tools fit every request: never added to other rows
MORE_TOOLS = (1, 6)  # tools added to each row's own, at least and at most
TOOL_VARIANTS = 50  # renamed copies of each tool that rows draw from


def _make_per_row_tools():
    """benchmarks/data/make_per_row_tools.py, for `case_row` (benchmarks are scripts, not a package)."""
    spec = importlib.util.spec_from_file_location("make_per_row_tools", ROOT / "benchmarks" / "data" / "make_per_row_tools.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tool_name(schema: dict) -> str:
    return schema["function"]["name"]


@dataclass(frozen=True)
class Source:
    """A row to build others from: its messages, and the tools its expectation needs."""

    id: str
    messages: list
    needs: list  # tool schemas every row built from it declares


def sources() -> tuple[list[Source], dict[str, dict]]:
    """The BFCL rows and the YAML policies' held-out cases, and the tools to draw others from (by name)."""
    case_row = _make_per_row_tools().case_row
    found, drawable = [], {}
    for line in BFCL_SAMPLE.read_text().splitlines():
        row = json.loads(line)
        called = {call["function"]["name"] for call in row["messages"][-1].get("tool_calls") or ()}
        # A row that expects no call keeps its own tools: BFCL chose them to be near the request, not for it.
        needs = [tool for tool in row["tools"] if tool_name(tool) in called] or row["tools"]
        found.append(Source(row["id"], row["messages"], needs))
        drawable.update((tool_name(tool), tool) for tool in row["tools"])
    for path in sorted((ROOT / "cases").glob("*.yaml")):
        suite = load_suite(path)
        schemas = {tool.name: tool.schema for tool in suite.tools}
        for case in suite.cases:
            built = case_row(case.id, suite, case, [])
            found.append(Source(f"{suite.policy}.{case.id}", built["messages"], [schemas[name] for name in sorted(case.expect)]))
        if path.name != ANY_QUESTION_POLICY:
            drawable.update(schemas)
    return found, drawable


def variant(tool: dict, number: int) -> dict:
    """The tool under another name (`book_hotel_17`), the same description and arguments."""
    return {**tool, "function": {**tool["function"], "name": f"{tool_name(tool)}_{number}"}}


def scale_rows(count: int, seed: int = 0, variants: int = TOOL_VARIANTS) -> list[dict]:
    """`count` rows, each with a tool set of its own (see the module's docstring)."""
    rng = random.Random(seed)
    found, drawable = sources()
    seen: set[frozenset[str]] = set()
    rows = []
    for index in range(count):
        source = found[index % len(found)]
        own = {tool_name(tool) for tool in source.needs}
        others = [tool for name, tool in drawable.items() if name not in own]
        while True:
            drawn = rng.sample(others, rng.randint(*MORE_TOOLS))
            tools = [*source.needs, *(variant(tool, rng.randint(1, variants)) for tool in drawn)]
            names = frozenset(map(tool_name, tools))
            if names not in seen:
                break
        seen.add(names)
        rng.shuffle(tools)
        rows.append({"id": f"{index:04}-{source.id}", "messages": source.messages, "tools": tools})
    return rows


def write_rows(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(row, ensure_ascii=False, default=str) + "\n" for row in rows), encoding="utf-8")


def with_functiongemma_template(source: Path, target: Path) -> Path:
    """A model directory that is `source` (linked, not copied) with its tokenizer saved with FunctionGemma's
    chat template: how pytest-toolsel evaluates a base without one as the before model."""
    from pytest_toolsel.functiongemma.chat_format import chat_template
    from pytest_toolsel.models.loading import load_tokenizer

    target.mkdir(parents=True)
    for path in source.iterdir():
        if path.is_file() and not path.name.startswith(("tokenizer", "special_tokens", "chat_template")):
            (target / path.name).symlink_to(path.resolve())
    tokenizer = load_tokenizer(str(source), written_here=True)
    tokenizer.chat_template = chat_template()
    tokenizer.save_pretrained(target)
    return target


def evaluable(model: str, work: Path) -> str:
    from pytest_toolsel.models.embedded import EMBEDDED_ALIAS, embedded_base_dir

    if model != EMBEDDED_ALIAS:
        return model
    return str(with_functiongemma_template(embedded_base_dir(), work / "gemma3-270m-functiongemma-template"))


def png_pixels(path: Path) -> tuple[int, int]:
    """(width, height) from a PNG's header (its IHDR chunk comes first)."""
    return struct.unpack(">II", path.read_bytes()[16:24])


def size(path: Path) -> str:
    return f"{path.stat().st_size:,} bytes" if path.exists() else "not written"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="gemma3-270m", help="model under test (default: the embedded base gemma3-270m)")
    parser.add_argument("--rows", type=int, default=1000, help="rows of the generated dataset (default 1000)")
    parser.add_argument("--max-new-tokens", type=int, default=64, help="generation budget per answer (default 64)")
    parser.add_argument("--seed", type=int, default=0, help="which tools each row draws (default 0)")
    parser.add_argument("--tool-variants", type=int, default=TOOL_VARIANTS,
                        help=f"renamed copies of each tool that rows draw from (default {TOOL_VARIANTS}; 1: 52 tools in all)")
    parser.add_argument("--keep", type=Path, help="write the dataset and the reports here instead of a temporary directory")
    args, pytest_args = parser.parse_known_args()  # anything else goes to pytest (--batch-size 64, --device cuda)

    with tempfile.TemporaryDirectory(prefix="dataset-scale-") as scratch:
        work = args.keep or Path(scratch)
        work.mkdir(parents=True, exist_ok=True)
        dataset, reports = work / "rows.jsonl", work / "reports"
        rows = scale_rows(args.rows, args.seed, args.tool_variants)
        write_rows(dataset, rows)
        tools = {tool_name(tool) for row in rows for tool in row["tools"]}
        print(f"{len(rows)} rows, {len(tools)} distinct tools, {len(rows)} tool sets: {dataset}", flush=True)
        model = evaluable(args.model, work)
        command = [sys.executable, "-m", "pytest", str(dataset), "--model", model, "--no-baseline",
                   "--max-new-tokens", str(args.max_new_tokens), "--report-dir", str(reports), "--rootdir", str(work),
                   "-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-q", "--tb=no", "-rN", *pytest_args]
        started = time.perf_counter()
        returncode = subprocess.run(command, cwd=work).returncode
        elapsed = time.perf_counter() - started
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024  # KiB on Linux
        results, markdown, png = reports / "results.json", reports / "accuracy.md", reports / "confusion.png"
        passed = "-"
        if results.exists():
            candidate = json.loads(results.read_text())["candidate"]
            passed = f"{candidate['passed']}/{candidate['total']}"
        print(tabulate([
            ["pytest exit code", returncode],
            ["wall time", f"{elapsed:.1f} s"],
            ["peak memory of the pytest process (ru_maxrss)", f"{peak / 2**30:.2f} GiB"],
            ["passed (not a measure of the model: see the docstring)", passed],
            ["results.json", size(results)],
            ["accuracy.md", size(markdown)],
            ["confusion.png", f"{size(png)}, {'x'.join(map(str, png_pixels(png)))} pixels" if png.exists() else "not written"],
        ], headers=["measured", ""], tablefmt="github"))


if __name__ == "__main__":
    main()
