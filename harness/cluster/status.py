"""`bench cluster status`: the lab's nodes, what they hold and can run, and whether each is timing now."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from harness.cluster import labels as lb
from harness.cluster.launcher import connect, import_ray, name_of, onebench_nodes, refusal


@dataclass(frozen=True)
class NodeRow:
    machine: str
    node_id: str
    address: str  # where the node listens and what it advertises (127.0.0.1 for a lab on one machine)
    alive: bool
    state: str  # "busy" (a step holds its slot), "idle", "lost" (dead), "unknown"
    devices: list[str]
    backends: list[str]
    cpu: str
    gpu: str
    iphone: str
    refused: str  # why this driver would not use it ("" when it would)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _available() -> dict[str, dict[str, float]] | None:
    """What each node has free now. Ray has no public per-node call without its dashboard: the state
    module's is used where present, else the state is "unknown"."""
    try:
        from ray._private.state import available_resources_per_node
    except ImportError:
        return None
    try:
        return available_resources_per_node()
    except Exception:  # noqa: BLE001 - a status line, never a failure
        return None


def node_rows(address: str) -> list[NodeRow]:
    own = connect(address, "--cluster")
    try:
        free = _available()
        rows = []
        for node in sorted(onebench_nodes(alive_only=False), key=lambda n: (not n["Alive"], name_of(n))):
            node_id = node["NodeID"]
            if not node["Alive"]:
                state = "lost"
            elif free is None:
                state = "unknown"
            else:
                state = "idle" if (free.get(node_id) or {}).get(lb.NODE_SLOT, 0) >= 1 else "busy"
            rows.append(NodeRow(name_of(node), node_id[:8], node.get("NodeManagerAddress", ""), node["Alive"], state, lb.node_devices(node),
                                lb.node_backends(node), lb.label(node, "cpu") or "", lb.label(node, "gpu") or "",
                                lb.label(node, lb.IPHONE) or "", refusal(node) or ""))
        return rows
    finally:
        if own:
            import_ray().shutdown()
