#!/usr/bin/env bash
# The uptake model with customer attributes on real public data, against
# scikit-learn: ISLR's Caravan (5,822 customers of a Dutch insurer, 85
# socio-demographic and product-ownership attributes, binary `Purchase` of
# caravan insurance, 6% yes), as shipped inside the PyPI package ISLP 0.6.0
# (ISLP/data/Caravan.csv in its wheel; nothing is downloaded at run time).
# One fixed split (ISLR's: the first 1000 customers are the test set). allot's
# path (the scenario reader of customer_features.csv, the encoding, the L2
# strength by 5-fold cross-validation, IRLS) runs as the example
# `uptake_table` (benches/uptake_table.rs); scikit-learn's LogisticRegressionCV (L2,
# C by 5-fold cross-validation on the training rows) fits the identical encoded
# features. Prints both holdout AUCs and log-losses; exits 1 when allot's AUC is
# more than 0.005 below scikit-learn's. Not a test.
set -euo pipefail
cd "$(dirname "$0")/.."
work="${BENCH_DIR:-/tmp/allot-bench}/uptake-real"
venv="${UPTAKE_VENV:-$HOME/.cache/allot/venv-uptake}"
mkdir -p "$work/data"
src="$work/Caravan.csv"
if [ ! -f "$src" ]; then
  python3 -m pip download --no-deps islp==0.6.0 -d "$work" -q
  python3 -m zipfile -e "$work/islp-0.6.0-py3-none-any.whl" "$work/wheel" >/dev/null
  cp "$work/wheel/ISLP/data/Caravan.csv" "$src"
fi
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "scikit-learn==1.9.1"
fi
"$venv/bin/python" benches/uptake_real.py prepare "$src" "$work/data"
# Built with the whole workspace selected: the features cargo unifies are then
# those of every other build (a bare `cargo run` would rebuild polars).
cargo build -q --workspace --example uptake_table
target="$(cargo metadata -q --format-version 1 --no-deps | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
"$target/debug/examples/uptake_table" "$work/data"
"$venv/bin/python" benches/uptake_real.py compare "$work/data"
