#!/usr/bin/env bash
# The decomposition on one machine vs on Ray, same scenario, same binary, same
# run: solve time, iterations, objective, and where the Ray run's time goes
# (the slowest actor's kernel time on the critical path vs communication and
# scheduling, as the bridge measures them), plus the one-off costs (writing
# the partition files, starting the actors).
#
# Usage: benches/ray_scale.sh [CUSTOMERS ...]     (default: 1000000 5000000)
# Env: BENCH_DIR (default /tmp/allot-bench), PARTITIONS (default: cores),
#      ACTOR_THREADS (kernel threads per actor, default 1),
#      GAP (default 1e-3), MAX_ITERATIONS (default: the solver's). Starts a local
#      Ray cluster and stops it. Not a test:
#      it asserts nothing about time.
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=("$@")
[ "${#sizes[@]}" -gt 0 ] || sizes=(1000000 5000000)
work="${BENCH_DIR:-/tmp/allot-bench}"
partitions="${PARTITIONS:-$(nproc)}"
actor_threads="${ACTOR_THREADS:-1}"
gap="${GAP:-1e-3}"
limits=(--gap "$gap")
[ -z "${MAX_ITERATIONS:-}" ] || limits+=(--max-iterations "$MAX_ITERATIONS")
cache="${ALLOT_CACHE:-$HOME/.cache/allot}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$cache/target}"
venv="$cache/venv"
mkdir -p "$work"

. tests/scaleout/allot_ray.sh
allot_ray_install "$venv"
bin="$allot"

port=$((20000 + RANDOM % 20000))
raytmp=$(mktemp -d /tmp/allot-rb.XXXXXX)
trap 'RAY_ADDRESS= "$venv/bin/ray" stop --force >/dev/null 2>&1; rm -rf "$raytmp"' EXIT
"$venv/bin/ray" start --head --port "$port" --num-cpus $((partitions * actor_threads)) --include-dashboard false --disable-usage-stats --temp-dir "$raytmp" >/dev/null 2>&1

field() { "$venv/bin/python" -c 'import json,sys; print(json.load(open(sys.argv[1])).get(sys.argv[2], "-"))' "$1" "$2"; }
peak() { grep -o 'peak_rss_mib[^,]*' "$1" 2>/dev/null || true; }

printf '%-10s %-24s %10s %10s %6s %16s %s\n' customers solver build_s solve_s iters objective notes
for n in "${sizes[@]}"; do
  scenario="$work/ray-c$n"
  [ -d "$scenario" ] || "$bin" generate "$scenario" --customers "$n" --offers 40 --skus 300 --zones 20 --warehouses 5 --candidates 8 --seed 1 --format parquet >/dev/null 2>&1
  for solver in decomposed ray; do
    out="$work/ray-out-$solver-c$n"
    log="$work/ray-$solver-c$n.log"
    extra=()
    [ "$solver" = ray ] && extra=(--ray-address "127.0.0.1:$port" --partitions "$partitions" --actor-threads "$actor_threads")
    /usr/bin/time -v "$bin" plan "$scenario" --solver "$solver" "${limits[@]}" --store "$work/ray-store" --out "$out" --format parquet "${extra[@]}" \
      >/dev/null 2>"$log"
    rss=$(awk '/Maximum resident set size/ {printf "%.0f", $6/1024}' "$log")
    notes="driver peak RSS ${rss} MiB"
    if [ "$solver" = ray ]; then
      notes="$notes; $(grep -o 'wrote .* in [0-9.]*s' "$log" | sed 's/ to .* in / in /'); $(grep -o 'started and loaded in [0-9.]*s' "$log"); $(grep -o 'compute on the critical path.*' "$log")"
    fi
    printf '%-10s %-24s %10.2f %10.2f %6s %16.2f %s\n' "$n" "$(field "$out/kpis.json" solver)" "$(field "$out/kpis.json" build_seconds)" \
      "$(field "$out/kpis.json" solve_seconds)" "$(field "$out/kpis.json" iterations)" "$(field "$out/kpis.json" objective)" "$notes"
  done
done
