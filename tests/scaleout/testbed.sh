#!/usr/bin/env bash
# The scale-out test bed: a local Ray cluster (and, for the service, PostgreSQL),
# started here, used by the tests below, and torn down whatever happens.
#
#   bash tests/scaleout/testbed.sh            # everything
#   ALLOT_SKIP_SCALEOUT=1 bash .ci/run        # CI without it: the only way to skip
#
# Installs what it needs: a Python venv with the `ray` wheel (under
# $ALLOT_CACHE, default ~/.cache/allot) and the `allot_ray` package built from
# this workspace (tests/scaleout/allot_ray.sh).
#
# Tests:
#  1. equivalence: the same scenario planned by the single-machine decomposed
#     solver and on Ray (4 partitions, one actor each) reaches the same objective
#     within the stopping gap; the Ray plan passes the feasibility checker and is
#     saved as a plan version;
#  2. a Ray actor killed mid-solve ends the solve in a clear error, and no plan
#     version is saved;
#  3. the replica tests of tests/scaleout/replicas.py: PostgreSQL (Debian's
#     package, a fresh cluster in a temporary directory, run as the unprivileged
#     `postgres` user when started as root) and two `allot serve --database`
#     replicas on loopback ports.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
cache="${ALLOT_CACHE:-$HOME/.cache/allot}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$cache/target}"
venv="$cache/venv"
work=$(mktemp -d /tmp/allot-tb.XXXXXX)
chmod 755 "$work"
ray_port=$((20000 + RANDOM % 20000))

log() { printf '[testbed %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
fail() { log "FAIL: $*"; exit 1; }

cleanup() {
  status=$?
  set +e
  declare -F pg_stop >/dev/null && pg_stop "$work/pg"
  if [ -x "$venv/bin/ray" ]; then
    RAY_ADDRESS= "$venv/bin/ray" stop --force >/dev/null 2>&1
  fi
  # Anything of ours still running (a replica, a bridge) goes too.
  pkill -9 -f "$work" >/dev/null 2>&1
  rm -rf "$work"
  exit $status
}
trap cleanup EXIT INT TERM

# --- installs -------------------------------------------------------------
# shellcheck source=tests/scaleout/postgres.sh
. tests/scaleout/postgres.sh
pg_install
log "building the allot CLI and the allot_ray module"
# shellcheck source=tests/scaleout/allot_ray.sh
. tests/scaleout/allot_ray.sh
allot_ray_install "$venv" || fail "the allot_ray module"

# --- Ray ------------------------------------------------------------------
log "starting a local Ray cluster on port $ray_port"
"$venv/bin/ray" start --head --port "$ray_port" --num-cpus 4 --include-dashboard false \
  --disable-usage-stats --temp-dir "$work/ray" >"$work/ray-start.log" 2>&1 || { cat "$work/ray-start.log" >&2; fail "ray start"; }
ray_address="127.0.0.1:$ray_port"

objective() { "$venv/bin/python" -c 'import json,sys; print(json.load(open(sys.argv[1]))["objective"])' "$1"; }

log "test 1: equivalence, single machine vs Ray"
"$allot" generate "$work/scenario" --customers 30000 --offers 20 --candidates 6 --seed 5 >/dev/null
"$allot" plan "$work/scenario" --solver decomposed --store "$work/store-local" --out "$work/out-local" >/dev/null 2>"$work/local.log" \
  || { cat "$work/local.log" >&2; fail "single-machine plan"; }
"$allot" plan "$work/scenario" --solver ray --ray-address "$ray_address" --partitions 4 \
  --store "$work/store-ray" --out "$work/out-ray" >"$work/ray.out" 2>"$work/ray.log" \
  || { cat "$work/ray.log" >&2; fail "Ray plan"; }
grep -q "feasibility checker: the plan from 4 partitions respects every constraint" "$work/ray.log" \
  || { cat "$work/ray.log" >&2; fail "the Ray plan was not checked"; }
grep -q "decomposed on ray (4 partitions)" "$work/out-ray/kpis.json" || fail "kpis.json does not name the Ray solver"
# A listed version is a line starting with its id ("no plan versions" is not one).
[ "$("$allot" plans list --store "$work/store-ray" | grep -cE '^ *[0-9]{6} ')" -ge 1 ] || fail "no plan version saved from Ray"
local_obj=$(objective "$work/out-local/kpis.json")
ray_obj=$(objective "$work/out-ray/kpis.json")
gap=$("$venv/bin/python" -c 'import json,sys; print(json.load(open(sys.argv[1]))["gap"])' "$work/out-ray/kpis.json")
"$venv/bin/python" - "$local_obj" "$ray_obj" <<'PY' || fail "objectives differ beyond the stopping gap"
import sys
a, b = map(float, sys.argv[1:3])
rel = abs(a - b) / max(abs(a), 1.0)
print(f"  single machine {a:.4f}  ray {b:.4f}  relative difference {rel:.2e} (stopping gap 1e-3)", file=sys.stderr)
sys.exit(0 if rel <= 1e-3 else 1)
PY
log "test 1 passed (Ray plan gap $gap)"

log "test 2: a Ray actor killed mid-solve"
"$allot" generate "$work/scenario-big" --customers 200000 --offers 20 --candidates 6 --seed 6 --format parquet >/dev/null
set +e
"$allot" plan "$work/scenario-big" --solver ray --ray-address "$ray_address" --partitions 4 --gap 1e-9 --max-iterations 100000 \
  --store "$work/store-kill" --out "$work/out-kill" >"$work/kill.out" 2>"$work/kill.log" &
plan_pid=$!
set -e
for _ in $(seq 1 600); do
  grep -q "Ray actors hold the customers" "$work/kill.log" 2>/dev/null && break
  kill -0 "$plan_pid" 2>/dev/null || break
  sleep 0.2
done
sleep 2
victim=$(pgrep -f 'ray::PartitionActor' | head -n 1 || true)
[ -n "$victim" ] || { cat "$work/kill.log" >&2; fail "no actor process to kill"; }
kill -9 "$victim"
log "killed actor process $victim"
set +e
wait "$plan_pid"
code=$?
set -e
[ "$code" -ne 0 ] || fail "the solve succeeded although an actor died"
grep -q "its Ray actor died" "$work/kill.log" || { cat "$work/kill.log" >&2; fail "no clear error naming the dead actor"; }
[ -z "$("$allot" plans list --store "$work/store-kill" 2>/dev/null | grep -v '^no plan' || true)" ] || fail "a plan version was saved after the actor died"
log "test 2 passed: $(grep -o 'partition [0-9]*: its Ray actor died[^;]*' "$work/kill.log" | head -n 1)"

# --- PostgreSQL and two replicas ------------------------------------------------
pg_port=$((20000 + RANDOM % 20000))
while [ "$pg_port" = "$ray_port" ]; do pg_port=$((20000 + RANDOM % 20000)); done
log "starting PostgreSQL ($pg_bin) on port $pg_port"
pg_start "$work/pg" "$pg_port" || fail "PostgreSQL did not start"

log "test 3: two replicas on PostgreSQL"
"$allot" generate "$work/svc-scenario" --customers 5000 --offers 12 --candidates 5 --seed 9 >/dev/null
first=$("$allot" plan "$work/svc-scenario" --store "$work/svc-store" --out "$work/svc-out1" --activate 2>/dev/null | awk '/^plan /{print $2; exit}')
second=$("$allot" plan "$work/svc-scenario" --store "$work/svc-store" --out "$work/svc-out2" --gap 1e-2 2>/dev/null | awk '/^plan /{print $2; exit}')
[ -n "$first" ] && [ -n "$second" ] || fail "planning the service's two versions"
printf '{"keys": [{"key": "admin-key-for-the-scale-out-test-bed", "role": "admin"}]}\n' >"$work/keys.json"
# The first replica's start applies the migrations; activation goes through the database.
"$venv/bin/python" tests/scaleout/replicas.py --allot "$allot" --store "$work/svc-store" --keys "$work/keys.json" \
  --database "$database" --scenario "$work/svc-scenario" --work "$work" --second-plan "$second" \
  --ports $((pg_port + 1)) $((pg_port + 2)) --pg-ctl "$pg_bin/pg_ctl" --pg-data "$work/pg/data" \
  || { tail -n 20 "$work"/replica-*.log >&2; fail "replica tests"; }
if grep -l panicked "$work"/replica-*.log >/dev/null; then
  grep -h -A3 panicked "$work"/replica-*.log >&2
  fail "a replica panicked"
fi
log "test 3 passed"

log "all scale-out tests passed"
