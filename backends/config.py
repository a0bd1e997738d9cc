"""Typed, validated per-backend configuration: the one place a backend's options live.

Each backend declares a frozen dataclass subclass of `BackendConfig` as its `config` attribute: session
options, hints, providers, quantization settings. The CLI fills it from `-o BACKEND.FIELD=VALUE`, a job
carries it as one canonical string of its non-default fields (`options`, part of the job key, so two
settings never share a record or an artifact), the record stores every field (`backend_config`) and the
backend keys its artifacts by `config.digest()`. Adding an option to a backend is adding a field here
and reading it in that backend's `open`: nothing in `harness/` changes.

A field's choices go in its metadata (`choices(...)`); bool, int, float and str fields parse from text.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections.abc import Callable
from typing import Any, TypeVar

from model_zoo.names import control_chars

C = TypeVar("C", bound="BackendConfig")
_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}
SEPARATORS = ",="  # what joins a job's canonical `field=value,field=value`: never inside a value
QUOTE_CHARS = 60  # what an error message quotes of a value a user typed: one line, however long the value


def quoted(text: str, limit: int = QUOTE_CHARS) -> str:
    """`text` quoted for a one-line error, cut to `limit` characters with the full length said."""
    return repr(text) if len(text) <= limit else f"{text[:limit]!r}… ({len(text):,} characters)"


class ConfigError(ValueError):
    """A backend option that does not exist or has a value the backend cannot take (one line, for users)."""


def choices(default: str, *allowed: str, help: str = "") -> Any:
    """A str field limited to `allowed` (the default first)."""
    return dataclasses.field(default=default, metadata={"choices": (default, *allowed), "help": help})


def option(default: Any, help: str = "", grammar: Callable[[str, str], str] | None = None) -> Any:
    """A bool/int/float/str field with a help line (`bench list backends --options` shows it); a str field's
    `grammar(where, value)` checks a value and returns it canonical (raising ConfigError with what is wrong)."""
    return dataclasses.field(default=default, metadata={"help": help, "grammar": grammar})


@dataclasses.dataclass(frozen=True)
class BackendConfig:
    """Base of every backend's configuration; a backend without options uses it as it is."""

    @classmethod
    def parse(cls: type[C], options: str, backend: str = "backend") -> C:
        """From the canonical `field=value,field=value` string a job carries ("" = every default)."""
        pairs = [item.partition("=") for item in options.split(",") if item]
        if any(not sep for _, sep, _ in pairs):
            raise ConfigError(f"{backend} options {quoted(options)} are not field=value pairs")
        return cls.from_pairs({k: v for k, _, v in pairs}, backend)

    @classmethod
    def from_pairs(cls: type[C], pairs: dict[str, str], backend: str = "backend") -> C:
        fields = {f.name: f for f in dataclasses.fields(cls)}
        values: dict[str, Any] = {}
        for name, text in pairs.items():
            if name not in fields:
                known = ", ".join(fields) or "none"
                raise ConfigError(f"{backend} has no option {quoted(name)} (its options: {known})")
            values[name] = _convert(f"{backend}.{name}", fields[name], text)
        return cls(**values)

    def canonical(self) -> str:
        """The non-default fields, sorted, as `field=value,...`: the job key's `options` ("" at defaults)."""
        return ",".join(f"{f.name}={_text(getattr(self, f.name))}" for f in sorted(dataclasses.fields(self), key=lambda f: f.name)
                        if getattr(self, f.name) != f.default)

    def as_dict(self) -> dict[str, Any]:
        """Every field, defaults included: what the record stores."""
        return dataclasses.asdict(self)

    def digest(self) -> str:
        """A short hash of every field, for artifact cache keys (a changed default rebuilds)."""
        return hashlib.sha256(repr(sorted(self.as_dict().items())).encode()).hexdigest()[:12]

    @classmethod
    def describe(cls) -> list[str]:
        """One line per option: name, default, choices, help."""
        lines = []
        for f in dataclasses.fields(cls):
            allowed = f.metadata.get("choices")
            kind = "|".join(allowed) if allowed else type(f.default).__name__
            lines.append(f"{f.name}={_text(f.default)} ({kind}) {f.metadata.get('help', '')}".rstrip())
        return lines


def _text(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _convert(where: str, field: dataclasses.Field, text: str) -> Any:
    """One field's value from text, by that field's own grammar: one `-o` sets one field, so a value holding
    the canonical string's separators (`,` `=`) would smuggle in a second one and is refused."""
    if control_chars(text):
        raise ConfigError(f"{where} holds a control character ({quoted(text)}); give printable text")
    if any(c in text for c in SEPARATORS):
        raise ConfigError(f"{where}={quoted(text)}: a value may not hold ',' or '=' (one -o sets one field; "
                          "give each field its own -o)")
    allowed = field.metadata.get("choices")
    if allowed:
        if text not in allowed:
            raise ConfigError(f"{where} is one of {', '.join(allowed)}, not {quoted(text)}")
        return text
    default = field.default
    try:
        if isinstance(default, bool):
            if text.lower() not in _TRUE | _FALSE:
                raise ValueError
            return text.lower() in _TRUE
        value = type(default)(text)
    except ValueError:
        raise ConfigError(f"{where} takes a {type(default).__name__}, not {quoted(text)}") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{where} takes a finite number, not {quoted(text)}")
    grammar = field.metadata.get("grammar")
    return grammar(where, value) if grammar else value
