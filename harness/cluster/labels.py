"""What a node of a device lab says it holds: Ray labels (what it is) and resources (one slot per device).

`bench worker` derives both from the machine: its name, CPU model, GPU, OS, Core ML, an attached iPhone,
the backends `bench list backends` finds, the onebench release and library releases. Every device gets one
slot (a custom resource of 1), and the node one more that every onebench step takes: so at most one timed
job runs on a device at a time, and nothing else of onebench's runs beside it on that node.

Ray label values are short tokens (63 characters, letters, digits, `-_.`); what a label cannot spell (a CPU
model's spaces, torch's `+cu130`) is folded into that alphabet. Records keep the full host block, which each
step brings back from its node: labels route, they are not the record.
"""

from __future__ import annotations

import json
import platform
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Any

from harness import __version__

PREFIX = "onebench.io/"
NODE_SLOT = "onebench.node"  # one per node: every onebench step holds it
SLOT_PREFIX = "onebench.device."  # one per device: "onebench.device.cpu", ".cuda", ".coreml", ".iphone"
NODE_ID_LABEL = "ray.io/node-id"  # Ray's own label: a step pinned to the node that prepared its job
IPHONE = "iphone"


def slot(device: str) -> str:
    return SLOT_PREFIX + device


def token(text: str) -> str:
    """`text` as a Ray label value: runs of other characters become one `_`, ends trimmed, 63 at most."""
    folded = re.sub(r"[^A-Za-z0-9._-]+", "_", str(text)).strip("._-")
    return folded[:63].rstrip("._-") or "unknown"


def release(version: str) -> str:
    return version.split("+", 1)[0]


@dataclass(frozen=True)
class NodeDescription:
    """A node's labels and resources, as `ray start` takes them."""

    labels: dict[str, str] = field(default_factory=dict)
    resources: dict[str, float] = field(default_factory=dict)

    def ray_start_args(self) -> list[str]:
        return [f"--labels={json.dumps(self.labels, sort_keys=True)}",
                f"--resources={json.dumps(self.resources, sort_keys=True)}"]


def attached_iphone() -> str | None:
    """The model of an iPhone attached to this Mac (`xcrun devicectl`), or None."""
    if sys.platform != "darwin" or not shutil.which("xcrun"):
        return None
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        listing = Path(tmp) / "devices.json"
        try:
            subprocess.run(["xcrun", "devicectl", "list", "devices", "--json-output", str(listing)],
                           capture_output=True, timeout=30, check=True)
            devices = json.loads(listing.read_text())["result"]["devices"]
        except (OSError, subprocess.SubprocessError, ValueError, KeyError):
            return None
    for device in devices:
        hardware = device.get("hardwareProperties", {})
        if hardware.get("platform") == "iOS" and device.get("connectionProperties", {}).get("tunnelState") != "unavailable":
            return hardware.get("marketingName") or hardware.get("productType") or "iPhone"
    return None


def describe_node(name: str | None = None, extra: dict[str, str] | None = None,
                  iphone: str | None = None) -> NodeDescription:
    """This machine's labels and slots. `iphone` names an attached phone (default: ask `xcrun devicectl`)."""
    from backends import registry
    from harness.host import environment, gpu
    from harness.listing.backends import backend_rows

    cpu = environment.cpu_info()
    labels = {"machine": name or platform.node(), "os": platform.system().lower(), "cpu": str(cpu["model"]),
              "cores": str(cpu["logical_cores"]), "python": platform.python_version(), "onebench": __version__}
    devices = ["cpu"]
    accelerator = gpu.device_info()
    if accelerator:
        labels["gpu"] = accelerator["name"]
        devices.append("cuda")
    rows = [row for row in backend_rows() if row.ok or row.prepares]
    offered = {row.name: registry.get(row.name) for row in rows}
    for slot_name in sorted({offered[row.name].device_slot for row in rows if row.ok} - {""}):
        labels[slot_name] = "true"  # a backend's own devices, where it can time them (Core ML on macOS)
        devices.append(slot_name)
    phone = iphone if iphone is not None else attached_iphone()
    if phone and any(backend.on_device for backend in offered.values()):
        labels[IPHONE] = phone
        devices.append(IPHONE)
    for name, backend in offered.items():
        if any(device in devices for device in backend.devices) or backend.own_devices:
            labels[f"backend.{name}"] = "true"
    for library, version in environment.library_versions().items():
        labels[f"lib.{library}"] = release(version)
    labels.update(extra or {})
    return NodeDescription({PREFIX + key: token(value) for key, value in labels.items()},
                           {NODE_SLOT: 1.0, **{slot(device): 1.0 for device in devices}})


def device_of(job_device: str, backend: str, boundary: str) -> str:
    """The device slot a job needs: an iPhone job the phone's, a job on a backend's own devices (Core ML's
    compute units) that backend's slot, else the job's device ("cpu", "cuda")."""
    from backends import registry

    if boundary == "on-device":
        return IPHONE
    return registry.get(backend).device_slot or job_device


def label(node: dict[str, Any], key: str) -> str | None:
    """A node's onebench label (`key` without the prefix)."""
    return (node.get("Labels") or {}).get(PREFIX + key)


def node_devices(node: dict[str, Any]) -> list[str]:
    return sorted(k.removeprefix(SLOT_PREFIX) for k in node.get("Resources") or {} if k.startswith(SLOT_PREFIX))


def node_backends(node: dict[str, Any]) -> list[str]:
    prefix = PREFIX + "backend."
    return sorted(k.removeprefix(prefix) for k in node.get("Labels") or {} if k.startswith(prefix))


def node_libraries(node: dict[str, Any]) -> dict[str, str]:
    prefix = PREFIX + "lib."
    return {k.removeprefix(prefix): v for k, v in (node.get("Labels") or {}).items() if k.startswith(prefix)}


def is_onebench_node(node: dict[str, Any]) -> bool:
    return NODE_SLOT in (node.get("Resources") or {})
