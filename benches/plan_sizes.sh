#!/usr/bin/env bash
# Benchmark of `allot plan` (exact solver) on generated scenarios of the sizes in
# the foundation issue: load, build and solve time, and peak memory, side by side
# for the spec's MIP (with the custom-offer limit) and the same model as a pure LP.
#
# Usage: benches/plan_sizes.sh [CUSTOMERS...]   (default: 20000 100000)
# Needs a release build (it runs `cargo build --release` first). Writes under
# ${BENCH_DIR:-/tmp/allot-bench}. Not a test: it asserts nothing about time.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q
bin="${CARGO_TARGET_DIR:-target}/release/allot"
work="${BENCH_DIR:-/tmp/allot-bench}"
mkdir -p "$work"
sizes=("$@"); [ ${#sizes[@]} -gt 0 ] || sizes=(20000 100000)

printf '%-9s %-4s %8s %8s %9s %9s %10s %16s\n' customers kind load_s build_s solve_s write_s peak_MiB objective
for n in "${sizes[@]}"; do
  mip="$work/c$n-mip"; lp="$work/c$n-lp"
  if [ ! -d "$mip" ]; then
    "$bin" generate "$mip" --customers "$n" --offers 40 --skus 300 --zones 20 --warehouses 5 --candidates 8 --seed 1 2>/dev/null
  fi
  if [ ! -d "$lp" ]; then
    cp -r "$mip" "$lp" && sed -i '/max_custom_offers/d' "$lp/scenario.toml"
  fi
  for kind in lp mip; do
    dir="$work/c$n-$kind"
    out=$("$bin" plan "$dir" --out "$work/out-$n-$kind" --store "$work/store" 2>/dev/null)
    kpis="$work/out-$n-$kind/kpis.json"
    peak=$(echo "$out" | sed -n 's/.*peak memory \([0-9]*\) MiB.*/\1/p')
    write=$(echo "$out" | sed -n 's/.*write \([0-9.]*\)s.*/\1/p')
    python3 - "$kpis" "$n" "$kind" "$peak" "$write" <<'PY'
import json, sys
k = json.load(open(sys.argv[1]))
print(f"{sys.argv[2]:<9} {sys.argv[3]:<4} {k['load_seconds']:8.2f} {k['build_seconds']:8.2f} {k['solve_seconds']:9.2f} {float(sys.argv[5]):9.2f} {sys.argv[4]:>10} {k['objective']:16.2f}")
PY
  done
done
