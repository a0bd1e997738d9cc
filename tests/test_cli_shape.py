"""The CLI's shape: every short flag means one thing on every command, one long name per idea, and the
visible surface stays smaller than it was (165 options across the leaf commands before #41), the lab's one
shared option aside (`--cluster`: #51 asks it of every command that measures)."""

from __future__ import annotations

from collections import defaultdict

import typer.main

from harness.cli import app

SURFACE_BEFORE = 165


def _leaves(group=None, prefix=()):
    group = group or typer.main.get_command(app)
    for name, command in group.commands.items():
        if getattr(command, "hidden", False):
            continue
        if getattr(command, "commands", None):
            yield from _leaves(command, prefix + (name,))
        else:
            yield " ".join(prefix + (name,)), [p for p in command.params if p.param_type_name == "option" and not p.hidden]


def test_every_short_flag_means_one_long_option_on_every_command() -> None:
    meanings: dict[str, set[str]] = defaultdict(set)
    for _, options in _leaves():
        for option in options:
            long = next(o for o in option.opts if o.startswith("--"))
            for short in (o for o in option.opts if not o.startswith("--")):
                meanings[short].add(long)
    assert meanings["-m"] == {"--model"} and meanings["-o"] == {"--option"}  # -o was --output in leaderboard
    assert all(len(longs) == 1 for longs in meanings.values()), dict(meanings)


def test_one_name_per_idea_and_a_smaller_surface() -> None:
    leaves = dict(_leaves())
    names = {name: {o.opts[0] if o.opts[0].startswith("--") else o.opts[-1] for o in options} for name, options in leaves.items()}
    assert "--address" not in set().union(*names.values()) and "--root" not in set().union(*names.values())
    assert all("--cluster" in names[c] for c in ("run", "profile", "accuracy", "ab", "int8", "worker", "cluster"))
    assert not {"--interleave", "--pairs", "--candidate"} & names["compare"] and {"--pairs", "--candidate"} <= names["ab"]
    assert all("--quick" not in n and "--precise" not in n for n in names.values())  # one --preset
    assert sum(len(options) for options in leaves.values()) - sum("--cluster" in n for n in names.values()) < SURFACE_BEFORE
