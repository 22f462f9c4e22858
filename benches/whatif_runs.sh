#!/usr/bin/env bash
# Benchmark of `allot scenario run`: a generated base (100,000 customers by
# default) and three variants (budget cut, regional uptake surge, 4-day
# warehouse outage), planned one at a time and then in parallel, in the same
# run on the same machine: wall time and peak memory of each, and the speed-up.
# Then `scenario compare` on the parallel run. Not a test.
#
# Usage: benches/whatif_runs.sh [CUSTOMERS]   Env: BENCH_DIR (default /tmp/allot-bench)
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-100000}"
work="${BENCH_DIR:-/tmp/allot-bench}/whatif-c$n"
cargo build --release -q
bin="$PWD/${CARGO_TARGET_DIR:-target}/release/allot"
mkdir -p "$work"
cd "$work"
[ -d base ] || "$bin" generate base --customers "$n" --offers 40 --skus 300 --zones 20 --warehouses 5 --candidates 8 --seed 2 --format parquet 2>/dev/null
budget=$(sed -n 's/^budget = //p' base/scenario.toml)
mkdir -p cut surge outage
printf 'base = "../base"\n[[perturbation]]\nkind = "policy"\nbudget = %s\n' "$(( ${budget%.*} * 3 / 4 ))" > cut/scenario.toml
printf 'base = "../base"\n[[perturbation]]\nkind = "uptake_shift"\nzone = "Z001"\nfactor = 2.0\n' > surge/scenario.toml
printf 'base = "../base"\n[[perturbation]]\nkind = "warehouse_outage"\nwarehouse = "W00"\nfrom = "2026-12-01"\nto = "2026-12-04"\n' > outage/scenario.toml
for jobs in 1 2; do
  rm -rf "out-$jobs" "store-$jobs"
  /usr/bin/time -f "jobs=$jobs: wall %e s, peak RSS %M KB" "$bin" scenario run base cut surge outage --jobs "$jobs" \
    --out-root "out-$jobs" --store "store-$jobs" --format parquet 2>&1 | grep -E "jobs=|planned"
done
"$bin" scenario compare base cut surge outage --out-root out-2 | head -12
