"""What a Python test asks the model (`toolsel_model.ask`), made into the suite and case that a
case file would give: the tools of a collected policy, of a case file or given inline, the system
text, and a prompt or a conversation, each validated by the case files' own readers."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..cases.conversation import ConversationReader
from ..cases.sources import load_suites
from ..cases.suite import Case, CaseFileError, Suite
from ..cases.tools import ToolsReader
from .call_site import CallSite, fail, fail_at

Prompt = str | Sequence[Mapping[str, Any]]  # a user prompt, or a conversation in the HF chat form


def find_policy(collected: Sequence[Suite], name_or_path: str | Path, site: CallSite) -> Suite:
    """A collected case file's policy (by its name), or the case file at a path."""
    by_name = {suite.policy: suite for suite in collected}
    if str(name_or_path) in by_name:
        return by_name[str(name_or_path)]
    path = Path(name_or_path)
    if path.is_file():
        try:
            suites = load_suites(path)
        except CaseFileError as problem:
            fail(str(problem))
        if len(suites) == 1:
            return suites[0]
        fail_at(site, f"{path} has rows with {len(suites)} different tool sets or system texts; "
                "give tools= and system= instead")
    fail_at(
        site,
        f"no collected case file has the policy {str(name_or_path)!r} and no such file exists "
        f"(collected policies: {', '.join(by_name) or 'none'}); collect the case file with the tests "
        "(`pytest cases/ tests/`) or give its path",
    )


def question_suite(collected: Sequence[Suite], policy, tools, system, site: CallSite) -> Suite:
    """The tools and system text to ask with: a policy's (`policy=`) or the ones given (`tools=`)."""
    if (policy is None) == (tools is None):
        fail_at(site, "give the tools to ask with: policy= (a collected policy or a case file) or tools=")
    if policy is not None:
        chosen = policy if isinstance(policy, Suite) else find_policy(collected, policy, site)
        return Suite(site.path, chosen.policy, system if system is not None else chosen.system, chosen.tools, (), ())
    try:
        declared = ToolsReader(site.path, None).read_tools(list(tools))
    except CaseFileError as problem:
        fail_at(site, f"{problem.where}: {problem.message}" if problem.where else problem.message)
    return Suite(site.path, site.path.stem, system, declared, (), ())


def question(suite: Suite, prompt: Prompt, number: int, site: CallSite, system_given: bool) -> tuple[Suite, Case]:
    """The `number`th question of the session: `prompt` as a case (no expectation yet) with its suite,
    which takes a conversation's leading system message as its system text."""
    case_id = f"asked-{number}"
    if isinstance(prompt, str):
        if not prompt.strip():
            fail_at(site, "the prompt is empty")
        return suite, Case(id=case_id, prompt=prompt, expect=frozenset(), index=number)
    messages = list(prompt)
    if messages and isinstance(messages[0], Mapping) and messages[0].get("role") in ("system", "developer"):
        if system_given:
            fail_at(site, "the conversation starts with a system message, and a system text is given too")
        suite = replace(suite, system=messages[0].get("content"))
        messages = messages[1:]
    reader = ConversationReader(site.path, None)
    try:
        conversation, text = reader.read_conversation(messages, {t.name: t for t in suite.tools}, (), site.label)
    except CaseFileError as problem:
        fail_at(site, problem.message)
    return suite, Case(id=case_id, prompt=text, expect=frozenset(), index=number, conversation=conversation)
