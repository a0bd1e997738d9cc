"""`bench profile`: ops named in the model's terms on every runtime, kinds, medians, the profiler's overhead
stated, compare, records, show and the site; bad input as everywhere."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from typer.testing import CliRunner

import model_zoo
from backends.onnx_export import export_onnx
from backends.onnx_layers import LayerNames, layer_table
from backends.profiling import OpTime, Profiled
from harness.cli import app
from harness.profile.attribution import by_order, conv_order
from harness.profile.kinds import (
    ADD,
    ATTENTION,
    BATCHNORM,
    CONV_DENSE,
    CONV_DW,
    CONV_PW,
    ELEMENTWISE,
    LINEAR,
    QUANTIZE,
    REORDER,
    SE,
    Classifier,
    flops_by_module,
    op_kind,
)
from harness.profile.summary import kind_table, op_rows, totals
from harness.publish.profile import grouped
from harness.store import profile_records
from harness.store.records import write_record
from tests.synthetic import record

MODEL = "timm:test_byobnet"  # small, with dense, pointwise and squeeze-excite convolutions


class SqueezeExcite(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.reduce, self.expand = nn.Conv2d(c, 2, 1), nn.Conv2d(2, c, 1)

    def forward(self, x):
        return x * torch.sigmoid(self.expand(torch.relu(self.reduce(x.mean((2, 3), keepdim=True)))))


class Attention(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.qkv = nn.Linear(c, 3 * c)

    def forward(self, x):
        return self.qkv(x.mean((2, 3)))[:, : x.shape[1], None, None] + x


class Tiny(nn.Module):
    """Every kind the summary distinguishes: dense, depthwise and pointwise convolutions, a batch norm with
    its convolution, squeeze-excite, attention, an activation, a residual add, a linear head."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.block = nn.Sequential()
        self.block.add_module("dw", nn.Conv2d(8, 8, 3, padding=1, groups=8))
        self.block.add_module("bn", nn.BatchNorm2d(8))
        self.block.add_module("pw", nn.Conv2d(8, 8, 1))
        self.block.add_module("act", nn.ReLU())
        self.se, self.attn, self.head = SqueezeExcite(8), Attention(8), nn.Linear(8, 4)

    def forward(self, x):
        x = self.stem(x)
        x = self.attn(self.se(x + self.block(x)))
        return self.head(x.mean((2, 3)))


@pytest.mark.parametrize(("op", "kind"), [
    ("Relu", "activation (relu)"), ("aten::hardswish_", "activation (hardswish)"), ("Clip", "activation (relu6)"),
    ("QLinearAdd", ADD), ("Add", ADD), ("cpp_fused_add_relu", ADD), ("cpp_fused_relu", "activation (relu)"),
    ("ReorderOutput", REORDER), ("Reorder", REORDER), ("Transpose", REORDER), ("QuantizeLinear", QUANTIZE),
    ("FullyConnected", LINEAR), ("aten::addmm", LINEAR), ("QGemm", LINEAR), ("ReduceMean", "pool"),
    ("Subgraph", ELEMENTWISE), ("aten::empty", None),
])
def test_a_runtime_op_type_names_its_kind(op: str, kind: str | None) -> None:
    assert op_kind(op) == kind


def test_op_kinds_come_from_the_module_an_op_ran_in() -> None:
    classifier = Classifier(Tiny())
    assert classifier.kind("stem", "Convolution") == CONV_DENSE
    assert classifier.kind("block.dw", "GroupConvolution") == CONV_DW
    assert classifier.kind("block.pw", "aten::conv2d") == CONV_PW
    assert classifier.kind("se.reduce", "Conv") == SE  # a module inside squeeze-excite is squeeze-excite
    assert classifier.kind("se", "Mul") == SE
    assert classifier.kind("attn.qkv", "MatMul") == ATTENTION
    assert classifier.kind("block.act", "Relu") == "activation (relu)"
    assert classifier.kind("", "Add") == ADD
    assert classifier.kind("block.bn", "BatchNormalization") == BATCHNORM
    # a batch norm a runtime runs as a 1x1 convolution (ONNX Runtime's NCHWc) is still the model's batch norm
    assert classifier.kind("block.bn", "Conv") == BATCHNORM
    # a compiled package's convolution call, known by its shapes only: (N, C, H, W) input, (O, C/g, kh, kw) weight
    assert classifier.kind("", "aoti_torch_cpu_convolution", ((1, 8, 4, 4), (8, 1, 3, 3))) == CONV_DW
    # the exporter folded the norm into the convolution and named the node after the norm: the convolution
    # with that weight shape among the norm's siblings owns it
    assert classifier.owner("block.bn", "Conv", ((0, 8), (8, 1, 3, 3))) == "block.dw"
    assert classifier.owner("block.bn", "Conv", ((0, 8), (5, 5, 5, 5))) == "block.bn"


def test_each_modules_own_flops_add_up_to_the_models_count() -> None:
    model = Tiny().eval()
    flops = flops_by_module(model, torch.zeros(1, 3, 16, 16))
    assert sum(flops.values()) == 2 * model_zoo.count_macs(model, 16)
    assert flops["stem"] == 2 * 8 * 16 * 16 * 3 * 9 and flops["block.dw"] == 2 * 8 * 16 * 16 * 9


def test_runtime_names_trace_back_to_the_module_through_the_exporters_metadata(tmp_path: Path) -> None:
    path, _ = export_onnx(Tiny().eval(), "tiny", "w", 1, 16, tmp_path)
    table = layer_table(path)
    names = LayerNames(table)
    conv = next(n for n, (layer, op, *_) in table["nodes"].items() if op == "Conv" and layer == "stem")
    relu = next(n for n, (layer, op, *_) in table["nodes"].items() if op == "Relu" and layer == "block.act")
    relu_out = next(out for out, node in table["outputs"].items() if node == relu)
    assert names.layer(conv) == "stem"
    assert names.layer(f"{conv}/WithoutBiases", "Convolution") == "stem"  # OpenVINO's layer
    assert names.layer(f"x_abcd_acdb_{conv}/WithoutBiases", "Reorder") == "stem"  # a reorder OpenVINO inserted
    assert names.layer(f"{conv} + {relu}", "Conv") == "stem"  # TensorRT's fused layer
    # ONNX Runtime names a fused Conv+Relu after the Relu's output: the Conv's own module is found behind it
    assert names.layer(f"{relu_out}_nchwc", "Conv") == "block.pw"
    assert names.layer(f"{relu_out}_nchwc", "Relu") == "block.act"
    assert names.shapes(f"{relu_out}_nchwc", "Conv")[1] == (8, 8, 1, 1)
    assert names.layer("ReorderOutput", "ReorderOutput") == ""


def _profiled(inferences: list[list[tuple[str, float]]], walls: list[float]) -> Profiled:
    return Profiled("test", [[OpTime(name=n, op="Conv", ms=ms, layer=n) for n, ms in ops] for ops in inferences], walls)


def test_an_ops_time_is_its_median_over_the_inferences_and_repeated_calls_stay_apart() -> None:
    classifier = Classifier(Tiny())
    profiled = _profiled([[("stem", 1.0), ("block.pw", 0.2), ("block.pw", 0.4)],
                          [("stem", 3.0), ("block.pw", 0.2), ("block.pw", 0.4)],
                          [("stem", 2.0), ("block.pw", 0.2)]], [5.0, 5.0, 5.0])
    rows = op_rows(profiled, classifier, {"stem": 1000, "block.pw": 500})
    assert [(r["layer"], r["ms"]) for r in rows] == [("stem", 2.0), ("block.pw", 0.2), ("block.pw", 0.4)]
    assert [r["flops"] for r in rows] == [1000, 500, None]  # a module's FLOPs counted once
    kinds = {k["kind"]: k for k in kind_table(rows, {CONV_DENSE: 1000, CONV_PW: 500})}
    assert kinds[CONV_PW]["count"] == 2 and kinds[CONV_PW]["ms"] == pytest.approx(0.6)
    assert kinds[CONV_DENSE]["share"] == pytest.approx(2.0 / 2.6)
    assert kinds[CONV_DENSE]["gflops"] == pytest.approx(1000 / 2e6)


def test_the_profilers_overhead_is_stated_and_explained_past_the_tolerance() -> None:
    rows = [{"ms": 4.0}, {"ms": 4.5}]
    close = totals(_profiled([[]], [9.0]), rows, plain_p50_ms=8.8)
    assert close["within_tolerance"] and close["why"] is None and close["overhead"] == pytest.approx(9 / 8.8 - 1)
    between = totals(_profiled([[]], [12.0]), rows, plain_p50_ms=8.8)  # the ops hold; the time is between them
    assert not between["within_tolerance"] and "between the ops" in between["why"] and "+36%" in between["why"]
    inside = totals(_profiled([[]], [20.0]), [{"ms": 18.0}], plain_p50_ms=8.8)
    assert not inside["within_tolerance"] and "inside the ops" in inside["why"]


def test_a_compiled_packages_convolutions_are_named_only_when_every_weight_shape_matches() -> None:
    model = Tiny().eval()
    order = conv_order(model, torch.zeros(1, 3, 16, 16))
    assert [path for path, _ in order] == ["stem", "block.dw", "block.pw", "se.reduce", "se.expand"]
    calls = [OpTime(name="aoti_torch_cpu_convolution", op="aoti_torch_cpu_convolution", ms=0.1,
                    shapes=((1, 3, 16, 16), shape)) for _, shape in order]
    fused = OpTime(name="cpp_fused_relu_1", op="cpp_fused_relu", ms=0.01)
    named = by_order(Profiled("t", [[calls[0], fused, *calls[1:]]], [1.0]), order)
    assert [op.layer for op in named.inferences[0]] == ["stem", "", "block.dw", "block.pw", "se.reduce", "se.expand"]
    swapped = [calls[1], calls[0], *calls[2:]]  # a reordered graph: nothing is named rather than misnamed
    assert all(not op.layer for op in by_order(Profiled("t", [swapped], [1.0]), order).inferences[0])


def test_layers_merge_by_module_depth_keeping_unclaimed_ops_apart() -> None:
    rows = [{"layer": "block.dw", "name": "a", "op": "Conv", "exec": "k1", "kind": CONV_DW, "ms": 1.0, "flops": 10},
            {"layer": "block.pw", "name": "b", "op": "Conv", "exec": "k2", "kind": CONV_PW, "ms": 3.0, "flops": 30},
            {"layer": "", "name": "ReorderOutput", "op": "ReorderOutput", "exec": "", "kind": REORDER, "ms": 0.5,
             "flops": None}]
    merged = grouped(rows, 1)
    assert [(r["layer"], r["ms"], r["kind"], r["flops"]) for r in merged] == [
        ("block", 4.0, CONV_PW, 40), ("ReorderOutput", 0.5, REORDER, None)]


def _cli(*args: str) -> tuple[int, str, str]:
    """`bench ARGS` in this process (no interpreter start-up): exit code, stdout, stderr."""
    done = CliRunner().invoke(app, list(args))
    return done.exit_code, done.stdout, done.stderr


def test_bench_profile_records_shows_compares_and_publishes(tmp_path: Path, fake_backends) -> None:
    run = tmp_path / "results" / "runs" / "r1"
    code, stdout, stderr = _cli("profile", "-m", MODEL, "-b", "fake-profiled", "--iterations", "3", "--format", "json",
                                "--out", str(run))
    assert code == 0, stderr
    rec = json.loads(stdout)
    saved = profile_records.read(next((run / "profiles").glob("*.json")))
    assert list(saved.rows) == rec["rows"] and saved.profiler.iterations == 3 and saved.document == rec
    convs = [r for r in rec["rows"] if r["op"] == "Conv"]
    assert convs[0]["layer"] == "stem.conv" and convs[0]["kind"] == CONV_DENSE and convs[0]["flops"]
    assert any(r["kind"] == SE for r in rec["rows"])  # the SEModule's convolutions
    assert rec["rows"][-1]["name"] == "node_0" and rec["rows"][-1]["ms"] == pytest.approx(0.1)  # its second call
    assert rec["totals"]["profiled_wall_ms"] == 1.0 and rec["totals"]["plain_p50_ms"] > 0
    assert rec["plain"]["samples"] > 0 and len(rec["plain"]["window_p50_ms"]) == 4  # 3 rounds around the profile
    code, stdout, stderr = _cli("show", str(run))
    assert code == 0 and "time by op kind: squeeze-excite" in stdout, stderr

    stored = next((run / "profiles").glob("*.json"))
    code, _, stderr = _cli("profile", "-m", MODEL, "-b", "fake-profiled", "--threads", "2", "--iterations", "2", "--format",
                           "md", "--compare", str(stored), "--out", str(run), "--by", "op", "--output", str(tmp_path / "p.md"))
    assert code == 0, stderr
    table = (tmp_path / "p.md").read_text()
    assert "A ms" in table and "B ms" in table and "conv (pointwise)" in table and "total (ops)" in table
    assert len(list((run / "profiles").glob("*.json"))) == 2  # one per job

    write_record(run / "records" / "r.json", record([np.full(40, 1_000_000.0)], model=MODEL, backend="fake-profiled"))
    code, _, stderr = _cli("leaderboard", str(run), "--html", str(tmp_path / "site"))
    assert code == 0, stderr
    index = (tmp_path / "site" / "index.html").read_text()
    assert "Where the time goes" in index and f'href="profiles/{rec["job_id"]}.html"' in index
    assert "stem.conv · Conv" in (tmp_path / "site" / "profiles" / f"{rec['job_id']}.html").read_text()

    # a runtime that cannot time the job here: exit 3, one line, nothing written
    code, _, stderr = _cli("profile", "-m", MODEL, "-b", "fake-profiled", "-o", "fake-profiled.elsewhere=true",
                           "--out", str(tmp_path / "other"))
    assert code == 3 and "cannot time timm:test_byobnet here" in stderr, stderr
    assert not list((tmp_path / "other").glob("profiles/*.json"))


def test_onnxruntime_and_torch_profiles_name_their_ops_by_module(tmp_path: Path) -> None:
    for backend in ("onnxruntime", "torch"):
        code, stdout, stderr = _cli("profile", "-m", MODEL, "-b", backend, "--iterations", "2", "--format", "json",
                                    "--out", str(tmp_path / "run"))
        assert code == 0, stderr
        rec = json.loads(stdout)
        convs = [r for r in rec["rows"] if r["kind"].startswith("conv")]
        assert convs and all(r["layer"].endswith("conv") for r in convs), [r for r in convs if not r["layer"].endswith("conv")]
        assert {r["kind"] for r in rec["rows"]} >= {CONV_DENSE, CONV_PW, SE}
        assert rec["totals"]["ops_ms"] > 0 and rec["totals"]["plain_p50_ms"] > 0


@pytest.mark.parametrize(("args", "message"), [
    (["-b", "torch-cudagraph"], "torch-cudagraph has no per-op profiler"),
    (["-b", "onnxruntime", "--top", "0"], "--top must be at least 1"),
    (["-b", "onnxruntime", "--iterations", "0"], "--iterations must be at least 1"),
    (["-b", "onnxruntime", "--compare", "colour=red"], "'colour' cannot change"),
    (["-b", "onnxruntime", "--compare", "onnxruntime"], "names the same job"),
    (["-b", "onnxruntime", "--compare", "threads=two"], "threads must be a whole number"),
    (["-b", "onnxruntime", "--compare", "missing.json"], "missing.json does not exist"),
    (["-b", "onnxruntime", "--compare", "options=per_channel=maybe"], "--compare options=per_channel=maybe: "),
    (["-b", "onnxruntime", "--compare", "backend=onnxrt,options=per_channel=false"], "unknown backend 'onnxrt'"),
    (["-b", "onnxruntime", "--output", "p.md"], "--output writes md or json"),
    (["-b", "onnxruntime", "--calibration", "."], "apply to int8"),
    (["-b", "onnxrt"], "unknown backend 'onnxrt'"),
])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path: Path, monkeypatch, args: list[str], message: str) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, stderr = _cli("profile", "-m", MODEL, *args, "--out", str(tmp_path / "run"))
    assert code == 2 and message in stderr and len(stderr.strip().splitlines()) == 1, stderr
    assert not (tmp_path / "run").exists()


def test_compare_keeps_the_jobs_own_options_or_takes_the_given_ones_as_records_write_them() -> None:
    """#51: the other side of `--compare` is planned from the job's canonical options, never via -o items."""
    from harness.measure.selection import Selection
    from harness.profile import runner

    chosen = Selection(models=(MODEL,), backends=("onnxruntime",), precisions=("int8",),
                       options=("onnxruntime.per_channel=false", "int8.equalize=true"))
    base = runner.plan(chosen, 3)
    assert base.job.options == "per_channel=false,int8.equalize=true"
    assert runner.compared("threads=2", base, chosen).job.options == base.job.options
    assert runner.compared("precision=fp32", base, chosen).job.options == "per_channel=false"  # the recipe is int8's
    assert runner.compared("options=calibration_method=entropy", base, chosen).job.options == "calibration_method=entropy"
    assert runner.compared("torch-compile", base, chosen).job.options == ""
