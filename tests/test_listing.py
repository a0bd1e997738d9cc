"""`bench list models` answers from its cache until a model definition changes."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.listing import models as listing


def _row(name: str) -> listing.ModelRow:
    return listing.ModelRow(name, "fam", "d", True, 10, 10, 1.5, 1.5, "matmul", 70.0, "src")


def test_counted_rows_are_cached_by_definition(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[list[str] | None] = []

    def count(names=None, count=True):
        built.append(names)
        return [_row(n) for n in (names or ["a", "b"])]

    monkeypatch.setattr(listing, "model_rows", count)
    assert [r.name for r in listing.cached_rows(cache_dir=tmp_path)] == ["a", "b"] and len(built) == 1
    assert listing.cached_rows(cache_dir=tmp_path) == [_row("a"), _row("b")] and len(built) == 1
    assert listing.cached_rows(["b"], cache_dir=tmp_path) == [_row("b")] and len(built) == 1
    listing.cached_rows(["c"], cache_dir=tmp_path)  # not in the cache: counted, the cache kept as it was
    assert built[-1] == ["c"] and listing.cached_rows(cache_dir=tmp_path) == [_row("a"), _row("b")]
    monkeypatch.setattr(listing, "definition_key", lambda: "another zoo")
    listing.cached_rows(cache_dir=tmp_path)
    assert len(built) == 3


def test_the_definition_key_follows_the_zoo_sources_and_plugins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    key = listing.definition_key()
    assert key == listing.definition_key()
    monkeypatch.setenv("ONEBENCH_PLUGINS", "my_models")
    assert listing.definition_key() != key
    monkeypatch.delenv("ONEBENCH_PLUGINS")
    zoo = tmp_path / "model_zoo"
    zoo.mkdir()
    (zoo / "a.py").write_text("x = 1\n")
    monkeypatch.setattr(listing, "ZOO", zoo)
    first = listing.definition_key()
    (zoo / "a.py").write_text("x = 2\n")
    assert listing.definition_key() != first


def test_the_options_listing_includes_the_int8_recipe_fields() -> None:
    """#49: `--option`'s help sends users to `bench list backends --options`, which did not list `int8.*`."""
    from typer.testing import CliRunner

    from harness.cli import app

    result = CliRunner().invoke(app, ["list", "backends", "--options"])
    assert result.exit_code == 0, result.output
    assert "-o int8.equalize=false (bool)" in result.output and "-o int8.float_layers=" in result.output
