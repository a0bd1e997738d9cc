"""Every relative link and image in README.md and docs/ points at a file of the repository; the README fits a
newcomer's reading."""

from __future__ import annotations

import re
from pathlib import Path

from tests.helpers import ROOT

LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def broken_links(page: Path) -> list[str]:
    """The relative targets of `page`'s Markdown links that name no file or folder (anchors ignored)."""
    broken = []
    for target in LINK.findall(page.read_text(encoding="utf-8")):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue  # a URL, or a heading of the same page
        if not (page.parent / target.split("#", 1)[0]).exists():
            broken.append(target)
    return broken


def test_the_checker_finds_a_broken_link_and_passes_a_good_one(tmp_path: Path) -> None:
    (tmp_path / "there.md").write_text("x")
    page = tmp_path / "page.md"
    page.write_text("[ok](there.md#a) ![gone](plots/gone.png) [web](https://example.org) [here](#top)")
    assert broken_links(page) == ["plots/gone.png"]


def test_no_page_of_the_readme_or_docs_links_to_a_missing_file() -> None:
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    assert len(pages) > 5
    broken = {str(p.relative_to(ROOT)): b for p in pages if (b := broken_links(p))}
    assert not broken, broken


def test_the_readme_is_short_and_gives_the_ci_test_command_near_the_top() -> None:
    """A newcomer's page: at most 300 lines, the install, run and test commands in the first 60, and the test
    command the one `.ci/run` runs."""
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    top = "\n".join(lines[:60])
    assert len(lines) <= 300 and "pip install" in top and "bench run" in top
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").strip().splitlines()[-1]
    assert ci == "nox -s ci" and ci in top


def test_the_command_reference_is_generated_from_the_cli() -> None:
    """docs/commands.md is `python -m harness.cli.reference`'s output: an option added, renamed or hidden in the
    code changes the reference (regenerate it), and the reference names every visible command."""
    from harness.cli.reference import reference

    text = reference()
    assert "## bench ab" in text and "## bench compare BASELINE CANDIDATE" in text and "`--preset`" in text
    assert "--interleave`" not in text.split("## bench run")[1]  # a hidden spelling is not documented as an option
    assert (ROOT / "docs" / "commands.md").read_text(encoding="utf-8") == text, \
        "docs/commands.md is stale: python -m harness.cli.reference > docs/commands.md"
