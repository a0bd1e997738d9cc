#!/usr/bin/env bash
# Download the wheels benchmarks/gpu_check.sh installs on the borrowed GPU machine (which has no network):
# every name in benchmarks/gpu_wheels.txt at its constraints.txt version, binary only, for that machine's
# Python (3.12) on manylinux x86-64, into a git-ignored folder the device call carries.
#   bash benchmarks/fetch_gpu_wheels.sh [DEST=.whl] [PYTHON_VERSION=3.12]
set -euo pipefail
cd "$(dirname "$0")/.."
dest=${1:-.whl}
pyver=${2:-3.12}
pins=()
while read -r name; do
    [[ -z "$name" || "$name" == \#* ]] && continue
    pin=$(grep -i -m1 -E "^${name//-/[-_]}==" constraints.txt || true)
    [[ -n "$pin" ]] || { echo "fetch_gpu_wheels: $name has no pin in constraints.txt; add one or drop it from benchmarks/gpu_wheels.txt" >&2; exit 2; }
    pins+=("$pin")
done < benchmarks/gpu_wheels.txt
mkdir -p "$dest"
platforms=()
for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_24_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux1_x86_64; do
    platforms+=(--platform "$p")
done
python3 -m pip download -q --no-deps --only-binary=:all: --python-version "$pyver" --implementation cp \
    "${platforms[@]}" -d "$dest" "${pins[@]}"
echo "fetch_gpu_wheels: ${#pins[@]} wheels for Python $pyver in $dest ($(du -sh "$dest" | cut -f1))"
