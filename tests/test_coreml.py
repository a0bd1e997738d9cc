"""Core ML as far as Linux allows: conversion, the no-branch check, the Linux `skipped` path, the
iPhone bundle, `bench ingest` of a results file in the runner's format, and that format's Swift side."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import model_zoo
from backends import coreml
from backends.base import JobSpec
from backends.graph_rules import check_graph, deployed_rule
from harness.cli import app
from harness.device import ingest
from harness.device.bundle import export_bundle
from harness.errors import HarnessError
from harness.measure.protocol import preset
from harness.publish.leaderboard import as_lists
from harness.store import runs as store
from tests.helpers import bench
from tests.tiny_mobileone import NAME as TINY

pytest.importorskip("coremltools")
SWIFT = Path(__file__).parents[1] / "runners" / "ios"


def _job(model: str, precision: str = "fp16", form: str = "fused") -> JobSpec:
    return JobSpec(model=model, backend="coreml", device="all", precision=precision, form=form,
                   input_size=model_zoo.get_spec(model).input_size)


@pytest.mark.parametrize("variant", ["s0", pytest.param("s4", marks=pytest.mark.slow)])
def test_fused_mobileone_converts_without_branches(variant: str, tmp_path: Path) -> None:
    name = f"mobileone_{variant}"
    torch.manual_seed(0)
    model = model_zoo.create(name, form="fused")
    path, artifact, info = coreml.convert_and_check(model, _job(name), tmp_path, "w" * 8)
    graph = info["graph"]
    assert path.suffix == ".mlpackage" and artifact["format"] == "mlpackage" and artifact["deployment_target"] == "iOS16"
    assert graph["applies"] and graph["passed"] and graph["found"] == {}
    assert graph["ops"]["conv"] > 40 and "add" not in graph["ops"]
    if variant == "s4":  # its squeeze-excitation blocks: pooling, sigmoid gate and multiply, and nothing else
        assert graph["ops"]["sigmoid"] == graph["ops"]["mul"] > 0
    assert coreml.convert(model, _job(name), tmp_path, "w" * 8) == (path, 0.0)  # cached
    assert coreml.package_path(tmp_path, _job(name, "fp32"), "w" * 8) != path


@pytest.mark.parametrize("name, adds", [(TINY, 5), pytest.param("mobileone_s0", 100, marks=pytest.mark.slow)])
def test_the_check_catches_branches_in_the_training_form(name: str, adds: int, tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = model_zoo.create(name, form="train")
    path, _ = coreml.convert(model, _job(name, form="train"), tmp_path, "t" * 8)
    counts = coreml.op_counts(path)
    assert counts["add"] > adds  # the train-time branches, summed
    check = check_graph(counts, coreml.OP_KINDS, deployed_rule(name))
    assert not check["passed"] and check["found"] == {"add": counts["add"], "batchnorm": counts["batch_norm"]}
    assert check_graph(counts, coreml.OP_KINDS, deployed_rule("mobilenetv2_100")) == {"applies": False, "ops": counts}


@pytest.mark.parametrize("name", [TINY, pytest.param("mobileone_s0", marks=pytest.mark.slow)])
def test_linux_run_converts_checks_and_writes_skipped_records(name: str, tmp_path: Path) -> None:
    env = {"ONEBENCH_PLUGINS": "tests.tiny_mobileone"}
    done = bench("run", "--preset", "quick", "-m", name, "-b", "coreml", "--compute-units", "all",
                 "--compute-units", "cpu-ne", "--threads", "1", "--out", "run", cwd=tmp_path, env=env)
    # off macOS every job is a skipped record, so the sweep measured nothing: exit 3
    assert done.returncode == (0 if sys.platform == "darwin" else 3), done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    recs = [json.loads(p.read_text()) for p in (tmp_path / "run" / "records").glob("*.json")]
    assert sorted(r["job"]["device"] for r in recs) == ["all", "cpu-ne"]
    for rec in recs:
        assert rec["status"] == "skipped" and "needs macOS or iOS" in rec["message"]
        assert rec["job"]["precision"] == "fp16" and rec["backend_info"]["graph"]["passed"]
        assert Path(rec["artifact"]["path"]).is_dir() and rec["artifact"]["path"] in rec["message"]
    assert any(r["cold_start"]["convert_s"] > 0 for r in recs)
    shown = CliRunner().invoke(app, ["show", str(tmp_path / "run")]).stdout  # in-process: no start-up
    fused = model_zoo.create(name, form="fused")
    convs = sum(isinstance(m, torch.nn.Conv2d) for m in fused.modules())  # S0: 43 (one per block, and SE's)
    assert f"deployed graph: conv {convs}" in shown and "no add / batchnorm left: PASS" in shown
    listing = CliRunner().invoke(app, ["list", "backends"], env={"COLUMNS": "200"}).stdout  # in-process: no start-up
    assert re.search(r"coreml\s+│\s+converts only", listing)
    bad = CliRunner().invoke(app, ["run", "-m", "mobileone_s0", "-b", "coreml", "--compute-units", "ane"])
    assert bad.exit_code == 2 and "unknown compute unit 'ane'" in bad.stderr


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("b") / "bundle"
    assert export_bundle("coreml", ["mobileone_s0"], None, ["all", "cpu-ne"], folder, preset("quick"),
                         folder.parent / "cache") == (folder / "manifest.json", 2)
    return folder


def test_bundle_holds_packages_rules_and_job_keys(bundle: Path, tmp_path: Path) -> None:
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["format"] == "onebench-coreml-bundle" and manifest["protocol"] == preset("quick").as_dict()
    assert json.loads((bundle / "protocol.json").read_text())["min_iters"] == preset("quick").min_iters
    assert [j["job_id"] for j in manifest["jobs"]] == ["mobileone_s0.fused.coreml.all.fp16.b1.t1.on-device",
                                                       "mobileone_s0.fused.coreml.cpu-ne.fp16.b1.t1.on-device"]
    for entry in manifest["jobs"]:
        assert coreml.package_sha256(bundle / entry["package"]) == entry["package_sha256"]
        assert entry["input"] == {"name": "input", "shape": [1, 3, 224, 224]} and entry["graph"]["passed"]
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.txt").write_text("keep")
    with pytest.raises(HarnessError, match="is not an onebench bundle"):
        export_bundle("coreml", ["mobileone_s0"], ["fp16"], ["all"], tmp_path / "notes", preset("quick"), tmp_path / "cache")


@pytest.mark.slow
def test_cli_export_writes_a_bundle_and_refuses_bad_options(tmp_path: Path) -> None:
    done = bench("export", "--backend", "coreml", "--bundle", "b", "-m", "mobileone_s0", "--preset", "quick", cwd=tmp_path)
    assert done.returncode == 0 and "(1 jobs)" in done.stdout, done.stderr[-2000:]
    assert json.loads((tmp_path / "b" / "manifest.json").read_text())["protocol"]["preset"] == "quick"
    bad = bench("export", "--backend", "coreml", "--bundle", "c", "--compute-units", "ane", cwd=tmp_path)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "unknown compute unit 'ane'" in bad.stderr
    for args, needle in (((["mobileone_s0"], ["bf16"], ["all"]), "unknown coreml precision 'bf16'"),
                         ((["mobileone_s9"], ["fp16"], ["all"]), "unknown model 'mobileone_s9'")):
        with pytest.raises((HarnessError, model_zoo.ZooError), match=needle):
            export_bundle("coreml", *args, tmp_path / "c", preset("quick"), tmp_path / "cache")
    assert not (tmp_path / "c").exists()
    other = CliRunner().invoke(app, ["export", "--backend", "onnxruntime", "--bundle", str(tmp_path / "c")])
    assert other.exit_code == 2 and "onnxruntime has no device bundle" in other.stderr


def runner_results(bundle: Path) -> dict:
    """A results file as runners/ios writes it (DeviceResults in Formats.swift), with made-up samples."""
    manifest = json.loads((bundle / "manifest.json").read_text())
    rng = np.random.default_rng(0)
    results = []
    for entry, level in zip(manifest["jobs"], (1.2e6, 0.9e6)):
        procs = [{"samples_ns": [int(v) for v in rng.normal(level, level * 0.01, 200)], "warmup_ns": [int(level * 1.5)] * 10,
                  "warmup_converged": True, "stop_reason": "ci"}]
        results.append({"job_id": entry["job_id"], "job": entry["job"], "status": "ok", "message": "",
                        "package_sha256": entry["package_sha256"], "processes": procs,
                        "cold_start": {"compile_s": 0.8, "load_s": 0.2, "first_inference_ms": 35.0}})
    return {"format": "onebench-device-results", "version": 1,
            "device": {"model": "iPhone13,2", "os": "iOS 17.5", "name": "test phone", "cores": 6, "thermal_state": "nominal"},
            "runner": {"name": "OnebenchRunner", "version": "0.1.0", "clock": "DispatchTime.uptimeNanoseconds (monotonic)"},
            "protocol": manifest["protocol"], "results": results}


def test_ingest_stores_device_results_as_ordinary_records(bundle: Path, tmp_path: Path) -> None:
    path = tmp_path / "phone.json"
    path.write_text(json.dumps(runner_results(bundle)))
    done = bench("ingest", str(path), cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    folder = next((tmp_path / "results" / "runs").glob("device-*"))
    recs = store.load_run(folder)
    assert {r["job"]["boundary"] for r in recs} == {"on-device"} and all(r["status"] == "ok" for r in recs)
    by_units = {r["job"]["device"]: r for r in recs}
    assert by_units["cpu-ne"]["stats"]["p50"] == pytest.approx(0.9e6, rel=0.01)
    assert by_units["all"]["host"]["cpu"]["model"] == "iPhone13,2" and by_units["all"]["cold_start"]["load_s"] == 0.2
    assert len(store.query(store.default_index(tmp_path / "results"), backend="coreml")) == 2
    shown = bench("show", str(folder), cwd=tmp_path)
    assert shown.returncode == 0 and "coreml · cpu-ne · fp16 · batch 1 · 1 threads · boundary on-device: OK" in shown.stdout
    header, body = as_lists(recs)
    assert "coreml all" in header and "coreml cpu-ne" in header and body[0][0] == "mobileone_s0"


@pytest.mark.parametrize("damage, needle", [
    (lambda d: d["results"][0].update(job_id="other"), "does not match its job"),
    (lambda d: d["results"][0]["processes"][0].update(samples_ns=[0, -5]), "results/0/processes/0/samples_ns/"),
    (lambda d: d.pop("device"), "'device' is a required property"),
    (lambda d: d.update(format="something"), "format"),
])
def test_ingest_rejects_a_bad_file_and_writes_nothing(damage, needle: str, bundle: Path, tmp_path: Path) -> None:
    data = runner_results(bundle)
    damage(data)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(HarnessError, match=re.escape(needle)):
        ingest.ingest(path, tmp_path / "results")
    assert not (tmp_path / "results").exists()


def test_swift_runner_emits_every_field_ingest_requires() -> None:
    """The Swift structs cannot be compiled here; their field names are checked against ingest's schema."""
    source = (SWIFT / "Sources" / "OnebenchProtocol" / "Formats.swift").read_text()
    source += (SWIFT / "Sources" / "OnebenchProtocol" / "TimingProtocol.swift").read_text()
    fields = set(re.findall(r"\bvar (\w+)", source)) | set(re.findall(r'= "(\w+)"', source))
    schema = ingest.SCHEMA
    required = set(schema["required"]) | set(schema["properties"]["device"]["required"])
    result = schema["properties"]["results"]["items"]
    required |= set(result["required"]) | set(result["properties"]["processes"]["items"]["required"])
    required |= set(schema["properties"]["protocol"]["required"]) | set(result["properties"]["job"]["required"])
    assert required - fields == set()


def test_plan_gives_core_ml_its_compute_units_and_fp16_and_stays_model_major() -> None:
    from harness.measure.planner import jobs as planned
    from harness.measure.selection import Selection

    jobs = planned(Selection(models=["mobileone_s0", "mobileone_s1"], backends=["onnxruntime", "coreml"], threads=1, compute_units=["all", "cpu-ne"]))
    assert [(j.model[-2:], j.backend, j.device, j.precision) for j in jobs] == [
        ("s0", "onnxruntime", "cpu", "fp32"), ("s0", "coreml", "all", "fp16"), ("s0", "coreml", "cpu-ne", "fp16"),
        ("s1", "onnxruntime", "cpu", "fp32"), ("s1", "coreml", "all", "fp16"), ("s1", "coreml", "cpu-ne", "fp16")]
    with pytest.raises(HarnessError, match="--compute-units applies to backends with compute units"):
        planned(Selection(models=["mobileone_s0"], backends=["onnxruntime"], threads=1, compute_units=["all"]))
