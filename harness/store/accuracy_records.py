"""Accuracy records on disk: their schema, one file per (job, artifact), and the join with latency records.

Kept apart from the evaluation (which needs torch and the runtimes) so the reporting commands
(leaderboard, site, nightly's report) read accuracy without importing torch."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema

from harness.store.record import Record, join_key
from harness.store.records import atomic_write_text, check_schema, read_json

SCHEMA_VERSION = 1
ACCURACY_DIR = "accuracy"  # under the results root, beside runs/
_RATE = {"type": "number", "minimum": 0, "maximum": 1}

SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "onebench accuracy record",
    "type": "object",
    "required": ["schema_version", "kind", "created", "job", "weights", "artifact", "data", "top1", "top5", "k",
                 "reference", "delta_top1", "agreement", "host"],
    "properties": {
        "schema_version": {"const": SCHEMA_VERSION},
        "kind": {"const": "accuracy"},
        "job": {"type": "object", "required": ["model", "backend", "device", "precision", "batch", "form"]},
        "weights": {"type": "object", "required": ["path", "sha256", "state_sha256"]},
        "artifact": {"type": "object"},
        "data": {"type": "object", "required": ["path", "layout", "images", "classes"],
                 "properties": {"images": {"type": "integer", "minimum": 1}}},
        "top1": _RATE, "top5": _RATE, "k": {"type": "integer", "minimum": 1},
        "reference": {"type": "object", "required": ["backend", "precision", "top1", "top5"]},
        "delta_top1": {"type": "number"},
        "paired": {"type": "object", "required": ["delta_top1", "ci_low", "ci_high", "changed_predictions"],
                   "description": "Δtop-1 against PyTorch fp32 on the same images, with its paired 95% CI"},
        "agreement": _RATE,
        "backend_config": {"type": "object"},
        "calibration": {"anyOf": [{"type": "null"}, {"type": "object", "required": ["source", "size", "sha256",
                                                                                     "meaningful"]}]},
        "host": {"type": "object"},
    },
}
_VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


@dataclass(frozen=True)
class AccuracyRecord:
    """An accuracy record as reports and the CLI read it, typed; `document` is the file as written (its
    `paired` block, `layers` diagnosis and `data` stay as written)."""

    job: Mapping[str, Any]
    top1: float
    top5: float
    k: int
    reference_top1: float  # PyTorch fp32 on the same images
    reference_top5: float
    delta_top1: float
    agreement: float  # the share of images whose top-1 prediction is PyTorch fp32's
    images: int
    data_path: str
    artifact: Mapping[str, Any]
    weights_state: str  # the weights' state hash: the join with latency records
    paired: Mapping[str, Any] | None = None
    calibration: Mapping[str, Any] | None = None
    layers: Mapping[str, Any] | None = None
    document: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def key(self) -> tuple | None:
        return join_key(self.job, self.artifact, self.weights_state)

    @property
    def calibrated_on_random_input(self) -> bool:
        return bool(self.calibration) and not self.calibration.get("meaningful")

    @classmethod
    def of(cls, doc: Mapping[str, Any]) -> AccuracyRecord:
        """The typed view of an accuracy record (schema-checked where it was read or made)."""
        ref, data = doc["reference"], doc["data"]
        return cls(job=doc["job"], top1=doc["top1"], top5=doc["top5"], k=doc["k"], reference_top1=ref["top1"],
                   reference_top5=ref["top5"], delta_top1=doc["delta_top1"], agreement=doc["agreement"],
                   images=data["images"], data_path=data["path"], artifact=doc["artifact"],
                   weights_state=doc["weights"]["state_sha256"], paired=doc.get("paired"),
                   calibration=doc.get("calibration"), layers=doc.get("layers"), document=doc)


def record_key(rec: Mapping[str, Any] | Record | AccuracyRecord) -> tuple | None:
    """`join_key` of a latency or an accuracy record."""
    if isinstance(rec, (Record, AccuracyRecord)):
        return rec.artifact_key if isinstance(rec, Record) else rec.key
    if rec.get("kind") == "accuracy":
        return AccuracyRecord.of(rec).key
    return join_key(rec["job"], rec.get("artifact") or {}, (rec.get("model_info") or {}).get("weights_sha256"))


def validate(rec: dict[str, Any], source: str) -> None:
    check_schema(_VALIDATOR, rec, f"{source} is not a valid onebench accuracy record")


def record_path(root: Path, rec: Mapping[str, Any] | AccuracyRecord) -> Path:
    """One file per (job, artifact): evaluating the same file again replaces its record."""
    j = rec.job if isinstance(rec, AccuracyRecord) else rec["job"]
    key = record_key(rec)
    digest = hashlib.sha256(repr(key).encode()).hexdigest()[:12]
    safe = f"{j['model']}.{j['backend']}.{j['device']}.{j['precision']}.b{j['batch']}".replace(":", "_").replace("/", "_")
    return root / ACCURACY_DIR / f"{safe}.{digest}.json"


def save(root: Path, rec: dict[str, Any]) -> Path:
    path = record_path(root, rec)
    validate(rec, str(path))
    atomic_write_text(path, json.dumps(rec, indent=1, allow_nan=False))
    return path


def load_all(root: Path) -> list[AccuracyRecord]:
    """Every accuracy record under `root/accuracy` (none is fine: leaderboards then say "reported")."""
    out = []
    for path in sorted((Path(root) / ACCURACY_DIR).glob("*.json")):
        doc = read_json(path)
        validate(doc, str(path))
        out.append(AccuracyRecord.of(doc))
    return out


def index(accuracy: list[AccuracyRecord]) -> dict[tuple, AccuracyRecord]:
    """Accuracy records by join key; of several for one artifact, the one over the most images wins."""
    best: dict[tuple, AccuracyRecord] = {}
    for rec in accuracy:
        key = rec.key
        if key is not None and (key not in best or rec.images >= best[key].images):
            best[key] = rec
    return best
