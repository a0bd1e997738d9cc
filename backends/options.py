"""`-o BACKEND.FIELD=VALUE` items -> each backend's canonical options string, and `-o int8.FIELD=VALUE` items
-> the int8 recipe's (`backends.int8_recipe`): every section validated by its own configuration class."""

from __future__ import annotations

from typing import Any

from backends.config import ConfigError, quoted
from backends.int8_recipe import SECTION as RECIPE
from backends.int8_recipe import Int8Recipe, join, split

__all__ = ["RECIPE", "ConfigError", "canonical", "parse_cli_options"]


def parse_cli_options(items: list[str], backends: list[str], lookup: Any) -> dict[str, str]:
    """`-o BACKEND.FIELD=VALUE` items -> each backend's canonical options string, validated by its
    configuration class (`lookup(name)` gives the backend); `-o int8.FIELD=VALUE` items -> the int8
    recipe's, under the key "int8" (the planner adds it to int8 jobs only)."""
    pairs: dict[str, dict[str, str]] = {}
    for item in items:
        target, sep, value = item.partition("=")
        backend, dot, name = target.partition(".")
        if not sep or not dot or not name:
            raise ConfigError(f"--option {quoted(item)} is not BACKEND.FIELD=VALUE (e.g. onnxruntime.calibration_method=entropy)")
        if backend not in backends and backend != RECIPE:
            raise ConfigError(f"--option {quoted(item)} names {quoted(backend)}, which is not in this sweep "
                              f"({', '.join(backends)}; or {RECIPE}.FIELD for every int8 job)")
        given = pairs.setdefault(backend, {})
        if name in given:
            raise ConfigError(f"--option {quoted(target)} is given twice ({quoted(given[name])} and {quoted(value)}); "
                              "give each field once")
        given[name] = value
    return {b: (Int8Recipe if b == RECIPE else lookup(b).config).from_pairs(p, b).canonical() for b, p in pairs.items()}


def canonical(backend: Any, options: str) -> str:
    """A job's options string (`FIELD=VALUE,...,int8.FIELD=VALUE`, as records and `bench profile --compare
    options=...` give it) checked by the backend's configuration class and the recipe's, canonical."""
    own, recipe = split(options)
    return join(backend.config.parse(own, backend.name).canonical(), Int8Recipe.parse(recipe, RECIPE).canonical())
