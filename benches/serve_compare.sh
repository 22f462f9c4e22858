#!/usr/bin/env bash
# Before/after load benchmark of the decision service: two allot binaries (say,
# built from main before and after a change) each serve the same generated
# plan, and wrk asks both for random customers' offers
# (`GET /v1/customers/{id}/offers`), alternating, in the same run on the same
# machine. Reports each one's throughput and p50/p99 latency per round, and
# the ratios after/before: the figure a change to the service's hot path
# quotes (a drop of more than 5% is a regression).
#
# Usage: benches/serve_compare.sh BEFORE_BIN AFTER_BIN [CUSTOMERS]   (default 1000000)
#   Build each binary from its revision, e.g.
#     git worktree add /tmp/before <rev> && (cd /tmp/before && cargo build --release)
# Env: BENCH_DIR (default /tmp/allot-compare), DURATION (default 20s per run),
#      ROUNDS (default 3), CONNECTIONS (default 64), WRK_THREADS (default 1).
# Both serve the same plan, so their answers carry the same offers: BEFORE_BIN
# generates the scenario and plans it, and AFTER_BIN serves a copy of that
# store (a newer binary imports an older store on its first start). With
# PLAN_EACH=1 each binary plans into its own store instead (for a store
# format the newer one cannot read; the plans, hence the answers, may differ).
# Needs wrk. Not a test: it asserts nothing about time.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 2 ] || { sed -n '2,19p' "$0" >&2; exit 2; }
before="$(realpath "$1")"
after="$(realpath "$2")"
n="${3:-1000000}"
duration="${DURATION:-20s}"
rounds="${ROUNDS:-3}"
connections="${CONNECTIONS:-64}"
wrk_threads="${WRK_THREADS:-1}"
work="${BENCH_DIR:-/tmp/allot-compare}"
mkdir -p "$work"
command -v wrk >/dev/null || { echo "wrk is needed (Debian package wrk)" >&2; exit 1; }

scenario="$work/scenario-c$n"
[ -d "$scenario" ] || "$before" generate "$scenario" --customers "$n" --offers 40 --skus 300 --zones 20 --warehouses 5 --candidates 8 --seed 1 --format parquet 2>/dev/null
plan_with() {  # side
  local bin="${!1}" store="$work/store-$1-c$n"
  if [ ! -d "$store/plans/000001" ]; then
    echo "planning $n customers with the $1 binary ..." >&2
    "$bin" plan "$scenario" --store "$store" --out "$work/out-$1-c$n" --format parquet >/dev/null 2>"$work/plan-$1.log"
  fi
}
plan_with before
# Each run starts from empty live-state databases (see serve_load.sh: the
# audit of earlier runs would pile up, and be copied to the other side).
rm -f "$work/store-before-c$n"/live.db* "$work/store-after-c$n"/live.db*
if [ "${PLAN_EACH:-0}" = 1 ]; then
  plan_with after
else
  rm -rf "$work/store-after-c$n"
  cp -r "$work/store-before-c$n" "$work/store-after-c$n"
fi
"$before" plans activate 000001 --store "$work/store-before-c$n" >/dev/null
"$after" plans activate 000001 --store "$work/store-after-c$n" >/dev/null

# shellcheck source=benches/random_customer.sh
. benches/random_customer.sh
random_customer_load "$work" "$n"

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT INT TERM
wait_for() {  # url
  for _ in $(seq 1 600); do curl -sf -o /dev/null "$1" && return 0; sleep 0.5; done
  echo "server at $1 did not come up" >&2; exit 1
}
"$before" serve --store "$work/store-before-c$n" --keys "$keys" --addr 127.0.0.1:18090 2>"$work/serve-before.log" & pids+=($!)
"$after" serve --store "$work/store-after-c$n" --keys "$keys" --addr 127.0.0.1:18091 2>"$work/serve-after.log" & pids+=($!)
wait_for http://127.0.0.1:18090/readyz
wait_for http://127.0.0.1:18091/readyz

run() {  # name port -> "rps p50_ms p99_ms errors"
  wrk -t"$wrk_threads" -c"$connections" -d"$duration" --latency -s "$lua" "http://127.0.0.1:$2" >"$work/wrk-$1.txt"
  python3 benches/wrk_summary.py "$work/wrk-$1.txt"
}

# Warm both, then alternate (the order flips each round) so drift hits both alike.
DURATION=3s run warm-before 18090 >/dev/null
DURATION=3s run warm-after 18091 >/dev/null
results="$work/rounds.txt"
: >"$results"
for r in $(seq 1 "$rounds"); do
  order=(before after)
  [ $((r % 2)) -eq 0 ] && order=(after before)
  for side in "${order[@]}"; do
    port=18090
    [ "$side" = after ] && port=18091
    echo "$side $r $(run "$side-$r" "$port")" >>"$results"
  done
done

python3 - "$results" "$n" "$duration" "$connections" <<'PY'
import sys
rows = [line.split() for line in open(sys.argv[1])]
by = {"before": [], "after": []}
for side, rnd, rps, p50, p99, errors in rows:
    by[side].append((int(rnd), float(rps), float(p50), float(p99), int(float(errors))))
print(f"customers {sys.argv[2]}, {sys.argv[4]} connections, {sys.argv[3]} per run, {len(by['before'])} rounds, alternating")
print(f"{'round':>5} {'before req/s':>13} {'after req/s':>12} {'before p99 ms':>14} {'after p99 ms':>13}")
for (r, b_rps, _, b_p99, _), (_, a_rps, _, a_p99, _) in zip(sorted(by["before"]), sorted(by["after"])):
    print(f"{r:>5} {b_rps:>13.0f} {a_rps:>12.0f} {b_p99:>14.2f} {a_p99:>13.2f}")
mean = lambda xs: sum(xs) / len(xs)
b, a = by["before"], by["after"]
print(f"throughput after/before   {mean([x[1] for x in a]) / mean([x[1] for x in b]):.3f}")
print(f"p50 after/before          {mean([x[2] for x in a]) / mean([x[2] for x in b]):.3f}")
print(f"p99 after/before          {mean([x[3] for x in a]) / mean([x[3] for x in b]):.3f}")
print(f"errors                    before {sum(x[4] for x in b)}, after {sum(x[4] for x in a)}")
PY
