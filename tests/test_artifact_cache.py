"""The artifact cache checks what its key promises: a truncated or swapped file is built again."""

from __future__ import annotations

from pathlib import Path

import pytest

from backends.artifact_cache import cached, verified
from harness.measure.inputs import Stores
from harness.measure.jobs import plan
from harness.measure.protocol import preset
from harness.measure.runner import run_sweep


def test_built_once_then_verified_and_rebuilt_when_damaged(tmp_path: Path) -> None:
    builds = []

    def build(tmp: Path) -> None:
        builds.append(tmp)
        tmp.write_bytes(b"artifact " * 100)
        tmp.with_suffix(".bin").write_bytes(b"weights")

    path = tmp_path / "a" / "model.xml"
    assert cached(path, build, (".bin",)) and verified(path, (".bin",))
    assert not cached(path, build, (".bin",)) and len(builds) == 1
    assert not list(path.parent.glob("*tmp*"))  # nothing half-built left beside it
    path.with_suffix(".bin").write_bytes(b"other weights")  # a companion swapped
    assert cached(path, build, (".bin",)) and len(builds) == 2
    path.write_bytes(path.read_bytes()[:50])  # truncated
    assert not verified(path, (".bin",)) and cached(path, build, (".bin",))
    path.with_name(path.name + ".sha256").unlink()  # no record of what was built: not trusted
    assert cached(path, build, (".bin",)) and len(builds) == 4


def test_a_failed_build_leaves_nothing(tmp_path: Path) -> None:
    def broken(tmp: Path) -> None:
        tmp.write_bytes(b"half")
        raise RuntimeError("compiler died")

    with pytest.raises(RuntimeError):
        cached(tmp_path / "x.onnx", broken)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_a_damaged_or_foreign_onnx_export_is_rebuilt_before_a_run(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    model = "timm:test_byobnet"
    jobs = {size: plan([model], ["onnxruntime"], ["fp32"], [1], 1, input_sizes={model: size}) for size in (64, 96)}
    cfg = preset("quick", probe=False, min_s=0.05, max_s=0.1, warmup_s=0.01)

    def run(size: int, name: str) -> dict:
        return run_sweep(jobs[size], cfg, tmp_path / name, stores=Stores(cache_dir=tmp_path / "cache"))[0]

    first = run(64, "one")
    onnx = Path(first["artifact"]["path"])
    onnx.write_bytes(onnx.read_bytes()[:1000])  # truncated in the cache
    second = run(64, "two")
    assert second["status"] == "ok" and second["cold_start"]["export_s"] > 0  # exported again, not an error
    other = Path(run(96, "three")["artifact"]["path"])
    onnx.write_bytes(other.read_bytes())  # another valid model's file in its place
    fourth = run(64, "four")
    assert fourth["cold_start"]["export_s"] > 0 and fourth["artifact"]["sha256"] == first["artifact"]["sha256"]
