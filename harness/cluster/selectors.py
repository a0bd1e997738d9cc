"""`--machine KEY=VALUE`: which nodes a sweep may use, in Ray's label-selector language.

VALUE is a label value, `!VALUE` (not it), `in(a,b)` or `!in(a,b)`; KEY is a onebench label without its
prefix (`machine`, `gpu`, `cpu`, `os`, `backend.openvino`, `lib.torch`) or any Ray label with its own
(`ray.io/node-id`). Several selectors all hold. The driver evaluates them itself (so a job no node can
take is known before it is sent, and says what was missing) and hands Ray the node ids that passed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from harness.cluster.labels import PREFIX, token
from harness.errors import HarnessError

_IN = re.compile(r"^(!?)in\((.*)\)$")


@dataclass(frozen=True)
class Selector:
    key: str  # the full label key
    values: tuple[str, ...]
    negated: bool

    def holds(self, labels: dict[str, str]) -> bool:
        present = labels.get(self.key) in self.values
        return present != self.negated

    def __str__(self) -> str:
        short = self.key.removeprefix(PREFIX)
        if len(self.values) == 1:
            return f"{short}={'!' if self.negated else ''}{self.values[0]}"
        return f"{short}={'!' if self.negated else ''}in({','.join(self.values)})"


def parse(text: str) -> Selector:
    key, sep, value = text.partition("=")
    key, value = key.strip(), value.strip()
    if not sep or not key or not value:
        raise HarnessError(f"--machine takes KEY=VALUE (e.g. machine=lab-3, gpu=in(H200,A100), os=!darwin), not {text!r}")
    full = key if "/" in key else PREFIX + key
    found = _IN.match(value)
    if found:
        values = tuple(token(v) for v in found.group(2).split(",") if v.strip())
        if not values:
            raise HarnessError(f"--machine {text!r}: in() names no value")
        return Selector(full, values, bool(found.group(1)))
    negated = value.startswith("!")
    return Selector(full, (token(value.removeprefix("!")),), negated)


def parse_all(texts: list[str] | None) -> list[Selector]:
    return [parse(t) for t in texts or []]


def matching(node: dict[str, Any], selectors: list[Selector]) -> list[Selector]:
    """The selectors `node` fails (empty: it is a candidate)."""
    labels = node.get("Labels") or {}
    return [s for s in selectors if not s.holds(labels)]
