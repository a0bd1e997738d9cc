"""Backend names -> implementations, imported lazily so a missing runtime never breaks `import`.

Entries are "module:Class" references; the job runner passes the reference to the worker process,
which imports it there. Tests register doubles the same way.
"""

from __future__ import annotations

import importlib

from backends.base import Backend

BUILTIN: dict[str, str] = {
    "torch": "backends.torch_eager:TorchEager",
    "torch-compile": "backends.torch_compile:TorchCompile",
    "onnxruntime": "backends.onnxruntime_cpu:OnnxRuntimeCPU",
    "openvino": "backends.openvino_cpu:OpenVinoCPU",
    "coreml": "backends.coreml:CoreML",
    "torch-cudagraph": "backends.torch_cuda:TorchCudaGraph",
    "onnxruntime-cuda": "backends.onnxruntime_gpu:OnnxRuntimeGPU",
    "onnxruntime-trt": "backends.onnxruntime_gpu:OnnxRuntimeTensorRT",
    "tensorrt": "backends.tensorrt_engine:TensorRT",
}
_EXTRA: dict[str, str] = {}


def register(name: str, ref: str) -> None:
    """Add a backend by reference (plugins, test doubles)."""
    _EXTRA[name] = ref


def unregister(name: str) -> None:
    _EXTRA.pop(name, None)


def names() -> list[str]:
    return [*BUILTIN, *_EXTRA]


def ref(name: str) -> str:
    refs = {**BUILTIN, **_EXTRA}
    if name not in refs:
        raise KeyError(name)
    return refs[name]


def load(reference: str) -> Backend:
    module, _, cls = reference.partition(":")
    return getattr(importlib.import_module(module), cls)()


def get(name: str) -> Backend:
    return load(ref(name))
