"""The device lab as a user starts it, on this machine's loopback: a head and two workers (`bench worker`),
a quick sweep split across them, then a default sweep with one node killed mid-sweep.

Checks what docs/device-lab.md promises: every job of each sweep ends with a record (measured, or an error naming
the lost node), the records name their machine, `run.json` lists the hosts, the leaderboard has a column
per machine, and no record written before the kill is lost or rewritten. Prints what it saw and exits 1
when a promise did not hold. It stops every Ray process of this user at the end (`ray stop --force`), so
run it where no other Ray cluster of yours runs.

    python benchmarks/device_lab.py [--out /tmp/device-lab] [--port 6390] [-m mobileone_s0 -m ...] [-b ...]
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

BENCH = [sys.executable, "-m", "harness"]
NODES = ("lab-a", "lab-b")


def bench(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([*BENCH, *args], capture_output=True, text=True, **kw)


def start_lab(port: int) -> str:
    address = f"127.0.0.1:{port}"
    steps = [("worker", "--head", "--port", str(port), "--node-ip-address", "127.0.0.1")]
    steps += [("worker", "--cluster", address, "--name", name, "--node-ip-address", "127.0.0.1") for name in NODES]
    for args in steps:
        done = bench(*args)
        if done.returncode != 0:
            sys.exit(f"`bench {' '.join(args)}` failed: {done.stderr.strip()[-500:]}")
    return address


def raylet_of(name: str) -> psutil.Process:
    """The raylet of the node named `name` (its labels are on its command line)."""
    for proc in psutil.process_iter(["name", "cmdline"]):
        line = " ".join(proc.info["cmdline"] or [])
        if "raylet" in (proc.info["name"] or "") and f'"onebench.io/machine": "{name}"' in line.replace("\\", ""):
            return proc
    raise SystemExit(f"no raylet for node {name}")


def lose(name: str) -> None:
    """The machine gone at once, as when it loses power: its raylet and every process under it (Ray's
    workers, their fork servers and measurement processes) killed. A raylet killed alone leaves its leased
    workers answering the driver for a while, which no lost machine does."""
    raylet = raylet_of(name)
    for proc in [*raylet.children(recursive=True), raylet]:
        try:
            proc.send_signal(signal.SIGKILL)
        except psutil.NoSuchProcess:
            pass


def records_of(run: Path) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in (run / "records").glob("*.json")}


def unfinished_on(run: Path, machine: str) -> list[str]:
    """The jobs whose partial state (an unfinished job) says they run on `machine`."""
    found = []
    for path in (run / "partial").glob("*.json"):
        try:
            state = json.loads(path.read_text())
        except (OSError, ValueError):  # replaced while read
            continue
        if (state.get("host") or {}).get("machine") == machine:
            found.append(path.stem)
    return found


def check(ok: bool, what: str, failures: list[str]) -> None:
    print(("  ok    " if ok else "  FAIL  ") + what)
    if not ok:
        failures.append(what)


def quick_sweep(address: str, selection: list[str], out: Path, failures: list[str]) -> None:
    started = time.monotonic()
    done = bench("run", "--cluster", address, *selection, "--preset", "quick", "--out", str(out / "quick"), "--progress", "quiet")
    print(f"quick sweep: exit {done.returncode} in {time.monotonic() - started:.1f} s")
    recs = records_of(out / "quick")
    for rec in sorted(recs.values(), key=lambda r: r["job_id"]):
        p50 = f"{rec['stats']['p50'] / 1e6:.2f} ms" if rec.get("stats") else rec["message"][:80]
        print(f"    {rec['host'].get('machine', '?'):6} {rec['job']['model']:18} {rec['job']['backend']:12} {rec['status']:7} {p50}")
    check(done.returncode == 0 and recs and all(r["status"] == "ok" for r in recs.values()), "every job measured", failures)
    check({r["host"].get("machine") for r in recs.values()} == set(NODES), "the jobs split across both nodes", failures)
    hosts = [h["machine"] for h in json.loads((out / "quick" / "run.json").read_text())["cluster"]["hosts"]]
    check(hosts == list(NODES), f"run.json lists both hosts ({hosts})", failures)
    board = bench("leaderboard", str(out / "quick"), "--format", "csv").stdout
    check(all(f",{name}" in board for name in NODES), "the leaderboard names both machines", failures)


def killed_sweep(address: str, selection: list[str], out: Path, failures: list[str]) -> None:
    """A default sweep; lab-b is lost the moment a step of one of its jobs is sent to it in round 3 or later,
    after a record has landed when that happens (a job given extra rounds), else at round 3's start."""
    run = out / "killed"
    cmd = [*BENCH, "run", "--cluster", address, *selection, "--out", str(run), "--progress", "json"]
    started = time.monotonic()
    driver = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    before: dict[str, str] | None = None
    landed = False
    lines: list[str] = []
    for line in driver.stderr:
        lines.append(line)
        event = json.loads(line) if line.startswith("{") else {}
        landed = landed or event.get("event") == "job"
        late = landed or str(event.get("phase", "")).startswith("round 3")
        if before is None and late and event.get("event") == "step" and event["job_id"] in unfinished_on(run, "lab-b"):
            before = {k: json.dumps(v, sort_keys=True) for k, v in records_of(run).items()}
            lose("lab-b")
            print(f"killed lab-b at {time.monotonic() - started:.1f} s ({event['phase']}): {len(before)} record(s) "
                  f"written, {len(unfinished_on(run, 'lab-b'))} job(s) unfinished there")
    driver.wait()
    print(f"default sweep with a node killed: exit {driver.returncode} in {time.monotonic() - started:.1f} s")
    said = [line.strip() for line in lines if not line.startswith("{") and "lost" in line]
    for line in said[:8]:
        print("    said: " + line)
    planned = len(json.loads((run / "run.json").read_text())["jobs"])
    recs = records_of(run)
    for rec in sorted(recs.values(), key=lambda r: r["job_id"]):
        p50 = f"{rec['stats']['p50'] / 1e6:.2f} ms" if rec.get("stats") else rec["message"][:90]
        print(f"    {rec['host'].get('machine', '?'):6} {rec['job']['model']:18} {rec['job']['backend']:12} "
              f"{rec['status']:7} {len(rec.get('processes') or [])} proc  {p50}")
    check(before is not None and len(before) < planned, "the node was killed mid-sweep", failures)
    check(len(recs) == planned, f"every planned job has a record ({len(recs)} of {planned})", failures)
    check(all(r["status"] in ("ok", "error") for r in recs.values()), "each one measured or an error", failures)
    check(all(("lab-b" in r["message"]) for r in recs.values() if r["status"] == "error"), "every error names the lost node", failures)
    check(bool(said), "the run said which node was lost", failures)
    kept = all(k in recs and json.dumps(recs[k], sort_keys=True) == v for k, v in (before or {}).items())
    check(kept, "no record written before the kill was lost or changed", failures)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/device-lab"))
    parser.add_argument("--port", type=int, default=6390)
    parser.add_argument("-m", dest="models", action="append")
    parser.add_argument("-b", dest="backends", action="append")
    args = parser.parse_args()
    selection = [a for m in args.models or ["mobileone_s0", "mobilenetv2_100", "efficientnet_b0"] for a in ("-m", m)]
    selection += [a for b in args.backends or ["onnxruntime", "openvino"] for a in ("-b", b)]
    shutil.rmtree(args.out, ignore_errors=True)
    args.out.mkdir(parents=True)
    failures: list[str] = []
    try:
        address = start_lab(args.port)
        status = bench("cluster", "--cluster", address, "--format", "md")
        print(status.stdout)
        quick_sweep(address, selection, args.out, failures)
        killed_sweep(address, selection, args.out, failures)
    finally:
        ray = Path(sys.executable).with_name("ray")
        subprocess.run([str(ray) if ray.exists() else "ray", "stop", "--force"], capture_output=True)
    print("all held" if not failures else f"{len(failures)} did not hold")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
