"""Backend names -> implementations, imported lazily so a missing runtime never breaks `import`.

Entries are "module:Class" references; the job runner passes the reference to the worker process,
which imports it there. Tests register doubles the same way.
"""

from __future__ import annotations

import importlib

from backends.base import NO_INT8, Backend, JobSpec
from model_zoo.names import check_name

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
_WRAPPED: dict[str, str] = {}  # built-in name -> a plugin's wrapper around it (records say `wrapped_by`)


def register(name: str, ref: str) -> None:
    """Add a backend by reference (plugins, test doubles) under a new name: a built-in backend is never
    replaced (its records would carry its name for someone else's code), nor another plugin's."""
    check_name("backend", name)
    if name in BUILTIN:
        raise ValueError(f"{name!r} is a built-in backend: a plugin adds backends under new names, never replaces "
                         "one (to instrument a built-in one, use backends.registry.wrap, which its records name)")
    if _EXTRA.get(name, ref) != ref:
        raise ValueError(f"the backend {name!r} is already registered as {_EXTRA[name]}")
    _EXTRA[name] = ref


def wrap(name: str, ref: str) -> None:
    """Run a built-in backend through a plugin's wrapper (a planted slowdown, instrumentation); every
    record of it names the wrapper in `backend_info.wrapped_by`."""
    if name not in BUILTIN:
        raise ValueError(f"{name!r} is not a built-in backend; register it instead")
    _WRAPPED[name] = ref


def unregister(name: str) -> None:
    _EXTRA.pop(name, None)
    _WRAPPED.pop(name, None)


def names() -> list[str]:
    return [*BUILTIN, *_EXTRA]


def ref(name: str) -> str:
    refs = {**BUILTIN, **_WRAPPED, **_EXTRA}
    if name not in refs:
        raise KeyError(name)
    return refs[name]


def wrapper_of(name: str, reference: str) -> str | None:
    """The plugin reference that runs in place of built-in `name`, or None."""
    return reference if name in BUILTIN and reference != BUILTIN[name] else None


def load(reference: str) -> Backend:
    """An instance of the backend class `module:Class`; a class that is not a `Backend` is refused, since the
    harness reads every capability from the declarations `Backend` gives defaults for."""
    module, _, cls = reference.partition(":")
    backend = getattr(importlib.import_module(module), cls)()
    if not isinstance(backend, Backend):
        raise TypeError(f"{reference} is not a backend: a backend class subclasses backends.base.Backend")
    return backend


def get(name: str) -> Backend:
    return load(ref(name))


def int8_backends() -> list[str]:
    """The built-in backends with an int8 path (for the `skipped` reason of those without)."""
    return [name for name in BUILTIN if "int8" in get(name).precisions]


def unsupported(backend: Backend, job: JobSpec) -> str | None:
    """Why `backend` cannot run `job` (None: it can); a backend without int8 says where int8 runs."""
    reason = backend.unsupported(job)
    if reason and reason.endswith(NO_INT8):
        reason += f"; int8 runs on {', '.join(int8_backends())}"
    return reason
