"""`bench worker`: a thin wrapper over `ray start` that says what this machine holds.

`bench worker --head` starts the lab's head (it coordinates and holds no device slot, so nothing is timed
beside Ray's own services); `bench worker --cluster HEAD` joins a machine with its labels and one slot per
device (`harness.cluster.labels`). Everything else is Ray's: the processes, the reconnects, `ray stop`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from harness.cluster.address import LOOPBACK, check_address, check_port_free, check_reachable, host_of, is_loopback
from harness.cluster.labels import PREFIX, NodeDescription, describe_node
from harness.errors import HarnessError

DEFAULT_PORT = 6379
# Ray leaves multi-node clusters off on macOS unless told (ray_constants.ENABLE_RAY_CLUSTER); a Mac with an
# iPhone attached is a node of the lab
MAC_CLUSTER_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "1"} if sys.platform == "darwin" else {}


def ray_executable() -> str:
    beside = Path(sys.executable).with_name("ray")
    found = str(beside) if beside.exists() else shutil.which("ray")
    if not found:
        from harness.cluster.launcher import INSTALL

        raise HarnessError(f"`bench worker` needs Ray, which is not installed; to fix: {INSTALL}")
    return found


def parse_labels(pairs: list[str] | None) -> dict[str, str]:
    extra = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise HarnessError(f"--label takes KEY=VALUE (e.g. room=lab-2), not {pair!r}")
        extra[key.strip().removeprefix(PREFIX)] = value.strip()
    return extra


def check_name_free(address: str, machine: str) -> None:
    """Refuse to join a lab where a live node already has this machine's name: records, leaderboards and
    `--machine` selectors tell machines apart by it, so two nodes of one name would merge two machines."""
    from harness.cluster.launcher import connect, import_ray, name_of, onebench_nodes

    own = connect(address, "--cluster")
    try:
        taken = [n for n in onebench_nodes(alive_only=True) if name_of(n) == machine]
    finally:
        if own:
            import_ray().shutdown()
    if taken:
        raise HarnessError(f"a node named {machine!r} is already in the lab at {address} ({taken[0].get('NodeManagerAddress', '?')}); "
                           "give this machine another --name")


def start_command(address: str | None, head: bool, port: int, node_ip: str | None,
                  description: NodeDescription | None, block: bool) -> list[str]:
    """The `ray start` command line for a head (no slots) or a worker (its labels and slots)."""
    if head == bool(address):
        raise HarnessError("pass --head to start the lab's head, or --cluster HEAD to join one (not both)")
    if address is not None:
        check_address(address, "--cluster")
    if head:
        check_port_free(port, node_ip)
    if not node_ip and address and is_loopback(host_of(address)):
        node_ip = LOOPBACK  # a node joining a head on loopback is on the same machine: it stays on loopback too
    ray = ray_executable()
    # one machine: Ray would advertise the interface address instead of the loopback one given (address.py)
    cmd = [sys.executable, "-m", "harness.cluster.address"] if is_loopback(node_ip) else [ray]
    cmd += ["start", "--num-cpus=1", "--disable-usage-stats"]
    cmd += ["--head", f"--port={port}", "--include-dashboard=false"] if head else [f"--address={address}"]
    if node_ip:
        cmd.append(f"--node-ip-address={node_ip}")
    if description:
        cmd += description.ray_start_args()
    if block:
        cmd.append("--block")
    return cmd


def start(address: str | None, head: bool, port: int = DEFAULT_PORT, name: str | None = None,
          labels: list[str] | None = None, node_ip: str | None = None, block: bool = False,
          dry_run: bool = False) -> tuple[list[str], NodeDescription | None]:
    """Start (or with `dry_run` only say) the node; returns the command and what the node will hold."""
    description = None if head else describe_node(name, parse_labels(labels))
    cmd = start_command(address, head, port, node_ip, description, block)
    if not dry_run:
        if address:
            check_reachable(address)  # `ray start` retries a head that is not there for minutes
            check_name_free(address, description.labels[PREFIX + "machine"])
        done = subprocess.run(cmd, env={**os.environ, **MAC_CLUSTER_ENV})
        if done.returncode != 0:
            raise HarnessError(f"`ray start` failed (exit code {done.returncode}); its output is above")
    return cmd, description
