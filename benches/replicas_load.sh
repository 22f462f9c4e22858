#!/usr/bin/env bash
# Eligibility throughput of the decision service with its live state in
# PostgreSQL: one replica vs two replicas on the same database (each with its
# own wrk, run at the same time, throughputs summed), with a file-mode server
# on the same store as the baseline, all in the same run on the same machine.
# Runs alternate so drift hits all alike.
#
# Usage: benches/replicas_load.sh [CUSTOMERS]   (default 100000)
# Env: BENCH_DIR (default /tmp/allot-bench), DURATION (default 15s),
#      CONNECTIONS (default 64, split between the replicas when there are two).
# Needs wrk (installed when missing). Not a test: it asserts nothing about time.
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-100000}"
duration="${DURATION:-15s}"
connections="${CONNECTIONS:-64}"
work="${BENCH_DIR:-/tmp/allot-bench}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/allot/target}"
mkdir -p "$work"
command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk; }
cargo build -q --bin allot
bin="$CARGO_TARGET_DIR/debug/allot"

scenario="$work/replicas-c$n"
store="$work/replicas-store-c$n"
if [ ! -d "$store/plans/000001" ]; then
  [ -d "$scenario" ] || "$bin" generate "$scenario" --customers "$n" --offers 40 --skus 300 --zones 20 --warehouses 5 --candidates 8 --seed 1 --format parquet >/dev/null 2>&1
  "$bin" plan "$scenario" --store "$store" --out "$work/replicas-out-c$n" --format parquet >/dev/null 2>&1
fi
# The active plan is recorded in the store's live.db (which a --database replica
# imports and sets aside): activated on every run.
"$bin" plans activate 000001 --store "$store" >/dev/null
# shellcheck source=benches/random_customer.sh
. benches/random_customer.sh
random_customer_load "$work" "$n"

pgdir=$(mktemp -d /tmp/allot-rl.XXXXXX)
pids=()
# shellcheck source=tests/scaleout/postgres.sh
. tests/scaleout/postgres.sh
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; pg_stop "$pgdir"; rm -rf "$pgdir"; }
trap cleanup EXIT INT TERM
pg_start "$pgdir" $((20000 + RANDOM % 20000))

serve() {  # port [--database URL]
  "$bin" serve --store "$store" --keys "$keys" --addr "127.0.0.1:$1" "${@:2}" 2>>"$work/replicas-serve.log" & pids+=($!)
  for _ in $(seq 1 600); do curl -sf -o /dev/null "http://127.0.0.1:$1/readyz" && return 0; sleep 0.2; done
  echo "server on $1 did not come up" >&2; exit 1
}
serve 25540
serve 25541 --database "$database"
serve 25542 --database "$database"

load() {  # name seconds connections port... -> summed "rps p99_ms errors" (p99: the worst)
  local name=$1 seconds=$2 conns=$3; shift 3
  local i=0 runs=()
  for port in "$@"; do
    wrk -t1 -c"$conns" -d"$seconds" --latency -s "$lua" "http://127.0.0.1:$port" >"$work/wrk-$name-$i.txt" &
    runs+=($!)
    i=$((i + 1))
  done
  wait "${runs[@]}"
  local rps=0 p99=0 errors=0
  for f in "$work"/wrk-"$name"-*.txt; do
    read -r r _ q e < <(python3 benches/wrk_summary.py "$f")
    rps=$((rps + r)); errors=$((errors + e))
    p99=$(python3 -c "print(max($p99, $q))")
  done
  rm -f "$work"/wrk-"$name"-*.txt
  echo "$rps $p99 $errors"
}

load warm 3s "$connections" 25540 >/dev/null
load warm 3s "$connections" 25541 >/dev/null
results=()
for round in 1 2; do
  results+=("file-$round $(load file "$duration" "$connections" 25540)")
  results+=("one-$round $(load one "$duration" "$connections" 25541)")
  results+=("two-$round $(load two "$duration" $((connections / 2)) 25541 25542)")
done
printf '%s\n' "${results[@]}" | tee "$work/replicas-results.txt" | python3 -c '
import sys
rows = {}
for line in sys.stdin:
    name, rps, p99, err = line.split()
    rows.setdefault(name.split("-")[0], []).append((int(rps), float(p99), int(err)))
def mean(k): return sum(r for r, _, _ in rows[k]) / len(rows[k])
labels = {"file": "one server, file store", "one": "one replica, PostgreSQL", "two": "two replicas, PostgreSQL"}
for k in ("file", "one", "two"):
    rs = " / ".join(f"{r:,}" for r, _, _ in rows[k])
    print(f"{labels[k]:<28} {rs:>22} req/s   p99 {max(p for _, p, _ in rows[k]):.2f} ms   errors {sum(e for _, _, e in rows[k])}")
two_over_one, one_over_file = mean("two") / mean("one"), mean("one") / mean("file")
print(f"two replicas / one replica   {two_over_one:.2f}")
print(f"one replica / file store     {one_over_file:.2f}")
'
echo "audit records written: $(psql "$database" -Atc 'SELECT coalesce(sum(records), 0) FROM allot_audit_chunks')"
