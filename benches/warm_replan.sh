#!/usr/bin/env bash
# Warm re-plans against cold ones: a generated scenario is planned once
# (decomposed), then two small changes are planned cold and warm
# (`--warm-from` the first version), in the same run on the same machine:
#   - shock:   a 5% demand shock (every baseline demand and uptake x 1.05);
#   - receipt: a receipt, on the horizon's first day, of as many units as the
#              warehouse holds of the stock row the first plan prices highest.
# Reports per change: solve seconds, iterations, status and certified gap on
# the offers' value, cold and warm, and the ratio warm/cold of solve time.
#
# Usage: benches/warm_replan.sh [CUSTOMERS] [mip|lp]   (default 1000000 mip:
#        the generator's custom-offer limit; lp drops it)
# Env: BENCH_DIR (default /tmp/allot-warm), ALLOT (an allot binary; default:
#      built here in release). Not a test: it asserts nothing about time.
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-1000000}"
model="${2:-mip}"
case "$model" in mip|lp) ;; *) echo "model: mip or lp, not $model" >&2; exit 2 ;; esac
work="${BENCH_DIR:-/tmp/allot-warm}/$model"
if [ -z "${ALLOT:-}" ]; then
  cargo build --release -q
  ALLOT="${CARGO_TARGET_DIR:-target}/release/allot"
fi
mkdir -p "$work"
base="$work/base-c$n"
store="$work/store-c$n"
rm -rf "$store"
if [ ! -d "$base" ]; then
  "$ALLOT" generate "$base" --customers "$n" --offers 40 --skus 300 --zones 20 --warehouses 5 --candidates 8 --seed 1 --format parquet 2>/dev/null
  [ "$model" = mip ] || sed -i '/^max_custom_offers/d' "$base/scenario.toml"
fi

plan() {  # scenario out [extra args] -> the plan's kpis.json path
  local scenario="$1" out="$2"
  shift 2
  "$ALLOT" plan "$scenario" --solver decomposed --store "$store" --out "$out" --format parquet "$@" >/dev/null 2>"$out.log"
  echo "$out/kpis.json"
}
plan "$base" "$work/first" >/dev/null

# The receipt goes where stock is worth most to the first plan.
read -r warehouse sku units < <(python3 - "$work/first/shadow_prices.json" "$base" <<'PY'
import json, sys
values = json.load(open(sys.argv[1]))["values"]
stock = [v for v in values if v["constraint"] == "stock"]
top = max(stock, key=lambda v: v["value_per_unit"])
w, s = top["key"].split(" ")[0].split("/")
print(w, s, max(1.0, top["capacity"] or 1.0))
PY
)
mkdir -p "$work/shock" "$work/receipt"
printf 'base = "%s"\n\n[[perturbation]]\nkind = "demand_shock"\nfactor = 1.05\n' "$base" >"$work/shock/scenario.toml"
printf 'base = "%s"\n\n[[perturbation]]\nkind = "receipt"\nwarehouse = "%s"\nsku = "%s"\nunits = %s\n' "$base" "$warehouse" "$sku" "$units" >"$work/receipt/scenario.toml"

for change in shock receipt; do
  cold=$(plan "$work/$change" "$work/$change-cold")
  warm=$(plan "$work/$change" "$work/$change-warm" --warm-from 000001)
  python3 - "$change" "$cold" "$warm" <<'PY'
import json, sys
change, cold, warm = sys.argv[1], json.load(open(sys.argv[2])), json.load(open(sys.argv[3]))
for name, k in (("cold", cold), ("warm", warm)):
    print(f"{change:8} {name}: solve {k['solve_seconds']:7.2f} s  iterations {k.get('iterations')!s:>4}  {k['status']:21} offers gap {k['offers_gap']:.2e}")
print(f"{change:8} warm/cold solve time {warm['solve_seconds'] / cold['solve_seconds']:.3f}")
PY
done
