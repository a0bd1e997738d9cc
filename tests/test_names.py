"""Names reach terminals, logs and file names: they are checked where they enter (a registered model or
backend, a record read back), and what onebench prints carries no raw control character (#49, case 3)."""

from __future__ import annotations

import dataclasses
import io
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from backends import registry as backends
from harness.cli import app
from harness.cli.common import PlainConsole
from harness.cli.sweep_progress import ConsoleSweep
from harness.errors import HarnessError
from harness.publish.tables import markdown, rich_table
from harness.store import records
from harness.store.record import load_record
from model_zoo.names import check_name, printable
from model_zoo.registry import get_spec, register
from tests.synthetic import record

HOSTILE = ["\x1b[31mRED\x1b[0m\x1b[2J", "evil\nname", "cr\rforged", "nul\x00", "bidi\u202eevil", "a b", "", "x" * 101]


@pytest.mark.parametrize("name", HOSTILE)
def test_a_model_named_with_control_characters_is_refused_at_registration(name: str) -> None:
    spec = dataclasses.replace(get_spec("mobileone_s0"), name=name)
    with pytest.raises(ValueError, match="is not valid") as caught:
        register(spec)
    assert "\x1b" not in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize("name", HOSTILE[:4])
def test_a_backend_named_with_control_characters_is_refused(name: str) -> None:
    with pytest.raises(ValueError, match="is not valid"):
        backends.register(name, "tests.fake_backends:Sleeps")
    assert name not in backends.names()


def test_real_names_pass() -> None:
    for name in ("mobileone_s0", "timm:resnet50.a1_in1k", "torch-compile", "ablation_act_se-relu", "onnxruntime-trt"):
        assert check_name("model", name) == name


def _planted(tmp_path: Path, model: str) -> Path:
    rec = record([np.full(40, 2e6)], model="a")
    rec["job"]["model"] = model
    folder = tmp_path / "run"
    (folder / "records").mkdir(parents=True)
    (folder / "records" / "a.json").write_text(json.dumps(rec))
    return folder


@pytest.mark.parametrize("model", ["\x1b[2J", "evil\nname", "a\x07"])
def test_a_record_whose_job_holds_a_control_character_is_refused(tmp_path: Path, model: str) -> None:
    folder = _planted(tmp_path, model)
    with pytest.raises(HarnessError, match="job.model holds a control character"):
        load_record(folder / "records" / "a.json")
    shown = CliRunner().invoke(app, ["show", str(folder)])
    assert shown.exit_code == 2 and "\x1b" not in shown.output and len(shown.stderr.strip().splitlines()) == 1


def test_a_record_with_a_printable_job_still_loads(tmp_path: Path) -> None:
    assert load_record(_planted(tmp_path, "a") / "records" / "a.json").job.model == "a"


def test_the_console_writes_escapes_never_raw_control_characters() -> None:
    buffer = io.StringIO()
    console = PlainConsole(file=buffer, force_terminal=False, width=200)
    console.print("model \x1b[31mRED\x1b[0m done\r\x07", markup=False)
    console.print(rich_table("t\x1b", ["name"], [["x\x1b[2J"]]))
    assert "\x1b" not in buffer.getvalue() and "\r" not in buffer.getvalue() and "\x07" not in buffer.getvalue()
    assert "\\x1b[31mRED" in buffer.getvalue()


def test_markdown_cells_carry_no_control_characters() -> None:
    text = markdown(["model"], [["a\x1b[2J\nb"]])
    assert "\x1b" not in text and text.count("\n") == 3


def test_a_progress_line_stays_one_line_whatever_its_message_holds() -> None:
    buffer = io.StringIO()
    sweep = ConsoleSweep(PlainConsole(file=buffer, force_terminal=False, width=300), "run")
    sweep.line("job x: error: boom\nok: forged line \x1b[2J")
    assert buffer.getvalue().count("\n") == 1 and "\x1b" not in buffer.getvalue()


def test_printable_keeps_what_it_is_asked_to_keep() -> None:
    assert printable("a\nb\x1b", keep="\n") == "a\nb\\x1b"
    assert records.control_in_names({"run_id": "r", "job": {"model": "m"}}) is None
