"""The device lab on a real Ray cluster of this machine (loopback only): a head and nodes with different
labels (`ray.cluster_utils.Cluster`), the sweep routed by device and backend, one step per node at a time,
a device no node holds, an iPhone job through a fake Swift runner, a node killed mid-job, and a driver
killed and resumed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.cli import app
from harness.cluster import labels as lb
from harness.cluster.address import host_of
from harness.cluster.launcher import RayLauncher
from harness.errors import HarnessError
from harness.measure.inputs import Stores
from harness.measure.jobs import plan
from harness.measure.planner import jobs as planned
from harness.measure.protocol import preset
from harness.measure.runner import run_sweep
from harness.measure.selection import Selection
from harness.publish.leaderboard import as_lists
from tests.helpers import ROOT
from tests.tiny_mobileone import NAME as TINY

ray = pytest.importorskip("ray")
cluster_utils = pytest.importorskip("ray.cluster_utils")
# a busy machine makes these slower (Ray workers and fork servers start late), never wrong: generous bounds
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("fake_backends"), pytest.mark.timeout(900)]

MODEL = "timm:test_byobnet"
FAST = preset("default", repeats=2, max_repeats=2, min_s=0.05, max_s=0.1, warmup_s=0.01, warmup_max_s=0.2,
              min_iters=10, probe=False)
# the Swift runner's stand-in: reads the bundle's manifest, writes results in the runner's format
FAKE_RUNNER = """#!/usr/bin/env bash
exec "{python}" - "$1" "$2" <<'EOF'
import json, sys
manifest = json.load(open(sys.argv[1] + "/manifest.json"))
results = [{{"job_id": e["job_id"], "job": e["job"], "status": "ok", "package_sha256": e["package_sha256"],
            "processes": [{{"samples_ns": [1000000 + 1000 * (i % 7) for i in range(60)]}}] * 2,
            "cold_start": {{"load_s": 0.2}}}} for e in manifest["jobs"]]
json.dump({{"format": "onebench-device-results", "version": 1,
           "device": {{"model": "iPhone16,1", "os": "iOS 18.1", "name": "test phone", "cores": 6}},
           "runner": {{"name": "fake", "version": "0", "clock": "monotonic"}},
           "protocol": manifest["protocol"], "results": results}}, open(sys.argv[2], "w"))
EOF
"""


# the real runtimes these tests never time (but node-b's counted ONNX Runtime job): left off the test nodes,
# whose fork servers would import them
UNUSED = ("torch-compile", "onnxruntime", "openvino")


def _node(name: str, drop: tuple[str, ...] = (), keep: tuple[str, ...] = (), iphone: str | None = None) -> dict:
    """A node's `add_node` arguments as `bench worker` derives them, with the test doubles registered (as
    its processes will have them through ONEBENCH_PLUGINS), less the backends in `drop` and those of `UNUSED`
    not in `keep`."""
    from backends import registry
    from tests.fake_backends import ALL

    fresh = [name for name in ALL if name not in registry.names()]
    for backend in fresh:
        registry.register(backend, ALL[backend])
    try:
        desc = lb.describe_node(name, iphone=iphone or "")
    finally:
        for backend in fresh:
            registry.unregister(backend)
    return {"labels": {k: v for k, v in desc.labels.items() if k.removeprefix(lb.PREFIX + "backend.") not in drop + tuple(set(UNUSED) - set(keep))},
            "resources": desc.resources, "num_cpus": 1}


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A head (no slots) and two nodes: node-a holds the CPU and an iPhone and has every test backend; node-b
    the CPU only, not fake-sleep-slow, and ONNX Runtime (for the counted test). The nodes' processes see the
    test doubles through ONEBENCH_PLUGINS."""
    folder = tmp_path_factory.mktemp("lab")
    runner = folder / "fake-runner.sh"
    runner.write_text(FAKE_RUNNER.format(python=sys.executable))
    env = {"ONEBENCH_PLUGINS": "tests.fake_backends_plugin,tests.tiny_mobileone", "ONEBENCH_IPHONE_RUNNER": str(runner),
           "ONEBENCH_CACHE": str(folder / "cache"), "PYTHONPATH": str(ROOT)}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    cluster = cluster_utils.Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
    nodes = {"node-a": cluster.add_node(**_node("node-a", iphone="iPhone 15")),
             "node-b": cluster.add_node(**_node("node-b", drop=("fake-sleep-slow", "fake-hang-check"), keep=("onnxruntime",)))}
    cluster.wait_for_nodes()
    yield cluster, nodes, folder
    ray.shutdown()
    cluster.shutdown()
    for k, v in saved.items():
        os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)


def _launcher(cluster, selectors=()):
    from harness.cluster.launcher import RayLauncher
    from harness.cluster.selectors import parse_all

    return RayLauncher(cluster.address, parse_all(list(selectors)))


def test_jobs_go_to_nodes_with_their_device_and_backend_one_step_per_node_at_a_time(lab, tmp_path: Path) -> None:
    cluster, _, folder = lab
    jobs = plan([MODEL], ["fake-sleep"], ["fp32"], [1, 2, 3], threads=1, input_sizes={MODEL: 64})
    jobs += plan([MODEL], ["fake-sleep-slow"], ["fp32"], [1], threads=1, input_sizes={MODEL: 64})
    jobs += plan([MODEL], ["torch"], ["fp32"], [1], threads=1, device="cuda", input_sizes={MODEL: 64})[:1]
    launcher = _launcher(cluster)
    try:
        recs = {r["job_id"]: r for r in run_sweep(jobs, FAST, tmp_path / "run", stores=Stores(cache_dir=folder / "cache"), launcher=launcher)}
        spans = list(launcher.spans)
    finally:
        launcher.close()
    by_backend = {}
    for rec in recs.values():
        by_backend.setdefault((rec["job"]["backend"], rec["status"]), []).append(rec)
    assert len(by_backend[("fake-sleep", "ok")]) == 3 and len(by_backend[("fake-sleep-slow", "ok")]) == 1
    assert by_backend[("fake-sleep-slow", "ok")][0]["host"]["machine"] == "node-a"  # the one node that has it
    cuda = by_backend[("torch", "skipped")][0]
    assert cuda["message"] == "no node of the cluster can run it (node-a: no cuda device; node-b: no cuda device)"
    measured = [r for r in recs.values() if r["status"] == "ok"]
    assert {r["host"]["machine"] for r in measured} == {"node-a", "node-b"}  # the sweep was split across the nodes
    assert all(r["host"]["libraries"]["torch"] and r["host"]["peak_gflops"]["fp32/1t"] > 0 for r in measured)  # the node's own
    for node in {s[0] for s in spans}:  # one step at a time on a node: its steps' spans never overlap
        mine = sorted((start, end) for n, _, start, end in spans if n == node)
        assert all(end <= next_start for (_, end), (next_start, _) in zip(mine, mine[1:]))
    meta = json.loads((tmp_path / "run" / "run.json").read_text())
    assert meta["cluster"]["address"] == cluster.address
    assert [h["machine"] for h in meta["cluster"]["hosts"]] == ["node-a", "node-b"]
    header, _ = as_lists(measured)
    assert {c.split(" @")[-1] for c in header if " @" in c} == {"node-a", "node-b"}
    done = CliRunner().invoke(app, ["cluster", "--cluster", cluster.address, "--format", "json"])
    assert done.exit_code == 0, done.stderr
    rows = {r["machine"]: r for r in json.loads(done.stdout)}
    assert rows["node-a"]["devices"] == ["cpu", "iphone"] and rows["node-b"]["devices"] == ["cpu"]
    assert "fake-sleep-slow" in rows["node-a"]["backends"] and "fake-sleep-slow" not in rows["node-b"]["backends"]
    assert {r["state"] for r in rows.values()} == {"idle"} and rows["node-a"]["iphone"] == "iPhone_15"
    table = CliRunner().invoke(app, ["cluster", "--cluster", cluster.address, "--format", "md"])
    assert table.exit_code == 0 and "| node-b |" in table.stdout


def test_the_lab_on_one_machine_stays_on_loopback(lab) -> None:
    cluster, _, _ = lab
    assert host_of(cluster.address) == "127.0.0.1"
    ray.init(address=cluster.address, ignore_reinit_error=True, log_to_driver=False)
    try:
        addresses = {n["NodeManagerAddress"] for n in ray.nodes()}
    finally:
        ray.shutdown()
    assert addresses == {"127.0.0.1"}, addresses


def test_a_second_worker_with_a_name_the_lab_has_is_refused_before_it_starts(lab) -> None:
    """#49: two workers named lab-a both joined; the second is refused in one line, a new name joins."""
    from harness.cluster.node import check_name_free

    cluster, _, _ = lab
    with pytest.raises(HarnessError, match="a node named 'node-a' is already in the lab"):
        check_name_free(cluster.address, "node-a")
    check_name_free(cluster.address, "node-z")
    assert not ray.is_initialized()  # the check's own connection is closed again


@pytest.mark.timeout(1800)  # valgrind's start-up on a node: about a minute quiet, 15 minutes once beside a loaded CI run
def test_a_counted_sweep_counts_each_job_on_the_node_that_timed_it(lab, tmp_path: Path) -> None:
    """#50: counted jobs go through the launcher like any step, so a lab counts them on its nodes."""
    from harness.measure import counted

    if counted.valgrind_version() is None or counted.hooks_library() is None:
        pytest.skip(f"counting needs valgrind ({counted.INSTALL}) and the hooks ({counted.HOOKS_INSTALL})")
    cluster, _, folder = lab
    # ONNX Runtime: its counts settle at once (a tiny network's two 1-inference windows 2 instructions apart)
    jobs = plan([TINY], ["onnxruntime"], ["fp32"], [1], threads=1, input_sizes={TINY: 64})
    launcher = _launcher(cluster)
    try:
        (rec,) = run_sweep(jobs, preset("quick", counted=True, reference="none"), tmp_path / "run",
                           stores=Stores(cache_dir=folder / "cache"), launcher=launcher)
    finally:
        launcher.close()
    assert rec["status"] == "ok" and rec["host"]["machine"] == "node-b", rec["message"]  # the one node with it
    block = rec["counted"]  # counted on the node: its figure, or (a tiny network on a busy node) why none
    assert block.get("windows") or block.get("instructions"), block


def test_a_profile_is_launched_on_a_lab_node_and_names_the_host_it_ran_on(lab, tmp_path: Path) -> None:
    """#51: `bench profile` launches its process through the launcher like every step, so `--cluster` profiles
    on a lab's node (fake-profiled: a double whose profiler reports known times)."""
    from harness.measure.selection import Selection
    from harness.profile import runner

    cluster, _, folder = lab
    request = runner.plan(Selection(models=(MODEL,), backends=("fake-profiled",)), 3)
    launcher = _launcher(cluster, ["machine=node-b"])
    try:
        rec = runner.profile(request, folder / "cache", launcher)
    finally:
        launcher.close()
    assert rec["host"]["machine"] == "node-b" and rec["rows"] and rec["job"]["backend"] == "fake-profiled"
    done = CliRunner().invoke(app, ["profile", "-m", MODEL, "-b", "fake-profiled", "--iterations", "3", "--cluster",
                                    cluster.address, "--format", "json", "--out", str(tmp_path / "run")])
    assert done.exit_code == 0, done.stderr
    assert json.loads(done.stdout)["host"]["machine"] in {"node-a", "node-b"}  # the lab placed it, on a node
    assert list((tmp_path / "run" / "profiles").glob("*.json"))


def test_a_node_that_does_not_answer_costs_its_job_an_error_naming_it_and_the_sweep_goes_on(lab, tmp_path: Path) -> None:
    """fake-hang-check hangs in the node's check, before the step's own (timed-out) process: only the
    driver's deadline can end it. The node is free again afterwards."""
    cluster, _, folder = lab
    hang = plan([MODEL], ["fake-hang-check"], ["fp32"], [1], threads=1, input_sizes={MODEL: 64})
    launcher = RayLauncher(cluster.address, start_budget_s=3)
    try:
        rec = run_sweep(hang, preset("quick", timeout_s=3), tmp_path / "hang", stores=Stores(cache_dir=folder / "cache"), launcher=launcher)[0]
        launcher.start_budget_s = 600  # the same node then takes a job as usual
        after = plan([MODEL], ["fake-sleep-slow"], ["fp32"], [1], threads=1, input_sizes={MODEL: 64})
        ok = run_sweep(after, FAST, tmp_path / "after", stores=Stores(cache_dir=folder / "cache"), launcher=launcher)[0]
    finally:
        launcher.close()
    assert rec["status"] == "error"
    assert rec["message"].endswith("node node-a did not answer within 6 s (the step's 3-s timeout and 3 s to start its "
                                   "process); the step was cancelled"), rec["message"]
    assert ok["status"] == "ok" and ok["host"]["machine"] == "node-a", ok["message"]


def test_an_iphone_job_runs_through_the_swift_runner_of_the_node_with_the_phone(lab, tmp_path: Path) -> None:
    cluster, _, folder = lab
    jobs = planned(Selection(models=[TINY], threads=1, device="iphone"))
    launcher = _launcher(cluster, ["machine=in(node-a,node-b)"])
    try:
        rec = run_sweep(jobs, preset("quick"), tmp_path / "run", stores=Stores(cache_dir=folder / "cache"), launcher=launcher)[0]
    finally:
        launcher.close()
    assert rec["status"] == "ok", rec["message"]
    assert rec["job"]["boundary"] == "on-device" and rec["host"]["machine"] == "test phone (on node-a)"
    assert rec["host"]["cpu"]["model"] == "iPhone16,1" and len(rec["processes"]) == 2
    assert rec["stats"]["p50"] == pytest.approx(1.003e6, rel=0.01) and rec["cold_start"]["load_s"] == 0.2


def test_a_node_killed_mid_job_loses_no_finished_record(lab, tmp_path: Path) -> None:
    """node-c joins, takes a job of three slow processes, and dies while timing it: the job starts again on
    node-b; a second sweep that only node-c could run ends in an error record naming it."""
    cluster, _, folder = lab
    node_c = cluster.add_node(**_node("node-c"))
    cluster.wait_for_nodes()
    jobs = plan([MODEL], ["fake-slow-iteration"], ["fp32"], [1], threads=1, input_sizes={MODEL: 64})
    # enough work that node-b alone cannot finish the sweep before node-c is up on a busy machine (a CI run with
    # a one-core hog beside it: node-b took all 3 jobs of a smaller sweep before node-c took a step)
    jobs += plan([MODEL], ["fake-sleep"], ["fp32"], [1, 2, 3, 4, 5, 6], threads=1, input_sizes={MODEL: 64})
    slow = preset("default", repeats=3, max_repeats=3, min_s=0.5, max_s=1.0, warmup_s=0.01, warmup_max_s=0.2,
                  min_iters=6, probe=False)
    # node-c's Ray worker and its fork server up before the sweep: on a busy machine (a CI run beside a one-core hog)
    # node-c's first step took more than two minutes to start. Ray keeps a worker per job (driver), so the warm-up
    # and the sweep share this process's one connection: a launcher that connected itself would end the job
    # (and node-c's warm worker) when it closed.
    import ray

    from harness.cluster.launcher import START_BUDGET_S, connect

    own = connect(cluster.address)
    warm = _launcher(cluster, ["machine=node-c"])
    try:
        run_sweep(jobs[1:2], FAST, tmp_path / "warm", stores=Stores(cache_dir=folder / "cache"), launcher=warm)
    finally:
        warm.close()
    launcher = _launcher(cluster, ["machine=in(node-b,node-c)"])
    said: list[str] = []
    try:
        import threading

        result: list = []
        sweep = threading.Thread(target=lambda: result.append(run_sweep(jobs, slow, tmp_path / "run", stores=Stores(cache_dir=folder / "cache"), launcher=launcher, say=said.append)))
        sweep.start()
        node_c_id = node_c.node_id
        deadline = time.monotonic() + START_BUDGET_S  # what the launcher itself allows a node to start a step
        while time.monotonic() < deadline and not any(n == node_c_id for n, *_ in launcher.spans):
            time.sleep(0.2)  # node-c has finished a step: the next one it takes is mid-job
        assert any(n == node_c_id for n, *_ in launcher.spans), "node-c never took a step"
        cluster.remove_node(node_c)
        # node-b then runs the rest alone, one step at a time: 240 s was not enough beside a one-core hog (the
        # module's 900-s timeout still bounds the whole test)
        sweep.join(600)
        assert not sweep.is_alive(), "the sweep did not finish within 10 minutes of node-c's loss"
    finally:
        launcher.close()
        if own:
            ray.shutdown()
    recs = result[0]
    assert all(r["status"] == "ok" for r in recs), [r["message"] for r in recs]
    assert {r["host"]["machine"] for r in recs} == {"node-b"}  # what node-c had started was measured again on node-b
    assert any("node node-c was lost mid-job; starting it again on another node" in line for line in said)
    assert sorted(p.name for p in (tmp_path / "run" / "records").iterdir()) == sorted(f"{r['job_id']}.json" for r in recs)


def test_a_killed_driver_resumes_from_the_run_folder(lab, tmp_path: Path, monkeypatch) -> None:
    """`bench run --cluster` killed in its first timed round; run again with the same --out it prepares nothing
    again, reuses every process already timed (each job stays on the node that timed it), and finishes."""
    cluster, _, folder = lab
    args = [sys.executable, "-m", "harness", "run", "--cluster", cluster.address, "-m", TINY, "-b", "fake-sleep",
            *[a for b in ("1", "2", "3", "4") for a in ("--batch", b)], "--repeats", "2", "--out", "run", "--progress", "json"]
    env = {**os.environ, "ONEBENCH_CACHE": str(folder / "cache"), "PYTHONPATH": str(ROOT)}
    driver = subprocess.Popen(args, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    timed = 0
    for line in driver.stderr:
        event = json.loads(line) if line.startswith("{") else {}
        timed += event.get("event") == "step_done" and event["phase"].startswith("round 1")
        if timed == 2:
            driver.send_signal(signal.SIGKILL)
            break
    driver.wait(30)
    assert timed == 2 and not (tmp_path / "run" / "records").exists()
    partial = {p.stem: json.loads(p.read_text()) for p in (tmp_path / "run" / "partial").glob("*.json")}
    timed_before = sum(len(p["processes"]) for p in partial.values())  # the kill may land before the 2nd is saved
    assert len(partial) == 4 and timed_before >= 1 and all(p["node"] for p in partial.values())
    monkeypatch.chdir(tmp_path)
    done = CliRunner().invoke(app, args[3:])  # the second driver in this process: it need not import torch again
    assert done.exit_code == 0, done.stderr[-2000:]
    plan = next(json.loads(line) for line in done.stderr.splitlines() if line.startswith('{"event": "plan"'))
    assert plan["prepare_steps"] == 0 and plan["measure_steps"] == 8 - timed_before  # what was timed is kept
    recs = {p.stem: json.loads(p.read_text()) for p in (tmp_path / "run" / "records").glob("*.json")}
    assert len(recs) == 4 and all(r["status"] == "ok" for r in recs.values()), [r["message"] for r in recs.values()]
    assert all(len(r["processes"]) >= 2 for r in recs.values())  # 2, or more where they disagreed (adaptive)
    assert all(recs[job]["host"]["machine"] == p["host"]["machine"] for job, p in partial.items())  # stayed on its node


def test_ab_int8_and_accuracy_run_their_steps_on_a_lab_node(lab, tmp_path: Path, monkeypatch) -> None:
    """#51: a pair of lockstep sides and an evaluation are launcher steps, so `bench ab`, `bench int8` and
    `bench accuracy` run them on a lab's node with --cluster (the one node that has the backend here)."""
    import torch
    from PIL import Image

    import model_zoo

    cluster, _, folder = lab
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ONEBENCH_CACHE", str(folder / "cache"))
    ab = CliRunner().invoke(app, ["ab", "-m", MODEL, "-b", "fake-sleep-slow", "--pairs", "3", "--window-ms", "10",
                                  "--key-budget-s", "0", "--budget-s", "0", "--cluster", cluster.address])
    assert ab.exit_code in (0, 1), ab.stderr[-2000:]  # a verdict, whichever
    (sides,) = (tmp_path / "results" / "runs").glob("lockstep-*")
    for side in ("baseline", "candidate"):
        (rec,) = [json.loads(p.read_text()) for p in (sides / side / "records").glob("*.json")]
        assert rec["status"] == "ok" and rec["host"]["machine"] == "node-a", rec["message"]  # both sides on one node
    weights = tmp_path / "tiny.pth"
    torch.save(model_zoo.create(TINY).state_dict(), weights)
    int8 = CliRunner().invoke(app, ["int8", "-m", TINY, "-b", "onnxruntime", "--weights", str(weights), "--pairs", "3",
                                    "--window-ms", "10", "--out", "study", "--cluster", cluster.address])
    assert int8.exit_code == 0, int8.stderr[-2000:]
    (rec,) = [json.loads(p.read_text()) for p in (tmp_path / "study" / "int8" / "records").glob("*.json")]
    assert rec["status"] == "ok" and rec["host"]["machine"] == "node-b", rec["message"]  # ONNX Runtime: node-b
    for name in ("c0", "c1"):
        (tmp_path / "data" / name).mkdir(parents=True)
        Image.new("RGB", (40, 40), (200, 10, 10) if name == "c0" else (10, 200, 10)).save(tmp_path / "data" / name / "a.png")
    (tmp_path / "classes.txt").write_text("\n".join(f"c{i}" for i in range(10)) + "\n")
    acc = CliRunner().invoke(app, ["accuracy", "-m", TINY, "-b", "onnxruntime", "--weights", str(weights), "--data", "data",
                                   "--class-map", "classes.txt", "--workers", "0", "--cluster", cluster.address])
    assert acc.exit_code == 0, acc.stderr[-2000:]
    (rec,) = [json.loads(p.read_text()) for p in (tmp_path / "results" / "accuracy").glob("*.json")]
    assert rec["host"]["machine"] == "node-b" and rec["data"]["images"] == 2
