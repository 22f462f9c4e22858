//! Uptake with customer attributes (`customer_features.csv`): the model
//! recovers the attributes' effects from simulated showings, reports itself
//! with and without them, and the file's problems fail the load with their
//! file, row and column.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs;
use std::path::Path;

use allot_forecasting::attributes::ColumnEncoding;
use allot_forecasting::synthetic::Rng;
use allot_forecasting::uptake::sigmoid;
use allot_scenarios::{generate, load_scenario, GenerateSpec};

/// True effects on the log-odds of acceptance: per year of age, per unit of
/// income (thousands), and per household level against `single`.
const AGE: f64 = -0.03;
const INCOME: f64 = 0.02;
const COUPLE: f64 = 0.4;
const FAMILY: f64 = 0.9;
const INTERCEPT: f64 = -1.6;

/// A generated scenario whose offer history is replaced by showings drawn
/// from a known logistic model of the customers' attributes alone. Each
/// customer is shown six offers on one day, so no customer has a past when
/// shown and the history features carry no signal of their own.
fn simulated(dir: &Path, customers: usize) {
    let spec = GenerateSpec { customers, offers: 12, forecasts: false, seed: 5, ..Default::default() };
    generate(dir, &spec).unwrap();
    let mut rng = Rng::new(17);
    let mut features = String::from("customer_id,age,income,household,shoe_size\n");
    let mut history = String::from("customer_id,offer_id,date,shown,accepted\n");
    let start = spec.start - chrono::Days::new(120);
    for c in 0..customers {
        let id = format!("C{c:07}");
        let age = (18.0 + 62.0 * rng.uniform()).round();
        let income = (40.0 + 15.0 * rng.normal()).max(5.0);
        let u = rng.uniform();
        let (household, effect) = if u < 0.5 {
            ("single", 0.0)
        } else if u < 0.8 {
            ("couple", COUPLE)
        } else if u < 0.995 {
            ("family", FAMILY)
        } else {
            ("commune", 0.5) // 0.5% of customers: pooled into `other`
        };
        let shoe_size = (36.0 + 10.0 * rng.uniform()).round(); // no effect
        let _ = writeln!(features, "{id},{age},{income:.2},{household},{shoe_size}");
        let p = sigmoid(INTERCEPT + AGE * (age - 49.0) + INCOME * (income - 40.0) + effect);
        let day = start + chrono::Days::new((rng.uniform() * 120.0) as u64);
        for k in 0..6 {
            let _ = writeln!(history, "{id},O{:05},{day},1,{}", (c + 2 * k) % 12, u8::from(rng.uniform() < p));
        }
    }
    fs::write(dir.join("customer_features.csv"), features).unwrap();
    fs::write(dir.join("offer_history.csv"), history).unwrap();
}

/// The acceptance test of issue 19 item 6: the uptake model fitted from the
/// history with `customer_features.csv` recovers the attributes' coefficients
/// (numeric ones per unit through the reported scale, levels against the
/// reference), pools the rare level, gives a useless column almost nothing,
/// and beats the same model without the attributes on the holdout.
#[test]
fn uptake_model_recovers_coefficients_of_customer_attributes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("sim");
    simulated(&dir, 12_000);
    let loaded = load_scenario(&dir).unwrap();
    let report = loaded.uptake_report.as_ref().expect("uptake was forecast");
    let attributes = report.attributes.as_ref().expect("attributes were used");
    let coef: HashMap<&str, f64> = report.coefficients.iter().map(|(n, c)| (n.as_str(), *c)).collect();
    let sd = |name: &str| {
        attributes
            .columns
            .iter()
            .find_map(|c| match c {
                ColumnEncoding::Numeric { name: n, sd, .. } if n == name => Some(*sd),
                _ => None,
            })
            .unwrap_or_else(|| panic!("{name} is numeric: {:?}", attributes.columns))
    };
    let per_unit = |name: &str| coef[format!("attr:{name}").as_str()] / sd(name);
    assert!((per_unit("age") - AGE).abs() < 0.003, "age {} vs {AGE}", per_unit("age"));
    assert!((per_unit("income") - INCOME).abs() < 0.004, "income {} vs {INCOME}", per_unit("income"));
    assert!((coef["attr:household=couple"] - COUPLE).abs() < 0.1, "couple {}", coef["attr:household=couple"]);
    assert!((coef["attr:household=family"] - FAMILY).abs() < 0.1, "family {}", coef["attr:household=family"]);
    assert!(coef["attr:shoe_size"].abs() < 0.05, "shoe_size {}", coef["attr:shoe_size"]);
    let household = attributes.columns.iter().find(|c| matches!(c, ColumnEncoding::Categorical { name, .. } if name == "household")).unwrap();
    assert!(
        matches!(household, ColumnEncoding::Categorical { reference, pooled, .. } if reference == "single" && pooled == &["commune"]),
        "{household:?}"
    );
    assert!(coef.keys().all(|n| !n.contains("group")), "the protected group is never a feature");
    // With and without: the attributes are the only signal here.
    let (with, without) = (&report.scores.holdout, &attributes.without_attributes.holdout);
    assert!(with.auc > without.auc + 0.05, "with {with:?}\nwithout {without:?}");
    assert!(with.log_loss < without.log_loss, "with {with:?}\nwithout {without:?}");
    assert!(report.scores.cross_validation.len() > 1 && report.scores.cross_validation.iter().any(|p| p.l2 == report.scores.l2));
    assert!(loaded.notes.iter().any(|n| n.contains("without customer attributes")), "{:?}", loaded.notes);
}

/// The file's problems are issues naming the file, and the row and column
/// where there is one: a `group` column (the protected attribute, in any
/// case), a column that speaks of consent (a governance input), a customer without a row, a row for no customer, a blank or
/// misspelt number in a numeric column. All are reported at once.
#[test]
fn customer_features_errors_name_file_row_and_column() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("bad");
    let spec = GenerateSpec { customers: 60, history_days: 30, forecasts: false, customer_attributes: true, ..Default::default() };
    generate(&dir, &spec).unwrap();
    let text = fs::read_to_string(dir.join("customer_features.csv")).unwrap();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    assert_eq!(lines[0], "customer_id,age,tenure_months,household,newsletter");
    lines[0].push_str(",Group,marketing_consent");
    for l in lines.iter_mut().skip(1) {
        l.push_str(",A,yes");
    }
    let set = |l: &str, column: usize, value: &str| {
        let mut cells: Vec<&str> = l.split(',').collect();
        cells[column] = value;
        cells.join(",")
    };
    lines[3] = set(&lines[3], 1, ""); // row 3: age blank
    lines[5] = set(&lines[5], 1, "4o"); // row 5: age misspelt
    let missing = lines.remove(10); // row 10's customer has no row now
    let missing_id = missing.split(',').next().unwrap().to_string();
    lines.push("C9999999,30,4,single,no,A,yes".into());
    fs::write(dir.join("customer_features.csv"), lines.join("\n") + "\n").unwrap();

    let err = load_scenario(&dir).unwrap_err().to_string();
    for want in [
        "customer_features.csv column `Group`: expected no `group` column".to_string(),
        "customer_features.csv column `marketing_consent`: expected no column that speaks of consent".to_string(),
        "customer_features.csv row 3 column `age`: expected a number".to_string(),
        "customer_features.csv row 5 column `age`: got \"4o\", expected a number".to_string(),
        format!("customer_features.csv column `customer_id`: got \"{missing_id}\", expected a row for every customer"),
        "customer_features.csv row 60 column `customer_id`: got \"C9999999\", expected a customer_id of customers".to_string(),
    ] {
        assert!(err.contains(&want), "missing {want:?} in:\n{err}");
    }
}

/// `allot generate --customer-attributes` writes attributes that drive the
/// uptake, `allot forecast` uses them and prints the holdout with and without
/// them, and `uptake_report.json` carries both. The same scenario in Parquet
/// reads the same column kinds.
#[test]
fn generated_attributes_improve_the_forecast_and_are_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    let allot = |args: &[&str]| {
        let run = std::process::Command::new(env!("CARGO_BIN_EXE_allot")).args(args).output().unwrap();
        let stdout = String::from_utf8_lossy(&run.stdout).into_owned();
        assert!(run.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&run.stderr));
        stdout
    };
    allot(&["generate", dir.to_str().unwrap(), "--customers", "3000", "--history-days", "300", "--no-forecasts", "--customer-attributes", "--seed", "9"]);
    let out = tmp.path().join("fc");
    let stdout = allot(&["forecast", dir.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    for want in ["customer attributes from customer_features.csv", "household: categorical, reference single", "with attributes, calibrated", "without attributes, calibrated"] {
        assert!(stdout.contains(want), "{want:?} in:\n{stdout}");
    }
    let report: serde_json::Value = serde_json::from_str(&fs::read_to_string(out.join("uptake_report.json")).unwrap()).unwrap();
    let with = report["holdout"]["auc"].as_f64().unwrap();
    let without = report["attributes"]["without_attributes"]["holdout"]["auc"].as_f64().unwrap();
    assert!(with > without + 0.02, "with {with}, without {without}");
    assert!(report["l2"].as_f64().is_some() && report["attributes"]["fitting_customers"].as_u64().unwrap() > 2000, "{report}");

    // Parquet: numeric columns stay numeric, text ones categorical.
    allot_scenarios::convert_scenario_to_parquet(&dir).unwrap();
    assert!(dir.join("customer_features.parquet").is_file());
    let loaded = load_scenario(&dir).unwrap();
    let kinds: Vec<(String, &str)> = loaded
        .uptake_report
        .unwrap()
        .attributes
        .unwrap()
        .columns
        .iter()
        .map(|c| match c {
            ColumnEncoding::Numeric { name, .. } => (name.clone(), "numeric"),
            ColumnEncoding::Categorical { name, .. } => (name.clone(), "categorical"),
        })
        .collect();
    let want = [("age", "numeric"), ("tenure_months", "numeric"), ("household", "categorical"), ("newsletter", "categorical")];
    assert_eq!(kinds, want.map(|(n, k)| (n.to_string(), k)));
}
