"""The job key, defined once: which fields make two measurements the same job, and every way it is
spelt (the id, the label, the record schema's `job`, the index and CSV columns) derived from it.

Kept in the store (no torch, no runtimes) so the reporting commands read keys without importing them.
`options` is the backend's non-default configuration (`backends.config`), canonical.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

KEY_FIELDS = ("model", "form", "backend", "device", "precision", "batch", "threads", "boundary", "layout", "options")
DEFAULTS: dict[str, Any] = {"layout": "nchw", "options": ""}  # key fields older records may lack
# How each field is spelt in a label and an id (the others: as they are); a default-valued optional field is left out.
_LABEL = {"form": "({})", "batch": "batch {}", "threads": "{} threads", "boundary": "boundary {}"}
_ID = {"batch": "b{}", "threads": "t{}"}
MAX_ID_PART = 40  # a longer options string enters the id as a digest (ids are file names)

# The record schema's `job`: key fields required except those older records may lack.
JOB_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": [f for f in KEY_FIELDS if f not in DEFAULTS],
    "properties": {
        "model": {"type": "string"}, "backend": {"type": "string"}, "form": {"enum": ["train", "fused"]},
        "device": {"type": "string"}, "precision": {"type": "string"},
        "batch": {"type": "integer", "minimum": 1}, "threads": {"type": "integer", "minimum": 1},
        "boundary": {"enum": ["host-sync", "device", "end-to-end", "on-device"]},
        "layout": {"enum": ["nchw", "nhwc"]}, "options": {"type": "string"},
        "input_size": {"type": "integer", "minimum": 1},
    },
}


def full(key: Mapping[str, Any]) -> dict[str, Any]:
    """Every key field of a job dict (an older record's missing fields at their defaults)."""
    return {f: key.get(f, DEFAULTS.get(f)) for f in KEY_FIELDS}


def key_of(job: Mapping[str, Any]) -> tuple:
    """The key of a record's job dict as a tuple, in `KEY_FIELDS` order."""
    return tuple(full(job).values())


def _shown(k: Mapping[str, Any]) -> list[str]:
    return [f for f in KEY_FIELDS if f not in DEFAULTS or k[f] != DEFAULTS[f]]


def key_label(key: Mapping[str, Any]) -> str:
    """One job key as people read it, the same in every table and report: every key field is spelt, so
    two keys never print alike (layout and options only when not at their defaults)."""
    k = full(key)
    parts = [_LABEL.get(f, "{}").format(k[f]) for f in _shown(k)]
    return " · ".join([f"{parts[0]} {parts[1]}", *parts[2:]])


def job_id(key: Mapping[str, Any]) -> str:
    """A file-name-safe id that spells the key."""
    k = full(key)
    parts = []
    for f in _shown(k):
        value = str(k[f])
        if f == "options" and len(value) > MAX_ID_PART:
            value = "o" + hashlib.sha256(value.encode()).hexdigest()[:10]
        parts.append(_ID.get(f, "{}").format(value))
    return re.sub(r"[^A-Za-z0-9._-]+", "_", ".".join(parts))


COLUMNS = KEY_FIELDS  # the index's and the CSV's key columns
