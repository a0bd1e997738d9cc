"""The device lab: `bench worker` (a node joins) and `bench cluster status` (what the lab holds)."""

from __future__ import annotations

import json
import shlex

import typer
from rich.table import Table

from harness.cli.common import ReportFmt, app, flag, out, user_errors

cluster_app = typer.Typer(help="The device lab: a Ray cluster of machines that time jobs (`bench run --cluster`).",
                          no_args_is_help=True)
app.add_typer(cluster_app, name="cluster", rich_help_panel="Device lab")


@app.command(rich_help_panel="Device lab")
@user_errors
def worker(
    address: str = typer.Option(None, "--address", help="The head's HOST:PORT, to join this machine to the lab."),
    head: bool = flag(False, "--head", help="Start the lab's head here (it coordinates; it times nothing)."),
    port: int = typer.Option(6379, "--port", help="With --head: the port the workers and `bench run --cluster` use."),
    name: str = typer.Option(None, "--name", help="This machine's name in records and leaderboards (default: hostname)."),
    label: list[str] = typer.Option(None, "--label", help="An extra label KEY=VALUE (repeatable), for --machine selectors."),
    node_ip: str = typer.Option(None, "--node-ip-address", help="The address other nodes reach this one at (Ray's own option)."),
    block: bool = flag(False, "--block", help="Stay in the foreground (for a service manager)."),
    dry_run: bool = flag(False, "--dry-run", help="Print the `ray start` command and the labels; start nothing."),
) -> None:
    """Start a node of the device lab: `ray start` with this machine's labels and one slot per device."""
    from harness.cluster.node import start

    cmd, description = start(address, head, port, name, label, node_ip, block, dry_run)
    if dry_run:
        out.print(shlex.join(cmd), markup=False, highlight=False, soft_wrap=True)
    elif description:
        devices = ", ".join(k.removeprefix("onebench.device.") for k in description.resources if k.startswith("onebench.device."))
        out.print(f"joined {address} as {description.labels['onebench.io/machine']} (devices: {devices}); "
                  "`ray stop` leaves", markup=False, highlight=False)
    else:
        out.print(f"head started; workers join with `bench worker --address {node_ip or 'HOST'}:{port}`", markup=False,
                  highlight=False)


@cluster_app.command("status")
@user_errors
def status(
    address: str = typer.Option(..., "--address", envvar="ONEBENCH_CLUSTER", help="The head's HOST:PORT."),
    fmt: ReportFmt = typer.Option(ReportFmt.rich, "--format", help="rich, md or json."),
) -> None:
    """The lab's nodes: devices, backends, CPU/GPU/iPhone, busy or idle, and any this driver would refuse."""
    from harness.cluster.status import node_rows

    rows = node_rows(address)
    if fmt is ReportFmt.json:
        out.print(json.dumps([r.as_dict() for r in rows], indent=1), markup=False, highlight=False, soft_wrap=True)
        return
    header = ["machine", "node", "address", "state", "devices", "backends", "cpu", "gpu / iphone", "refused"]
    body = [[r.machine, r.node_id, r.address, r.state, ", ".join(r.devices), ", ".join(r.backends), r.cpu,
             " / ".join(x for x in (r.gpu, r.iphone) if x), r.refused] for r in rows]
    if fmt is ReportFmt.md:
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
        out.print(f"no onebench node; start one on each machine with `bench worker --address {address}`",
                  markup=False, highlight=False)
