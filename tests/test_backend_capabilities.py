"""#51: a backend declares what it can do on one base class with a default for each capability, and the harness
asks for the declaration instead of probing attributes or naming backends."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from backends import registry
from backends.base import Backend
from tests.helpers import ROOT

# a getattr/hasattr whose object is a backend (a variable named so, a registry lookup, a named one)
PROBE = re.compile(r"\b(?:get|has)attr\((?:backend|registry\.(?:get|load)\(|self\.backend|coreml\b)")


def test_every_builtin_backend_is_a_backend_and_declares_every_capability() -> None:
    for name, reference in registry.BUILTIN.items():
        backend = registry.load(reference)
        assert isinstance(backend, Backend) and backend.name == name, reference
        assert isinstance(backend.profiler, str) and isinstance(backend.layer_errors_by, str)
        assert backend.default_precision in backend.precisions and "nchw" in backend.layouts
        assert isinstance(backend.build_env(2), dict)
    assert registry.get("torch-compile").build_env(3) == {"TORCHINDUCTOR_COMPILE_THREADS": "3"}
    assert registry.get("coreml").prepare is not None and registry.get("onnxruntime").prepare is None
    assert registry.get("coreml").own_devices and not registry.get("torch").own_devices


def test_a_class_that_is_not_a_backend_is_refused_in_one_line(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "not_a_backend.py").write_text("class Runtime:\n    name = 'x'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(TypeError, match=r"^not_a_backend:Runtime is not a backend: a backend class subclasses "
                                        r"backends\.base\.Backend$"):
        registry.load("not_a_backend:Runtime")
    sys.modules.pop("not_a_backend", None)


def test_the_harness_reads_capabilities_and_never_probes_a_backend_for_them() -> None:
    probes = [f"{path.relative_to(ROOT)}:{n}: {line.strip()}" for path in sorted((ROOT / "harness").rglob("*.py"))
              for n, line in enumerate(path.read_text().splitlines(), 1) if PROBE.search(line)]
    assert not probes, "\n".join(probes)
    assert PROBE.search('x = getattr(registry.get(name), "preload", ())')  # the scan can find one


NAMES = "|".join(re.escape(name) for name in registry.BUILTIN)
RUNTIME_MODULES = "torch_eager|torch_compile|torch_cuda|torch_quantize|onnxruntime_cpu|onnxruntime_gpu|ort_profiling|" \
                  "onnx_diagnosis|onnx_quantize|openvino_cpu|openvino_accuracy|openvino_diagnosis|coreml|tensorrt_engine"
# a backend named in a comparison, looked up by name, or one runtime's module imported
NAMED = re.compile(rf"""(?:==|!=|\bin)\s*[(\[{{]?["'](?:{NAMES})["']|["'](?:{NAMES})["']\s*(?:==|!=|in\b)"""
                   rf"""|registry\.(?:get|ref)\(["']|backends\.(?:{RUNTIME_MODULES})\b""")


def names_a_backend(line: str) -> bool:
    """A comparison with, lookup of or import of one runtime (a loop over package names is neither)."""
    return bool(NAMED.search(line)) and not line.lstrip().startswith("for ")


# modules about one runtime by design: the pinned reference (ONNX Runtime's session) and selfcheck's reference tools
BY_DESIGN = {"harness/measure/reference.py", "harness/track/selfcheck.py", "harness/track/reference_tools.py"}


def test_no_backend_is_named_in_the_harness_outside_the_modules_about_one_runtime() -> None:
    named = [f"{path.relative_to(ROOT)}:{n}: {line.strip()}" for path in sorted((ROOT / "harness").rglob("*.py"))
             if str(path.relative_to(ROOT)) not in BY_DESIGN
             for n, line in enumerate(path.read_text().splitlines(), 1) if names_a_backend(line)]
    assert not named, "\n".join(named)
    for planted in ('if backend == "coreml":', "ort = registry.get('onnxruntime')", "from backends.openvino_accuracy import x",
                    'own={"openvino": nncf} if name in ("openvino", "torch") else {}'):
        assert names_a_backend(planted), planted  # the scan can find each kind
    assert not names_a_backend('for dist in ("torch", "timm"):')


def test_the_harness_finds_runtimes_by_what_they_declare() -> None:
    """A lab slot, the phone, the int8 search's ranking and a runtime's own search come from declarations."""
    from harness.cluster.labels import IPHONE, device_of
    from harness.measure.planner import iphone_jobs

    assert device_of("all", "coreml", "host-sync") == "coreml" and device_of("cpu", "torch", "host-sync") == "cpu"
    assert device_of("all", "coreml", "on-device") == IPHONE
    jobs = iphone_jobs(["mobileone_s0"], None, None, None, {"mobileone_s0": 224})
    assert {j.backend for j in jobs} == {"coreml"} and {j.boundary for j in jobs} == {"on-device"}
    assert [name for name in registry.BUILTIN if registry.get(name).ranks_layers] == ["onnxruntime"]
    searches = {name: registry.get(name).int8_searcher() for name in registry.BUILTIN}
    assert {name for name, found in searches.items() if found} == {"openvino"}
    assert searches["openvino"].__name__ == "reverted_layers"
