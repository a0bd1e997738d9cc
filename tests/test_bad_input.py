"""Bad input, in-process (typer's CliRunner): every case must end in exit code 2 (README, "Exit codes")
with one line on stderr that names the problem, no traceback, and nothing half-written. Grows with
every bug found: add the input that broke, with what must (not) be left on disk."""

from __future__ import annotations

import atexit
import json
import os
import socket
import sqlite3
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from harness.cli import app
from harness.device import ingest
from harness.errors import HarnessError
from harness.measure.inputs import Stores
from harness.measure.jobs import Job
from harness.store import records
from tests.synthetic import record

MODEL = "timm:test_byobnet"


def _write_run(folder: Path, recs: list[dict]) -> Path:
    for rec in recs:
        records.write_record(folder / "records" / f"{rec['job_id']}.json", rec)
    return folder


@pytest.fixture
def here(tmp_path: Path, monkeypatch) -> Path:
    """A working folder with a valid run, a corrupt one and a file where folders are expected."""
    monkeypatch.chdir(tmp_path)
    return _plant(tmp_path)


def _plant(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    _write_run(tmp_path / "good", [record([rng.normal(2e6, 2e4, 60) for _ in range(3)], model=m) for m in ("a", "b")])
    _write_run(tmp_path / "other", [record([rng.normal(2e6, 2e4, 60)], model="zzz")])
    (tmp_path / "corrupt" / "records").mkdir(parents=True)
    (tmp_path / "corrupt" / "records" / "x.json").write_text("{")
    typed = record([rng.normal(2e6, 2e4, 60)], model="t")
    typed["stats"]["p50"] = "fast"
    (tmp_path / "typed" / "records").mkdir(parents=True)
    (tmp_path / "typed" / "records" / "t.json").write_text(json.dumps(typed))
    (tmp_path / "empty" / "records").mkdir(parents=True)
    (tmp_path / "afile").write_text("not a folder")
    (tmp_path / "corrupt.json").write_text('{"schema_version": 1, "run_')
    (tmp_path / "garbage.pth").write_bytes(b"\x00not a checkpoint")
    return tmp_path


def device_results(**change) -> dict:
    job = Job(model="mobileone_s0", backend="coreml", device="all", precision="fp16", boundary="on-device")
    result = {"job_id": job.id, "job": job.as_dict(), "status": "ok",
              "processes": [{"samples_ns": [900_000 + 1000 * i for i in range(40)]}]}
    data = {"format": ingest.FORMAT, "version": 1, "device": {"model": "iPhone13,2", "os": "iOS 18"},
            "runner": {"name": "x", "version": "1", "clock": "mach"},
            "protocol": {"min_iters": 5, "min_s": 0.3, "max_s": 0.4, "target_rel_ci": 0.01, "repeats": 1},
            "results": [result]}
    for fn in change.values():
        fn(data)
    return data


def _ingest_file(name: str, data: dict | str) -> Callable[[Path], list[str]]:
    def make(root: Path) -> list[str]:
        (root / name).write_text(data if isinstance(data, str) else json.dumps(data))
        return ["ingest", name]
    return make


def _args(*args: str) -> Callable[[Path], list[str]]:
    return lambda root: list(args)


def _plant_index(content: bytes) -> Callable[[Path], list[str]]:
    def make(root: Path) -> list[str]:
        (root / "results").mkdir(exist_ok=True)
        (root / "results" / "index.sqlite").write_bytes(content)
        return ["history"]
    return make


def _two_indexed_runs(root: Path) -> list[str]:
    """Two runs of one job in the working folder's index, so `history` gets as far as plotting."""
    from harness.store import runs as store

    for i in range(2):
        rec = record([np.full(30, 1e6 * (1 + i))], model="a", run_id=f"r{i}", created=f"2026-11-2{i}T00:00:00+00:00")
        path = root / "results" / "runs" / f"r{i}" / "records" / "a.json"
        records.write_record(path, rec)
        store.index_record(store.default_index(root / "results"), rec, path)
    return []


def _duplicate_job(root: Path) -> list[str]:
    rec = json.loads(next((root / "good" / "records").glob("*.json")).read_text())
    for name in ("one.json", "two.json"):
        records.write_record(root / "dup" / "records" / name, rec)
    return []


def _edited(root: Path, **stats) -> list[str]:
    rec = json.loads(next((root / "good" / "records").glob("*.json")).read_text())
    rec["stats"].update(stats)
    (root / "edited" / "records").mkdir(parents=True)
    (root / "edited" / "records" / "a.json").write_text(json.dumps(rec))
    return []


def _bomb(root: Path) -> list[str]:
    """A 16000x16000 PNG: above twice Pillow's pixel limit, so Pillow refuses to open it (1-bit: 2 MB to write)."""
    from PIL import Image

    (root / "bomb").mkdir()
    Image.new("1", (16000, 16000)).save(root / "bomb" / "big.png")
    return []


def _nan(root: Path, literal: str) -> list[str]:
    text = next((root / "good" / "records").glob("*.json")).read_text()
    rec = json.loads(text)
    (root / "nan" / "records").mkdir(parents=True)
    (root / "nan" / "records" / "a.json").write_text(text.replace(f'"p50":{rec["stats"]["p50"]}', f'"p50":{literal}', 1))
    return []


one_result = device_results()["results"][0]
def _ten_class(root: Path) -> list[str]:
    import model_zoo

    torch.save(model_zoo.create(MODEL, num_classes=10).state_dict(), root / "ten.pth")
    return []


def _three_classes(root: Path) -> list[str]:
    from PIL import Image

    for name in "abc":
        (root / "three" / name).mkdir(parents=True)
        Image.new("RGB", (40, 40), (10, 20, 30)).save(root / "three" / name / "x.png")
    return []


_HELD: list[socket.socket] = []


def _held_port() -> int:
    """A loopback port some other program listens on for the rest of the session."""
    held = socket.socket()
    held.bind(("127.0.0.1", 0))
    held.listen()
    _HELD.append(held)
    atexit.register(held.close)
    return held.getsockname()[1]


def _fifo(root: Path) -> list[str]:
    os.mkfifo(root / "fifo")
    return []


CASES: dict[str, tuple[Callable[[Path], list[str]], str]] = {
    # run: everything is checked before a sweep starts, so nothing is written
    "run unknown model": (_args("run", "-m", "mobileone_s9"), "unknown model 'mobileone_s9'; did you mean mobileone_s0"),
    "run unknown backend": (_args("run", "-m", MODEL, "-b", "tensorflow"), "tensorflow"),
    "run misspelt backend": (_args("run", "-b", "onnxruntim"), "unknown backend 'onnxruntim'; did you mean onnxruntime?"),
    "run unwritable out": (_args("run", "-m", MODEL, "-b", "torch", "--out", "/proc/nope/run"),
                           "--out /proc/nope/run cannot be written"),
    "leaderboard corrupt file": (_args("leaderboard", "corrupt.json"), "corrupt.json is not a readable results file"),
    "run unknown precision": (_args("run", "-m", MODEL, "-p", "fp8"), "fp8"),
    "run unknown reference": (_args("run", "-m", MODEL, "--reference", "conv-dens"),
                              "unknown reference 'conv-dens'; did you mean conv-dense?"),
    "leaderboard relative site": (_args("leaderboard", "good", "--relative", "--html", "site"), "--relative changes the table"),
    "run unknown device": (_args("run", "-m", MODEL, "--device", "tpu"), "tpu"),
    "run unknown form": (_args("run", "-m", MODEL, "--form", "half"), "half"),
    "run zero threads": (_args("run", "-m", MODEL, "--threads", "0"), "--threads"),
    "run negative threads": (_args("run", "-m", MODEL, "--threads", "-2"), "--threads"),
    "run more threads than cores": (_args("run", "-m", MODEL, "--threads", "999"), "logical cores"),
    "run zero batch": (_args("run", "-m", MODEL, "--batch", "0"), "--batch"),
    "run ci target out of range": (_args("run", "-m", MODEL, "--ci-target", "2"), "--ci-target is the CI half-width"),
    "run zero repeats": (_args("run", "-m", MODEL, "--repeats", "0"), "--repeats"),
    "run old quick and precise": (_args("run", "-m", MODEL, "--quick", "--precise"), "--quick and --precise contradict"),
    "run unknown preset": (_args("run", "-m", MODEL, "--preset", "fast"), "unknown preset 'fast'"),
    "run weights with two models": (_args("run", "-m", "mobileone_s0", "-m", "mobileone_s1", "--weights", "garbage.pth"),
                                    "one --model"),
    "run missing weights": (_args("run", "-m", "mobileone_s0", "--weights", "nope.pth"), "nope.pth"),
    "run garbage weights": (_args("run", "-m", "mobileone_s0", "--weights", "garbage.pth"), "garbage.pth"),
    "run compute units without coreml": (_args("run", "-m", MODEL, "-b", "torch", "--compute-units", "all"), "compute"),
    "run out is a file": (_args("run", "-m", MODEL, "-b", "torch", "--out", "afile"), "afile"),
    "run wait-quiet negative": (_args("run", "-m", MODEL, "--wait-quiet", "-1"), "--wait-quiet"),
    # prepare
    "prepare zero workers": (_args("prepare", "-m", MODEL, "-b", "torch", "--workers", "0"), "--workers"),
    "prepare unknown model": (_args("prepare", "-m", "nope"), "nope"),
    "prepare zero threads": (_args("prepare", "-m", MODEL, "--threads", "0"), "--threads"),
    # compare
    "compare one run": (_args("compare", "good"), "two runs"),
    "compare missing run": (_args("compare", "good", "nope"), "no run"),
    "compare corrupt record": (_args("compare", "good", "corrupt"), "not a readable results file"),
    "compare mistyped record": (_args("compare", "good", "typed"), "p50"),
    "compare threshold too big": (_args("compare", "good", "good", "--threshold", "5"), "threshold"),
    "compare threshold negative": (_args("compare", "good", "good", "--threshold", "-0.1"), "threshold"),
    "ab candidate weights missing": (_args("ab", "-m", "mobileone_s0", "-b", "torch", "--candidate", "weights=nope.pth"),
                                     "nope.pth"),
    "ab candidate weights malformed": (_args("ab", "-m", "mobileone_s0", "-b", "torch", "--candidate",
                                             "weights=garbage.pth"), "garbage.pth"),
    "ab side weights with two models": (_args("ab", "-m", "mobileone_s0", "-m", "mobileone_s1", "-b", "torch",
                                              "--baseline", "weights=garbage.pth"), "one --model"),
    "ab side that is not key=value": (_args("ab", "-m", "mobileone_s0", "-b", "torch", "--candidate", "venv/bin/python"),
                                      "KEY=VALUE with KEY one of python, weights, env.NAME"),
    "ab output without a format": (_args("ab", "-m", "mobileone_s0", "-b", "torch", "--output", "c.json"),
                                   "add --format md or --format json"),
    # no report may be written into a run folder's records or partial state
    "compare json into records": (_args("compare", "good", "good", "--format", "json", "--output",
                                        "good/records/a.torch.json"), "inside the run folder"),
    "compare markdown into partial": (_args("compare", "good", "good", "--format", "md", "--output", "good/partial/x.md"),
                                      "inside the run folder"),
    "leaderboard csv over a record": (_args("leaderboard", "good", "--format", "csv", "--output",
                                            "good/records/a.torch.json"), "inside the run folder"),
    "leaderboard md into records": (_args("leaderboard", "good", "--format", "md", "--output", "good/records/l.md"),
                                    "inside the run folder"),
    "leaderboard json": (_args("leaderboard", "good", "--format", "json"), "bench leaderboard writes rich, md, csv"),
    "ablation csv": (_args("ablation", "blocks", "--format", "csv"), "bench ablation writes rich, md"),
    "leaderboard html into records": (_args("leaderboard", "good", "--html", "good/records"), "inside the run folder"),
    "history plot into records": (lambda root: _two_indexed_runs(root) + ["history", "--plot", "good/records/h.png"],
                                  "inside the run folder"),
    "run out inside another run": (_args("run", "-m", MODEL, "-b", "torch", "--out", "good/records/run"),
                                   "inside the run folder"),
    "ablation out inside another run": (_args("ablation", "blocks", "--out", "good/partial/x"), "inside the run folder"),
    "export bundle into records": (_args("export", "--backend", "coreml", "--bundle", "good/records/b"),
                                   "inside the run folder"),
    "run batch beyond memory": (_args("run", "-m", MODEL, "-b", "torch", "--batch", "100000"), "--batch 100000 needs"),
    # records that do not hold together
    "leaderboard duplicate job id": (lambda root: _duplicate_job(root) + ["leaderboard", "dup"], "twice"),
    "show hand-edited p50": (lambda root: _edited(root, p50=1) + ["show", "edited"], "do not follow from its samples"),
    "show inverted CI": (lambda root: _edited(root, ci_low=3e6, ci_high=1e6) + ["show", "edited"],
                         "do not follow from its samples"),
    "show NaN latency": (lambda root: _nan(root, "NaN") + ["show", "nan"], "not a finite number"),
    "compare infinite latency": (lambda root: _nan(root, "Infinity") + ["compare", "good", "nan", "--format", "json"],
                                 "not a finite number"),
    "compare json into a file": (_args("compare", "good", "good", "--format", "json", "--output", "afile/c.json"), "afile"),
    "compare interleave": (_args("compare", "good", "good", "--interleave"), "is now bench ab"),
    "compare csv": (_args("compare", "good", "good", "--format", "csv"), "bench compare writes rich, md, json"),
    "compare empty run": (_args("compare", "good", "empty"), "holds no records"),
    # leaderboard, show
    "leaderboard missing run": (_args("leaderboard", "nope"), "no run"),
    "leaderboard no runs at all": (_args("leaderboard"), "no runs"),
    "leaderboard empty run": (_args("leaderboard", "empty"), "holds no records"),
    "leaderboard corrupt record": (_args("leaderboard", "corrupt"), "not a readable results file"),
    "leaderboard mistyped record": (_args("leaderboard", "typed"), "p50"),
    "leaderboard output into a file": (_args("leaderboard", "good", "--format", "md", "--output", "afile/l.md"), "afile"),
    "leaderboard html into a file": (_args("leaderboard", "good", "--html", "afile/site"), "afile"),
    "leaderboard csv into a file": (_args("leaderboard", "good", "--format", "csv", "--output", "afile/l.csv"), "afile"),
    "show missing run": (_args("show", "nope"), "no run"),
    "show corrupt record": (_args("show", "corrupt"), "not a readable results file"),
    "show mistyped record": (_args("show", "typed"), "p50"),
    # history and the index
    "history without an index": (_args("history"), "no index"),
    "history corrupt index, no records": (_plant_index(b"this is not sqlite" * 100), "no records"),
    "history plot into a file": (lambda root: _two_indexed_runs(root) + ["history", "--plot", "afile/h.png"], "afile"),
    "history plot of an unknown type": (lambda root: _two_indexed_runs(root) + ["history", "--plot", "h.jpg"], ".png"),
    "index rebuild without records": (_args("reindex", "--results", "empty"), "no records"),
    "baseline set missing run": (_args("baseline", "set", "nope"), "no run"),
    # ingest
    "ingest missing file": (_args("ingest", "nope.json"), "nope.json"),
    "ingest not json": (_ingest_file("bad.json", "{not json"), "bad.json"),
    "ingest wrong format": (_ingest_file("f.json", device_results(f=lambda d: d.update(format="x"))), "format"),
    "ingest one 1-ns sample": (_ingest_file("one.json", device_results(
        s=lambda d: d["results"][0]["processes"][0].update(samples_ns=[1]))), "samples"),
    "ingest absurd samples": (_ingest_file("big.json", device_results(
        s=lambda d: d["results"][0]["processes"][0].update(samples_ns=[10**30] * 40))), "samples_ns"),
    "ingest duplicate job": (_ingest_file("dup.json", device_results(d=lambda d: d["results"].append(one_result))),
                             "twice"),
    "ingest zero repeats": (_ingest_file("rep.json", device_results(r=lambda d: d["protocol"].update(repeats=0))),
                            "repeats"),
    "ingest mistyped batch": (_ingest_file("typ.json", device_results(
        t=lambda d: d["results"][0]["job"].update(batch="one"))), "batch"),
    "ingest unknown job field": (_ingest_file("fld.json", device_results(
        u=lambda d: d["results"][0]["job"].update(colour="red"))), "unknown or missing"),
    "ingest empty results": (_ingest_file("none.json", device_results(e=lambda d: d.update(results=[]))), "results"),
    "ingest unknown model": (_ingest_file("mod.json", device_results(
        m=lambda d: d["results"][0]["job"].update(model="mobileone_s9"))), "mobileone_s9"),
    "ingest device name with a newline": (_ingest_file("nl.json", device_results(
        n=lambda d: d["device"].update(model="iPhone\nEvil"))), "device/model"),
    "ingest device name with a path": (_ingest_file("dd.json", device_results(
        n=lambda d: d["results"][0]["job"].update(device="../../etc"))), "path part"),
    # accuracy
    "accuracy zero classes": (_args("accuracy", "-m", MODEL, "--weights", "garbage.pth", "--data", "good",
                                    "--num-classes", "0"), "--num-classes"),
    "accuracy negative workers": (_args("accuracy", "-m", MODEL, "--weights", "garbage.pth", "--data", "good",
                                        "--workers", "-1"), "--workers"),
    "accuracy zero limit": (_args("accuracy", "-m", MODEL, "--weights", "garbage.pth", "--data", "good",
                                  "--limit", "0"), "--limit"),
    "accuracy missing data": (_args("accuracy", "-m", MODEL, "--weights", "garbage.pth", "--data", "nope"), "nope"),
    "accuracy missing weights": (_args("accuracy", "-m", "mobileone_s0", "--weights", "nope.pth", "--data", "good"),
                                 "nope.pth"),
    # selfcheck, ablation, list, export
    "selfcheck zero rounds": (_args("selfcheck", "--rounds", "0"), "--rounds"),
    "selfcheck negative seconds": (_args("selfcheck", "--seconds", "-1"), "--seconds"),
    "ablation unknown kind": (_args("ablation", "colours"), "colours"),
    "list unknown model": (_args("list", "models", "mobileone_s9"), "mobileone_s9"),
    "export unknown backend": (_args("export", "--backend", "openvino", "--bundle", "b"), "coreml"),
    # backend options: a field twice is ambiguous, a long value is quoted cut to a line
    "run option given twice": (_args("run", "-m", MODEL, "-b", "onnxruntime", "-p", "int8", "-o", "onnxruntime.per_channel=true",
                                     "-o", "onnxruntime.per_channel=false"), "'onnxruntime.per_channel' is given twice"),
    "run option value 100,000 characters": (_args("run", "-m", MODEL, "-b", "onnxruntime", "-o",
                                                  "onnxruntime.calibration_method=" + "x" * 100_000), "(100,000 characters)"),
    # calibration images Pillow refuses (a decompression bomb: 256 megapixels)
    "run calibration decompression bomb": (lambda root: _bomb(root) + ["run", "-m", MODEL, "-b", "onnxruntime", "-p", "int8",
                                                                       "--calibration", "bomb", "--calibration-size", "1"],
                                           "bomb/big.png"),
    "accuracy layers on fp32": (_args("accuracy", "-m", MODEL, "--weights", "garbage.pth", "--data", "good", "-b",
                                      "onnxruntime", "--layers"), "add -p int8"),
    "accuracy layers without a reader": (_args("accuracy", "-m", MODEL, "--weights", "garbage.pth", "--data", "good",
                                               "-b", "tensorrt", "-p", "int8", "--layers"), "-b onnxruntime or -b openvino or -b torch-compile"),
    "run recipe layer unknown": (_args("run", "-m", "mobileone_s0", "-b", "onnxruntime", "-p", "int8", "-o",
                                       "int8.float_layers=stage9.reparam_conv"), "has no convolution or linear layer"),
    "run recipe without int8": (_args("run", "-m", MODEL, "-b", "onnxruntime", "-o", "int8.equalize=true"),
                                "add -p int8"),
    "int8 data without weights": (_args("int8", "--data", "good"), "add --weights"),
    "int8 budget below zero": (_args("int8", "-m", MODEL, "--budget", "-1"), "--budget is the top-1 points int8 may lose"),
    "int8 pairs too few": (_args("int8", "-m", MODEL, "--pairs", "2"), "--pairs must be between 3"),
    "ab window too short": (_args("ab", "-m", MODEL, "--window-ms", "1"), "--window-ms must be between 5 and 10000"),
    "int8 budget without calibration": (_args("int8", "-m", MODEL, "--budget", "1"), "add --weights and --calibration"),
    "run input size too small": (_args("run", "-m", MODEL, "--input-size", "8"), "--input-size must be at least 32"),
    "accuracy input size too small": (_args("accuracy", "-m", MODEL, "--weights", "garbage.pth", "--data", "good",
                                            "--input-size", "0"), "--input-size must be at least 32"),
    "profile zero rows": (_args("profile", "-m", MODEL, "-b", "torch", "--top", "0"), "--top"),
    "nightly missing baseline constraints": (_args("nightly", "--baseline-constraints", "nope.txt"), "nope.txt"),
    "baseline pin missing constraints": (_args("baseline", "pin", "--from", "nope.txt", "--to", "b.txt"), "nope.txt"),
    # the lab's address: malformed, empty, or nothing listening there (loopback ports only)
    "cluster malformed address": (_args("cluster", "--cluster", "nope"), "is not HOST:PORT"),
    "cluster empty address": (_args("cluster", "--cluster", ""), "is not HOST:PORT"),
    "cluster port out of range": (_args("cluster", "--cluster", "127.0.0.1:70000"), "is not HOST:PORT"),
    "cluster unreachable": (_args("cluster", "--cluster", "127.0.0.1:1"), "cannot reach the Ray cluster"),
    "run cluster unreachable": (_args("run", "-m", MODEL, "--cluster", "127.0.0.1:1"), "cannot reach the Ray cluster"),
    "run cluster malformed": (_args("run", "-m", MODEL, "--cluster", "127.0.0.1:"), "is not HOST:PORT"),
    "worker unreachable head": (_args("worker", "--cluster", "127.0.0.1:1", "--name", "x"), "cannot reach the Ray cluster"),
    # one -o sets one field: a comma or '=' inside a value is refused, never read as a second setting (#49)
    "run option smuggles a second field": (_args("run", "-m", "mobileone_s0", "-b", "onnxruntime", "-p", "int8", "-o",
                                                 "int8.float_layers=stage0.reparam_conv,equalize=true"), "may not hold ','"),
    "run option layers split by a comma": (_args("run", "-m", "mobileone_s0", "-b", "onnxruntime", "-p", "int8", "-o",
                                                 "int8.float_layers=stage0.reparam_conv,stage1.0.reparam_conv"), "may not hold ','"),
    "run option layer not a module name": (_args("run", "-m", "mobileone_s0", "-b", "onnxruntime", "-p", "int8", "-o",
                                                 "int8.float_layers=stage0 reparam"), "is not a module name"),
    "run option with an escape": (_args("run", "-m", MODEL, "-b", "onnxruntime", "-p", "int8", "-o",
                                        "int8.float_layers=\x1b[2J"), "control character"),
    # an output is a new path or a regular file: never a folder, a FIFO or a device (renamed over as root) (#49)
    "compare output fifo": (lambda root: _fifo(root) + ["compare", "good", "good", "--format", "md", "--output", "fifo"],
                            "--output fifo is a FIFO"),
    "leaderboard output folder": (_args("leaderboard", "good", "--format", "md", "--output", "empty"),
                                  "--output empty is a folder"),
    "history plot fifo": (lambda root: _fifo(root) + ["history", "--plot", "fifo"], "--plot fifo is a FIFO"),
    # bench ab: the sides are one network in shape, each key once, an env name a name, pairs bounded (#49)
    "ab sides of two shapes": (lambda root: _ten_class(root) + ["ab", "-m", MODEL, "-b", "torch", "--candidate",
                                                                "weights=ten.pth"], "the two sides are different networks"),
    "ab env name with a space": (_args("ab", "-m", MODEL, "--candidate", "env.A B=1"), "is not KEY=VALUE"),
    "ab side key twice": (_args("ab", "-m", MODEL, "--candidate", "weights=a.pth", "--candidate", "weights=b.pth"),
                          "weights= is given twice"),
    "ab pairs without a ceiling": (_args("ab", "-m", MODEL, "--pairs", "99999999999"), "--pairs must be between 3"),
    # int8 and compare bounds; labelled data checked against the head before any search or build (#49)
    "int8 budget infinite": (_args("int8", "-m", MODEL, "--budget", "inf"), "between 0 and 100"),
    "int8 budget above 100 points": (_args("int8", "-m", MODEL, "--budget", "1e9"), "between 0 and 100"),
    "compare memory threshold infinite": (_args("compare", "good", "good", "--memory-threshold", "inf"),
                                          "--memory-threshold must be a fraction above 0"),
    "int8 data of other classes than the head": (lambda root: _ten_class(root) + _three_classes(root) + [
        "int8", "-m", MODEL, "-b", "onnxruntime", "--weights", "ten.pth", "--num-classes", "10", "--data", "three"],
        "three has 3 classes but the model has 10 outputs"),
    # a head's port: 1-65535 and free, checked before Ray starts, --dry-run included (#49)
    "worker head port out of range": (_args("worker", "--head", "--port", "70000", "--dry-run"), "--port 70000 is not a port"),
    "worker head port negative": (_args("worker", "--head", "--port=-5", "--dry-run"), "--port -5 is not a port"),
    "worker head port in use": (lambda root: ["worker", "--head", "--port", str(_held_port()), "--node-ip-address",
                                              "127.0.0.1", "--dry-run"], "the port is in use on 127.0.0.1"),
    "worker malformed head": (_args("worker", "--cluster", ":6379", "--name", "x", "--dry-run"), "is not HOST:PORT"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_is_one_line_and_exit_2(name: str, here: Path) -> None:
    make, needle = CASES[name]
    args = make(here)
    before = {p for p in here.rglob("*")}
    result = CliRunner().invoke(app, args)
    stderr = result.stderr.strip()
    assert result.exit_code == 2, f"{args}: exit {result.exit_code}\n{result.output}\n{result.exception!r}"
    assert "Traceback" not in result.output and len(stderr.splitlines()) == 1, stderr
    assert needle.lower() in stderr.lower(), stderr
    left = {p for p in here.rglob("*")} - before
    assert not [p for p in left if p.suffix in (".json", ".md", ".png", ".html", ".rebuild", ".sqlite")], left


def test_every_command_has_a_bad_input_case(here: Path) -> None:
    """A new command comes with its bad input: each leaf command of the CLI is named by at least one case."""
    import typer.main

    def leaves(group, prefix=()):
        for name, cmd in getattr(group, "commands", {}).items():
            if getattr(cmd, "hidden", False):
                continue
            yield from leaves(cmd, prefix + (name,)) if getattr(cmd, "commands", None) else [" ".join(prefix + (name,))]

    commands = set(leaves(typer.main.get_command(app)))
    assert {"run", "int8", "cluster", "baseline pin"} <= commands  # the CLI's tree is read, groups unfolded
    covered = set()
    for name, (make, _) in CASES.items():
        args = make(_plant(here / "cases" / name))  # each case in a folder of its own: every one must be makeable
        assert args, f"the case {name!r} gives no command"
        covered.update({args[0], " ".join(args[:2])})
    missing = sorted(commands - covered - COMMANDS_WITHOUT_INPUT)
    assert not missing, f"commands with no bad-input case: {missing}"
    assert not COMMANDS_WITHOUT_INPUT - commands  # no exemption outlives its command


# commands whose every input is a choice typer itself checks, or that take none
COMMANDS_WITHOUT_INPUT = {"list backends", "list models"}


def test_a_long_value_is_quoted_cut_to_a_line(here: Path) -> None:
    result = CliRunner().invoke(app, ["run", "-m", MODEL, "-b", "onnxruntime", "-o",
                                      "onnxruntime.calibration_method=" + "x" * 100_000])
    assert result.exit_code == 2 and len(result.stderr) < 300, len(result.stderr)


def test_a_large_calibration_image_is_used_without_pillows_warning(here: Path) -> None:
    """12000x12000 is above Pillow's warning limit, below its refusal: it calibrates, and nothing of Pillow's
    warning reaches the user (a large photo is resized like any other)."""
    import warnings

    from PIL import Image

    from harness.measure.calibration import build, describe
    from model_zoo.spec import Preprocess

    (here / "big").mkdir()
    Image.new("1", (12000, 12000)).save(here / "big" / "a.png")
    pre = Preprocess(input_size=32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning Pillow raises fails the test
        described = describe("big", 1, pre)
        assert build(described, pre).load().shape == (1, 3, 32, 32)


def test_a_calibration_folder_says_what_it_left_out(here: Path) -> None:
    from PIL import Image

    from harness.measure.calibration import describe
    from model_zoo.spec import Preprocess

    for folder in ("class with space", "..hidden", "ünïcødé", "-rf"):
        (here / "cal" / folder).mkdir(parents=True)
        Image.new("RGB", (8, 8)).save(here / "cal" / folder / "x.png")
    (here / "cal" / "-rf" / "notes.txt").write_text("not an image")
    said: list[str] = []
    described = describe("cal", 3, Preprocess(input_size=8), said.append)
    assert described.size == 3
    assert said == [f"--calibration {Path('cal')}: left out 1 hidden entry (..hidden): a name starting with '.' is hidden "
                    "by rule; 1 file that is not an image (images end in .bmp, .jpeg, .jpg, .png, .ppm, .tif, .tiff, "
                    ".webp)"]
    with pytest.raises(HarnessError, match=r"holds 3 images, fewer than --calibration-size 4 \(left out: 1 hidden"):
        describe("cal", 4, Preprocess(input_size=8))
    (here / "one").mkdir()
    Image.new("RGB", (8, 8)).save(here / "one" / "x.png")
    with pytest.raises(HarnessError, match="holds 1 image, fewer"):
        describe("one", 2, Preprocess(input_size=8))


def test_accuracy_that_fails_its_checks_creates_nothing(here: Path) -> None:
    """A class-count mismatch and an unreadable checkpoint: exit 2, and no empty RESULTS/accuracy/ left behind."""
    from PIL import Image

    for label in ("c0", "c1"):
        (here / "data" / label).mkdir(parents=True)
        Image.new("RGB", (8, 8)).save(here / "data" / label / "x.png")
    for extra, needle in (([], "1000 outputs"), (["--num-classes", "2"], "garbage.pth")):
        result = CliRunner().invoke(app, ["accuracy", "-m", "mobileone_s0", "--weights", "garbage.pth", "--data", "data",
                                          "--results", "out", *extra])
        assert result.exit_code == 2 and needle in result.stderr, result.stderr
        assert not (here / "out").exists()


def test_profile_refuses_an_unwritable_output_before_any_work_naming_it(here: Path) -> None:
    result = CliRunner().invoke(app, ["profile", "-m", MODEL, "-b", "torch", "--format", "json",
                                      "--output", "/proc/nope.json", "--out", "run"])
    assert result.exit_code == 2 and "--output /proc/nope.json cannot be written" in result.stderr, result.stderr
    assert ".tmp" not in result.stderr and not (here / "run").exists()


def test_an_unwritable_index_does_not_stop_a_sweep(here: Path, monkeypatch) -> None:
    from harness.measure.jobs import plan
    from harness.measure.protocol import preset
    from harness.measure.runner import run_sweep
    from harness.store import runs as store

    (here / "results").mkdir()
    (here / "results" / "index.sqlite").mkdir()  # a folder where the index file should be: not writable as one
    said: list[str] = []
    jobs = plan([MODEL], ["torch"], ["fp32"], [1, 2], 1, input_sizes={MODEL: 64})
    recs = run_sweep(jobs, preset("quick", probe=False, min_s=0.05, max_s=0.1, warmup_s=0.01), here / "run", stores=Stores(cache_dir=here / "cache", index_db=store.default_index(here / "results")), say=said.append)
    assert [r["status"] for r in recs] == ["ok", "ok"] and len(list((here / "run" / "records").glob("*.json"))) == 2
    assert len(said) == 1 and "going on without it" in said[0]


def test_a_corrupt_index_is_rebuilt_from_the_records(here: Path) -> None:
    from harness.store import runs as store

    root = here / "results"
    _write_run(root / "runs" / "r", [record([np.full(30, 1e6)], model="a")])
    (root / "index.sqlite").write_bytes(b"garbage" * 500)
    rows = store.query(store.default_index(root))
    assert [r["model"] for r in rows] == ["a"]
    assert not (root / "index.rebuild").exists()
    with sqlite3.connect(root / "index.sqlite") as con:
        assert con.execute("SELECT count(*) FROM records").fetchone()[0] == 1


def test_an_unexpected_error_is_one_line_exit_4_and_debug_shows_it(here: Path, monkeypatch) -> None:
    from harness.store import runs as store

    monkeypatch.setattr(store, "find_run", lambda *a, **k: (_ for _ in ()).throw(ZeroDivisionError("planted")))
    result = CliRunner().invoke(app, ["show", "good"])
    assert result.exit_code == 4 and "this is a bug" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    monkeypatch.setenv("ONEBENCH_DEBUG", "1")
    assert isinstance(CliRunner().invoke(app, ["show", "good"]).exception, ZeroDivisionError)


JSONISH = st.recursive(st.none() | st.booleans() | st.integers(-10**20, 10**20) | st.floats(allow_nan=False)
                       | st.text(max_size=8),
                       lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                       max_leaves=20)


def _mutations(base: dict) -> st.SearchStrategy:
    """A valid document with one field, anywhere in it, replaced by arbitrary JSON."""
    paths = []

    def walk(node, path):
        paths.append(path)
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, path + [k])
        elif isinstance(node, list) and node:
            walk(node[0], path + [0])

    walk(base, [])
    return st.tuples(st.sampled_from(paths[1:]), JSONISH)


def _apply(base: dict, change) -> dict:
    doc = json.loads(json.dumps(base))
    path, value = change
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return doc


@settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(_mutations(device_results()))
def test_any_ingest_document_loads_or_is_refused_in_one_line(tmp_path: Path, change) -> None:
    path = tmp_path / "doc.json"
    path.write_text(json.dumps(_apply(device_results(), change)))
    try:
        ingest.read_results(path)
    except HarnessError as exc:
        assert len(str(exc).splitlines()) == 1


RECORD = record([np.full(40, 1e6)], model="a")


@settings(max_examples=150, deadline=None, derandomize=True)
@given(_mutations(RECORD))
def test_any_record_document_validates_or_is_refused_and_a_valid_one_renders(change) -> None:
    from harness.publish import leaderboard, show

    doc = _apply(RECORD, change)
    try:
        records.validate(doc)
    except HarnessError as exc:
        assert len(str(exc).splitlines()) == 1
        return
    show.job_lines([doc])  # what validates must not crash the readers
    leaderboard.as_lists([doc])


@pytest.mark.parametrize("source, needle", [
    ("def broken(:\n", "SyntaxError"), ("raise RuntimeError('boom')\n", "boom"),
    ("import sys\nsys.exit(0)\n", "sys.exit(0)"), ("import sys\nsys.exit(3)\n", "sys.exit(3)"),
    ("from backends import registry\nregistry.register('onnxruntime', 'bad_plugin:X')\n", "built-in backend")])
def test_a_broken_plugin_is_one_line(source: str, needle: str, here: Path, monkeypatch) -> None:
    (here / "bad_plugin.py").write_text(source)
    monkeypatch.syspath_prepend(str(here))
    monkeypatch.setenv("ONEBENCH_PLUGINS", "bad_plugin")
    result = CliRunner().invoke(app, ["list", "backends"])
    assert result.exit_code == 2 and "bad_plugin" in result.stderr and needle in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_plugin_that_prints_leaves_stdout_to_the_command(here: Path, monkeypatch) -> None:
    (here / "chatty_plugin.py").write_text("print('hello from a plugin')\n")
    monkeypatch.syspath_prepend(str(here))
    monkeypatch.setenv("ONEBENCH_PLUGINS", "chatty_plugin")
    result = CliRunner().invoke(app, ["cluster", "--cluster", "nope"])  # any command: its stdout stays its own
    assert "hello from a plugin" not in result.stdout and "hello from a plugin" in result.stderr


def test_a_plugin_that_hangs_at_import_is_one_line(here: Path, monkeypatch) -> None:
    (here / "slow_plugin.py").write_text("import time\ntime.sleep(30)\n")
    monkeypatch.syspath_prepend(str(here))
    monkeypatch.setenv("ONEBENCH_PLUGINS", "slow_plugin")
    monkeypatch.setenv("ONEBENCH_PLUGIN_TIMEOUT_S", "0.5")
    result = CliRunner().invoke(app, ["list", "backends"])
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "the plugin 'slow_plugin' did not finish importing within 0.5 s" in result.stderr


def test_markdown_escapes_names_and_files_are_world_readable(here: Path) -> None:
    from harness.publish import leaderboard

    evil = record([np.full(30, 1e6)], model="<img src=x onerror=alert(1)>|x")
    text = leaderboard.to_markdown([evil])
    assert "<img" not in text and "&lt;img src=x onerror=alert(1)&gt;\\|x" in text
    records.atomic_write_text(here / "site" / "index.html", "x")
    assert (here / "site" / "index.html").stat().st_mode & 0o044 == 0o044


def test_a_measurement_process_ignores_ctrl_c() -> None:
    """Ctrl-C is the parent's: the sweep stops there (and resumes later), no child prints a traceback."""
    from harness.measure.launch import mp_context, run_in_process
    from harness.measure.outcomes import Done

    assert run_in_process(mp_context(), {}, 30, target="tests.fake_backends:interrupted") == Done("finished")


@pytest.mark.parametrize("command", [["cluster"], ["run", "-m", MODEL, "-b", "torch"]])
def test_a_bad_cluster_address_from_the_environment_is_named_as_such(command: list[str], here: Path) -> None:
    """#49: ONEBENCH_CLUSTER=ray:// was refused as "--cluster 'ray://'", a flag the user never typed."""
    result = CliRunner().invoke(app, command, env={"ONEBENCH_CLUSTER": "ray://"})
    assert result.exit_code == 2 and "the ONEBENCH_CLUSTER variable 'ray://' is not HOST:PORT" in result.stderr
    assert "--cluster 'ray://'" not in result.stderr
