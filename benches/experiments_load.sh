#!/usr/bin/env bash
# Eligibility with experiments on against off, same server, same run: wrk on
# `GET /v1/customers/{id}/offers` (random customers of a generated plan),
# rounds alternating between no experiment and a canary (another version of
# the same scenario, share 0.5) with a holdout (share 0.1) running, started
# and stopped through the service between rounds. Reports throughput and
# p50/p99 per round and the on/off ratios. Not a test: it asserts nothing.
#
# Usage: benches/experiments_load.sh [CUSTOMERS]   (default 1000000)
# Env: BENCH_DIR (default /tmp/allot-bench), DURATION (default 15s),
#      CONNECTIONS (default 64), ROUNDS (pairs, default 3).
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-1000000}"
duration="${DURATION:-15s}"
connections="${CONNECTIONS:-64}"
rounds="${ROUNDS:-3}"
work="${BENCH_DIR:-/tmp/allot-bench}"
mkdir -p "$work"
command -v wrk >/dev/null || { echo "needs wrk (Debian package)" >&2; exit 1; }
cargo build --release -q
bin="${CARGO_TARGET_DIR:-target}/release/allot"

scenario="$work/serve-c$n"
store="$work/experiments-store-c$n"
[ -d "$scenario" ] || "$bin" generate "$scenario" --customers "$n" --offers 40 --skus 300 --zones 20 --warehouses 5 --candidates 8 --seed 1 --format parquet 2>/dev/null
for v in 000001 000002; do
  [ -d "$store/plans/$v" ] || { echo "planning $n customers ($v) ..." >&2; "$bin" plan "$scenario" --store "$store" --out "$work/experiments-out-$v" --format parquet >/dev/null; }
done
"$bin" plans activate 000001 --store "$store" >/dev/null
# shellcheck source=benches/random_customer.sh
. benches/random_customer.sh
random_customer_load "$work" "$n"
planner="bench-planner-key-0123456789"
python3 - "$keys" "$planner" <<'PY'
import json, sys
keys = json.load(open(sys.argv[1]))
keys["keys"].append({"key": sys.argv[2], "role": "planner"})
json.dump(keys, open(sys.argv[1], "w"))
PY

pid=""
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null || true' EXIT
"$bin" serve --store "$store" --keys "$keys" --addr 127.0.0.1:18090 2>"$work/experiments-serve.log" & pid=$!
for _ in $(seq 1 600); do curl -sf -o /dev/null http://127.0.0.1:18090/readyz && break; sleep 0.5; done
api() {  # method path [body]
  curl -sf -X "$1" -H "Authorization: Bearer $planner" -H 'content-type: application/json' ${3:+-d "$3"} "http://127.0.0.1:18090$2" >/dev/null
}
run() {  # name -> "rps p50_ms p99_ms errors"
  wrk -t1 -c"$connections" -d"$duration" --latency -s "$lua" http://127.0.0.1:18090 > "$work/wrk-exp-$1.txt"
  python3 benches/wrk_summary.py "$work/wrk-exp-$1.txt"
}
on() {
  api POST /v1/experiments "{\"experiment_id\": \"bench-canary-$1\", \"kind\": \"canary\", \"version\": \"000002\", \"share\": 0.5}"
  api POST /v1/experiments "{\"experiment_id\": \"bench-holdout-$1\", \"kind\": \"holdout\", \"share\": 0.1}"
}
off() {
  api POST "/v1/experiments/bench-canary-$1/stop"
  api POST "/v1/experiments/bench-holdout-$1/stop"
}
DURATION=3s run warm >/dev/null
results=()
for r in $(seq 1 "$rounds"); do
  results+=("off $(run "off-$r")")
  on "$r"; DURATION=2s run "warm-on-$r" >/dev/null
  results+=("on $(run "on-$r")")
  off "$r"
done
printf '%s\n' "${results[@]}" | python3 -c '
import sys
rows = [l.split() for l in sys.stdin if l.strip()]
for kind, rps, p50, p99, err in rows:
    print(f"{kind:<4} {float(rps):>10.0f} req/s   p50 {p50} ms   p99 {p99} ms   errors {err}")
on = [r for r in rows if r[0] == "on"]; off = [r for r in rows if r[0] == "off"]
mean = lambda rs, i: sum(float(r[i]) for r in rs) / len(rs)
print(f"experiments on / off: throughput {mean(on, 1) / mean(off, 1):.3f}, p99 {mean(on, 3) / mean(off, 3):.3f} ({len(on)} rounds each, alternating)")
'
