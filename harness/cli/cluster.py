"""The device lab: `bench worker` (a node joins) and `bench cluster` (what the lab holds)."""

from __future__ import annotations

import json
import shlex

import typer
from rich.table import Table

from harness.cli.common import (
    ADDRESS_ALIAS,
    CLUSTER_OPTION,
    FORMAT_OPTION,
    Fmt,
    app,
    checked_cluster,
    flag,
    note,
    out,
    user_errors,
)
from harness.errors import HarnessError


def cluster_address(cluster: str | None, address: str | None, required: bool = False) -> str | None:
    """`--cluster HOST:PORT`, or the old `--address` (said on stderr, one release)."""
    if address is not None:
        if cluster is not None and cluster != address:
            raise HarnessError("--address and --cluster both name the head; pass --cluster once")
        note("note: --address is now --cluster")
        cluster = address
    if required and cluster is None:
        raise HarnessError("name the lab's head: --cluster HOST:PORT (or set ONEBENCH_CLUSTER)")
    return checked_cluster(cluster) if address is None else cluster


@app.command(rich_help_panel="Device lab")
@user_errors
def worker(
    cluster: str = typer.Option(None, "--cluster", help="The head's HOST:PORT, to join this machine to the lab."),
    head: bool = flag(False, "--head", help="Start the lab's head here (it coordinates; it times nothing)."),
    port: int = typer.Option(6379, "--port", help="With --head: the port the workers and `bench run --cluster` use."),
    name: str = typer.Option(None, "--name", help="This machine's name in records and leaderboards (default: hostname)."),
    label: list[str] = typer.Option(None, "--label", help="An extra label KEY=VALUE (repeatable), for --machine selectors."),
    node_ip: str = typer.Option(None, "--node-ip-address", help="The address other nodes reach this one at (Ray's own option)."),
    block: bool = flag(False, "--block", help="Stay in the foreground (for a service manager)."),
    dry_run: bool = flag(False, "--dry-run", help="Print the `ray start` command and the labels; start nothing."),
    address: str = ADDRESS_ALIAS,
) -> None:
    """Start a node of the device lab: `ray start` with this machine's labels and one slot per device."""
    from harness.cluster.node import start

    address = cluster_address(cluster, address)

    cmd, description = start(address, head, port, name, label, node_ip, block, dry_run)
    if dry_run:
        out.print(shlex.join(cmd), markup=False, highlight=False, soft_wrap=True)
    elif description:
        devices = ", ".join(k.removeprefix("onebench.device.") for k in description.resources if k.startswith("onebench.device."))
        out.print(f"joined {address} as {description.labels['onebench.io/machine']} (devices: {devices}); "
                  "`ray stop` leaves", markup=False, highlight=False)
    else:
        out.print(f"head started; workers join with `bench worker --cluster {node_ip or 'HOST'}:{port}`", markup=False,
                  highlight=False)


@app.command("cluster", rich_help_panel="Device lab")
@user_errors
def cluster_status(
    old: str = typer.Argument(None, hidden=True, metavar=""),
    cluster: str = CLUSTER_OPTION,
    fmt: Fmt = FORMAT_OPTION,
    address: str = ADDRESS_ALIAS,
) -> None:
    """The lab's nodes: devices, backends, CPU/GPU/iPhone, busy or idle, and any this driver would refuse."""
    from harness.cluster.status import node_rows

    if old is not None:
        if old != "status":
            raise HarnessError(f"bench cluster takes no {old!r}; it prints the lab's nodes (--cluster HOST:PORT)")
        note("note: bench cluster status is now bench cluster")
    address = cluster_address(cluster, address, required=True)
    fmt.check("cluster", Fmt.rich, Fmt.md, Fmt.json)
    rows = node_rows(address)
    if fmt is Fmt.json:
        out.print(json.dumps([r.as_dict() for r in rows], indent=1), markup=False, highlight=False, soft_wrap=True)
        return
    header = ["machine", "node", "address", "state", "devices", "backends", "cpu", "gpu / iphone", "refused"]
    body = [[r.machine, r.node_id, r.address, r.state, ", ".join(r.devices), ", ".join(r.backends), r.cpu,
             " / ".join(x for x in (r.gpu, r.iphone) if x), r.refused] for r in rows]
    if fmt is Fmt.md:
        from harness.publish.tables import markdown

        out.print(markdown(header, body), markup=False, highlight=False, soft_wrap=True)
    else:
        table = Table(title=f"onebench device lab at {address}")
        for column in header:
            table.add_column(column, overflow="fold")
        for row in body:
            table.add_row(*row)
        out.print(table)
    if not rows:
        out.print(f"no onebench node; start one on each machine with `bench worker --cluster {address}`",
                  markup=False, highlight=False)
