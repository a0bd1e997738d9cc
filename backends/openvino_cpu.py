"""OpenVINO on the CPU, from the cached ONNX export, with a static input shape.

Precision is always explicit (`INFERENCE_PRECISION_HINT`): OpenVINO otherwise runs bf16 on CPUs that
have it and reports an fp32 model. The latency hint and `INFERENCE_NUM_THREADS` match the job; the
settings the compiled model reports back are recorded.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from torch import nn

from backends.artifact_cache import cached, recorded_sha256
from backends.base import Availability, JobSpec, OpenContext, Session, common_unsupported
from backends.onnx_export import checked_graph, export_availability, export_onnx

INSTALL = "pip install 'onebench[openvino]'"
PRECISION_HINTS = {"fp32": "f32", "bf16": "bf16", "fp16": "f16"}
CAPABILITY = {"bf16": "BF16", "fp16": "FP16"}
# OpenVINO's CPU plugin has no wait-policy property: its TBB workers spin briefly, then sleep; at the
# default single thread an idle request has no worker threads at all.
WAIT_POLICY = "TBB default (no passive setting exists)"


def cpu_capabilities() -> list[str]:
    import openvino as ov

    return list(ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"))


def _text(value: object) -> str:
    """A property as OpenVINO spells it in its config ("f32", not "<Type: 'float32'>")."""
    return value.get_type_name() if hasattr(value, "get_type_name") else str(value)


def _converted(ov, core, onnx: Path, shape: list[int]):
    """The ONNX file converted to OpenVINO IR once, saved beside it (keyed by the ONNX file's name, which
    already keys weights, exporter and shape, plus OpenVINO's version), then read back: converting costs
    0.1-0.8 s in every measurement process, reading the IR a fraction of that."""
    ir = onnx.with_name(f"{onnx.stem}.ov{ov.__version__.split('-')[0]}.xml")

    def build(tmp: Path) -> None:
        ov.save_model(ov.convert_model(str(onnx), input=[ov.PartialShape(shape)]), str(tmp), compress_to_fp16=False)

    cached(ir, build, companions=(".bin",))
    return core.read_model(str(ir))


class OpenVinoCPU:
    name = "openvino"
    packages = ("onnx", "onnxscript", "openvino")  # the versions a record of this backend states
    description = "OpenVINO (CPU plugin)"
    devices = ("cpu",)
    precisions = ("fp32", "bf16", "fp16")
    preload = ("openvino",)  # imported once by the sweep's fork server, not in every process

    def availability(self) -> Availability:
        return export_availability("openvino", INSTALL)

    def unsupported(self, job: JobSpec) -> str | None:
        reason = common_unsupported(self, job)
        if reason is None and job.precision in CAPABILITY and CAPABILITY[job.precision] not in cpu_capabilities():
            reason = f"this CPU has no native {job.precision} support in OpenVINO (capabilities: {', '.join(cpu_capabilities())})"
        return reason

    def open(self, model: nn.Module, job: JobSpec, ctx: OpenContext) -> Session:
        import openvino as ov

        path, export_s = export_onnx(model, job.model, ctx.weights_hash, job.batch, job.input_size, ctx.cache_dir)
        graph = checked_graph(path, job.model, job.form)
        core = ov.Core()
        start = time.perf_counter()
        ov_model = _converted(ov, core, path, list(ctx.example.shape))
        convert_s = time.perf_counter() - start
        config = {
            "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_NUM_THREADS": job.threads,
            "INFERENCE_PRECISION_HINT": PRECISION_HINTS[job.precision],
        }
        start = time.perf_counter()
        compiled = core.compile_model(ov_model, "CPU", config)
        compile_s = time.perf_counter() - start
        request = compiled.create_infer_request()
        request.set_input_tensor(ov.Tensor(ctx.example, shared_memory=True))

        def run() -> None:
            request.infer()

        def infer(x: np.ndarray) -> np.ndarray:
            return np.array(compiled(np.ascontiguousarray(x, dtype=np.float32))[0], dtype=np.float32)

        reported = {key: _text(compiled.get_property(key)) for key in
                    ("INFERENCE_PRECISION_HINT", "INFERENCE_NUM_THREADS", "PERFORMANCE_HINT", "NUM_STREAMS")}
        return Session(
            run=run, infer=infer, cold={"export_s": export_s, "convert_s": convert_s, "compile_s": compile_s},
            artifact={"path": str(path), "sha256": recorded_sha256(path), "format": "onnx"},
            info={"openvino": reported, "wait_policy": WAIT_POLICY, "graph": graph},
        )
