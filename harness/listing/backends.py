"""The rows of `bench list backends`."""

from __future__ import annotations

from dataclasses import dataclass

from backends import registry


@dataclass(frozen=True)
class BackendRow:
    name: str
    description: str
    ok: bool
    version: str
    reason: str
    install: str
    prepares: bool = False


def backend_rows() -> list[BackendRow]:
    rows = []
    for name in registry.names():
        backend = registry.get(name)
        avail = backend.availability()
        rows.append(BackendRow(name, backend.description, avail.ok, avail.version, avail.reason, avail.install,
                               avail.prepares))
    return rows


def available_cpu_backends() -> list[str]:
    """The default sweep's backends: every available one that runs on the CPU."""
    return [r.name for r in backend_rows() if r.ok and "cpu" in registry.get(r.name).devices]


def int8_cpu_backends() -> list[str]:
    """`bench int8`'s default: every available CPU backend with an int8 path (Core ML converts only, off macOS)."""
    return [name for name in available_cpu_backends() if "int8" in registry.get(name).precisions]
