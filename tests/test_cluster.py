"""The device lab without a cluster: node labels and slots, `--machine` selectors, the `ray start` line,
which nodes a driver refuses, iPhone jobs, the machine in the leaderboard, and the sweep driver over a
launcher that places steps on named nodes and loses one (the real Ray cluster: tests/test_cluster_e2e.py)."""

from __future__ import annotations

import json
from concurrent.futures import Future
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.cli import app
from harness.cluster import labels as lb
from harness.cluster.launcher import refusal
from harness.cluster.node import start_command
from harness.cluster.selectors import matching, parse
from harness.errors import HarnessError
from harness.host import environment
from harness.measure.inputs import Stores
from harness.measure.jobs import plan
from harness.measure.launch import MEASURE, PREPARE, LocalLauncher, Placed, Step
from harness.measure.outcomes import Lost
from harness.measure.protocol import preset
from harness.measure.runner import run_sweep
from harness.publish.leaderboard import as_lists, to_csv

MODEL = "timm:test_byobnet"
FAST = preset("default", repeats=2, max_repeats=2, min_s=0.05, max_s=0.1, warmup_s=0.01, warmup_max_s=0.2,
              min_iters=10, probe=False)

pytestmark = pytest.mark.usefixtures("fake_backends")


def test_a_node_says_what_it_holds_in_tokens_ray_accepts() -> None:
    node = lb.describe_node("lab 3", extra={"room": "B/2"}, iphone="iPhone 15 Pro")
    labels = node.labels
    assert labels["onebench.io/machine"] == "lab_3" and labels["onebench.io/room"] == "B_2"
    assert labels["onebench.io/backend.fake-sleep"] == "true" and labels["onebench.io/onebench"] == "0.1.0"
    assert labels["onebench.io/lib.torch"] == environment.library_versions()["torch"].split("+")[0]  # the release
    for value in labels.values():  # Ray's label values: 63 characters at most, letters, digits, -_. inside
        assert len(value) <= 63 and value[0].isalnum() and value[-1].isalnum() and all(c.isalnum() or c in "-_." for c in value)
    # one slot per device (an attached phone is one: Core ML prepares here), and the node's own slot
    assert node.resources == {"onebench.node": 1.0, "onebench.device.cpu": 1.0, "onebench.device.iphone": 1.0}
    assert lb.token("AMD EPYC 7B13 64-Core Processor") == "AMD_EPYC_7B13_64-Core_Processor"
    assert lb.token("x" * 80 + "!") == "x" * 63 and lb.token("+++") == "unknown"
    assert lb.device_of("cpu", "onnxruntime", "host-sync") == "cpu" and lb.device_of("all", "coreml", "host-sync") == "coreml"
    assert lb.device_of("all", "coreml", "on-device") == "iphone" and lb.device_of("cuda", "torch", "device") == "cuda"


def _node(**labels: str) -> dict:
    mine = lb.describe_node("n")
    return {"NodeID": "ab" * 28, "Alive": True, "Resources": mine.resources,
            "Labels": {**mine.labels, **{lb.PREFIX + k: v for k, v in labels.items()}}}


def test_machine_selectors_in_rays_language() -> None:
    node = _node(machine="lab-3", gpu="NVIDIA_H200")
    for text, holds in (("machine=lab-3", True), ("machine=!lab-3", False), ("gpu=in(NVIDIA_A100,NVIDIA_H200)", True),
                        ("gpu=!in(NVIDIA_H200)", False), ("gpu=NVIDIA H200", True), ("os=darwin", False),
                        (f"ray.io/node-id={'ab' * 28}", False)):  # the node's id is Ray's label, absent from this stub
        assert (not matching(node, [parse(text)])) is holds, text
    assert str(parse("gpu=in(a,b)")) == "gpu=in(a,b)" and str(parse("os=!darwin")) == "os=!darwin"
    for bad in ("machine", "=x", "gpu=in()"):
        with pytest.raises(HarnessError, match="--machine"):
            parse(bad)


def test_a_driver_refuses_nodes_of_other_releases_not_other_builds() -> None:
    assert refusal(_node()) is None
    assert refusal(_node(onebench="0.0.9")) == "onebench 0.0.9 there, 0.1.0 here"
    assert "Python 3.10 there" in refusal(_node(python="3.10.4"))
    assert refusal(_node(**{"lib.torch": "1.13.0"})).startswith("torch ")
    mine = {"torch": "2.9.0+cu130", "numpy": "2.4.6"}
    assert environment.library_differences(mine, {"torch": "2.9.0", "tensorrt": "10.1"}) == []  # a build tag, a library one side lacks
    assert environment.library_differences(mine, {"numpy": "2.3.0"}) == ["numpy 2.4.6 here, 2.3.0 there"]


def test_worker_is_ray_start_with_the_labels(tmp_path: Path) -> None:
    desc = lb.NodeDescription({"onebench.io/machine": "a"}, {"onebench.node": 1.0})
    cmd = start_command("10.0.0.5:6379", False, 6379, None, desc, block=True)
    assert cmd[1:] == ["start", "--num-cpus=1", "--disable-usage-stats", "--address=10.0.0.5:6379",
                       '--labels={"onebench.io/machine": "a"}', '--resources={"onebench.node": 1.0}', "--block"]
    head = start_command(None, True, 7000, "127.0.0.1", None, block=False)
    assert "--head" in head and "--port=7000" in head and "--node-ip-address=127.0.0.1" in head and not any("labels" in a for a in head)
    with pytest.raises(HarnessError, match="--head .* or --cluster"):
        start_command(None, False, 6379, None, None, False)
    done = CliRunner().invoke(app, ["worker", "--cluster", "127.0.0.1:6379", "--name", "lab-a", "--label", "room=2", "--dry-run"])
    assert done.exit_code == 0 and "--address=127.0.0.1:6379" in done.stdout
    assert '"onebench.io/machine": "lab-a"' in done.stdout and '"onebench.io/room": "2"' in done.stdout
    bad = CliRunner().invoke(app, ["worker", "--cluster", "h:1", "--label", "room", "--dry-run"])
    assert bad.exit_code == 2 and "--label takes KEY=VALUE" in bad.stderr


def test_machine_without_cluster_and_iphone_jobs_are_bad_input_here() -> None:
    done = CliRunner().invoke(app, ["run", "-b", "fake-sleep", "--machine", "gpu=H200"])
    assert done.exit_code == 2 and "--machine chooses among a cluster's nodes" in done.stderr
    from harness.measure.planner import jobs as planned
    from harness.measure.selection import Selection

    jobs = planned(Selection(models=["mobileone_s0"], threads=1, device="iphone", compute_units=["all", "cpu-ne"]))
    assert [j.id for j in jobs] == ["mobileone_s0.fused.coreml.all.fp16.b1.t1.on-device",  # a bundle's very jobs
                                    "mobileone_s0.fused.coreml.cpu-ne.fp16.b1.t1.on-device"]
    assert "bench run --cluster" in LocalLauncher().cannot_run(jobs[0])
    with pytest.raises(HarnessError, match="pass -b coreml"):
        planned(Selection(models=["mobileone_s0"], backends=["onnxruntime"], threads=1, device="iphone"))


class TwoNodes(LocalLauncher):
    """Steps run here for real, each "placed" on one of two named nodes (as Ray would), several in flight;
    a step of `lose` on `lose_node` comes back lost, as when that node dies mid-step."""

    concurrency = 8
    remote = True

    def __init__(self, lose: set[tuple[str, str]] = frozenset(), nodes: tuple[str, ...] = ("n1", "n2")) -> None:
        super().__init__()
        self.nodes, self.lose, self.dead, self.steps, self.turn = list(nodes), set(lose), set(), [], 0
        self.address = "fake:1"

    def cannot_run(self, job):
        return None if set(self.nodes) - self.dead else "no node of the cluster can run it (all lost)"

    def lost(self, node: str) -> bool:
        return node in self.dead

    def submit(self, step: Step) -> Future:
        alive = [n for n in self.nodes if n not in self.dead]
        node = step.node or alive[self.turn % len(alive)]
        self.turn += 1
        self.steps.append((step.job.batch, step.target.rsplit(":", 1)[1], step.node, node))
        done: Future = Future()
        if (node, step.target) in self.lose:
            self.lose.discard((node, step.target))
            self.dead.add(node)
            done.set_result(Placed(Lost(f"node {node} was lost mid-job"), node))
            return done
        host = {**environment.capture(), "machine": node}
        done.set_result(Placed(super().submit(step).result().outcome, node, host))
        return done


def test_a_cluster_sweep_pins_each_job_to_its_node_and_lists_every_machine(tmp_path: Path) -> None:
    jobs = plan([MODEL], ["fake-sleep"], ["fp32"], [1, 2], threads=1, input_sizes={MODEL: 64})
    lab = TwoNodes()
    recs = {r["job"]["batch"]: r for r in run_sweep(jobs, FAST, tmp_path / "run", stores=Stores(cache_dir=tmp_path / "c"), launcher=lab)}
    assert {r["status"] for r in recs.values()} == {"ok"} and all(len(r["processes"]) == 2 for r in recs.values())
    for batch, rec in recs.items():  # every later step went to the node that prepared the job
        placed = [(target, pinned, node) for b, target, pinned, node in lab.steps if b == batch]
        assert placed[0][:2] == ("prepare_process", None)
        assert all(pinned == node == rec["host"]["machine"] for _, pinned, node in placed[1:])
    assert {r["host"]["machine"] for r in recs.values()} == {"n1", "n2"}
    meta = json.loads((tmp_path / "run" / "run.json").read_text())
    assert meta["cluster"]["address"] == "fake:1" and [h["machine"] for h in meta["cluster"]["hosts"]] == ["n1", "n2"]
    header, _ = as_lists(list(recs.values()))
    assert {c.split(" @")[-1] for c in header if " @" in c} == {"n1", "n2"}
    assert {line.rsplit(",", 1)[1] for line in to_csv(list(recs.values())).splitlines()[1:]} == {"n1", "n2"}
    one, _ = as_lists([recs[1]])
    assert not any("@" in c for c in one)  # one machine: no machine in the columns


def test_a_job_whose_node_is_lost_starts_again_once_elsewhere_else_gets_an_error(tmp_path: Path) -> None:
    jobs = plan([MODEL], ["fake-sleep"], ["fp32"], [1, 2], threads=1, input_sizes={MODEL: 64})
    lab = TwoNodes(lose={("n1", MEASURE)})  # n1 dies while timing the job it prepared
    said: list[str] = []
    recs = {r["job"]["batch"]: r for r in run_sweep(jobs, FAST, tmp_path / "run", stores=Stores(cache_dir=tmp_path / "c"), launcher=lab, say=said.append)}
    moved = next(b for b, target, _, node in lab.steps if node == "n1" and target == "measure_process")
    assert recs[moved]["status"] == "ok" and recs[moved]["host"]["machine"] == "n2"
    assert len(recs[moved]["processes"]) == 2  # measured again from its preparation: no process of n1 pooled
    assert [t for b, t, _, node in lab.steps if b == moved and node == "n2"][0] == "prepare_process"
    assert any("node n1 was lost mid-job; starting it again on another node" in line for line in said)
    # both nodes lost: nothing left to run the job
    lab = TwoNodes(lose={("n1", PREPARE), ("n2", PREPARE)})
    recs = run_sweep(jobs[:1], FAST, tmp_path / "run2", stores=Stores(cache_dir=tmp_path / "c"), launcher=lab)
    assert recs[0]["status"] == "error" and recs[0]["message"].startswith("node n")
    assert "was lost mid-job again, and no other node that can run the job is left" in recs[0]["message"]
