"""The pinned baseline environment a nightly gate measures the current one against, in lockstep.

As asv keeps one environment per commit, the baseline side of `bench nightly --baseline-constraints
FILE` is a virtual environment built from a pinned constraints file (the last known-good versions of
torch, onnxruntime, openvino...), kept under the cache by the file's hash and rebuilt only when the
file changes. The project's own code comes from the working tree on both sides (the lockstep worker
puts it on PYTHONPATH), so the comparison isolates the libraries.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import venv
from pathlib import Path

from harness.errors import HarnessError

READY = ".onebench-env-ready"


def python_of(env_dir: Path) -> Path:
    return env_dir / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")


def ensure_env(constraints: Path, cache_dir: Path, say=lambda _: None) -> Path:
    """The interpreter of the environment pinned by `constraints`, built on first use."""
    try:
        digest = hashlib.sha256(constraints.read_bytes()).hexdigest()[:16]
    except OSError as exc:
        raise HarnessError(f"cannot read the baseline constraints file {constraints} ({exc.strerror}); pass a pip "
                           "requirements/constraints file with pinned versions") from None
    env_dir = cache_dir / "envs" / digest
    if (env_dir / READY).exists():
        return python_of(env_dir)
    say(f"building the baseline environment from {constraints} in {env_dir} (once per constraints file)")
    shutil.rmtree(env_dir, ignore_errors=True)
    venv.EnvBuilder(with_pip=True, clear=True).create(env_dir)
    done = subprocess.run([str(python_of(env_dir)), "-m", "pip", "install", "-q", "-r", str(constraints.resolve())],
                          capture_output=True, text=True)
    if done.returncode != 0:
        shutil.rmtree(env_dir, ignore_errors=True)
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["(no output)"]
        raise HarnessError(f"pip could not build the baseline environment from {constraints}: {tail[0][:300]}")
    (env_dir / READY).write_text(str(constraints.resolve()) + "\n")
    return python_of(env_dir)


# Tools of the test suite and CI, not of a measurement: a baseline environment does not need them.
NOT_RUNTIME = {"hypothesis", "pytest", "pytest-timeout", "pytest-xdist", "playwright", "greenlet", "nox", "execnet",
               "iniconfig", "pluggy", "pyee", "sortedcontainers", "argcomplete", "colorlog", "dependency-groups",
               "distlib", "virtualenv", "humanize", "python-discovery"}
HEADER = """\
# The pinned baseline of the nightly gate: the library versions of the last accepted night. `bench nightly
# --baseline-constraints constraints-baseline.txt` builds a venv from this file once (cached by its hash) and measures
# it in lockstep against the current environment. Move the baseline forward (docs/gating.md, "Nightly"): after a night is
# accepted, `bench baseline pin` copies the runtime pins of constraints.txt here; commit it.
"""


def pin_baseline(source: Path, target: Path) -> list[str]:
    """Write `target` from the runtime pins of `source` (the versions CI installs now); returns what changed,
    as "name: old -> new" lines."""
    from harness.store.records import atomic_write_text

    def pins(path: Path) -> dict[str, str]:
        out = {}
        for line in path.read_text().splitlines():
            name, sep, version = line.strip().partition("==")
            if sep and not line.startswith("#"):
                out[name.strip()] = version.strip()
        return out

    try:
        new = {k: v for k, v in pins(source).items() if k.lower() not in NOT_RUNTIME}
        old = pins(target) if target.exists() else {}
    except OSError as exc:
        raise HarnessError(f"cannot read {exc.filename} ({exc.strerror}); pass a pip constraints file") from None
    if not new:
        raise HarnessError(f"{source} pins no package (expected name==version lines)")
    atomic_write_text(target, HEADER + "".join(f"{k}=={v}\n" for k, v in new.items()))
    return [f"{k}: {old.get(k, 'absent')} -> {new.get(k, 'absent')}" for k in sorted(set(old) | set(new))
            if old.get(k) != new.get(k)]
