"""What happens to a network before a quantizer sees it: the runtime-independent `int8` section of a job.

`-o int8.FIELD=VALUE` beside the backends' own `-o BACKEND.FIELD=VALUE`: it applies to every int8 job of
the command, whatever its runtime. It travels inside the job's `options` string as `int8.FIELD=VALUE`
pairs after the backend's own (so it is part of the job key, the job id and every artifact key that
includes the options), and each runtime's quantizer settings stay in that runtime's configuration.

- `equalize`: cross-layer equalization of the torch model before export (`model_zoo.equalize`), applied by
  the harness where it opens the model, so every runtime quantizes the equalized weights (their own hash).
- `float_layers`: module names (as `bench profile` names layers, `;`-separated) whose convolution or linear
  layer stays float: ONNX Runtime's `nodes_to_exclude`, PT2E's per-module config, NNCF's ignored scope.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

from backends.config import BackendConfig, ConfigError, option, quoted

SECTION = "int8"
PREFIX = SECTION + "."
SEPARATOR = ";"
MODULE_PATH = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*")


def layer_list(where: str, text: str) -> str:
    """`float_layers`' grammar: module paths separated by ';', each once; canonical = sorted and unique, so
    the same set of layers is one job key however it was written."""
    names = [name.strip() for name in text.split(SEPARATOR) if name.strip()]
    bad = [name for name in names if not MODULE_PATH.fullmatch(name)]
    if bad:
        raise ConfigError(f"{where}: {quoted(bad[0])} is not a module name (module paths such as stage0.reparam_conv, "
                          f"separated by '{SEPARATOR}')")
    return SEPARATOR.join(sorted(set(names)))


@dataclass(frozen=True)
class Int8Recipe(BackendConfig):
    equalize: bool = option(False, "cross-layer equalization of the fused network before export (Nagel et al. 2019)")
    float_layers: str = option("", "layers kept in float: module names separated by ';' (as bench profile names them)",
                               grammar=layer_list)

    def layers(self) -> list[str]:
        return [name.strip() for name in self.float_layers.split(SEPARATOR) if name.strip()]

    @property
    def active(self) -> bool:
        return self != Int8Recipe()


def split(options: str) -> tuple[str, str]:
    """A job's options string -> (the backend's own pairs, the recipe's pairs without their prefix)."""
    pairs = [p for p in options.split(",") if p]
    own = ",".join(p for p in pairs if not p.startswith(PREFIX))
    recipe = ",".join(p.removeprefix(PREFIX) for p in pairs if p.startswith(PREFIX))
    return own, recipe


def join(own: str, recipe: str) -> str:
    """The job's options string: the backend's canonical pairs, then the recipe's, prefixed."""
    return ",".join([p for p in own.split(",") if p] + [PREFIX + p for p in recipe.split(",") if p])


def of(options: str) -> Int8Recipe:
    return Int8Recipe.parse(split(options)[1], SECTION)


def with_float_layers(options: str, layers: list[str]) -> str:
    """A job's options with its recipe's float layers replaced by `layers` (the rest of the recipe kept)."""
    own, _ = split(options)
    recipe = dataclasses.replace(of(options), float_layers=layer_list("int8.float_layers", SEPARATOR.join(layers)))
    return join(own, recipe.canonical())
