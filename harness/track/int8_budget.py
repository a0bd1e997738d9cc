"""`bench int8 --budget PT`: the fewest layers kept in float that bring int8 within PT points of fp32.

The candidates are the network's convolutions, worst first: by the SQNR their own quantization leaves on
ONNX Runtime's int8 graph (`bench accuracy --layers`), or, where ONNX Runtime is missing, by their weight
spread (max over channels of max|w| / median: the suspected cause). For each runtime the search keeps the
first k of them float, doubling k until Δtop-1 on the calibration split is within the budget, then bisecting
down to the smallest such k: about 2 log2(n) evaluations instead of n, on the assumption that keeping more
layers float never costs accuracy (what NNCF's accuracy-aware quantization assumes too, one layer at a time).
The chosen recipe then runs as an ordinary int8 job: timed in lockstep against fp32, scored on held-out data.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from torch import nn

from backends.int8_recipe import with_float_layers
from harness.errors import HarnessError
from harness.measure.jobs import Job
from harness.measure.selection import Selection

Evaluate = Callable[[list[str]], float]  # float layers -> Δtop-1 in points (negative: int8 lost accuracy)


@dataclass
class Search:
    budget_pt: float
    candidates: list[str]
    trail: list[tuple[int, float]] = field(default_factory=list)  # (layers kept float, Δtop-1 pt), in the order tried
    chosen: int | None = None  # None: not even every candidate float meets the budget
    method: str = "doubling, then bisection over the candidates, worst first"
    detail: dict = field(default_factory=dict)  # what the searching tool reports besides (NNCF's own drop)

    @property
    def layers(self) -> list[str] | None:
        return None if self.chosen is None else self.candidates[:self.chosen]

    def as_dict(self) -> dict:
        return {"budget_pt": self.budget_pt, "method": self.method, "candidates": self.candidates, "chosen": self.chosen,
                "float_layers": self.layers, "trail": [{"float_layers": k, "delta_pt": d} for k, d in self.trail],
                **self.detail}

    def describe(self) -> str:
        tried = ", ".join(f"{k} float: {d:+.1f}" for k, d in sorted(self.trail))
        if self.chosen is None:
            return f"no prefix of the {len(self.candidates)} candidates meets {self.budget_pt:g} pt ({tried})"
        return f"{self.chosen} layer{'s' if self.chosen != 1 else ''} float meets {self.budget_pt:g} pt ({tried})"


def check_budget(budget_pt: float) -> float:
    if not 0 <= budget_pt <= 100:  # also refuses NaN and infinity
        raise HarnessError(f"--budget is the top-1 points int8 may lose, between 0 and 100, not {budget_pt:g}")
    return budget_pt


def search(candidates: list[str], budget_pt: float, evaluate: Evaluate) -> Search:
    """The smallest k such that keeping `candidates[:k]` float loses at most `budget_pt` points."""
    found = Search(check_budget(budget_pt), list(candidates))
    seen: dict[int, bool] = {}

    def meets(k: int) -> bool:
        if k not in seen:
            delta = evaluate(found.candidates[:k])
            found.trail.append((k, delta))
            seen[k] = delta >= -budget_pt - 1e-9
        return seen[k]

    low, k = -1, 0  # low: the largest k known to miss
    while not meets(k):
        low = k
        if k == len(candidates):
            return found
        k = min(len(candidates), max(1, 2 * k))
    high = k
    while high - low > 1:
        mid = (low + high) // 2
        if meets(mid):
            high = mid
        else:
            low = mid
    found.chosen = high
    return found


def by_spread(model: nn.Module) -> list[str]:
    """The network's convolutions by weight spread, widest first: the candidates where no diagnosis can run."""
    from model_zoo.equalize import channel_spread, folded

    spread = channel_spread(folded(copy.deepcopy(model)))
    return sorted(spread, key=lambda name: -spread[name])


Searcher = Callable[[Job, float, Evaluate], Search]  # a runtime's own search (NNCF's accuracy control)


def searched_jobs(jobs: list[Job], budget_pt: float, candidates: list[str], evaluate: Callable[[Job], float],
                  say: Callable[[str], None], own: dict[str, Searcher] | None = None) -> tuple[list[Job], dict[str, Search]]:
    """Each int8 job with the fewest float layers that meet the budget (`evaluate(job)`: its Δtop-1 in points
    on the calibration split), found by the runtime's own search where `own` names one, else by `search`; a
    job whose search fails is left out, and said."""
    chosen, searches = [], {}
    for job in jobs:
        def score(layers: list[str], job: Job = job) -> float:
            return evaluate(dataclasses.replace(job, options=with_float_layers(job.options, layers)))

        searcher = (own or {}).get(job.backend)
        found = searcher(job, budget_pt, score) if searcher else search(candidates, budget_pt, score)
        searches[f"{job.model} · {job.backend}"] = found
        say(f"{job.model} · {job.backend}: {found.describe()}")
        if found.layers is not None:
            chosen.append(dataclasses.replace(job, options=with_float_layers(job.options, found.layers)))
    return chosen, searches


def tool_search(layers: list[str], detail: dict, budget_pt: float, score: Evaluate) -> Search:
    """A runtime tool's answer (the layers it keeps float) checked the way every other search is: the job with
    those layers float, scored by `score` on the calibration split, meets the budget or is not chosen."""
    method = detail.pop("method")
    found = Search(check_budget(budget_pt), list(layers), method=method, detail=detail)
    delta = score(found.candidates)
    found.trail.append((len(layers), delta))
    found.chosen = len(layers) if delta >= -budget_pt - 1e-9 else None
    return found


def budget_search(jobs: list[Job], budget: float, selection: Selection, num_classes: int | None,
                  say: Callable[[str], None]) -> tuple[list[Job], dict[str, Search]]:
    """`bench int8 --budget`: the candidates (worst first by the diagnosis of a backend that `ranks_layers`,
    ONNX Runtime's, else by weight spread), then per job the fewest of them float that meet the budget on the
    calibration images, by the runtime's own search where it has one (`int8_search`: OpenVINO's NNCF)."""
    import model_zoo
    from backends import registry
    from backends.int8_recipe import join, split
    from harness.evaluate import accuracy as acc
    from harness.measure.selection import of_job
    from harness.publish.int8 import worst_layers
    from harness.store.runs import default_cache_dir

    on_calibration = acc.EvalData(Path(selection.calibration), num_classes=num_classes)

    def score(job: Job, layers: bool = False, limit: int | None = None) -> dict:
        return acc.evaluate(of_job(job, selection), dataclasses.replace(on_calibration, limit=limit),
                            cache_dir=default_cache_dir(), layers=layers)

    first = jobs[0]
    ranker = next((registry.get(name) for name in registry.names()
                   if registry.get(name).ranks_layers and registry.get(name).availability().ok), None)
    if ranker:  # its own options are the first job's backend's: not carried
        diagnosed = dataclasses.replace(first, backend=ranker.name, options=join("", split(first.options)[1]))
        diagnosis = score(diagnosed, layers=True, limit=1)["layers"]
        candidates, how = worst_layers(diagnosis, len(diagnosis["weight_spread"])), f"{ranker.name}'s layer diagnosis"
    else:
        model = model_zoo.create(first.model, weights=selection.weights, num_classes=num_classes)
        candidates, how = by_spread(model), "weight spread"
    own = {job.backend: registry.get(job.backend) for job in jobs if registry.get(job.backend).int8_search}
    searched_by = "".join(f"; {name}: its own search" for name in own)
    say(f"--budget {budget:g}: {len(candidates)} candidate layers, worst first by {how}{searched_by}")

    def own_search(job: Job, budget_pt: float, evaluate: Evaluate) -> Search:
        layers, detail = own_search_reverted(job, budget_pt, of_job(job, selection), num_classes, default_cache_dir())
        return tool_search(layers, detail, budget_pt, evaluate)

    return searched_jobs(jobs, budget, candidates, lambda job: 100 * score(job)["paired"]["delta_top1"], say,
                         own=dict.fromkeys(own, own_search))


def own_search_reverted(job: Job, budget_pt: float, selection: Selection, num_classes: int | None,
                        cache_dir: Path) -> tuple[list[str], dict]:
    """The layers the job's runtime's own search keeps float (its `int8_search`: OpenVINO's NNCF accuracy
    control), on the same ONNX export, calibration inputs and labelled calibration images the budget's scoring
    uses (the selection's weights and calibration folder)."""
    import numpy as np
    import torch

    import model_zoo
    from backends import registry
    from backends.onnx_export import export_onnx
    from harness.evaluate.datasets import ImageDataset, scan
    from harness.measure import calibration as calib
    from harness.measure import recipe
    from model_zoo.preprocess import at_size
    from model_zoo.weights import state_sha256

    spec, folder = model_zoo.get_spec(job.model), Path(selection.calibration)
    pre, classes = at_size(spec.preprocess, job.input_size), num_classes or spec.num_classes
    model = model_zoo.create(job.model, form="fused", weights=selection.weights, num_classes=classes)
    model, _ = recipe.apply(model, job)
    onnx, _ = export_onnx(model, job.model, state_sha256(model), job.batch, pre.input_size, cache_dir)
    calibration = calib.build(calib.describe(str(folder), selection.calibration_size, pre), pre)
    loader = torch.utils.data.DataLoader(ImageDataset(scan(folder, classes), pre), batch_size=job.batch, drop_last=True)
    validation = [(np.ascontiguousarray(x.numpy()), y.numpy()) for x, y, _ in loader]
    backend = registry.get(job.backend)
    layers, detail = backend.int8_searcher()(onnx, [job.batch, 3, pre.input_size, pre.input_size], job.config(backend),
                                         calibration, validation, budget_pt)
    return [compute_module(model, name) for name in layers], detail


def compute_module(model: nn.Module, name: str) -> str:
    """The convolution or linear layer a graph node's module name stands for: itself, or for a convolution the
    exporter folded a batch norm into (the node then carries the norm's name) its one such sibling."""
    computes = [n for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    if name in computes:
        return name
    siblings = [n for n in computes if n.rpartition(".")[0] == name.rpartition(".")[0]]
    return siblings[0] if len(siblings) == 1 else name
