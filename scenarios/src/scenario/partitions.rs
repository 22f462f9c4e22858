//! The candidates of a scenario split by customer hash into Parquet files, one
//! pair per partition, for remote workers that each load one partition and keep
//! it in memory across the iterations of a distributed solve.
//!
//! Layout of a partition directory:
//! * `partitions.json`: the partition count and what every partition shares (offer
//!   margins, zone and fairness-slot counts), with the totals to check against;
//! * `part-NNNN.customers.parquet`: one row per customer (`customer` global index,
//!   `zone`, `slot`, `weight`, `cap`, `candidates` count), ascending by customer;
//! * `part-NNNN.candidates.parquet`: one row per candidate (`offer`, `p`), in the
//!   customers' order;
//! * with contact policies (model version 2), `part-NNNN.policy.parquet`: one
//!   row per customer row of a `max_per_customer` rule or conflict (`customer`
//!   local index, `kind` 0 rule or 1 conflict, `index` into the scenario's
//!   rules or conflicts, `rhs`, `members` count), in the customers' order, and
//!   `part-NNNN.policy_members.parquet`: each row's members (`member`, the
//!   candidate's offset from its customer's first), in the rows' order.
//!
//! The hash is FNV-1a of the customer's id, so a customer's partition does not
//! depend on the order of the scenario's rows.

use std::fs::File;
use std::path::{Path, PathBuf};

use allot_optimizer::contact_policy::{CustomerRows, PolicyRow};
use allot_optimizer::decomposed::customers::OwnedPartition;
use allot_optimizer::{Candidates, Problem};
use polars::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::StoreError;
use crate::files::{sync_dir, write_atomic, write_versioned};
use crate::schema;

/// The manifest of a partition directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartitionManifest {
    /// Number of partitions.
    pub partitions: usize,
    /// Customers over all partitions.
    pub customers: usize,
    /// Candidates over all partitions.
    pub candidates: usize,
    /// Margin of each offer.
    pub margin: Vec<f64>,
    /// Cost per contact of each offer (absent in manifests written before model version 2: all 0).
    #[serde(default)]
    pub contact_cost: Vec<f64>,
    /// Number of zones.
    pub zones: usize,
    /// Fairness slots per offer.
    pub slots: usize,
}

const MANIFEST: &str = "partitions.json";

/// The partition of a customer id among `n`: [`customer_hash`] modulo `n`.
pub fn partition_of(customer_id: &str, n: usize) -> usize {
    (customer_hash(customer_id) % n.max(1) as u64) as usize
}

/// FNV-1a (64 bits) of a customer id. Why this hash: it is fixed by its
/// definition, so files and tables keyed by it (partitions, the audit's
/// postings) read the same on every machine and in every later build.
pub fn customer_hash(customer_id: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in customer_id.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

fn customers_path(dir: &Path, i: usize) -> PathBuf {
    dir.join(format!("part-{i:04}.customers.parquet"))
}

fn candidates_path(dir: &Path, i: usize) -> PathBuf {
    dir.join(format!("part-{i:04}.candidates.parquet"))
}

fn policy_path(dir: &Path, i: usize) -> PathBuf {
    dir.join(format!("part-{i:04}.policy.parquet"))
}

fn policy_members_path(dir: &Path, i: usize) -> PathBuf {
    dir.join(format!("part-{i:04}.policy_members.parquet"))
}

/// Splits `problem`'s candidates into `n` partitions by customer hash and writes
/// them into `dir` (created if needed), every file atomically, the manifest last.
pub fn write_partitions(dir: &Path, problem: &Problem, cands: &Candidates, n: usize) -> Result<PartitionManifest, StoreError> {
    let n = n.max(1);
    std::fs::create_dir_all(dir).map_err(|e| StoreError::io("cannot create", dir, e))?;
    let ids = &problem.customers.id;
    let parts = allot_optimizer::decomposed::partitions(problem, cands, n, |c| partition_of(&ids[c], n));
    let table_error = |path: &Path| {
        let path = path.to_path_buf();
        move |e: PolarsError| StoreError::Table { path: path.clone(), reason: e.to_string() }
    };
    for (i, part) in parts.iter().enumerate() {
        let counts: Vec<u32> = part.customer_start.windows(2).map(|w| w[1] - w[0]).collect();
        let path = customers_path(dir, i);
        let mut customers = DataFrame::new(
            part.customers.len(),
            vec![
                Column::new("customer".into(), &part.customers),
                Column::new("zone".into(), &part.zone),
                Column::new("slot".into(), &part.slot),
                Column::new("weight".into(), &part.weight),
                Column::new("cap".into(), &part.cap),
                Column::new("candidates".into(), counts),
            ],
        )
        .map_err(table_error(&path))?;
        write_parquet(&path, &mut customers)?;
        let path = candidates_path(dir, i);
        let mut columns = vec![Column::new("offer".into(), &part.offer), Column::new("p".into(), &part.p)];
        if let Some(values) = &part.accept_value {
            columns.push(Column::new("value".into(), values));
        }
        let mut candidates = DataFrame::new(part.offer.len(), columns).map_err(table_error(&path))?;
        write_parquet(&path, &mut candidates)?;
        if problem.has_contact_policies() {
            write_policy(dir, i, &part.policy, &table_error)?;
        }
    }
    let first = parts.first().cloned().unwrap_or_default();
    let manifest = PartitionManifest {
        partitions: n,
        customers: problem.customers.len(),
        candidates: cands.len(),
        margin: first.margin,
        contact_cost: first.contact_cost,
        zones: first.zones,
        slots: first.slots,
    };
    write_versioned(&dir.join(MANIFEST), &manifest)?;
    sync_dir(dir)?;
    Ok(manifest)
}

/// Writes a partition's contact-policy rows (see the module docs).
fn write_policy<F: Fn(PolarsError) -> StoreError>(dir: &Path, i: usize, policy: &CustomerRows, table_error: &impl Fn(&Path) -> F) -> Result<(), StoreError> {
    let (mut customer, mut kind, mut index, mut rhs, mut count, mut members) = (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for c in 0..policy.customers() {
        for row in policy.of_customer(c) {
            customer.push(c as u32);
            let (k, at) = match policy.kind[row] {
                PolicyRow::Rule(at) => (0u32, at),
                PolicyRow::Conflict(at) => (1u32, at),
            };
            kind.push(k);
            index.push(at);
            rhs.push(policy.rhs[row]);
            count.push(policy.members(row).len() as u32);
            members.extend_from_slice(policy.members(row));
        }
    }
    let path = policy_path(dir, i);
    let mut rows = DataFrame::new(
        customer.len(),
        vec![
            Column::new("customer".into(), customer),
            Column::new("kind".into(), kind),
            Column::new("index".into(), index),
            Column::new("rhs".into(), rhs),
            Column::new("members".into(), count),
        ],
    )
    .map_err(table_error(&path))?;
    write_parquet(&path, &mut rows)?;
    let path = policy_members_path(dir, i);
    let mut members = DataFrame::new(members.len(), vec![Column::new("member".into(), members)]).map_err(table_error(&path))?;
    write_parquet(&path, &mut members)
}

fn write_parquet(path: &Path, df: &mut DataFrame) -> Result<(), StoreError> {
    write_atomic(path, |file| {
        ParquetWriter::new(file).finish(df).map(|_| ()).map_err(|e| StoreError::Table { path: path.to_path_buf(), reason: e.to_string() })
    })
}

/// Reads the manifest of a partition directory.
pub fn read_manifest(dir: &Path) -> Result<PartitionManifest, StoreError> {
    let path = dir.join(MANIFEST);
    let text = std::fs::read_to_string(&path).map_err(|e| StoreError::io("cannot read", &path, e))?;
    Ok(schema::from_str(&text, &path)?.1)
}

/// Reads partition `i` of the directory, checking it against the manifest.
pub fn read_partition(dir: &Path, i: usize) -> Result<OwnedPartition, StoreError> {
    let manifest = read_manifest(dir)?;
    if i >= manifest.partitions {
        return Err(StoreError::Corrupt {
            path: dir.join(MANIFEST),
            reason: format!("partition {i} asked for, but there are {}", manifest.partitions),
        });
    }
    let path = customers_path(dir, i);
    let customers = read_parquet(&path)?;
    let corrupt = |path: &Path, reason: String| StoreError::Corrupt { path: path.to_path_buf(), reason };
    let counts = u32s(&customers, &path, "candidates")?;
    let mut customer_start = Vec::with_capacity(counts.len() + 1);
    customer_start.push(0u32);
    for c in &counts {
        customer_start.push(customer_start.last().copied().unwrap_or(0) + c);
    }
    let part = OwnedPartition {
        customers: u32s(&customers, &path, "customer")?,
        zone: u32s(&customers, &path, "zone")?,
        slot: u32s(&customers, &path, "slot")?,
        weight: f64s(&customers, &path, "weight")?,
        cap: u32s(&customers, &path, "cap")?,
        customer_start,
        offer: Vec::new(),
        p: Vec::new(),
        accept_value: None,
        contact_cost: if manifest.contact_cost.is_empty() { vec![0.0; manifest.margin.len()] } else { manifest.contact_cost },
        margin: manifest.margin,
        zones: manifest.zones,
        slots: manifest.slots,
        policy: CustomerRows::default(),
    };
    let path = candidates_path(dir, i);
    let candidates = read_parquet(&path)?;
    let accept_value = if candidates.column("value").is_ok() { Some(f64s(&candidates, &path, "value")?) } else { None };
    let part = OwnedPartition { offer: u32s(&candidates, &path, "offer")?, p: f64s(&candidates, &path, "p")?, accept_value, ..part };
    if part.contact_cost.len() != part.margin.len() {
        let reason = format!("{} contact costs for {} offers", part.contact_cost.len(), part.margin.len());
        return Err(corrupt(&dir.join(MANIFEST), reason));
    }
    let expected = *part.customer_start.last().unwrap_or(&0) as usize;
    if part.offer.len() != expected {
        return Err(corrupt(&path, format!("{} candidates, but the customers file counts {expected}", part.offer.len())));
    }
    if let Some(row) = part.offer.iter().position(|&o| o as usize >= part.margin.len()) {
        return Err(corrupt(&path, format!("row {}: column offer is {}, but there are {} offers", row + 1, part.offer[row], part.margin.len())));
    }
    if let Some(row) = part.zone.iter().position(|&z| z as usize >= part.zones) {
        return Err(corrupt(&customers_path(dir, i), format!("row {}: column zone is {}, but there are {} zones", row + 1, part.zone[row], part.zones)));
    }
    if let Some(row) = part.slot.iter().position(|&s| s as usize >= part.slots) {
        return Err(corrupt(&customers_path(dir, i), format!("row {}: column slot is {}, but there are {} slots", row + 1, part.slot[row], part.slots)));
    }
    let policy = if policy_path(dir, i).exists() { read_policy(dir, i, &part.customer_start)? } else { CustomerRows::default() };
    Ok(OwnedPartition { policy, ..part })
}

/// Reads a partition's contact-policy rows, checked against its customers'
/// candidate counts (`customer_start`).
fn read_policy(dir: &Path, i: usize, customer_start: &[u32]) -> Result<CustomerRows, StoreError> {
    let path = policy_path(dir, i);
    let rows = read_parquet(&path)?;
    let corrupt = |path: &Path, reason: String| StoreError::Corrupt { path: path.to_path_buf(), reason };
    let customer = u32s(&rows, &path, "customer")?;
    let kind = u32s(&rows, &path, "kind")?;
    let index = u32s(&rows, &path, "index")?;
    let count = u32s(&rows, &path, "members")?;
    let rhs = f64s(&rows, &path, "rhs")?;
    if let Some(row) = rhs.iter().position(|v| !(v.is_finite() && *v >= 0.0)) {
        return Err(corrupt(&path, format!("row {}: column rhs is {}, expected a number >= 0", row + 1, rhs[row])));
    }
    let members_path = policy_members_path(dir, i);
    let members = u32s(&read_parquet(&members_path)?, &members_path, "member")?;
    let expected: usize = count.iter().map(|&n| n as usize).sum();
    if members.len() != expected {
        return Err(corrupt(&members_path, format!("{} members, but the policy file counts {expected}", members.len())));
    }
    let customers = customer_start.len() - 1;
    let mut out = CustomerRows::default();
    let (mut row, mut at) = (0usize, 0usize);
    for c in 0..customers {
        let first = row;
        while row < customer.len() && customer[row] as usize == c {
            row += 1;
        }
        let candidates = customer_start[c + 1] - customer_start[c];
        let mut mine = Vec::with_capacity(row - first);
        for r in first..row {
            let these = &members[at..at + count[r] as usize];
            at += these.len();
            if let Some(&m) = these.iter().find(|&&m| m >= candidates) {
                return Err(corrupt(&members_path, format!("policy row {}: member {m}, but customer {c} has {candidates} candidates", r + 1)));
            }
            let kind = match kind[r] {
                0 => PolicyRow::Rule(index[r]),
                1 => PolicyRow::Conflict(index[r]),
                other => return Err(corrupt(&path, format!("row {}: column kind is {other}, expected 0 (rule) or 1 (conflict)", r + 1))),
            };
            mine.push((kind, rhs[r], these));
        }
        out.push_customer(mine);
    }
    if row != customer.len() {
        return Err(corrupt(&path, format!("row {}: column customer is {}, out of order or beyond the {customers} customers", row + 1, customer[row])));
    }
    Ok(out)
}

/// A column of `u32` without gaps, or an error naming the file, row and column.
fn u32s(df: &DataFrame, path: &Path, name: &str) -> Result<Vec<u32>, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt { path: path.to_path_buf(), reason };
    let column = df.column(name).map_err(|e| corrupt(e.to_string()))?;
    let values = column.u32().map_err(|e| corrupt(format!("column {name}: {e}")))?;
    values.iter().enumerate().map(|(row, v)| v.ok_or_else(|| corrupt(format!("row {}: column {name} is empty", row + 1)))).collect()
}

/// A column of `f64` without gaps, or an error naming the file, row and column.
fn f64s(df: &DataFrame, path: &Path, name: &str) -> Result<Vec<f64>, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt { path: path.to_path_buf(), reason };
    let column = df.column(name).map_err(|e| corrupt(e.to_string()))?;
    let values = column.f64().map_err(|e| corrupt(format!("column {name}: {e}")))?;
    values.iter().enumerate().map(|(row, v)| v.ok_or_else(|| corrupt(format!("row {}: column {name} is empty", row + 1)))).collect()
}

fn read_parquet(path: &Path) -> Result<DataFrame, StoreError> {
    let file = File::open(path).map_err(|e| StoreError::io("cannot open", path, e))?;
    ParquetReader::new(file).finish().map_err(|e| StoreError::Table { path: path.to_path_buf(), reason: e.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Contact-policy rows survive the files exactly, and a member beyond its
    /// customer's candidates is refused naming the file.
    #[test]
    fn policy_rows_round_trip_and_are_checked() {
        let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/golden/contact_policies");
        let problem = crate::load_scenario(&golden).expect("golden scenario loads").problem;
        let cands = Candidates::build(&problem, &allot_optimizer::Network::new(&problem));
        let dir = tempfile::tempdir().unwrap();
        write_partitions(dir.path(), &problem, &cands, 2).unwrap();
        let ids = &problem.customers.id;
        let parts = allot_optimizer::decomposed::partitions(&problem, &cands, 2, |c| partition_of(&ids[c], 2));
        assert!(parts.iter().map(|p| p.policy.len()).sum::<usize>() >= 6, "the golden case has policy rows");
        for (i, part) in parts.iter().enumerate() {
            assert_eq!(read_partition(dir.path(), i).unwrap().policy, part.policy, "partition {i}");
        }
        let i = (0..2).find(|&i| !parts[i].policy.is_empty()).unwrap();
        let path = policy_members_path(dir.path(), i);
        let members = read_parquet(&path).unwrap();
        let mut bad = DataFrame::new(members.height(), vec![Column::new("member".into(), vec![99u32; members.height()])]).unwrap();
        write_parquet(&path, &mut bad).unwrap();
        let err = read_partition(dir.path(), i).unwrap_err().to_string();
        assert!(err.contains("policy_members") && err.contains("member 99"), "{err}");
    }

    #[test]
    fn partition_of_is_stable_and_spreads() {
        assert_eq!(partition_of("C000001", 7), partition_of("C000001", 7));
        let mut counts = [0usize; 4];
        for i in 0..4000 {
            counts[partition_of(&format!("C{i:06}"), 4)] += 1;
        }
        assert!(counts.iter().all(|&c| (800..1200).contains(&c)), "{counts:?}");
    }
}
