"""The rows of `bench list models`: the registry beside our own counts, so a reader can check them.

Counting builds every model (a minute for the whole zoo), so the counted rows are cached, keyed by the
model definitions: the zoo's source files, the torch and timm versions, and the plugins named in
$ONEBENCH_PLUGINS. A change to any of them recounts; anything else answers from the cache without
importing torch."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import importlib.metadata
import json
import os
from dataclasses import dataclass
from pathlib import Path

from harness import PROJECT_ROOT
from harness.store.records import atomic_write_text
from harness.store.runs import default_cache_dir

ZOO = PROJECT_ROOT / "model_zoo"


@dataclass(frozen=True)
class ModelRow:
    name: str
    family: str
    description: str
    in_mission: bool
    params: int | None  # counted, fused form
    params_ref: int | None
    macs_m: float | None  # counted, fused form, in the reference's convention
    macs_ref_m: float | None
    convention: str
    top1_ref: float | None
    source: str

    @property
    def params_match(self) -> bool | None:
        return None if self.params is None or self.params_ref is None else self.params == self.params_ref

    @property
    def macs_rel_err(self) -> float | None:
        if self.macs_m is None or not self.macs_ref_m:
            return None
        return self.macs_m / self.macs_ref_m - 1.0


def definition_key() -> str:
    """What the counted figures depend on, read without importing torch."""
    digest = hashlib.sha256()
    for path in sorted(ZOO.rglob("*.py")):
        digest.update(path.name.encode() + path.read_bytes())
    for dist in ("torch", "timm"):
        try:
            digest.update(f"{dist}={importlib.metadata.version(dist)}".encode())
        except importlib.metadata.PackageNotFoundError:
            digest.update(f"{dist}=absent".encode())
    digest.update(os.environ.get("ONEBENCH_PLUGINS", "").encode())
    return digest.hexdigest()[:20]


def cached_rows(names: list[str] | None = None, cache_dir: Path | None = None) -> list[ModelRow]:
    """`model_rows` with counting, from the cache when the model definitions have not changed."""
    path = (cache_dir or default_cache_dir()) / "model_rows.json"
    key = definition_key()
    try:
        cached = json.loads(path.read_text())
    except (OSError, ValueError):
        cached = {}
    wanted = names if names is not None else cached.get("order", [])
    if cached.get("key") == key and wanted and all(n in cached["rows"] for n in wanted):
        return [ModelRow(**cached["rows"][n]) for n in wanted]
    fresh = model_rows(names, count=True)
    if names is None:  # the whole zoo counted: keep it
        with contextlib.suppress(OSError):  # a cache: an unwritable one only costs the next listing its speed
            atomic_write_text(path, json.dumps({"key": key, "order": [r.name for r in fresh],
                                                "rows": {r.name: dataclasses.asdict(r) for r in fresh}}, indent=1))
    return fresh


def model_rows(names: list[str] | None = None, count: bool = True) -> list[ModelRow]:
    """One row per model (all registered ones by default); `count=False` skips building them (fast)."""
    import model_zoo

    specs = [model_zoo.get_spec(n) for n in names] if names else model_zoo.list_specs()
    rows = []
    for spec in specs:
        params = macs = None
        convention = model_zoo.macs_convention(spec)
        if count:
            model = model_zoo.create(spec.name, form="fused")
            params = model_zoo.count_params(model)
            macs = model_zoo.count_macs(model, spec.input_size, convention=convention) / 1e6
        ref = spec.reference
        rows.append(ModelRow(
            spec.name, spec.family, spec.description, spec.in_mission, params, ref.params, macs, ref.macs_m,
            convention, ref.top1, ref.source,
        ))
    return rows
