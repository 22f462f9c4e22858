//! Bad input gets a clear error: one test per validation rule, each asserting
//! that the message names the file, the 1-based data row and the column.

use std::fs;
use std::path::{Path, PathBuf};

use allot_scenarios::scenario::table::Issue;
use allot_scenarios::{load_scenario, LoadError};

/// A copy of the `stock_lanes` golden scenario, edited by `edit`.
fn scenario(edit: impl FnOnce(&Path)) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("scenario");
    fs::create_dir(&dir).unwrap();
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/stock_lanes");
    for entry in fs::read_dir(golden).unwrap() {
        let entry = entry.unwrap();
        fs::copy(entry.path(), dir.join(entry.file_name())).unwrap();
    }
    edit(&dir);
    (tmp, dir)
}

fn write(dir: &Path, file: &str, body: &str) {
    fs::write(dir.join(file), body).unwrap();
}

/// Loads an edited scenario and returns its validation issues.
fn issues(edit: impl FnOnce(&Path)) -> (Vec<Issue>, usize, String) {
    let (_tmp, dir) = scenario(edit);
    match load_scenario(&dir) {
        Err(e @ LoadError::Invalid { .. }) => {
            let text = e.to_string();
            let LoadError::Invalid { issues, total } = e else { unreachable!() };
            (issues, total, text)
        }
        Err(e) => panic!("expected validation issues, got {e}"),
        Ok(_) => panic!("expected validation issues, the scenario loaded"),
    }
}

/// Asserts one issue at (file, row, column) whose message says what was expected.
fn assert_issue(edit: impl FnOnce(&Path), file: &str, row: Option<usize>, column: &str, expected_words: &str) {
    let (issues, _, text) = issues(edit);
    let found = issues.iter().find(|i| i.file == file && i.row == row && i.column.as_deref() == Some(column));
    let issue = found.unwrap_or_else(|| panic!("no issue at {file} {row:?} {column} in:\n{text}"));
    let message = issue.to_string();
    assert!(message.contains(file), "{message}");
    if let Some(r) = row {
        assert!(message.contains(&format!("row {r}")), "{message}");
    }
    assert!(message.contains(&format!("column `{column}`")), "{message}");
    assert!(message.contains(expected_words), "{message} lacks {expected_words:?}");
}

#[test]
fn missing_required_column() {
    assert_issue(|d| write(d, "customers.csv", "customer_id,zone\nc1,Z1\n"), "customers.csv", None, "tier", "required column");
}

#[test]
fn missing_required_value() {
    assert_issue(|d| write(d, "customers.csv", "customer_id,zone,tier\nc1,Z1,standard\nc2,,standard\n"), "customers.csv", Some(2), "zone", "a value");
}

#[test]
fn duplicate_customer_id() {
    assert_issue(
        |d| write(d, "customers.csv", "customer_id,zone,tier\nc1,Z1,standard\nc1,Z1,standard\n"),
        "customers.csv",
        Some(2),
        "customer_id",
        "duplicate",
    );
}

#[test]
fn duplicate_offer_id() {
    assert_issue(|d| write(d, "offers.csv", "offer_id,margin\no1,10\no2,4\no1,3\n"), "offers.csv", Some(3), "offer_id", "duplicate");
}

#[test]
fn unknown_zone_when_zones_are_listed() {
    assert_issue(
        |d| {
            write(d, "zones.csv", "zone,delivery_capacity\nZ1,\nZ2,5\n");
            write(d, "customers.csv", "customer_id,zone,tier\nc1,Z1,standard\nc2,Z9,standard\n");
        },
        "customers.csv",
        Some(2),
        "zone",
        "zones.csv",
    );
}

#[test]
fn unknown_tier() {
    assert_issue(|d| write(d, "customers.csv", "customer_id,zone,tier\nc1,Z1,gold\n"), "customers.csv", Some(1), "tier", "[tiers]");
}

#[test]
fn unknown_offer_in_uptake() {
    assert_issue(|d| write(d, "uptake.csv", "customer_id,offer_id,p\nc1,o1,0.5\nc1,o7,0.5\n"), "uptake.csv", Some(2), "offer_id", "an offer_id of offers");
}

/// A repeated pair within a customer's rows, and one apart from them (the
/// loader's two ways of finding repeats); pairs of one offer for different
/// customers in turn are no repeats.
#[test]
fn duplicate_uptake_pair() {
    assert_issue(|d| write(d, "uptake.csv", "customer_id,offer_id,p\nc1,o1,0.5\nc1,o2,0.5\nc1,o1,0.4\nc2,o1,0.5\n"), "uptake.csv", Some(3), "offer_id", "duplicate");
    assert_issue(|d| write(d, "uptake.csv", "customer_id,offer_id,p\nc1,o1,0.5\nc2,o1,0.5\nc1,o2,0.5\nc2,o1,0.4\n"), "uptake.csv", Some(4), "offer_id", "duplicate");
    let (issues, _, text) = issues(|d| write(d, "uptake.csv", "customer_id,offer_id,p\nc1,o1,0.5\nc2,o1,0.5\nc1,o2,0.5\nc2,o1,0.4\n"));
    assert_eq!(issues.iter().filter(|i| i.expected.contains("duplicate")).count(), 1, "{text}");
    assert!(allot_scenarios::load_scenario(&scenario(|d| write(d, "uptake.csv", "customer_id,offer_id,p\nc1,o1,0.5\nc2,o1,0.5\nc1,o2,0.5\n")).1).is_ok());
}

#[test]
fn unknown_customer_in_uptake() {
    assert_issue(|d| write(d, "uptake.csv", "customer_id,offer_id,p\ncX,o1,0.5\n"), "uptake.csv", Some(1), "customer_id", "a customer_id of customers");
}

#[test]
fn unknown_sku_in_offer_items() {
    assert_issue(|d| write(d, "offer_items.csv", "offer_id,sku,qty\no1,A,1\no2,Q,1\n"), "offer_items.csv", Some(2), "sku", "inventory.csv");
}

#[test]
fn unknown_warehouse_in_lanes() {
    assert_issue(
        |d| write(d, "lanes.csv", "warehouse_id,zone,cost_per_unit,transit_days\nW1,Z1,1,1\nW7,Z1,1,1\n"),
        "lanes.csv",
        Some(2),
        "warehouse_id",
        "warehouse",
    );
}

#[test]
fn probability_outside_zero_one() {
    for bad in ["1.5", "0", "-0.2"] {
        assert_issue(
            |d| write(d, "uptake.csv", &format!("customer_id,offer_id,p\nc1,o1,0.5\nc2,o1,{bad}\n")),
            "uptake.csv",
            Some(2),
            "p",
            "(0, 1]",
        );
    }
}

#[test]
fn negative_quantity() {
    assert_issue(|d| write(d, "inventory.csv", "warehouse_id,sku,on_hand\nW1,A,-3\n"), "inventory.csv", Some(1), "on_hand", ">= 0");
    assert_issue(|d| write(d, "offer_items.csv", "offer_id,sku,qty\no1,A,-1\n"), "offer_items.csv", Some(1), "qty", ">= 0");
}

/// A value beyond what the solver can take (HiGHS refuses coefficients
/// over 1e15) is an input error naming its cell, not a failed solve.
#[test]
fn numbers_too_large_for_the_solver() {
    assert_issue(|d| write(d, "offer_items.csv", "offer_id,sku,qty\no1,A,1e16\n"), "offer_items.csv", Some(1), "qty", "<= 1e12");
    assert_issue(|d| write(d, "uptake.csv", "customer_id,offer_id,p,value\nc1,o1,0.5,1e300\n"), "uptake.csv", Some(1), "value", "between -1e12 and 1e12");
    assert_issue(|d| write(d, "offers.csv", "offer_id,margin\no1,-2e12\no2,4\n"), "offers.csv", Some(1), "margin", "between -1e12 and 1e12");
}

#[test]
fn unparsable_number() {
    assert_issue(|d| write(d, "offers.csv", "offer_id,margin\no1,ten\no2,4\n"), "offers.csv", Some(1), "margin", "a number");
    // That one issue alone: the offer is still known to the rows naming it
    // (left out, each of them was an issue of its own).
    let (issues, total, text) = issues(|d| write(d, "offers.csv", "offer_id,margin\no1,ten\no2,4\n"));
    assert_eq!((total, issues[0].column.as_deref()), (1, Some("margin")), "{text}");
}

#[test]
fn unparsable_boolean() {
    assert_issue(
        |d| write(d, "customers.csv", "customer_id,zone,tier,consent\nc1,Z1,standard,maybe\n"),
        "customers.csv",
        Some(1),
        "consent",
        "boolean",
    );
}

#[test]
fn unparsable_date() {
    assert_issue(
        |d| write(d, "inbound.csv", "warehouse_id,sku,qty,arrival_date\nW1,A,1,2026-13-01\n"),
        "inbound.csv",
        Some(1),
        "arrival_date",
        "YYYY-MM-DD",
    );
}

#[test]
fn end_date_before_start_date() {
    assert_issue(
        |d| write(d, "offers.csv", "offer_id,margin,start_date,end_date\no1,10,2026-12-05,2026-12-01\no2,4,,\n"),
        "offers.csv",
        Some(1),
        "end_date",
        "on or after",
    );
}

#[test]
fn empty_customers_file() {
    let (issues, _, text) = issues(|d| write(d, "customers.csv", "customer_id,zone,tier\n"));
    assert!(issues.iter().any(|i| i.file == "customers.csv" && i.expected.contains("at least one customer")), "{text}");
}

#[test]
fn missing_required_file() {
    let (issues, _, text) = issues(|d| fs::remove_file(d.join("lanes.csv")).unwrap());
    assert!(issues.iter().any(|i| i.file == "lanes.csv" && i.expected.contains("required file")), "{text}");
}

#[test]
fn every_problem_is_reported_at_once_and_capped() {
    let mut body = String::from("customer_id,offer_id,p\n");
    for i in 0..120 {
        body.push_str(&format!("c1,o1,{}\n", 2 + i));
    }
    let (issues, total, text) = issues(|d| {
        write(d, "uptake.csv", &body);
        write(d, "customers.csv", "customer_id,zone,tier,consent\nc1,Z1,standard,maybe\nc2,Z1,standard,true\nc3,Z1,standard,true\nc4,Z2,standard,true\n");
    });
    assert_eq!(total, 121, "{text}");
    assert_eq!(issues.len(), allot_scenarios::scenario::table::MAX_ISSUES);
    assert!(text.contains("121 problems") && text.contains("and 71 more"), "{text}");
}

#[test]
fn bad_scenario_toml_names_the_file_and_key() {
    let (_tmp, dir) = scenario(|d| write(d, "scenario.toml", "[horizon]\nstart = \"2026-12-01\"\ndays = 7\n\n[policy]\nbudjet = 5\n"));
    let e = load_scenario(&dir).unwrap_err().to_string();
    assert!(e.contains("scenario.toml") && e.contains("budjet") && e.contains("line 6"), "{e}");

    let (_tmp, dir) = scenario(|d| write(d, "scenario.toml", "[horizon]\nstart = \"Dec 1\"\ndays = 7\n"));
    let e = load_scenario(&dir).unwrap_err().to_string();
    assert!(e.contains("scenario.toml") && e.contains("start") && e.contains("YYYY-MM-DD"), "{e}");

    let (_tmp, dir) = scenario(|d| write(d, "scenario.toml", "[horizon]\nstart = \"+262143-12-25\"\ndays = 7\n"));
    let e = load_scenario(&dir).unwrap_err().to_string();
    assert!(e.contains("start") && e.contains("YYYY-MM-DD"), "{e}");

    // A horizon of 10^8 days overflowed the calendar (a panic), one of 10^6 ran out of memory.
    let (_tmp, dir) = scenario(|d| write(d, "scenario.toml", "[horizon]\nstart = \"2026-12-01\"\ndays = 100000000\n"));
    let e = load_scenario(&dir).unwrap_err().to_string();
    assert!(e.contains("scenario.toml") && e.contains("days: got 100000000, expected 1 to 3660"), "{e}");
    let (_tmp, dir) = scenario(|d| write(d, "scenario.toml", "[horizon]\nstart = \"2026-12-01\"\ndays = 7\n\n[forecast]\nhorizon = 100000000\n"));
    let e = load_scenario(&dir).unwrap_err().to_string();
    assert!(e.contains("scenario.toml") && e.contains("[forecast] horizon: got 100000000, expected a number of periods, 1 to 3660"), "{e}");
}

#[test]
fn parquet_tables_load_like_csv() {
    use polars::prelude::*;
    let (_tmp, dir) = scenario(|d| {
        let mut df = df!(
            "customer_id" => ["c1", "c2", "c3", "c4"],
            "offer_id" => ["o1", "o1", "o2", "o1"],
            "p" => [0.8, 0.6, 0.5, 0.9],
        )
        .unwrap();
        fs::remove_file(d.join("uptake.csv")).unwrap();
        ParquetWriter::new(fs::File::create(d.join("uptake.parquet")).unwrap()).finish(&mut df).unwrap();
    });
    let loaded = load_scenario(&dir).expect("parquet uptake loads");
    assert_eq!(loaded.problem.uptake.len(), 4);
    assert_eq!(loaded.problem.uptake[1].p, 0.6);
}

/// A CSV file whose layout breaks names the row: one field too many, a
/// quote that never closes, bytes that are not UTF-8 (the reader named no
/// row and advised an option of its own), and one field too few (the reader
/// filled it with a blank, so an optional column took its default).
#[test]
fn a_csv_row_that_breaks_the_layout_is_named() {
    let text = |d: &Path| fs::read_to_string(d.join("uptake.csv")).unwrap();
    let rows = |d: &Path| text(d).lines().count() - 1;
    let cases: [(&dyn Fn(&Path) -> String, &str); 3] = [
        (&|d| format!("{}c1,o1,0.5,extra\n", text(d)), "fields, as the header has (this row has 4)"),
        (&|d| format!("{}\"c1,o1,0.5\n", text(d)), "a closing quote"),
        // One field too few: the reader took it, the last cell blank.
        (&|d| format!("{}c1,o1\n", text(d)), "3 fields, as the header has (this row has 2)"),
    ];
    for (edit, expected) in cases {
        let mut row = 0;
        let (found, _, said) = issues(|d| {
            row = rows(d) + 1;
            let body = edit(d);
            write(d, "uptake.csv", &body);
        });
        assert!(found.iter().any(|i| i.file == "uptake.csv" && i.row == Some(row) && i.to_string().contains(expected)), "row {row}, {expected:?}: {said}");
    }
    // Bytes that are not UTF-8.
    let mut row = 0;
    let (found, _, said) = issues(|d| {
        row = rows(d) + 1;
        let mut bytes = fs::read(d.join("uptake.csv")).unwrap();
        bytes.extend_from_slice(b"c\xff1,o1,0.5\n");
        fs::write(d.join("uptake.csv"), bytes).unwrap();
    });
    assert!(found.iter().any(|i| i.file == "uptake.csv" && i.row == Some(row) && i.to_string().contains("UTF-8")), "row {row}: {said}");
}

/// A table given twice, as CSV and as Parquet, is an error naming both: the
/// CSV was read and the Parquet ignored without a word.
#[test]
fn a_table_in_both_formats_is_an_error() {
    use polars::prelude::*;
    let both = |d: &Path| {
        let mut df = df!("customer_id" => ["c1"], "zone" => ["Z1"], "tier" => ["standard"], "consent" => [false]).unwrap();
        ParquetWriter::new(fs::File::create(d.join("customers.parquet")).unwrap()).finish(&mut df).unwrap();
    };
    let (issues, _, text) = issues(both);
    assert_eq!(issues.len(), 1, "{text}");
    assert!(text.contains("customers.csv") && text.contains("customers.parquet, not both"), "{text}");
}

/// `uptake.csv` rewritten as `uptake.parquet` in row groups of (at most) two rows.
fn uptake_in_row_groups_of_two(dir: &Path, body: &str) {
    use polars::prelude::*;
    write(dir, "uptake.csv", body);
    let mut df = CsvReadOptions::default().with_has_header(true).try_into_reader_with_file_path(Some(dir.join("uptake.csv"))).unwrap().finish().unwrap();
    fs::remove_file(dir.join("uptake.csv")).unwrap();
    ParquetWriter::new(fs::File::create(dir.join("uptake.parquet")).unwrap()).with_row_group_size(Some(2)).finish(&mut df).unwrap();
    let groups = ParquetReader::new(fs::File::open(dir.join("uptake.parquet")).unwrap()).get_metadata().unwrap().row_groups.len();
    assert!(groups > 1, "{groups} row group(s): the test needs several");
}

/// Uptake in Parquet is read a row group at a time: a pair repeated across
/// groups is found (both within a customer's run of rows and for a customer
/// whose rows are apart), a bad cell names its row in the whole file, and a
/// missing column is one issue, not one per group.
#[test]
fn parquet_uptake_read_in_row_groups_is_checked_as_a_whole() {
    fn at(body: &'static str) -> impl FnOnce(&Path) {
        move |d| uptake_in_row_groups_of_two(d, body)
    }
    assert_issue(at("customer_id,offer_id,p\nc1,o2,0.5\nc1,o1,0.5\nc1,o1,0.4\nc2,o1,0.5\n"), "uptake.parquet", Some(3), "offer_id", "duplicate");
    assert_issue(at("customer_id,offer_id,p\nc1,o1,0.5\nc2,o1,0.5\nc1,o2,0.5\nc3,o1,0.5\nc2,o1,0.4\n"), "uptake.parquet", Some(5), "offer_id", "duplicate");
    assert_issue(at("customer_id,offer_id,p\nc1,o1,0.5\nc2,o1,0.5\nc3,o1,0.5\nc4,o1,1.5\nc4,o2,0.5\n"), "uptake.parquet", Some(4), "p", "(0, 1]");
    let (issues, _, text) = issues(at("customer_id,offer_id,q\nc1,o1,0.5\nc2,o1,0.5\nc3,o1,0.5\nc4,o1,0.5\nc4,o2,0.5\n"));
    assert_eq!(issues.iter().filter(|i| i.column.as_deref() == Some("p")).count(), 1, "{text}");
    let (_tmp, dir) = scenario(at("customer_id,offer_id,p,value\nc1,o1,0.8,\nc2,o1,0.6,7\nc3,o2,0.5,\nc4,o1,0.9,3\nc4,o2,0.2,\n"));
    let loaded = load_scenario(&dir).expect("uptake in row groups loads");
    let pairs: Vec<(u32, u32, f64)> = loaded.problem.uptake.iter().map(|u| (u.customer, u.offer, u.p)).collect();
    assert_eq!(pairs, [(0, 0, 0.8), (1, 0, 0.6), (2, 1, 0.5), (3, 0, 0.9), (3, 1, 0.2)]);
    assert_eq!(loaded.problem.uptake_value.as_deref(), Some(&[10.0, 7.0, 4.0, 3.0, 4.0][..]));
}

/// `customers.csv` of the golden scenario with one more column, `value` in every row.
fn with_customer_column(dir: &Path, column: &str, value: &str) {
    let text = fs::read_to_string(dir.join("customers.csv")).unwrap();
    let mut lines = text.lines();
    let mut out = format!("{},{column}\n", lines.next().unwrap());
    for line in lines {
        out.push_str(&format!("{line},{value}\n"));
    }
    write(dir, "customers.csv", &out);
}

/// Governance fails closed: a misspelt consent column is an error naming the
/// column it resembles, never "every customer consents".
#[test]
fn misspelt_consent_column_is_an_error() {
    assert_issue(|d| with_customer_column(d, "consnet", "false"), "customers.csv", None, "consnet", "did you mean `consent`");
}

/// A column that speaks of consent or suppression under another name is an
/// error, however far its name is from the known ones: `suppression` was
/// ignored with a note, and every customer served as not suppressed.
#[test]
fn a_governance_column_under_another_name_is_an_error() {
    // The last eight: the names customer systems give the same facts, once ignored.
    for name in ["suppression", "is_suppressed", "has_consent", "Opt-In", "opt_out", "opted_out", "unsubscribed", "do_not_contact", "no_marketing", "marketing_ok", "permission_to_contact", "gdpr_permission", "DNC"] {
        assert_issue(|d| with_customer_column(d, name, "true"), "customers.csv", None, name, "is never ignored");
    }
    // A word inside another word, or marketing alone, is no governance.
    for name in ["adopted_app", "marketing_channel"] {
        let (_tmp, dir) = scenario(|d| with_customer_column(d, name, "x"));
        let loaded = load_scenario(&dir).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(loaded.notes.iter().any(|n| n.contains(&format!("unknown column `{name}` ignored"))), "{name}: {:?}", loaded.notes);
    }
}

/// A file named like a table but none of them is an error: `rules.csv`
/// named `rule.csv` was read as absent and the plan lost every contact cap;
/// so is a file that speaks of governance (`opt_outs.csv` left those
/// customers eligible). Any other file is ignored with a note.
#[test]
fn a_misnamed_table_is_an_error_and_another_file_a_note() {
    // Names that differ from the scenario's own files on a case-blind file system too.
    for (file, words) in [("rule.csv", "did you mean `rules.csv`"), ("Customer.csv", "did you mean `customers.csv`"), ("lane.CSV", "did you mean `lanes.csv`"), ("Offers.parquet", "did you mean `offers.parquet`"), ("opt_outs.csv", "speaks of opt_out")] {
        let (issues, _, text) = issues(|d| write(d, file, "customer_id\nc1\n"));
        let issue = issues.iter().find(|i| i.file == file && i.row.is_none() && i.column.is_none()).unwrap_or_else(|| panic!("no issue for {file} in:\n{text}"));
        assert!(issue.to_string().contains(words), "{issue}");
    }
    let (_tmp, dir) = scenario(|d| {
        write(d, "prices.csv", "anything\n1\n");
        // Other tools' leftovers beside a table pass without a word.
        write(d, "._customers.csv", "");
        write(d, "~$offers.csv", "");
    });
    let loaded = load_scenario(&dir).unwrap();
    assert!(loaded.notes.iter().any(|n| n.contains("prices.csv: not a table of a scenario, ignored")), "{:?}", loaded.notes);
}

/// A column the header names twice is an error: the CSV reader kept the
/// first `suppressed` column and renamed the second away, so a second column
/// of `true`s was dropped with a note.
#[test]
fn a_column_named_twice_is_an_error() {
    let twice = |d: &Path| {
        with_customer_column(d, "suppressed", "false");
        with_customer_column(d, "suppressed", "true");
    };
    assert_issue(twice, "customers.csv", None, "suppressed", "more than once");
}

#[test]
fn empty_consent_cell_is_an_error() {
    assert_issue(|d| with_customer_column(d, "consent", ""), "customers.csv", Some(1), "consent", "a value");
}

/// A column unlike any known one is ignored, and the loader says so.
#[test]
fn unrelated_unknown_column_is_a_note() {
    let (_tmp, dir) = scenario(|d| with_customer_column(d, "loyalty_segment", "b"));
    let loaded = load_scenario(&dir).unwrap();
    assert!(loaded.notes.iter().any(|n| n.contains("customers.csv") && n.contains("`loyalty_segment` ignored")), "{:?}", loaded.notes);
}

#[test]
fn contact_date_outside_horizon_or_validity() {
    // The horizon is 2026-12-01..12-07; o1 is valid from 12-01 on.
    let offers = |contact: &str| format!("offer_id,margin,start_date,contact_date\no1,10,2026-12-03,{contact}\no2,4,,\n");
    assert_issue(|d| write(d, "offers.csv", &offers("2026-12-09")), "offers.csv", Some(1), "contact_date", "inside the horizon and the offer's validity");
    assert_issue(|d| write(d, "offers.csv", &offers("2026-12-02")), "offers.csv", Some(1), "contact_date", "2026-12-03 to 2026-12-07");
}

#[test]
fn negative_cost_per_contact_and_unparsable_pair_value() {
    assert_issue(|d| write(d, "offers.csv", "offer_id,margin,cost_per_contact\no1,10,-1\no2,4,\n"), "offers.csv", Some(1), "cost_per_contact", "a number >= 0");
    assert_issue(|d| write(d, "uptake.csv", "customer_id,offer_id,p,value\nc1,o1,0.8,lots\n"), "uptake.csv", Some(1), "value", "a number");
}

/// An edit that writes `file` with `header` and `body`.
fn table(file: &'static str, header: &str, body: &str) -> impl FnOnce(&Path) {
    let text = format!("{header}\n{body}");
    move |d: &Path| write(d, file, &text)
}

#[test]
fn rules_name_their_mistakes() {
    let rules = |body: &str| table("rules.csv", "rule_id,kind,measure,bound,penalty,channels,tags,offers,from,to", body);
    // A misspelt channel selects nothing: an error naming the rule, not an empty rule.
    assert_issue(rules("cap,max_total,contacts,5,,emial,,,,\n"), "rules.csv", Some(1), "channels", "rule cap: a channel of some offer");
    assert_issue(rules("cap,max_total,contacts,5,,,,o9,,\n"), "rules.csv", Some(1), "offers", "rule cap: an offer_id");
    assert_issue(rules("cap,max_total,contacts,-5,,,,,,\n"), "rules.csv", Some(1), "bound", "a number >= 0");
    assert_issue(rules("cap,max_per_week,contacts,5,,,,,,\n"), "rules.csv", Some(1), "kind", "max_total, min_total or max_per_customer");
    // A per-customer cap counts contacts and is always hard.
    assert_issue(rules("pc,max_per_customer,accepts,2,,,,,,\n"), "rules.csv", Some(1), "measure", "rule pc: contacts");
    assert_issue(rules("pc,max_per_customer,contacts,2,5,,,,,\n"), "rules.csv", Some(1), "penalty", "rule pc: an empty penalty");
    assert_issue(rules("cap,max_total,clicks,5,,,,,,\n"), "rules.csv", Some(1), "measure", "contacts, accepts");
    // Every name is right, but no offer's contact date falls in the window.
    assert_issue(rules("late,min_total,contacts,1,,,,o1,2027-01-01,2027-01-31\n"), "rules.csv", Some(1), "rule_id", "rule late: a selector that picks at least one offer");
    assert_issue(rules("cap,max_total,contacts,5,,,,,2026-12-05,2026-12-02\n"), "rules.csv", Some(1), "to", "on or after from 2026-12-05");
    // A `value` rule over per-pair values loads (tests/golden/value_rule solves one).
}

#[test]
fn conflicts_and_contact_history_name_their_mistakes() {
    let conflicts = |body: &str| table("conflicts.csv", "conflict_id,within_days,offers_a,channels_a,offers_b,to_b", body);
    assert_issue(conflicts("f,7,o1,,o9,\n"), "conflicts.csv", Some(1), "offers_b", "conflict f: an offer_id");
    assert_issue(conflicts("f,7,o1,emial,o2,\n"), "conflicts.csv", Some(1), "channels_a", "conflict f: a channel of some offer");
    assert_issue(conflicts("f,0,o1,,o2,\n"), "conflicts.csv", Some(1), "within_days", "at least 1 day");
    assert_issue(conflicts("f,seven,o1,,o2,\n"), "conflicts.csv", Some(1), "within_days", "a whole number");
    // Every name is right, but no offer's contact date is on or before 2026-11-01.
    assert_issue(conflicts("f,7,o1,,o2,2026-11-01\n"), "conflicts.csv", Some(1), "conflict_id", "conflict f: a selector b that picks at least one offer");
    assert_issue(conflicts("f,7,o1,,o2,\nf,3,o2,,o1,\n"), "conflicts.csv", Some(2), "conflict_id", "duplicate");
    let history = |body: &str| table("contact_history.csv", "customer_id,date,channel,tags,offer_id", body);
    assert_issue(history("c9,2026-11-20,email,,\n"), "contact_history.csv", Some(1), "customer_id", "a customer_id of customers");
    assert_issue(history("c1,2026-11-31,email,,\n"), "contact_history.csv", Some(1), "date", "date");
    assert_issue(history("c1,2026-11-20,,,\n"), "contact_history.csv", Some(1), "channel", "a value");
}

/// Time buckets (model version 2): `bucket_days = 0` is an error naming the key;
/// a dated `baseline_demand` is read per bucket (rows outside the horizon are
/// not this plan's demand) and an undated one is spread over the buckets by
/// their days; a date that does not parse names its row and column.
#[test]
fn time_buckets_and_dated_baseline() {
    let toml = |bucket_days: &str| format!("[horizon]\nstart = \"2026-12-01\"\ndays = 7\n\n[policy]\npromise_days = 2\n{bucket_days}");
    let (_tmp, dir) = scenario(|d| write(d, "scenario.toml", &toml("bucket_days = 0\n")));
    let e = load_scenario(&dir).unwrap_err().to_string();
    assert!(e.contains("scenario.toml") && e.contains("bucket_days") && e.contains(">= 1"), "{e}");

    // Undated: 7 units over buckets of 3, 3 and 1 days.
    let (_tmp, dir) = scenario(|d| {
        write(d, "scenario.toml", &toml("bucket_days = 3\n"));
        write(d, "baseline_demand.csv", "zone,sku,units\nZ1,A,7\n");
    });
    let p = load_scenario(&dir).unwrap().problem;
    let spread: Vec<(u32, f64)> = p.baseline.iter().map(|b| (b.bucket, b.units)).collect();
    assert_eq!(spread, [(0, 3.0), (1, 3.0), (2, 1.0)]);

    // Dated: per bucket, two days of bucket 1 summed, 11-30 and 12-08 outside.
    let dated = "zone,sku,units,date\nZ1,A,1,2026-12-01\nZ1,A,2,2026-12-03\nZ1,A,4,2026-12-07\nZ1,A,8,2026-11-30\nZ1,A,16,2026-12-08\n";
    let (_tmp, dir) = scenario(|d| {
        write(d, "scenario.toml", &toml("bucket_days = 3\n"));
        write(d, "baseline_demand.csv", dated);
    });
    let p = load_scenario(&dir).unwrap().problem;
    let per_bucket: Vec<(u32, f64)> = p.baseline.iter().map(|b| (b.bucket, b.units)).collect();
    assert_eq!(per_bucket, [(0, 3.0), (2, 4.0)]);

    assert_issue(
        |d| {
            write(d, "scenario.toml", &toml("bucket_days = 3\n"));
            write(d, "baseline_demand.csv", "zone,sku,units,date\nZ1,A,1,2026-12-01\nZ1,A,2,soon\n");
        },
        "baseline_demand.csv",
        Some(2),
        "date",
        "YYYY-MM-DD",
    );
}
