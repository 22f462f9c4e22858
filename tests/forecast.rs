//! Forecasts inside the pipeline: a scenario with history instead of forecasts
//! is forecast on load, and the result feeds the plan.

use std::fs;
use std::path::Path;

use allot_scenarios::load_scenario;

/// The example scenario with `baseline_demand.csv` replaced by daily history.
fn example_with_sales_history(dir: &Path, history: &str) {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/retail");
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
    assert!(note.contains("2 zone x SKU series") && note.contains("models by backtest"), "{note}");
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
