#!/usr/bin/env bash
# Load benchmark of the decision service: wrk against
# `GET /v1/customers/{id}/offers` with random customers of a generated plan
# (1,000,000 customers by default), compared in the same run, on the same
# machine, with a trivial axum handler on the same route (`allot serve-trivial`).
# Reports, for both:
# - at saturation (wrk, closed loop: each connection sends its next request
#   when the answer arrives): throughput, its ratio to the trivial handler,
#   p50/p99 latency, errors;
# - at fixed rates below it (oha, open loop: requests leave on schedule
#   whether or not earlier ones were answered, latency counted from the
#   scheduled start): p50/p99/p99.9. Why both: at saturation latency is the
#   queue the connections make (on 2 cores the trivial handler's own p99 is
#   about 1.5 ms there); a latency objective is met, or not, at a rate;
# and the memory of the loaded plan and the audit writer's lag.
#
# Usage: benches/serve_load.sh [CUSTOMERS]   (default 1000000)
# Env: BENCH_DIR (default /tmp/allot-bench), DURATION (default 20s),
#      CONNECTIONS (default 64), WRK_THREADS (default 1), SERVER_THREADS (default: cores),
#      RATES (requests per second of the open-loop runs, default "10000 20000"),
#      RATE_DURATION (default 10s).
# Needs wrk (Debian package) and oha (`cargo install oha`); both are installed
# here when missing. Not a test: it asserts nothing about time.
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-1000000}"
duration="${DURATION:-20s}"
connections="${CONNECTIONS:-64}"
wrk_threads="${WRK_THREADS:-1}"
work="${BENCH_DIR:-/tmp/allot-bench}"
mkdir -p "$work"

if ! command -v wrk >/dev/null; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq wrk
fi
command -v oha >/dev/null || cargo install oha --locked -q
cargo build --release -q
bin="${CARGO_TARGET_DIR:-target}/release/allot"

scenario="$work/serve-c$n"
store="$work/serve-store-c$n"
if [ ! -d "$store/plans/000001" ]; then
  [ -d "$scenario" ] || "$bin" generate "$scenario" --customers "$n" --offers 40 --skus 300 --zones 20 --warehouses 5 --candidates 8 --seed 1 --format parquet 2>/dev/null
  echo "planning $n customers ..." >&2
  "$bin" plan "$scenario" --store "$store" --out "$work/serve-out-c$n" --format parquet >/dev/null
fi
# Each run starts from an empty live-state database: every decision is
# audited, and the audit of earlier runs (about a gigabyte a run at 1,000,000
# customers) would pile up until the disk is full. The active plan is
# recorded there: activated on every run.
rm -f "$store/live.db" "$store/live.db-wal" "$store/live.db-shm"
"$bin" plans activate 000001 --store "$store" >/dev/null
# shellcheck source=benches/random_customer.sh
. benches/random_customer.sh
random_customer_load "$work" "$n"
# Only a power of ten has a pattern for oha: other sizes skip the open-loop runs.
pattern=$(customer_pattern "$n") || pattern=""

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
wait_for() {  # url
  for _ in $(seq 1 600); do curl -sf -o /dev/null "$1" && return 0; sleep 0.5; done
  echo "server at $1 did not come up" >&2; exit 1
}

threads=()
[ -n "${SERVER_THREADS:-}" ] && threads=(--threads "$SERVER_THREADS")
"$bin" serve --store "$store" --keys "$keys" --addr 127.0.0.1:18080 "${threads[@]}" 2>"$work/serve.log" & pids+=($!)
started=$(date +%s.%N)
wait_for http://127.0.0.1:18080/readyz
echo "plan loaded in $(echo "$(date +%s.%N) - $started" | bc) s" >&2
"$bin" serve-trivial --addr 127.0.0.1:18081 2>/dev/null & pids+=($!)
wait_for http://127.0.0.1:18081/v1/customers/C0000000/offers

run() {  # name port -> "rps p50_ms p99_ms errors"
  out=$(wrk -t"$wrk_threads" -c"$connections" -d"$duration" --latency -s "$lua" "http://127.0.0.1:$2")
  echo "$out" > "$work/wrk-$1.txt"
  python3 benches/wrk_summary.py "$work/wrk-$1.txt"
}

# Warm both (page cache, allocator), then alternate so drift hits both alike.
DURATION=3s run warm-trivial 18081 >/dev/null; DURATION=3s run warm-serve 18080 >/dev/null
# The audit writer's lag, sampled every second from here on: its largest value.
echo 0 >"$work/pending-max"
(
  max=0
  while sleep 1; do
    v=$(curl -s -H "Authorization: Bearer $key" http://127.0.0.1:18080/metrics | awk '/^allot_audit_pending_records/ {print $2}')
    if [ -n "$v" ] && [ "$v" -gt "$max" ]; then max=$v; echo "$max" >"$work/pending-max"; fi
  done
) & pids+=($!)
read -r t1 t1p50 t1p99 t1e < <(run trivial-1 18081)
read -r s1 s1p50 s1p99 s1e < <(run serve-1 18080)
read -r t2 t2p50 t2p99 t2e < <(run trivial-2 18081)
read -r s2 s2p50 s2p99 s2e < <(run serve-2 18080)

# Open loop at each rate, the two servers alternating.
open_loop() {  # name port rate -> "p50_ms p99_ms p999_ms success_rate"
  oha -z "${RATE_DURATION:-10s}" -q "$3" -c "$connections" --latency-correction --no-tui --output-format json \
    --rand-regex-url -H "Authorization: Bearer $key" "http://127.0.0.1:$2/v1/customers/C$pattern/offers" >"$work/oha-$1-$3.json"
  python3 - "$work/oha-$1-$3.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
p = d["latencyPercentiles"]
print(f"{p['p50'] * 1e3:.3f} {p['p99'] * 1e3:.3f} {p['p99.9'] * 1e3:.3f} {d['summary']['successRate']:.4f}")
PY
}
rate_lines=()
if [ -n "$pattern" ]; then
  for rate in ${RATES:-10000 20000}; do
    read -r tp50 tp99 tp999 tok < <(open_loop trivial 18081 "$rate")
    read -r sp50 sp99 sp999 sok < <(open_loop serve 18080 "$rate")
    rate_lines+=("$(printf '%6d req/s  trivial p50 %s p99 %s p99.9 %s ms (ok %s)   allot serve p50 %s p99 %s p99.9 %s ms (ok %s)' "$rate" "$tp50" "$tp99" "$tp999" "$tok" "$sp50" "$sp99" "$sp999" "$sok")")
  done
else
  rate_lines+=("skipped: $n customers is no power of ten (oha's ids would miss the plan)")
fi

metrics=$(curl -s -H "Authorization: Bearer $key" http://127.0.0.1:18080/metrics)
rss=$(echo "$metrics" | awk '/^process_resident_memory_bytes/ {print $2}')
index=$(echo "$metrics" | awk '/^allot_plan_index_bytes/ {print $2}')
decisions=$(echo "$metrics" | awk '/^allot_decisions_total/ {print $2}')
pending=$(cat "$work/pending-max")
python3 - <<PY
t = [$t1, $t2]; s = [$s1, $s2]
print(f"customers            $n")
print(f"wrk                  {'$wrk_threads'} thread(s), {'$connections'} connections, {'$duration'} per run, 2 runs each, alternating")
print(f"trivial handler      {t[0]:>9.0f} {t[1]:>9.0f} req/s   p50 $t1p50 / $t2p50 ms   p99 $t1p99 / $t2p99 ms   errors {$t1e + $t2e}")
print(f"allot serve          {s[0]:>9.0f} {s[1]:>9.0f} req/s   p50 $s1p50 / $s2p50 ms   p99 $s1p99 / $s2p99 ms   errors {$s1e + $s2e}")
print(f"throughput ratio     {sum(s) / sum(t):.2f} of the trivial handler")
print(f"plan index           {$index / 2**20:.0f} MiB; server resident memory {$rss / 2**20:.0f} MiB")
print(f"decisions served     $decisions (each audited; at most {$pending} waited for the audit writer, sampled each second)")
print("open loop (oha, $connections connections, latency from the scheduled start):")
PY
printf '  %s\n' "${rate_lines[@]}"
