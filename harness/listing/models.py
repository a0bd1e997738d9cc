"""The rows of `bench list models`: the registry beside our own counts, so a reader can check them."""

from __future__ import annotations

from dataclasses import dataclass

import model_zoo


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


def model_rows(names: list[str] | None = None, count: bool = True) -> list[ModelRow]:
    """One row per model (all registered ones by default); `count=False` skips building them (fast)."""
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
