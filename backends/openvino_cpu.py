"""OpenVINO on the CPU, from the cached ONNX export, with a static input shape.

Precision is always explicit (`INFERENCE_PRECISION_HINT`): OpenVINO otherwise runs bf16 on CPUs that
have it and reports an fp32 model. The latency hint and `INFERENCE_NUM_THREADS` match the job; the
settings the compiled model reports back are recorded.
"""

from __future__ import annotations

import time

import numpy as np
from torch import nn

from backends.base import Availability, JobSpec, OpenContext, Session, common_unsupported
from backends.onnx_export import export_availability, export_onnx, file_sha256

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


class OpenVinoCPU:
    name = "openvino"
    description = "OpenVINO (CPU plugin)"
    devices = ("cpu",)
    precisions = ("fp32", "bf16", "fp16")

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
        core = ov.Core()
        start = time.perf_counter()
        ov_model = ov.convert_model(str(path), input=[ov.PartialShape(list(ctx.example.shape))])
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
            artifact={"path": str(path), "sha256": file_sha256(path), "format": "onnx"},
            info={"openvino": reported, "wait_policy": WAIT_POLICY},
        )
