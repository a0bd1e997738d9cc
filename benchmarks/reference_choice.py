"""Which pinned reference workload tracks which job? One trial of the measurement behind `harness.measure.reference`.

For each job (the harness's own session of a zoo model on a backend, one thread), in one process, the
job and every candidate reference take turns in 100-ms windows, `--cycles` times: J R1 .. Rn J, then
the mirror order. Per job and candidate it prints the median over cycles of (job window / reference
window) and the job's own quiet-window figure, as one JSON line per trial appended to `--out`.
Run it several times, spread over an hour (alone on the machine), then `--report` prints, per job and
candidate, the spread (max/min - 1) of the ratio across trials beside the spread of the milliseconds.

    python benchmarks/reference_choice.py --out /tmp/refchoice.jsonl      # one trial (~2 min)
    python benchmarks/reference_choice.py --out /tmp/refchoice.jsonl --report
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

JOBS = [(m, "onnxruntime") for m in ("mobileone_s0", "mobileone_s1", "mobileone_s2", "mobileone_s3", "mobileone_s4",
                                      "mobilenetv2_100", "efficientnet_b0", "mobileformer_294m", "mobileformer_508m")]
JOBS += [(m, b) for b in ("openvino", "torch", "torch-compile") for m in ("mobileone_s0", "mobilenetv2_100", "mobileformer_294m")]


def trial(out: Path, cycles: int, window_s: float) -> None:
    from backends import registry
    from harness.measure import reference
    from harness.measure.jobs import Job
    from harness.measure.paired import host_timed, time_window
    from harness.measure.protocol import preset
    from harness.measure.windows import quiet_p50
    from harness.measure.worker import open_job
    from harness.store.runs import default_cache_dir

    def open_session(model: str, backend: str):
        job = Job(model, backend)
        return open_job({"job": job.as_dict(), "protocol": preset("default").as_dict(),
                         "backend_ref": registry.ref(backend), "cache_dir": str(default_cache_dir())}, parity=False)[3]

    refs = {name: reference.build(name, 1, default_cache_dir()) for name in reference.NAMES}
    row: dict = {"t": time.time(), "jobs": {}}
    for model, backend in JOBS:
        session = open_session(model, backend)
        run = host_timed(session.run)
        for _ in range(10):
            run()
        order = [None, *refs]
        jw: list[float] = []
        ratios: dict[str, list[float]] = {name: [] for name in refs}
        rw: dict[str, list[float]] = {name: [] for name in refs}
        for c in range(cycles):
            seq = order + [None] if c % 2 == 0 else [None, *reversed(list(refs)), None]
            med: dict[str, float] = {}
            js = []
            for name in seq:
                w = float(np.median(time_window(run if name is None else refs[name], window_s)))
                js.append(w) if name is None else med.setdefault(name, w)
            jw.extend(js)
            for name in refs:
                ratios[name].append(float(np.mean(js)) / med[name])
                rw[name].append(med[name])
        session.close()
        jq = quiet_p50([np.asarray(jw)])
        row["jobs"][f"{model}/{backend}"] = {"job_quiet_ms": jq / 1e6,
                                             **{n: float(np.median(r)) for n, r in ratios.items()},
                                             **{f"q:{n}": jq / quiet_p50([np.asarray(w)]) for n, w in rw.items()}}
        print(model, backend, {k: round(v, 4) for k, v in row["jobs"][f"{model}/{backend}"].items()}, flush=True)
    with out.open("a") as f:
        f.write(json.dumps(row) + "\n")


def report(out: Path) -> None:
    rows = [json.loads(line) for line in out.read_text().splitlines() if line.strip()]
    print(f"{len(rows)} trials over {(rows[-1]['t'] - rows[0]['t']) / 60:.0f} min")
    keys = list(rows[0]["jobs"])
    stats = list(rows[0]["jobs"][keys[0]])
    spread: dict[str, list[float]] = {s: [] for s in stats}
    for key in keys:
        line = []
        for s in stats:
            v = np.array([r["jobs"][key][s] for r in rows if key in r["jobs"]])
            spread[s].append(float(v.max() / v.min() - 1))
            line.append(f"{s}={spread[s][-1]:.1%}")
        print(f"{key:32s} " + " ".join(line))
    for s, v in spread.items():
        print(f"{s:24s} spread median {np.median(v):.1%} worst {max(v):.1%}  within 3%: {sum(x <= 0.03 for x in v)}/{len(v)}")
    print("best candidate per model family (median spread over its jobs):")
    families: dict[str, list[int]] = {}
    for i, key in enumerate(keys):
        families.setdefault(re.match(r"[a-z]+", key).group(0), []).append(i)
    for family, idx in families.items():
        ranked = sorted((float(np.median([spread[s][i] for i in idx])), s) for s in stats if s != "job_quiet_ms")
        print(f"  {family:18s} " + ", ".join(f"{s} {v:.1%}" for v, s in ranked[:4])
              + f"  (ms: {np.median([spread['job_quiet_ms'][i] for i in idx]):.1%})")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--cycles", type=int, default=8)
    parser.add_argument("--window-ms", type=float, default=100.0)
    parser.add_argument("--report", action="store_true")
    args = parser.parse_args()
    if args.report:
        report(args.out)
    else:
        trial(args.out, args.cycles, args.window_ms / 1e3)


if __name__ == "__main__":
    main()
