//! `customer_features.csv` (or `.parquet`): optional customer attributes for
//! the uptake model, `customer_id` plus any columns.
//!
//! - A column is **numeric** when more than half of its values are numbers;
//!   then every cell must be a number (a blank or a typo is an issue naming
//!   the row and column, not a silent level of its own). Otherwise it is
//!   **categorical**: each distinct text is a level and a blank cell is the
//!   level `(blank)`. Codes meant as levels (store numbers, postcodes) need a
//!   letter to be read as levels (`s12`).
//! - Every customer of `customers` needs exactly one row, and every row names a
//!   customer of `customers`: a customer without attributes would be scored on
//!   values it does not have (an error naming the customer is safer than a fill).
//! - The protected attribute `group` is never a feature: a column of that name
//!   (any case) is an error, as governance inputs fail closed. Fairness is a
//!   constraint of the plan; a model that learned group would carry any
//!   historical bias into it.
//!
//! How the columns become features (standardised, one-hot, rare levels pooled)
//! is [`allot_forecasting::attributes`].

use std::collections::HashMap;
use std::path::Path;

use allot_forecasting::attributes::{Attribute, Values};

use crate::error::LoadError;
use crate::scenario::table::{speaks_of_governance, Issue, Issues, Table, NUMBER, TEXT};

/// The table's file stem.
pub const STEM: &str = "customer_features";
/// The protected attribute of `customers`, never a feature.
pub const PROTECTED: &str = "group";
/// The level of a blank cell of a categorical column.
pub const BLANK: &str = "(blank)";

/// Customer attributes, one value per customer of `customers` (in its order).
#[derive(Debug, Clone, PartialEq)]
pub struct CustomerAttributes {
    /// The file they came from.
    pub file: String,
    /// The attribute columns, in file order.
    pub columns: Vec<Attribute>,
}

impl CustomerAttributes {
    /// One line: the columns and their kinds.
    pub fn summary(&self) -> String {
        let kinds: Vec<String> = self
            .columns
            .iter()
            .map(|c| match &c.values {
                Values::Numeric(_) => format!("{} (numeric)", c.name),
                Values::Categorical(_) => format!("{} (categorical)", c.name),
            })
            .collect();
        format!("{}: {} attribute column{}: {}", self.file, kinds.len(), if kinds.len() == 1 { "" } else { "s" }, kinds.join(", "))
    }
}

/// Reads `customer_features` from `dir` when it exists. `customers` are the
/// ids of `customers`, in order; problems go to `issues`.
pub fn read_customer_features(dir: &Path, customers: &[String], issues: &mut Issues) -> Result<Option<CustomerAttributes>, LoadError> {
    let Some(t) = Table::read(dir, STEM, &[])? else { return Ok(None) };
    let index: HashMap<&str, usize> = customers.iter().enumerate().map(|(i, c)| (c.as_str(), i)).collect();
    let ids = t.parse_with("customer_id", true, issues, "a customer_id of customers", |s| index.get(s).copied());
    // The file row of each customer.
    let mut row_of: Vec<Option<usize>> = vec![None; customers.len()];
    for (i, c) in ids.iter().enumerate() {
        let Some(c) = *c else { continue };
        if row_of[c].is_some() {
            issues.push(t.issue(i, "customer_id", Some(&customers[c]), "a customer_id not listed before (duplicate)"));
        } else {
            row_of[c] = Some(i);
        }
    }
    for (c, row) in row_of.iter().enumerate() {
        if row.is_none() {
            issues.push(Issue {
                file: t.file.clone(),
                row: None,
                column: Some("customer_id".into()),
                value: Some(customers[c].clone()),
                expected: "a row for every customer of customers (this customer has none)".into(),
            });
        }
    }
    let mut columns = Vec::new();
    for name in t.column_names().into_iter().filter(|n| n != "customer_id") {
        if name.trim().eq_ignore_ascii_case(PROTECTED) {
            let expected = format!("no `{PROTECTED}` column: the protected attribute is never an uptake feature (fairness is a constraint of the plan)");
            issues.push(Issue { file: t.file.clone(), row: None, column: Some(name), value: None, expected });
            continue;
        }
        if let Some(word) = speaks_of_governance(&name) {
            let expected = format!("no column that speaks of {word}: consent and suppression are read from customers.csv, never learned from as features");
            issues.push(Issue { file: t.file.clone(), row: None, column: Some(name), value: None, expected });
            continue;
        }
        // Judged on the whole column first; the issues of the kind it is not are dropped.
        let text = t.parse(&name, false, &mut Issues::default(), TEXT);
        let numbers = t.parse(&name, false, &mut Issues::default(), NUMBER);
        let present = text.iter().flatten().count();
        let numeric = numbers.iter().flatten().count();
        let values = if 2 * numeric > present {
            for i in (0..t.len()).filter(|&i| numbers[i].is_none()) {
                issues.push(t.issue(i, &name, text[i].as_deref(), "a number (most of this column's values are numbers, so every cell needs one)"));
            }
            Values::Numeric(row_of.iter().map(|r| r.and_then(|i| numbers[i]).unwrap_or(0.0)).collect())
        } else if present > 0 {
            Values::Categorical(row_of.iter().map(|r| r.and_then(|i| text[i].clone()).unwrap_or_else(|| BLANK.to_string())).collect())
        } else {
            issues.push(Issue { file: t.file.clone(), row: None, column: Some(name), value: None, expected: "some values (the column is empty)".into() });
            continue;
        };
        columns.push(Attribute { name, values });
    }
    if columns.is_empty() && t.column_names().iter().all(|n| n == "customer_id") {
        issues.file(&t.file, "at least one attribute column besides customer_id");
    }
    Ok(Some(CustomerAttributes { file: t.file.clone(), columns }))
}
