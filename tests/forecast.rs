//! Forecasts inside the pipeline: a scenario with history instead of forecasts
//! is forecast on load, and the result feeds the plan.

use std::fs;
use std::path::Path;

use allot_scenarios::load_scenario;

/// The example scenario with `baseline_demand.csv` replaced by daily history.
fn example_with_sales_history(dir: &Path, history: &str) {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/retail-v1");
    fs::create_dir_all(dir).unwrap();
    for e in fs::read_dir(&example).unwrap() {
        let e = e.unwrap();
        if e.file_name() != "baseline_demand.csv" {
            fs::copy(e.path(), dir.join(e.file_name())).unwrap();
        }
    }
    fs::write(dir.join("sales_history.csv"), history).unwrap();
}

#[test]
fn baseline_demand_is_forecast_from_sales_history_when_absent() {
    // 16 weeks up to the day before the horizon (2026-12-01, 14 days): a clean
    // weekly pattern summing to 28 a week for Z000/SKU00000, and a series that
    // only sold on a few days for Z001/SKU00001 (zero days are absent rows).
    let start = chrono::NaiveDate::from_ymd_opt(2026, 8, 11).unwrap();
    let mut csv = String::from("date,zone,sku,units\n");
    for day in 0..112 {
        let date = start + chrono::Days::new(day);
        let units = [1, 2, 3, 4, 5, 6, 7][(day % 7) as usize];
        csv.push_str(&format!("{date},Z000,SKU00000,{units}\n"));
        if day % 9 == 0 {
            csv.push_str(&format!("{date},Z001,SKU00001,3\n"));
        }
    }
    let tmp = tempfile::tempdir().unwrap();
    example_with_sales_history(tmp.path(), &csv);
    let loaded = load_scenario(tmp.path()).unwrap();
    let note = loaded.notes.iter().find(|n| n.contains("sales_history")).expect("a note says the baseline was forecast");
    assert!(note.contains("2 zone x SKU series") && note.contains("daily history"), "{note}");
    let p = &loaded.problem;
    let units = |zone: &str, sku: &str| {
        let z = p.zones.iter().position(|x| x.id == zone).unwrap() as u32;
        let s = p.skus.iter().position(|x| x == sku).unwrap() as u32;
        p.baseline.iter().find(|b| b.zone == z && b.sku == s).map(|b| b.units).unwrap()
    };
    assert!((units("Z000", "SKU00000") - 56.0).abs() < 1e-3, "two clean weeks: {}", units("Z000", "SKU00000"));
    // 3 units every 9 days is 1/3 a day: about 4.7 over 14 days.
    let sparse = units("Z001", "SKU00001");
    assert!((sparse - 14.0 / 3.0).abs() < 2.0, "{sparse}");
}

#[test]
fn a_scenario_with_only_history_is_forecast_and_planned() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("history-only");
    let spec = allot_scenarios::GenerateSpec { customers: 5000, history_days: 365, forecasts: false, seed: 7, ..Default::default() };
    allot_scenarios::generate(&dir, &spec).unwrap();
    assert!(!dir.join("uptake.csv").exists() && !dir.join("baseline_demand.csv").exists());
    let loaded = load_scenario(&dir).unwrap();
    assert!(loaded.notes.iter().any(|n| n.contains("sales_history.csv")), "{:?}", loaded.notes);
    let report = loaded.uptake_report.as_ref().expect("uptake was forecast");
    // Calibrated on data the model was not fitted on, judged on later data still.
    assert!(report.scores.holdout.ece < 0.02, "{:?}", report.scores.holdout);
    assert!(report.scores.holdout.auc > 0.6, "{:?}", report.scores.holdout);
    assert!(report.coefficients.iter().all(|(name, _)| !name.contains("group")), "the protected group is never a feature");
    let p = &loaded.problem;
    let per_customer = allot_scenarios::scenario::uptake_history::CANDIDATES_PER_CUSTOMER;
    assert!(p.uptake.len() <= 5000 * per_customer && p.uptake.len() > 4000 * per_customer, "{}", p.uptake.len());
    assert!(p.uptake.iter().all(|u| u.p > 0.0 && u.p <= 1.0));
    // No candidate slot goes to an offer the customer could never be served.
    for u in &p.uptake {
        let o = &p.offers[u.offer as usize];
        assert!(o.min_tier.is_none_or(|m| p.customers.tier[u.customer as usize] <= m), "{u:?}");
        assert!(p.horizon.overlaps(o.start_date, o.end_date), "{u:?}");
    }
    assert!(!p.baseline.is_empty());
    let (_, _, plan) = allot_optimizer::plan(p, &allot_optimizer::SolverChoice::Exact(Default::default())).unwrap();
    assert!(plan.kpis.objective > 0.0);

    // The demand plan shows both parts, and each adds up.
    let rows = allot_scenarios::plans::demand_plan::demand_plan(&loaded, &plan);
    let baseline: f64 = rows.iter().map(|r| r.baseline).sum();
    let offer: f64 = rows.iter().map(|r| r.offer).sum();
    let want_baseline: f64 = p.baseline.iter().map(|b| b.units).sum();
    let want_offer: f64 = plan.rows(p).filter(|(_, e)| e.eligible()).map(|(u, _)| u.p * p.offers[u.offer as usize].items.iter().map(|i| i.qty).sum::<f64>()).sum();
    assert!((baseline - want_baseline).abs() < 1e-6 * want_baseline.max(1.0), "{baseline} vs {want_baseline}");
    assert!(want_offer > 0.0 && (offer - want_offer).abs() < 1e-6 * want_offer, "{offer} vs {want_offer}");
    assert_eq!(rows.len() % p.horizon.days as usize, 0, "every cell has every day");
}

#[test]
fn the_forecast_command_writes_forecasts_and_prints_the_accuracy_report() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    let spec = allot_scenarios::GenerateSpec { customers: 2000, history_days: 200, seed: 3, ..Default::default() };
    allot_scenarios::generate(&dir, &spec).unwrap();
    let out = tmp.path().join("fc");
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_allot")).args(["forecast", dir.to_str().unwrap(), "--out", out.to_str().unwrap()]).output().unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&run.stderr));
    assert!(stdout.contains("seasonal_naive") && stdout.contains("chosen models: mean MASE") && stdout.contains("AUC"), "{stdout}");
    for f in ["baseline_demand.csv", "demand_forecast.csv", "uptake.csv", "uptake_report.json"] {
        assert!(out.join(f).is_file(), "{f}");
    }
    let daily = fs::read_to_string(out.join("demand_forecast.csv")).unwrap();
    assert!(daily.starts_with("zone,sku,date,mean,p50,p90,model,mase\n"), "{}", &daily[..80]);
    let report = fs::read_to_string(out.join("demand_report.csv")).unwrap();
    assert!(report.starts_with("zone,sku,class,model,holdout_mase,naive_mase,selection_score,clipped\n"), "{}", &report[..100]);
    assert!(stdout.contains("demand classes:") && stdout.contains("negative forecasts set to zero"), "{stdout}");

    // --horizon asks for more periods than the planning horizon needs (its 14
    // days from the day after the history), --frequency W reads the daily
    // history by weeks: 20 weekly rows per series, dated a week apart.
    let weekly = tmp.path().join("weekly");
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_allot"))
        .args(["forecast", dir.to_str().unwrap(), "--out", weekly.to_str().unwrap(), "--frequency", "W", "--horizon", "20"])
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    assert!(String::from_utf8_lossy(&run.stdout).contains("weekly (season 52)"));
    let rows: Vec<String> = fs::read_to_string(weekly.join("demand_forecast.csv")).unwrap().lines().skip(1).map(String::from).collect();
    let first_key: Vec<&str> = rows[0].split(',').take(2).collect();
    let series: Vec<&String> = rows.iter().filter(|r| r.split(',').take(2).collect::<Vec<_>>() == first_key).collect();
    assert_eq!(series.len(), 20);
    let date = |r: &str| chrono::NaiveDate::parse_from_str(r.split(',').nth(2).unwrap(), "%Y-%m-%d").unwrap();
    assert_eq!((date(series[1]) - date(series[0])).num_days(), 7);
    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_allot")).args(["forecast", dir.to_str().unwrap(), "--frequency", "fortnightly"]).output().unwrap();
    assert!(!bad.status.success() && String::from_utf8_lossy(&bad.stderr).contains("expected auto, D, W, M, Q or Y"));

    // Without history there is nothing to forecast from: a clear error.
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/retail-v1");
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_allot")).args(["forecast", example.to_str().unwrap()]).output().unwrap();
    assert!(!run.status.success());
    assert!(String::from_utf8_lossy(&run.stderr).contains("neither sales_history nor offer_history"));
}

#[test]
fn offer_history_errors_name_file_row_and_column() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("bad");
    let spec = allot_scenarios::GenerateSpec { customers: 50, history_days: 30, forecasts: false, ..Default::default() };
    allot_scenarios::generate(&dir, &spec).unwrap();
    let text = fs::read_to_string(dir.join("offer_history.csv")).unwrap();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let fields: Vec<&str> = lines[1].split(',').collect();
    lines[1] = format!("{},{},{},1,2", fields[0], fields[1], fields[2]);
    // Row 2 dated on the horizon's first day: history is what came before the plan.
    let start = fs::read_to_string(dir.join("scenario.toml")).unwrap().lines().find_map(|l| l.strip_prefix("start = ").map(|v| v.trim_matches('"').to_string())).unwrap();
    let fields: Vec<String> = lines[2].split(',').map(String::from).collect();
    lines[2] = format!("{},{},{start},{},{}", fields[0], fields[1], fields[3], fields[4]);
    fs::write(dir.join("offer_history.csv"), lines.join("\n") + "\n").unwrap();
    let err = load_scenario(&dir).unwrap_err().to_string();
    assert!(err.contains("offer_history.csv row 1 column `accepted`"), "{err}");
    assert!(err.contains(&format!("offer_history.csv row 2 column `date`: got \"{start}\", expected a date before the horizon's start {start}")), "{err}");
}

/// The example with one series of `history` rows (`date,units`) for
/// Z000/SKU00000, `settings` appended to its scenario.toml.
fn example_with_one_series(dir: &Path, rows: &[(String, f64)], settings: &str) {
    let mut csv = String::from("date,zone,sku,units\n");
    for (date, units) in rows {
        csv.push_str(&format!("{date},Z000,SKU00000,{units}\n"));
    }
    example_with_sales_history(dir, &csv);
    if !settings.is_empty() {
        let toml = fs::read_to_string(dir.join("scenario.toml")).unwrap();
        fs::write(dir.join("scenario.toml"), format!("{toml}\n{settings}\n")).unwrap();
    }
}

/// Baseline units of Z000/SKU00000 over the horizon.
fn baseline_units(loaded: &allot_scenarios::LoadedScenario) -> f64 {
    let p = &loaded.problem;
    let z = p.zones.iter().position(|x| x.id == "Z000").unwrap() as u32;
    let s = p.skus.iter().position(|x| x == "SKU00000").unwrap() as u32;
    p.baseline.iter().filter(|b| b.zone == z && b.sku == s).map(|b| b.units).sum()
}

/// Weekly, monthly (dated at month ends), quarterly and yearly histories of
/// ten units a day are read at their frequency and spread over the 14-day
/// horizon (2026-12-01 on) by the days of each period: 140 units each time.
#[test]
fn each_frequency_of_sales_history_is_inferred_and_spread_over_the_horizon() {
    use allot_forecasting::demand::frequency::Frequency;
    use chrono::{Datelike, NaiveDate};
    let day = |y: i32, m: u32, d: u32| NaiveDate::from_ymd_opt(y, m, d).unwrap();
    let month_end = |y: i32, m: u32| if m == 12 { day(y + 1, 1, 1) } else { day(y, m + 1, 1) }.pred_opt().unwrap();
    let weekly: Vec<(String, f64)> = (0..104).map(|k| ((day(2024, 12, 2) + chrono::Days::new(7 * k)).to_string(), 70.0)).collect();
    let monthly: Vec<(String, f64)> = (0..47)
        .map(|k| {
            let (y, m) = (2023 + k / 12, (k % 12) as u32 + 1);
            (month_end(y, m).to_string(), 10.0 * f64::from(month_end(y, m).day()))
        })
        .collect();
    let quarterly: Vec<(String, f64)> = (0..15)
        .map(|k| {
            let start = day(2023 + k / 4, (k % 4) as u32 * 3 + 1, 1);
            let end = if k % 4 == 3 { day(start.year() + 1, 1, 1) } else { day(start.year(), start.month() + 3, 1) };
            (start.to_string(), 10.0 * (end - start).num_days() as f64)
        })
        .collect();
    let yearly: Vec<(String, f64)> = (2010..2026).map(|y| (day(y, 1, 1).to_string(), 10.0 * (day(y + 1, 1, 1) - day(y, 1, 1)).num_days() as f64)).collect();
    for (frequency, rows) in [(Frequency::Weekly, weekly), (Frequency::Monthly, monthly), (Frequency::Quarterly, quarterly), (Frequency::Yearly, yearly)] {
        let tmp = tempfile::tempdir().unwrap();
        example_with_one_series(tmp.path(), &rows, "");
        let loaded = load_scenario(tmp.path()).unwrap_or_else(|e| panic!("{frequency:?}: {e}"));
        let forecast = loaded.demand_forecast.as_ref().expect("forecast from history");
        assert_eq!(forecast.calendar.frequency, frequency);
        let units = baseline_units(&loaded);
        assert!((units - 140.0).abs() < 1.4, "{frequency:?}: {units} over 14 days");
    }

    // Daily rows read by the week (weeks from Thursday, the first date), the
    // history ending on a Monday: the partial last week is not fitted as a
    // slump, and the horizon's first days (its Tuesday, Wednesday) get demand.
    let daily: Vec<(String, f64)> = (0..200).map(|k| ((day(2026, 5, 14) + chrono::Days::new(k)).to_string(), 10.0)).collect();
    let tmp = tempfile::tempdir().unwrap();
    example_with_one_series(tmp.path(), &daily, "[forecast]\nfrequency = \"W\"");
    let loaded = load_scenario(tmp.path()).unwrap();
    let forecast = loaded.demand_forecast.as_ref().unwrap();
    let per_day = forecast.daily(&forecast.series[0].1);
    assert!(per_day.iter().all(|u| (u - 10.0).abs() < 0.1), "{per_day:?}");
    assert!((baseline_units(&loaded) - 140.0).abs() < 1.4);
}

#[test]
fn irregular_dates_and_missing_periods_are_errors_naming_the_series() {
    let tmp = tempfile::tempdir().unwrap();
    let irregular: Vec<(String, f64)> = ["2026-01-01", "2026-01-15", "2026-02-03", "2026-02-10"].iter().map(|d| (d.to_string(), 5.0)).collect();
    example_with_one_series(tmp.path(), &irregular, "");
    let err = load_scenario(tmp.path()).unwrap_err().to_string();
    assert!(err.contains("sales_history.csv") && err.contains("zone Z000, SKU SKU00000") && err.contains("2026-01-15"), "{err}");

    // A monthly history without April: an error, unless missing periods are zeros.
    let months: Vec<(String, f64)> = (1..=11).filter(|m| *m != 4).map(|m| (format!("2026-{m:02}-01"), 300.0)).collect();
    let tmp = tempfile::tempdir().unwrap();
    example_with_one_series(tmp.path(), &months, "");
    let err = load_scenario(tmp.path()).unwrap_err().to_string();
    assert!(err.contains("zone Z000, SKU SKU00000") && err.contains("2026-04-01") && err.contains("fill_missing"), "{err}");
    let tmp = tempfile::tempdir().unwrap();
    example_with_one_series(tmp.path(), &months, "[forecast]\nfill_missing = \"zero\"");
    let loaded = load_scenario(tmp.path()).unwrap();
    assert_eq!(loaded.demand_forecast.as_ref().unwrap().calendar.frequency, allot_forecasting::demand::frequency::Frequency::Monthly);

    // History running into the horizon is an error naming both dates.
    let tmp = tempfile::tempdir().unwrap();
    let late: Vec<(String, f64)> = (1..=12).map(|m| (format!("2026-{m:02}-01"), 300.0)).collect();
    example_with_one_series(tmp.path(), &late, "");
    let err = load_scenario(tmp.path()).unwrap_err().to_string();
    assert!(err.contains("2026-12-01") && err.contains("horizon"), "{err}");

    // A history with no rows is an error, not a baseline of no demand.
    let tmp = tempfile::tempdir().unwrap();
    example_with_sales_history(tmp.path(), "date,zone,sku,units\n");
    let err = load_scenario(tmp.path()).unwrap_err().to_string();
    assert!(err.contains("sales_history.csv") && err.contains("the file has none"), "{err}");

    // A misspelt setting is an error naming it.
    let tmp = tempfile::tempdir().unwrap();
    example_with_one_series(tmp.path(), &months, "[forecast]\nfrequency = \"montly\"");
    let err = load_scenario(tmp.path()).unwrap_err().to_string();
    assert!(err.contains("[forecast] frequency") && err.contains("montly"), "{err}");
}

/// Promotions in the history and a planned one: the lift is estimated (the
/// history's promoted days sold 1.6 times the rest) and the planned day's
/// baseline carries it, while the other days do not.
#[test]
fn a_planned_promotion_raises_the_baseline_of_its_day() {
    let start = chrono::NaiveDate::from_ymd_opt(2025, 12, 1).unwrap();
    let mut csv = String::from("date,zone,sku,units,promo\n");
    for d in 0..365u64 {
        let promoted = d % 10 == 3;
        let units = if promoted { 32.0 } else { 20.0 };
        csv.push_str(&format!("{},Z000,SKU00000,{units},{}\n", start + chrono::Days::new(d), u8::from(promoted)));
    }
    let tmp = tempfile::tempdir().unwrap();
    example_with_sales_history(tmp.path(), &csv);
    fs::write(tmp.path().join("promotions_plan.csv"), "zone,sku,date,promo\nZ000,SKU00000,2026-12-05,1\n").unwrap();
    let loaded = load_scenario(tmp.path()).unwrap();
    let forecast = loaded.demand_forecast.as_ref().unwrap();
    let lift = forecast.effects[0].promo.exp();
    assert!((lift - 1.6).abs() < 0.16, "lift {lift}");
    let daily = forecast.daily(&forecast.series[0].1);
    assert!((daily[4] / daily[3] - lift).abs() < 0.05 * lift, "{daily:?}");
    assert!((daily[3] - 20.0).abs() < 1.0 && (daily[5] - 20.0).abs() < 1.0, "{daily:?}");

    // A planned row for a series without history is an error naming it, by
    // its column; so is a planned price where the history has none.
    fs::write(tmp.path().join("promotions_plan.csv"), "zone,sku,date,promo,price\nZ000,SKU99999,2026-12-05,1,\nZ999,SKU00000,2026-12-05,1,\nZ000,SKU00000,2026-12-06,0,9.5\n").unwrap();
    let err = load_scenario(tmp.path()).unwrap_err().to_string();
    assert!(err.contains("promotions_plan.csv row 1 column `sku`") && err.contains("SKU99999"), "{err}");
    assert!(err.contains("row 2 column `zone`") && err.contains("Z999"), "{err}");
    assert!(err.contains("row 3 column `price`") && err.contains("no prices"), "{err}");

    // A plan of promotions with a history that has no promo or price column cannot be honoured.
    let plain: String = csv.lines().map(|l| l.rsplit_once(',').unwrap().0.to_string() + "\n").collect();
    fs::write(tmp.path().join("sales_history.csv"), plain).unwrap();
    fs::write(tmp.path().join("promotions_plan.csv"), "zone,sku,date,promo\nZ000,SKU00000,2026-12-05,1\n").unwrap();
    let err = load_scenario(tmp.path()).unwrap_err().to_string();
    assert!(err.contains("promotions_plan.csv") && err.contains("a promo or price column"), "{err}");
}
