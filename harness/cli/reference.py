"""docs/commands.md, generated from the CLI itself (`python -m harness.cli.reference > docs/commands.md`):
every visible command, its help and each option's name, default and help, so the reference cannot drift
from the code (`tests/test_docs_links.py` compares them)."""

from __future__ import annotations

import typer.main

from harness.cli import app

HEADER = """# Commands: the reference

Generated from the code by `python -m harness.cli.reference > docs/commands.md` (a test fails when it is
stale); `bench COMMAND --help` says the same. Old spellings of one release (`--quick`, `--precise`, `-q`,
`--json-progress`, `--address`, `compare --markdown/--json`, `history --gate/--ms`, `cluster status`, `index
rebuild`) still work, hidden, and say what to use instead; `compare --interleave` is `bench ab`.

`RUN` is a run folder, a run id under `results/runs/`, or `latest` (the newest run with at least one
measured number; the command says which run that was). Models are the names of `bench list models`, or
`timm:<any timm model>`; `ONEBENCH_PLUGINS=pkg.module` imports modules that register more models or
backends (`model_zoo.registry.register`, `backends.registry.register`); a plugin may add models and backends,
never replace a built-in one (`backends.registry.wrap` runs a built-in backend through a plugin's wrapper, and
every record of it says `wrapped_by`). Bad input is one line on stderr and exit code 2, and nothing is
half-written: no command writes a report (`--output`, `--plot`, `--html`, `--bundle`) or a new run (`--out`)
into a run folder's `records/` or `partial/`; a run folder is locked while a sweep writes it. Records hold
only finite numbers, and a record whose figures do not follow from its raw samples is refused on read.
"""


def _option(param) -> str:
    names = " / ".join(sorted(param.opts, key=len, reverse=True))
    default = param.default
    shown = "" if default in (None, False, (), []) or getattr(param, "is_flag", False) else f" (default: {getattr(default, 'value', default)})"
    text = (getattr(param, "help", "") or "").replace("|", "\\|")
    return f"| `{names}` | {text}{shown} |"


def _commands(group, prefix: tuple[str, ...] = ()) -> list[tuple[str, object]]:
    found = []
    for name, command in group.commands.items():
        if getattr(command, "hidden", False):
            continue
        if getattr(command, "commands", None):
            found += _commands(command, prefix + (name,))
        else:
            found.append((" ".join(prefix + (name,)), command))
    return found


def reference() -> str:
    lines = [HEADER]
    for name, command in _commands(typer.main.get_command(app)):
        arguments = " ".join((p.metavar or p.name.upper()) for p in command.params
                             if p.param_type_name == "argument" and not getattr(p, "hidden", False))
        lines += [f"## bench {name}{' ' + arguments if arguments else ''}", "",
                  (command.help or "").strip().replace("\n", " "), ""]
        options = [p for p in command.params if p.param_type_name == "option" and not p.hidden]
        if options:
            lines += ["| option | what it does |", "| --- | --- |", *(_option(p) for p in options), ""]
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    print(reference(), end="")
