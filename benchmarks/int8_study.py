"""The int8 repair study, one command: which MobileOne int8 ships on each CPU runtime, and at what speed.

1. Writes scikit-learn's digits as image folders at the study resolution: the odd-indexed images train the
   networks and calibrate int8, the even-indexed ones are held out and only evaluated.
2. Trains mobileone_s0 (training form; fused as deployed) and the two controls, mobilenetv2_100 and
   efficientnet_b0, with one recipe (`harness.evaluate.proxy.STUDY_RECIPE`), cached by content.
3. Diagnoses MobileOne's int8 graph on each runtime (`bench accuracy -p int8 --layers`): its worst layers.
4. Runs `bench int8` for every network x repair on every CPU int8 runtime: fp32 and int8 timed in lockstep
   (the speed-up with its CI), Δtop-1 on the held-out images with its paired CI. Repairs: none, cross-layer
   equalization, the runtime's own worst layers kept float, and both.
5. Writes STUDY/int8-repairs.md (the table, the verdict per runtime, one plot per runtime with the Pareto
   front) and prints the table.

    python benchmarks/int8_study.py --out results/int8-study        # ~45 min cold on 2 vCPUs, minutes cached

Every step is an ordinary `bench` command (printed as it runs), so any row can be rerun by hand.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.evaluate import digits, proxy  # noqa: E402
from harness.listing.backends import int8_cpu_backends  # noqa: E402
from harness.publish import int8, repairs  # noqa: E402
from harness.store import accuracy_records  # noqa: E402
from harness.store.record import load_record  # noqa: E402
from harness.store.runs import default_cache_dir  # noqa: E402

MOBILEONE = "mobileone_s0"
CONTROLS = ["mobilenetv2_100", "efficientnet_b0"]
CALIBRATION = 300  # of the 898 training images
WORST = 3  # layers the mixed-precision repair keeps in float
BUDGET_PT = 1.0  # the budget cell: `bench int8 --budget` (the fewest float layers within it, on the calibration images)


def bench(*args: str, cwd: Path, allowed: tuple[int, ...] = (0,)) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "harness", *args]
    print("$ bench " + shlex.join(args), flush=True)
    done = subprocess.run(cmd, cwd=cwd, text=True, capture_output=True)
    if done.returncode not in allowed:
        print(done.stdout[-2000:] + done.stderr[-2000:], flush=True)
        raise SystemExit(f"bench {args[0]} failed (exit {done.returncode}); the study stops here")
    return done


def cells(model: str, backends: list[str], worst: dict[str, list[str]]) -> dict[str, tuple[list[str], list[str]]]:
    """The study's cells of a network, {name: (backends, bench int8 arguments)}: MobileOne gets every repair
    (the float layers per runtime: that runtime's own worst; the budget search, NNCF's accuracy control on
    OpenVINO), the controls none (they are the yardstick)."""
    if model != MOBILEONE:
        return {"none": (backends, [])}
    found = {"none": (backends, []), "equalize": (backends, ["--option=int8.equalize=true"]),
             f"budget-{BUDGET_PT:g}pt": (backends, ["--budget", f"{BUDGET_PT:g}"])}
    for backend, layers in worst.items():
        floats = ["--option=int8.float_layers=" + ";".join(layers)]
        found[f"float-worst-{backend}"] = ([backend], floats)
        found[f"equalize-float-worst-{backend}"] = ([backend], ["--option=int8.equalize=true", *floats])
    return found


def budget_lines(out: Path) -> list[str]:
    """What each `--budget` cell's search chose, per runtime (its `budget.json`)."""
    lines = []
    for path in sorted((out / "runs").glob("*/budget.json")):
        for key, found in json.loads(path.read_text()).items():
            chose = ", ".join(found["float_layers"] or []) or "none" if found["chosen"] is not None else "nothing met it"
            trail = "; ".join(f"{t['float_layers']} float: {t['delta_pt']:+.1f} pt" for t in found["trail"])
            lines.append(f"- budget {found['budget_pt']:g} pt, {key}: {chose} ({found['method']}; on the calibration "
                         f"images: {trail})\n")
    return lines


def diagnose(backend: str, weights: Path, common: list[str], out: Path, k: int) -> list[str]:
    """`bench accuracy -p int8 --layers` of MobileOne on one runtime: the k layers that lose the most signal."""
    results = out / "diagnosis" / backend
    if not list(results.glob(f"accuracy/{MOBILEONE}.{backend}.*.json")):
        bench("accuracy", "-m", MOBILEONE, "-b", backend, "-p", "int8", "--layers", "--weights", str(weights),
              "--workers", "0", "--limit", "100", "--results", str(results), *common, cwd=out)
    record = max((results / "accuracy").glob(f"{MOBILEONE}.{backend}.*.json"), key=lambda p: p.stat().st_mtime)
    return int8.worst_layers(json.loads(record.read_text())["layers"], k)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("results/int8-study"))
    parser.add_argument("--input-size", type=int, default=proxy.STUDY_SIZE)
    parser.add_argument("--model", action="append", default=None, help="default: mobileone_s0 and the two controls")
    parser.add_argument("--backend", action="append", default=None, help="default: every CPU runtime with int8 here")
    parser.add_argument("--epochs", type=int, default=proxy.STUDY_RECIPE.epochs)
    parser.add_argument("--pairs", type=int, default=20, help="lockstep window pairs per network and runtime")
    parser.add_argument("--worst", type=int, default=WORST, help="layers the mixed-precision repair keeps in float")
    args = parser.parse_args()
    out = args.out.resolve()
    models = args.model or [MOBILEONE, *CONTROLS]
    data = out / "data"
    train, val = data / "train", data / "val"
    if not (val.is_dir() and train.is_dir()):
        for split, folder in (("train", train), ("val", val)):
            digits.write_images(folder, split, args.input_size)
    recipe = proxy.TrainRecipe(**{**proxy.STUDY_RECIPE.__dict__, "epochs": args.epochs})
    trained = {}
    for model in models:
        got = proxy.trained(model, args.input_size, train, val, default_cache_dir(), recipe, say=print)
        trained[model] = got
        print(f"{model}: fp32 held-out top-1 {got.top1:.1%} ({'cached' if got.cached else f'trained in {got.train_s:.0f} s'})"
              f"; {got.path}", flush=True)
    common = ["--data", str(val), "--calibration", str(train), "--calibration-size", str(CALIBRATION), "--num-classes",
              str(digits.CLASSES), "--input-size", str(args.input_size), "--threads", "1"]
    backends = args.backend or int8_cpu_backends()
    worst: dict[str, list[str]] = {}
    if MOBILEONE in models and args.worst > 0:
        for backend in backends:
            worst[backend] = diagnose(backend, trained[MOBILEONE].path, common, out, args.worst)
            print(f"{MOBILEONE} on {backend}: the {args.worst} layers that lose the most signal: "
                  f"{', '.join(worst[backend])}", flush=True)
    started = time.monotonic()
    for model in models:
        for name, (where, arguments) in cells(model, backends, worst).items():
            folder = out / "runs" / f"{model}-{name}"
            if (folder / "int8.md").is_file() or (folder / "budget.json").is_file():
                continue  # a finished cell of the study (a budget nothing met times nothing): rerun by deleting its folder
            done = bench("int8", "-m", model, *[f"--backend={b}" for b in where], "--weights", str(trained[model].path),
                         "--pairs", str(args.pairs), "--out", str(folder), *common, *arguments, cwd=out, allowed=(0, 3))
            if done.returncode == 3:
                print(done.stderr.strip().splitlines()[-1], flush=True)
    timed = [load_record(p) for p in sorted((out / "runs").glob("*/*/records/*.json"))]
    rows = int8.rows(timed, accuracy_records.load_all(out / "results"))
    plots = repairs.draw_study(rows, out / "plots", where=f"digits at {args.input_size}px")
    page = out / "int8-repairs.md"
    head = (f"# int8 repairs on digits at {args.input_size}x{args.input_size}\n\n"
            + "".join(f"- {m}: fp32 held-out top-1 {t.top1:.1%} ({recipe.epochs} epochs, `{t.path.name}`)\n"
                      for m, t in trained.items())
            + f"- CPU: {int8.isa_line(timed)}\n"
            + "".join(f"- worst layers on {b} (kept float by the float-worst repairs): {', '.join(w)}\n" for b, w in worst.items())
            + "".join(budget_lines(out))
            + "\n")
    page.write_text(head + repairs.markdown(rows, plots, out))
    print(page.read_text())
    print(f"study: {page} ({time.monotonic() - started:.0f} s of bench int8)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
