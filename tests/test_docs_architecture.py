"""docs/architecture.md names only what exists (#51, item 8): every module its package tables list is a file of
that package, every package module is listed, and every dotted name it spells (`harness.measure.peak`,
`harness.store.record`) imports."""

from __future__ import annotations

import importlib
import re

from tests.helpers import ROOT

DOC = (ROOT / "docs" / "architecture.md").read_text()
HEADING = re.compile(r"^#{2,3} `((?:model_zoo|backends|harness)(?:/[a-z_]+)*)/`", re.M)


def _tables() -> dict[str, set[str]]:
    """Each package heading's table rows: package folder -> the module files it lists."""
    found: dict[str, set[str]] = {}
    headings = list(HEADING.finditer(DOC))
    for heading, following in zip(headings, [*headings[1:], None]):
        section = DOC[heading.end():following.start() if following else len(DOC)]
        section = section.split("\n### ")[0] if heading.group(0).startswith("## ") else section
        names = {n for line in section.splitlines() if line.startswith("| `") for n in re.findall(r"`([a-z0-9_]+\.py)`",
                                                                                                   line.split("|")[1])}
        found[heading.group(1)] = names
    return found


def test_every_module_the_tables_name_exists_and_every_module_is_named() -> None:
    tables = _tables()
    assert {"model_zoo", "backends", "harness/store", "harness/measure", "harness/track"} <= set(tables)
    missing, unlisted = [], []
    for package, names in tables.items():
        folder = ROOT / package
        missing += [f"{package}/{n}" for n in names if not (folder / n).is_file()]
        on_disk = {p.name for p in folder.glob("*.py") if p.name != "__init__.py"}
        if package != "harness":  # `harness/` itself lists its core modules only (the layers have their own tables)
            unlisted += [f"{package}/{n}" for n in sorted(on_disk - names)]
    assert not missing, f"docs/architecture.md names modules that do not exist: {missing}"
    assert not unlisted, f"modules docs/architecture.md does not list: {unlisted}"


def test_every_dotted_name_in_the_page_imports() -> None:
    wrong = []
    for name in sorted(set(re.findall(r"`((?:harness|backends|model_zoo)(?:\.[a-z0-9_A-Z]+)+)`", DOC))):
        if name.endswith(".py"):  # a file name in a table, not a dotted name
            continue
        parts = name.split(".")
        for i in range(len(parts), 0, -1):
            try:
                obj = importlib.import_module(".".join(parts[:i]))
            except ImportError:
                continue
            for attr in parts[i:]:
                obj = getattr(obj, attr, None)
            if obj is None:
                wrong.append(name)
            break
        else:
            wrong.append(name)
    assert not wrong, f"docs/architecture.md names what does not import: {wrong}"
