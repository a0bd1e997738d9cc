#!/usr/bin/env bash
# One prepared run that proves (or disproves) the CUDA paths on a borrowed GPU machine, in under 8 minutes.
#
#   bash benchmarks/fetch_gpu_wheels.sh          # here, with a network: the wheels that machine lacks -> .whl/
#   bash benchmarks/gpu_check.sh                 # there, in the repository root (OUT=folder for what comes back)
#
# Steps, each logged with its time and verdict; a failed step does not stop the later ones:
#   1. install the wheels from $GPU_CHECK_WHEELS (default .whl) and the project itself, --no-deps, offline;
#   2. the machine: nvidia-smi, torch/CUDA/cuDNN versions, `bench list backends`;
#   3. `bench prepare`: the torch-compile jobs of the matrix compiled into the cache 4 at a time (GPU_CHECK_WORKERS);
#      then `pytest -m gpu` (the CUDA tests; skipped with the reason where no GPU is visible);
#   4. a quick CUDA sweep: 5 models x torch, torch-compile, torch-cudagraph x fp32, fp16 x both
#      boundaries, plus the backends that cannot run there (ONNX Runtime GPU, TensorRT) as skipped records,
#      in three parts (eager and graphs, compile fp16, compile fp32) cut to the budget;
#   5. benchmarks/gpu_check_report.py: parity of every GPU job, end-to-end >= device, a hand-written
#      CUDA-event loop against the harness's device boundary, and the figures table (summary.md);
#   6. `bench show`'s lines for every job (written by the report) and the leaderboard.
# Everything lands in $OUT (at most 8 files: the device tool brings back no more): gpu_check.log,
# summary.md, show.txt, leaderboard.md, records.tar.gz.
#
# Environment: ONEBENCH_CACHE (a folder in the work dir), GPU_CHECK_PYTHON (python3), GPU_CHECK_INSTALL (1; 0 = the environment already has the
# project and its dependencies, as under `nox -s gpu_check`), GPU_CHECK_WHEELS (.whl), GPU_CHECK_MODELS
# (space-separated), GPU_CHECK_BUDGET_S (450: the sweep is cut so the whole check ends inside it),
# GPU_CHECK_ALLOW_NO_GPU (0; 1 = exit 0 without a GPU, for exercising the CPU-side steps).
# Exit status: 0 all passed, 1 a step failed, 3 no GPU was visible (nothing about CUDA was proven).
set -uo pipefail
cd "$(dirname "$0")/.."
START=$SECONDS
PY=${GPU_CHECK_PYTHON:-python3}
OUT=${OUT:-results/gpu_check}
WHEELS=${GPU_CHECK_WHEELS:-.whl}
BUDGET=${GPU_CHECK_BUDGET_S:-480}
MODELS=${GPU_CHECK_MODELS:-mobileone_s0 mobileone_s4 mobilenetv2_100 efficientnet_b0 mobileformer_508m}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/gpu_check.XXXXXX")
trap 'rm -rf "$WORK"' EXIT  # what matters is copied to $OUT
mkdir -p "$OUT"
LOG=$OUT/gpu_check.log
: >"$LOG"
export PYTHONUNBUFFERED=1
FAILED=()

say() { echo "[gpu_check $((SECONDS - START))s] $*" | tee -a "$LOG"; }
left() { echo $((BUDGET - (SECONDS - START))); }

# step NAME COMMAND...: run it with its output in the log, say how long it took and whether it passed.
step() {
    local name=$1 t0=$SECONDS rc
    shift
    say "== $name: $*"
    "$@" >>"$LOG" 2>&1
    rc=$?
    if [[ $rc == 0 ]]; then say "-- $name passed in $((SECONDS - t0)) s"
    else say "-- $name FAILED (exit $rc) in $((SECONDS - t0)) s"; FAILED+=("$name (exit $rc)"); fi
    return $rc
}

install() {
    shopt -s nullglob
    local wheels=("$WHEELS"/*.whl)
    if [[ ${#wheels[@]} -gt 0 ]]; then
        "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade "${wheels[@]}" || return
    else
        echo "no wheels in $WHEELS (run benchmarks/fetch_gpu_wheels.sh where there is a network)"
    fi
    # --no-build-isolation: setuptools from this environment, nothing fetched.
    "$PY" -m pip install -q --no-index --no-deps --no-build-isolation --no-cache-dir -e . || return
    "$PY" -m pip check || echo "(pip check lists what is missing; the import below says whether it matters)"
    "$PY" -c "import harness.cli, harness.measure.runner, harness.publish.leaderboard, model_zoo, timm, jsonschema, ruptures"
}

machine() {
    command -v nvidia-smi >/dev/null && nvidia-smi || echo "nvidia-smi: not on PATH"
    "$PY" - <<'EOF'
import platform, torch
print(f"python {platform.python_version()} torch {torch.__version__} CUDA {torch.version.cuda} "
      f"cuDNN {torch.backends.cudnn.version()} cuda available: {torch.cuda.is_available()}")
if torch.cuda.is_available():
    print("GPU:", torch.cuda.get_device_name(), "bf16:", torch.cuda.is_bf16_supported())
EOF
    "$PY" -m pip list 2>/dev/null | grep -i -E "^(torch|timm|onnx|onnxruntime|numpy|typer|rich|jsonschema|nvidia-ml-py|triton) "
    "$PY" -m harness list backends
}

say "work folder $WORK, budget $BUDGET s, models: $MODELS"
if [[ ${GPU_CHECK_INSTALL:-1} == 1 ]]; then
    step install install || { say "the project did not install: nothing else can run"; exit 1; }
fi
step machine machine
GPU=$("$PY" -c "import torch; print(int(torch.cuda.is_available()))" 2>/dev/null || echo 0)
[[ $GPU == 1 ]] || say "no CUDA GPU is visible: every CUDA job below must be a skipped record with the reason"

# Every step shares one artifact cache: `bench prepare` compiles the torch-compile jobs of the whole
# matrix first, 4 at a time, into Inductor's cache there (torch.compile on CUDA: ~9 s each on the H200;
# AOTInductor packages crashed at load there, see backends/torch_compile.py), and the tests and the sweep
# then hit that cache. A prepare cut by its share of the budget leaves the rest to the sweep.
export ONEBENCH_CACHE=${ONEBENCH_CACHE:-$WORK/cache}
export ONEBENCH_TEST_CACHE=$ONEBENCH_CACHE
models=()
for m in $MODELS; do models+=(-m "$m"); done
step prepare timeout $(( $(left) * 2 / 5 )) "$PY" -m harness prepare --device cuda -b torch-compile \
    -p fp16 -p fp32 --workers "${GPU_CHECK_WORKERS:-4}" "${models[@]}"
step pytest timeout $(( $(left) / 3 )) "$PY" -m pytest -m gpu -q -p no:cacheprovider tests

# The sweep, cheapest first, so a cut (the budget is spent) costs the compiled jobs, not the eager ones:
# eager and CUDA-graph jobs with the skipped backends, then torch-compile fp16, then fp32 (anything
# `bench prepare` did not finish is compiled there).
# Every part keeps the records it finished; the report names the jobs no part reached.
RUNS=()
measured_or_no_gpu() {  # `bench run` exits 3 when no job was measured: the expected outcome without a GPU
    "$@"
    local rc=$?
    [[ $rc == 3 && $GPU != 1 ]] && return 0
    return $rc
}
sweep() {  # sweep NAME PRECISIONS BACKENDS...
    local name=$1 precisions=$2 args=() seconds
    shift 2
    for b in "$@"; do args+=(-b "$b"); done
    for p in $precisions; do args+=(-p "$p"); done
    seconds=$(( $(left) - 75 ))  # the report, show and leaderboard need about a minute
    if (( seconds < 20 )); then say "-- sweep $name not started: the budget is spent"; FAILED+=("sweep $name (no time)"); return; fi
    RUNS+=("$WORK/$name")
    step "sweep $name" measured_or_no_gpu timeout "$seconds" "$PY" -m harness run --preset quick --device cuda --wait-quiet 0 \
        --format md --out "$WORK/$name" "${models[@]}" "${args[@]}"
}
sweep eager "fp32 fp16" torch torch-cudagraph onnxruntime-cuda onnxruntime-trt tensorrt
sweep compile-fp16 fp16 torch-compile
sweep compile-fp32 fp32 torch-compile

step report "$PY" benchmarks/gpu_check_report.py "${RUNS[@]}" --models "$MODELS" --summary "$OUT/summary.md" \
    --show "$OUT/show.txt"
step leaderboard "$PY" -m harness leaderboard "${RUNS[@]}" --format md --output "$WORK/leaderboard/leaderboard.md"
cp "$WORK/leaderboard/leaderboard.md" "$OUT/" 2>/dev/null
tar -czf "$OUT/records.tar.gz" -C "$WORK" --exclude=cache . 2>>"$LOG"
[[ -f $OUT/summary.md ]] && cat "$OUT/summary.md"

say "finished in $((SECONDS - START)) s; failed: ${FAILED[*]:-none}"
[[ ${#FAILED[@]} == 0 ]] || exit 1
if [[ $GPU != 1 ]]; then
    say "no GPU: only the CPU-side steps and the skip paths were exercised"
    [[ ${GPU_CHECK_ALLOW_NO_GPU:-0} == 1 ]] || exit 3
fi
exit 0
