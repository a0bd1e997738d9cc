"""The deployed-graph check every backend runs on its own converted graph, against the model spec's rule.

The zoo says what a deployed graph may not contain, in runtime-neutral kinds (`model_zoo.spec.OP_KINDS`);
a backend knows only its runtime's op types and which kind each one is. The check counts, and says
which forbidden kinds were found how often."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the spec module imports torch; reports that only describe a check need not
    from model_zoo.spec import DeployedGraph


def deployed_rule(model: str) -> DeployedGraph | None:
    """The spec's rule for `model`, or None where the zoo states none (no check applies)."""
    import model_zoo

    return model_zoo.get_spec(model).fused_graph


def check_graph(ops: Mapping[str, int], kinds: Mapping[str, str], rule: DeployedGraph | None) -> dict[str, Any]:
    """`ops`: the graph's op types with their counts; `kinds`: this runtime's op type -> neutral kind."""
    if rule is None:
        return {"applies": False, "ops": dict(ops)}
    found: dict[str, int] = {}
    for op, count in ops.items():
        kind = kinds.get(op)
        if kind in rule.forbids:
            found[kind] = found.get(kind, 0) + count
    return {"applies": True, "ops": dict(ops), "forbids": list(rule.forbids), "found": found, "passed": not found}


def describe(check: dict[str, Any]) -> str:
    """One line for reports: PASS, or what was left."""
    if not check.get("applies"):
        return "no deployed-graph rule for this model"
    if check["passed"]:
        return f"no {' / '.join(check['forbids'])} left: PASS"
    return "FAIL: " + ", ".join(f"{n} {kind}" for kind, n in check["found"].items()) + " left"
