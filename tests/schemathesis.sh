#!/usr/bin/env bash
# Schemathesis against a running `allot serve`: the bundled example planned
# into a fresh store, served with an admin key, and every operation of
# /openapi.json driven with generated requests (valid and invalid), all checks
# on. Fails on any server error or any answer that breaks the document
# (status, content type, body schema, headers). Run by .ci/run after the
# workspace tests; skipped with ALLOT_SKIP_SCHEMATHESIS=1.
#
# Knobs: ALLOT_SCHEMATHESIS_EXAMPLES (examples per operation, default 100),
# CARGO_TARGET_DIR (where `allot` is built).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${ALLOT_SKIP_SCHEMATHESIS:-0}" = "1" ]; then
  echo "ALLOT_SKIP_SCHEMATHESIS=1: the schemathesis run is skipped" >&2
  exit 0
fi

log() { echo "[schemathesis] $*" >&2; }
cache="$HOME/.cache/allot"
venv="$cache/venv-schemathesis"
target="${CARGO_TARGET_DIR:-$cache/target}"
examples="${ALLOT_SCHEMATHESIS_EXAMPLES:-100}"

# Its own venv: schemathesis pins jsonschema and friends differently from Ray.
if [ ! -x "$venv/bin/st" ]; then
  log "installing schemathesis into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q 'schemathesis==4.*'
fi

# The binary `cargo test --workspace` builds (same features: no second build of polars).
CARGO_TARGET_DIR="$target" cargo test --workspace --no-run -q >/dev/null 2>&1 || CARGO_TARGET_DIR="$target" cargo test --workspace --no-run
allot="$target/debug/allot"

work="$(mktemp -d)"
server=""
cleanup() {
  if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/scenarios"
cp -r examples/retail-v1 "$work/scenarios/retail"
"$allot" plan "$work/scenarios/retail" --store "$work/store" --out "$work/out" --activate >/dev/null 2>&1
admin="schemathesis-admin-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
printf '{"keys": [{"key": "%s", "role": "admin"}]}\n' "$admin" > "$work/keys.json"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
"$allot" serve --store "$work/store" --keys "$work/keys.json" --scenarios "$work/scenarios" --addr "127.0.0.1:$port" 2>"$work/serve.log" &
server=$!
for _ in $(seq 1 100); do
  curl -fsS "$base/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -fsS -H "Authorization: Bearer $admin" "$base/openapi.json" > "$work/openapi.json"

log "schemathesis on $base ($examples examples per operation, all checks)"
set +e
config="$PWD/tests/schemathesis.toml"
# From the scratch directory: schemathesis keeps its cache in `.schemathesis/` there.
(cd "$work" && "$venv/bin/st" --config-file "$config" --no-color run "$work/openapi.json" --url "$base" \
  -H "Authorization: Bearer $admin" \
  --checks all \
  --max-examples "$examples" \
  --workers 2 \
  --seed 1)
rc=$?
set -e
if [ "$rc" -ne 0 ]; then
  log "failed (exit $rc); the server's log:"
  tail -n 50 "$work/serve.log" >&2
fi
exit "$rc"
