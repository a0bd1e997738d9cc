"""The arrows run one way: model_zoo <- backends <- harness's layers, each importing only those below it.

Checked on the source (every `import`/`from` in every module, at any depth), so a back-edge added inside
a function fails here too, not only a module-level one."""

from __future__ import annotations

import ast
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# lowest first; a module may import its own layer and any layer before it
LAYERS = ["model_zoo", "backends", "harness.core", "harness.store", "harness.listing", "harness.host",
          "harness.measure", "harness.evaluate", "harness.profile", "harness.publish", "harness.track", "harness.device", "harness.cluster", "harness.cli", "harness.entry", "harness.__main__"]
CORE = {"harness", "harness.errors", "harness.plugins", "harness.interrupts"}


def layer_of(module: str) -> str | None:
    if module in CORE:
        return "harness.core"
    for layer in sorted(LAYERS, key=len, reverse=True):
        if module == layer or module.startswith(layer + "."):
            return layer
    return None


def imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names if node.module == "harness"}
    return found


def test_every_import_points_down_the_layers() -> None:
    back_edges = []
    for package in ("model_zoo", "backends", "harness"):
        for path in sorted((ROOT / package).rglob("*.py")):
            module = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
            own = LAYERS.index(layer_of(module))
            for target in imports(path):
                layer = layer_of(target)
                if layer is not None and LAYERS.index(layer) > own:
                    back_edges.append(f"{module} imports {target} ({layer} is above {LAYERS[own]})")
    assert not back_edges, "\n".join(back_edges)


def test_every_harness_module_has_a_layer() -> None:
    loose = [p.name for p in (ROOT / "harness").glob("*.py") if layer_of(f"harness.{p.stem}".removesuffix(".__init__")) is None]
    assert not loose, f"modules outside any layer: {loose}"


def test_help_and_listing_modules_do_not_import_torch() -> None:
    """`bench --help` answers without importing torch, timm or a runtime (#16: it took 6.5 s)."""
    import sys

    code = ("import sys, harness.cli; heavy = sorted(m for m in ('torch', 'timm', 'onnxruntime', 'openvino') "
            "if m in sys.modules); print(','.join(heavy))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "", f"importing the CLI pulled in: {done.stdout.strip()}"


def test_the_project_root_is_the_checkout() -> None:
    """Other interpreters (lockstep's pinned environment) find the harness through it; the commit is read there."""
    from harness import PROJECT_ROOT
    from harness.host.environment import git_commit

    assert PROJECT_ROOT == ROOT and (PROJECT_ROOT / "pyproject.toml").is_file()
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True)
    if head.returncode == 0:  # a source tree without git records no commit
        assert git_commit()["commit"] == head.stdout.strip()


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import cycles of a module graph (Tarjan's strongly connected components of more than one module)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_two_modules_import_each_other_even_inside_a_function() -> None:
    """A cycle (backends.base <-> backends.registry was one) makes the import order matter and hides a layer
    that does two jobs."""
    modules = {".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): p
               for package in ("model_zoo", "backends", "harness") for p in (ROOT / package).rglob("*.py")}
    def edge(module: str, target: str) -> bool:  # `from model_zoo import ablation` names the package: a sibling
        return target in modules and target != module and not module.startswith(target + ".")

    graph = {m: {t for t in imports(p) if edge(m, t)} for m, p in modules.items()}
    assert not _cycles(graph)


MAX_PARAMETERS = 10  # #51: beyond this a function wants a typed object (a Selection, a Stores, a config)


def _long_signatures(source: str, where: str) -> list[str]:
    """Functions of `source` taking more than MAX_PARAMETERS parameters, but typer commands (their options are
    their signature)."""
    long = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            count = len(node.args.posonlyargs) + len(node.args.args) + len(node.args.kwonlyargs)
            command = any("command" in ast.unparse(d) for d in node.decorator_list)
            if count > MAX_PARAMETERS and not command:
                long.append(f"{where}: {node.name} takes {count}")
    return long


def test_no_function_but_a_command_takes_more_than_ten_parameters_and_selections_are_built_by_keyword() -> None:
    import dataclasses

    import pytest

    from harness.measure.selection import Selection

    long = [f for p in sorted((ROOT / "harness").rglob("*.py")) for f in _long_signatures(p.read_text(), str(p.relative_to(ROOT)))]
    assert not long, long
    assert _long_signatures("def f(" + ", ".join(f"a{i}" for i in range(11)) + "): pass", "x") == ["x: f takes 11"]
    assert all(f.kw_only for f in dataclasses.fields(Selection))
    with pytest.raises(TypeError):
        Selection(("mobileone_s0",))  # by position: refused


# the payload's own JSON form; the selfcheck's reference loop, which takes a payload of its own by design
HAND_BUILT_OK = {"harness/measure/payload.py", "harness/track/reference_tools.py"}


def _payload_dicts(source: str) -> list[int]:
    """Lines of `source` that build a job payload by hand (a dict literal keyed "backend_ref") or read one by
    key (`payload["..."]`, `payload.get(...)`)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Dict) and any(isinstance(k, ast.Constant) and k.value == "backend_ref" for k in node.keys):
            found.append(node.lineno)
        elif isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and node.value.id == "payload":
            found.append(node.lineno)
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get"
              and isinstance(node.func.value, ast.Name) and node.func.value.id == "payload"):
            found.append(node.lineno)
    return found


def test_what_a_process_receives_is_a_typed_payload_never_a_hand_built_dict() -> None:
    """#51: six places built a worker's payload dict by hand and seven rebuilt the job from it."""
    from backends.calibration import CalibrationSpec
    from harness.measure.jobs import Job
    from harness.measure.payload import JobPayload
    from harness.measure.protocol import preset

    hand = [f"{p.relative_to(ROOT)}:{line}" for p in sorted((ROOT / "harness").rglob("*.py"))
            if str(p.relative_to(ROOT)) not in HAND_BUILT_OK for line in _payload_dicts(p.read_text())]
    assert not hand, hand
    assert _payload_dicts('x = {"backend_ref": 1}\ny = payload["job"]\nz = payload.get("w")') == [1, 2, 3]
    int8 = Job("mobileone_s0", "onnxruntime", precision="int8", options="int8.equalize=true")
    spec = CalibrationSpec("random", 8, "ab" * 32)
    sent = JobPayload.of_job(int8, "/cache", protocol=preset("quick"), weights="w.pth", calibration=spec, parity=True)
    assert JobPayload.of(sent.as_dict()) == sent and sent.calibration == spec and sent.backend_ref
    assert sent.as_dict()["calibration"] == {"source": "random", "size": 8, "sha256": "ab" * 32, "meaningful": False}
    fp32 = JobPayload.of_job(Job("mobileone_s0", "onnxruntime"), "/cache", calibration=spec)
    assert fp32.calibration is None and JobPayload.of(fp32.as_dict()) == fp32  # an fp32 artifact never depends on it
    assert sent.here(cache_dir="/node").cache_dir == "/node" and sent.here(passive_wait=True).passive_wait


RECORD_LOOKUPS_MAX = 15  # #51: 35 `rec["` lookups read records as dicts; the typed views read them now


def test_records_are_read_through_typed_views_not_by_key() -> None:
    """Job, accuracy and profile records have typed views (`Record`, `AccuracyRecord`, `ProfileRecord`); what
    still reads a record by key is the loaders and the schema checks that make those views."""
    import re

    lookups = [f"{p.relative_to(ROOT)}:{n}" for p in sorted((ROOT / "harness").rglob("*.py"))
               for n, line in enumerate(p.read_text().splitlines(), 1) if re.search(r'\brec\["', line)]
    assert len(lookups) < RECORD_LOOKUPS_MAX, lookups
