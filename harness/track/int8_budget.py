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

from torch import nn

from backends.int8_recipe import with_float_layers
from harness.errors import HarnessError
from harness.measure.jobs import Job

Evaluate = Callable[[list[str]], float]  # float layers -> Δtop-1 in points (negative: int8 lost accuracy)


@dataclass
class Search:
    budget_pt: float
    candidates: list[str]
    trail: list[tuple[int, float]] = field(default_factory=list)  # (layers kept float, Δtop-1 pt), in the order tried
    chosen: int | None = None  # None: not even every candidate float meets the budget

    @property
    def layers(self) -> list[str] | None:
        return None if self.chosen is None else self.candidates[:self.chosen]

    def as_dict(self) -> dict:
        return {"budget_pt": self.budget_pt, "candidates": self.candidates, "chosen": self.chosen,
                "float_layers": self.layers, "trail": [{"float_layers": k, "delta_pt": d} for k, d in self.trail]}

    def describe(self) -> str:
        tried = ", ".join(f"{k} float: {d:+.1f}" for k, d in sorted(self.trail))
        if self.chosen is None:
            return f"no prefix of the {len(self.candidates)} candidates meets {self.budget_pt:g} pt ({tried})"
        return f"{self.chosen} layer{'s' if self.chosen != 1 else ''} float meets {self.budget_pt:g} pt ({tried})"


def check_budget(budget_pt: float) -> float:
    if not budget_pt >= 0:  # also refuses NaN
        raise HarnessError(f"--budget is the top-1 points int8 may lose, at least 0, not {budget_pt:g}")
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


def searched_jobs(jobs: list[Job], budget_pt: float, candidates: list[str], evaluate: Callable[[Job], float],
                  say: Callable[[str], None]) -> tuple[list[Job], dict[str, Search]]:
    """Each int8 job with the fewest float layers that meet the budget (`evaluate(job)`: its Δtop-1 in points
    on the calibration split); a job whose search fails is left out, and said."""
    chosen, searches = [], {}
    for job in jobs:
        def score(layers: list[str], job: Job = job) -> float:
            return evaluate(dataclasses.replace(job, options=with_float_layers(job.options, layers)))

        found = searches[f"{job.model} · {job.backend}"] = search(candidates, budget_pt, score)
        say(f"{job.model} · {job.backend}: {found.describe()}")
        if found.layers is not None:
            chosen.append(dataclasses.replace(job, options=with_float_layers(job.options, found.layers)))
    return chosen, searches
