"""pytest-xdist: each worker generates its own share of the cases in one batched pass, on its own GPU
when there are several, and the controller merges the workers' answers into one report."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from ..cases.suite import ArgCheck, Case, Suite, Tool
from ..cases.sources import load_suites
from ..cases.variants import as_variant, plain_id
from ..inference.results_cache import Answer
from ..verdicts.evaluation import Outcome, RunResult, judged, report_order
from ..verdicts.trials import Judge, answer_of

WORKER_OUTPUT_KEY = "pytest_toolsel"


def is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def worker_index(config: pytest.Config) -> int | None:
    """0 for gw0, 1 for gw1, ...; None outside xdist workers."""
    if not is_worker(config):
        return None
    return int(config.workerinput["workerid"].removeprefix("gw"))


def worker_device(index: int | None) -> str | None:
    """`cuda:<worker index>` (modulo the GPU count) for an xdist worker on a multi-GPU machine."""
    import torch

    if index is None or not torch.cuda.is_available() or torch.cuda.device_count() < 2:
        return None
    return f"cuda:{index % torch.cuda.device_count()}"


def queued_items(session: pytest.Session) -> list[pytest.Item]:
    """The items the controller has already sent to this worker and it has not started yet."""
    for plugin in session.config.pluginmanager.get_plugins():
        if type(plugin).__name__ == "WorkerInteractor" and hasattr(plugin, "torun"):
            with plugin.torun.lock() as queue:
                indices = [index for index in queue if isinstance(index, int)]
            upcoming = getattr(plugin, "nextitem_index", None)
            if isinstance(upcoming, int):
                indices.insert(0, upcoming)
            return [session.items[index] for index in indices]
    return []


def make_share_scheduler(config: pytest.Config, log):
    """xdist's `load` scheduling, but every worker gets one contiguous share of the items at once.

    A worker that knows its whole share generates it in one batched pass; xdist's default hands
    out small chunks, which would mean many small generation passes.
    """
    from xdist.scheduler import LoadScheduling

    class ShareScheduling(LoadScheduling):
        def schedule(self) -> None:
            assert self.collection_is_completed
            if self.collection is not None:
                for node in self.nodes:
                    self.check_schedule(node)
                return
            if not self._check_nodes_have_same_collection():
                self.log("**Different tests collected, aborting run**")
                return
            self.collection = next(iter(self.node2collection.values()))
            self.pending[:] = range(len(self.collection))
            share = math.ceil(len(self.pending) / len(self.nodes)) if self.pending else 0
            for node in self.nodes:
                self._send_tests(node, share)
            for node in self.nodes:
                node.shutdown()

    return ShareScheduling(config, log)


def run_payload(run: RunResult) -> dict:
    """What a worker sends back for one run: the model and each case's answer (its sampled trials
    included); for a variant, also its case's id and its tools, which only the workers collected."""
    return {
        "model": run.model,
        "reused": run.reused,
        "answers": [
            {"file": str(o.suite.path), "id": o.case.id, **answer_of(o).as_json(), **variant_payload(o)}
            for o in run.outcomes
        ],
    }


def variant_payload(outcome: Outcome) -> dict:
    if outcome.case.variant is None:
        return {}
    return {"variant": outcome.case.variant, "of": plain_id(outcome.case),
            "tools": [tool_payload(tool) for tool in outcome.suite.tools]}


def tool_payload(tool: Tool) -> dict:
    return {"name": tool.name, "description": tool.description, "parameters": tool.parameters}


def tool_from_payload(data: dict) -> Tool:
    return Tool(data["name"], data["description"], data["parameters"])


def recorded_payload(outcomes: list[Outcome]) -> list[dict]:
    """The cases judged in Python tests on a worker, spelled out: the controller has no file to read them from."""
    return [
        {
            "file": str(o.suite.path), "policy": o.suite.policy, "system": o.suite.system,
            "tools": [tool_payload(tool) for tool in o.suite.tools],
            "id": o.case.id, "prompt": o.case.prompt, "expect": sorted(o.case.expect), "index": o.case.index,
            "line": o.case.line, "conversation": [dict(m) for m in o.case.conversation],
            "arg_checks": [[c.tool, c.argument, c.operator, c.expected] for c in o.case.arg_checks],
        }
        for o in outcomes
    ]


def recorded_cases(definitions: list[dict]) -> dict[tuple[str, str], tuple[Suite, Case]]:
    cases = {}
    for d in definitions:
        tools = tuple(tool_from_payload(tool) for tool in d["tools"])
        suite = Suite(Path(d["file"]), d["policy"], d["system"], tools, (), ())
        case = Case(
            id=d["id"], prompt=d["prompt"], expect=frozenset(d["expect"]), index=d["index"], line=d["line"],
            arg_checks=tuple(ArgCheck(*check) for check in d["arg_checks"]), conversation=tuple(d["conversation"]),
        )
        cases[(d["file"], d["id"])] = (suite, case)
    return cases


def merge_runs(payloads: list[dict], rootpath: Path, recorded: dict[tuple[str, str], tuple[Suite, Case]],
               judge: Judge = judged) -> RunResult | None:
    """The workers' runs of one model as one RunResult, judged again by `judge`: the suites re-read from
    their case files, the cases of Python tests from their `recorded` definitions, the variants from
    their cases and the tools the workers sent."""
    if not payloads:
        return None
    known = dict(recorded)
    read: set[str] = set()
    outcomes = []
    for payload in payloads:
        for entry in payload["answers"]:
            display, case_id = entry["file"], entry.get("of", entry["id"])
            if (display, case_id) not in known and display not in read:
                read.add(display)
                for suite in load_suites(rootpath / display, display=Path(display)):
                    known.update({(display, case.id): (suite, case) for case in suite.cases})
            suite, case = known[(display, case_id)]
            if "variant" in entry:
                suite, case = as_variant(suite, case, entry["variant"], [tool_from_payload(t) for t in entry["tools"]])
            outcomes.append(judge(suite, case, Answer.from_json(entry)))
    return RunResult(
        model=payloads[0]["model"],
        outcomes=tuple(sorted(outcomes, key=report_order)),
        reused=sum(payload["reused"] for payload in payloads),
    )
