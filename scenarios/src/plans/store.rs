//! The versioned plan store: an embedded, file-based store that needs nothing
//! started by hand.
//!
//! Layout of a store directory:
//!
//! ```text
//! plans/000001/          one immutable plan version: manifest.json, kpis.json,
//!                        eligibility / reservations / pick_priorities / bid_prices (.parquet),
//!                        demand_plan.parquet, shadow_prices.json, forecast/ (when forecast),
//!                        what serving needs: serving.json, customers.parquet,
//!                        and what a re-plan starts from: warm_start.json
//! plans/.staging-*/      a version being written (ignored; swept by the next
//!                        save once its writer is gone: see below)
//! store.lock             held while a version is published
//! ```
//!
//! Which version is active, and the history of activations and rollbacks, are
//! not files here: they live in the decision service's live-state database
//! (`allot-api`'s `live` module: `live.db` in this directory, or PostgreSQL),
//! which records each in one transaction; this module keeps only the
//! [`Activation`] record and the [`rollback_target`] rule.
//!
//! One writer at a time: publishing a version (claiming its id) runs under an
//! exclusive lock on `store.lock` (an OS file lock, released by the kernel if
//! the process dies), from any thread or process.
//! Writing a version's files happens before, outside the lock, in a staging
//! directory whose writer holds a lock on its `.writer.lock` for as long as it
//! writes; the sweep removes only staging directories whose lock it can take,
//! so it never deletes a live writer's files, however slow.
//!
//! Why it is crash-safe: a version is written completely into a staging
//! directory (every file fsynced), then renamed to its id in one atomic step and
//! the parent directory fsynced. A crash before the rename leaves only a staging
//! directory, which readers never look at; after the rename the version is
//! whole.
//!
//! The store saves and reads; it never solves. What goes into a version is
//! written by the planning pipeline ([`crate::plans::pipeline`]) into the staging
//! directory the store hands it. Every JSON file carries a `schema_version`
//! ([`crate::schema`]): versions saved by older builds stay readable.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use allot_optimizer::decomposed::{KeyedExposures, WarmStart};
use allot_optimizer::plan::Kpis;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::StoreError;
use crate::plans::output::KPIS_FILE;
use crate::files::{sync_dir, unique_suffix, write_versioned, Format};
use crate::schema;
use crate::plans::serving::{
    for_each_contact, for_each_customer, for_each_eligibility, ContactRecord, CustomerRecord, EligibilityRecord, ServingContext, CONTACT_HISTORY_STEM, CUSTOMERS_STEM,
    SERVING_FILE,
};

/// Environment variable naming the default store directory.
pub const STORE_ENV: &str = "ALLOT_STORE";
/// Default store directory, relative to the working directory.
pub const DEFAULT_STORE: &str = ".allot";
const MANIFEST_FILE: &str = "manifest.json";
const STAGING_PREFIX: &str = ".staging-";
const LOCK_FILE: &str = "store.lock";
/// Held by the writer of a staging directory while it writes.
const WRITER_LOCK: &str = ".writer.lock";
/// Table encoding of the files inside a plan version.
pub const VERSION_FORMAT: Format = Format::Parquet;
/// Most digits a plan version id has (ids are `000001`, `000002`, ...).
const MAX_ID_DIGITS: usize = 20;

/// Whether `id` has the form of a plan version id: 1 to 20 ASCII digits, as
/// [`PlanStore::save`] makes them. The one check of the id format, used by
/// the store, the CLI and the HTTP routes, so no other text (`..`, a path)
/// ever becomes a directory name below the store.
pub fn check_plan_id(id: &str) -> Result<(), StoreError> {
    if (1..=MAX_ID_DIGITS).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(StoreError::UnknownPlan(format!("{id:?}")))
    }
}

pub use crate::plans::output::FAULT_ENV;

/// File of a plan version holding the prices its re-plans start from.
pub const WARM_START_FILE: &str = "warm_start.json";

/// What a plan version records about itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Manifest {
    /// The version id (`000001`, ...).
    pub id: String,
    /// When it was saved.
    pub created_at: DateTime<Utc>,
    /// The scenario directory it was planned from.
    pub scenario: String,
    /// SHA-256 of the scenario's files.
    pub scenario_hash: String,
    /// For a what-if variant: its `scenario.toml` chain, root's first variant
    /// first (base + perturbations); empty for a plain scenario.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lineage: Vec<String>,
    /// For a warm re-plan: the version whose prices (and open offers) it
    /// started from. Absent when the solver that ran took no warm start
    /// (`auto` choosing the exact solver), even for a re-plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warm_from: Option<String>,
    /// For a re-plan of an earlier version of the same scenario (`allot plan
    /// --warm-from`, a planning job of the service): that version, whether or
    /// not its warm start was used. Why apart from `warm_from`: the service
    /// re-plans a served version once, and knows it has by this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replan_of: Option<String>,
    /// Solver name.
    pub solver: String,
    /// Solve status.
    pub status: String,
    /// Objective value.
    pub objective: f64,
    /// Relative gap to the proven bound; infinite when none was proven (a
    /// MIP stopped before HiGHS had a bound), which JSON writes as `null`.
    #[serde(deserialize_with = "allot_optimizer::plan::infinite_if_null")]
    pub gap: f64,
    /// Seconds loading the scenario.
    pub load_seconds: f64,
    /// Seconds building the model.
    pub build_seconds: f64,
    /// Seconds in the solver.
    pub solve_seconds: f64,
    /// The allot version that made it.
    pub allot_version: String,
    /// Table encoding of the output files.
    pub format: Format,
}

/// One activation or rollback of a plan version (a row of the live-state
/// database's history; a line of the old `activations.jsonl`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Activation {
    /// The plan made active.
    pub plan_id: String,
    /// When.
    pub at: DateTime<Utc>,
    /// `activate` or `rollback`.
    pub action: String,
}

/// A plan store rooted at a directory.
#[derive(Debug, Clone)]
pub struct PlanStore {
    root: PathBuf,
}

/// What a new plan version records about itself besides its files.
#[derive(Debug, Clone)]
pub struct VersionMeta<'a> {
    /// KPIs, with load time filled in.
    pub kpis: &'a Kpis,
    /// Scenario directory.
    pub scenario: &'a Path,
    /// Scenario content hash.
    pub scenario_hash: &'a str,
    /// For a what-if variant: the `scenario.toml` chain from its root (else empty).
    pub lineage: &'a [String],
    /// The version a warm re-plan started from (the solve's own report).
    pub warm_from: Option<&'a str>,
    /// The version this run re-plans.
    pub replan_of: Option<&'a str>,
}

impl PlanStore {
    /// Opens (creating if needed) a store at `root`.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let root = root.into();
        let plans = root.join("plans");
        std::fs::create_dir_all(&plans).map_err(|e| StoreError::io("cannot create store", &plans, e))?;
        Ok(PlanStore { root })
    }

    /// The store directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn plans_dir(&self) -> PathBuf {
        self.root.join("plans")
    }

    /// Directory of one plan version.
    pub fn plan_dir(&self, id: &str) -> PathBuf {
        self.plans_dir().join(id)
    }

    /// Saves a new plan version atomically and returns its manifest: `write`
    /// fills the staging directory it is given (tables in [`VERSION_FORMAT`]),
    /// then the manifest is added and the whole directory published under the
    /// next free id.
    pub fn save(&self, meta: &VersionMeta, write: impl FnOnce(&Path) -> Result<(), StoreError>) -> Result<Manifest, StoreError> {
        if !meta.kpis.objective.is_finite() {
            return Err(StoreError::NotFinite(meta.kpis.objective));
        }
        let plans = self.plans_dir();
        let staging = plans.join(format!("{STAGING_PREFIX}{}", unique_suffix()));
        // The directory and its writer lock appear together under the store lock,
        // so the sweep never sees one without the other while its writer lives.
        let writer = {
            let _store = self.lock()?;
            self.sweep_staging();
            std::fs::create_dir(&staging).map_err(|e| StoreError::io("cannot create", &staging, e))?;
            lock_file(&staging.join(WRITER_LOCK), Wait::Block)
        };
        let result = writer.and_then(|writer| {
            write(&staging)?;
            let _store = self.lock()?;
            std::fs::remove_file(staging.join(WRITER_LOCK)).map_err(|e| StoreError::io("cannot remove", &staging.join(WRITER_LOCK), e))?;
            drop(writer);
            self.publish(&staging, meta)
        });
        if result.is_err() {
            let _ = std::fs::remove_dir_all(&staging);
        }
        result
    }

    /// The store's exclusive lock, held by the caller until the guard drops.
    fn lock(&self) -> Result<File, StoreError> {
        lock_file(&self.root.join(LOCK_FILE), Wait::Block)
    }

    fn publish(&self, staging: &Path, meta: &VersionMeta) -> Result<Manifest, StoreError> {
        let k = meta.kpis;
        let mut manifest = Manifest {
            id: String::new(),
            created_at: Utc::now(),
            scenario: meta.scenario.display().to_string(),
            scenario_hash: meta.scenario_hash.to_string(),
            lineage: meta.lineage.to_vec(),
            warm_from: meta.warm_from.map(str::to_string),
            replan_of: meta.replan_of.map(str::to_string),
            solver: k.solver.clone(),
            status: k.status.clone(),
            objective: k.objective,
            gap: k.gap,
            load_seconds: k.load_seconds,
            build_seconds: k.build_seconds,
            solve_seconds: k.solve_seconds,
            allot_version: env!("CARGO_PKG_VERSION").to_string(),
            format: VERSION_FORMAT,
        };
        // Claim the next free id by renaming; a concurrent writer that wins an id
        // makes our rename fail, and we take the next one.
        let plans = self.plans_dir();
        let mut next = self.ids()?.last().map_or(1, |id| id.parse::<u64>().unwrap_or(0) + 1);
        loop {
            manifest.id = format!("{next:06}");
            write_versioned(&staging.join(MANIFEST_FILE), &manifest)?;
            sync_dir(staging)?;
            let target = plans.join(&manifest.id);
            if target.exists() {
                next += 1;
                continue;
            }
            match std::fs::rename(staging, &target) {
                Ok(()) => break,
                Err(e) if target.exists() => {
                    let _ = e;
                    next += 1;
                }
                Err(e) => return Err(StoreError::io("cannot publish plan version", &target, e)),
            }
        }
        sync_dir(&plans)?;
        Ok(manifest)
    }

    /// Removes staging directories left by writers that are gone; the caller
    /// holds the store lock. A live writer holds its directory's writer lock
    /// (the kernel releases a dead one's), and removes the lock file only under
    /// the store lock just before publishing: a directory whose lock can be
    /// taken, or that has no lock file, belongs to no one.
    fn sweep_staging(&self) {
        let Ok(entries) = std::fs::read_dir(self.plans_dir()) else { return };
        let stale: Vec<PathBuf> = entries
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(STAGING_PREFIX))
            .map(|e| e.path())
            .filter(|dir| {
                let lock = dir.join(WRITER_LOCK);
                !lock.exists() || lock_file(&lock, Wait::Try).is_ok()
            })
            .collect();
        for dir in stale {
            let _ = std::fs::remove_dir_all(dir);
        }
    }

    /// Ids of all complete plan versions, oldest first.
    pub fn ids(&self) -> Result<Vec<String>, StoreError> {
        let plans = self.plans_dir();
        let mut ids: Vec<String> = std::fs::read_dir(&plans)
            .map_err(|e| StoreError::io("cannot read", &plans, e))?
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| check_plan_id(n).is_ok())
            .collect();
        ids.sort();
        Ok(ids)
    }

    /// Manifests of all plan versions, oldest first.
    pub fn list(&self) -> Result<Vec<Manifest>, StoreError> {
        self.ids()?.iter().map(|id| self.manifest(id)).collect()
    }

    /// The manifest of one version.
    pub fn manifest(&self, id: &str) -> Result<Manifest, StoreError> {
        check_plan_id(id)?;
        read_json(&self.plan_dir(id).join(MANIFEST_FILE), || StoreError::UnknownPlan(id.to_string()))
    }

    /// A table of a version by stem, in whichever format it was written.
    fn table_path(&self, id: &str, stem: &str) -> Result<PathBuf, StoreError> {
        check_plan_id(id)?;
        let dir = self.plan_dir(id);
        [Format::Parquet, Format::Csv]
            .iter()
            .map(|f| dir.join(format!("{stem}.{}", f.extension())))
            .find(|p| p.is_file())
            .ok_or_else(|| StoreError::Corrupt { path: dir.join(stem), reason: format!("plan version {id} has no {stem} table") })
    }

    /// Visits every row of a version's eligibility table (for serving).
    pub fn for_each_eligibility(&self, id: &str, visit: impl FnMut(EligibilityRecord<'_>)) -> Result<(), StoreError> {
        for_each_eligibility(&self.table_path(id, "eligibility")?, visit)
    }

    /// Visits every row of a version's customer table (for serving).
    pub fn for_each_customer(&self, id: &str, visit: impl FnMut(CustomerRecord<'_>)) -> Result<(), StoreError> {
        for_each_customer(&self.table_path(id, CUSTOMERS_STEM)?, visit)
    }

    /// Visits every row of a version's contact history (versions with contact policies).
    pub fn for_each_contact(&self, id: &str, visit: impl FnMut(ContactRecord<'_>)) -> Result<(), StoreError> {
        for_each_contact(&self.table_path(id, CONTACT_HISTORY_STEM)?, visit)
    }

    /// The plan-wide serving snapshot of a version. Versions saved before the
    /// decision service existed have none: the error says to re-plan.
    pub fn serving(&self, id: &str) -> Result<ServingContext, StoreError> {
        self.manifest(id)?;
        let path = self.plan_dir(id).join(SERVING_FILE);
        read_json(&path, || StoreError::Corrupt { path: path.clone(), reason: format!("plan version {id} has no serving snapshot (saved by an older allot); plan the scenario again") })
    }

    /// What a re-plan of one version's scenario starts from (`allot plan
    /// --warm-from`): its prices and, from its eligibility table, its
    /// exposures. Versions saved before warm re-plans have none: the error
    /// says so.
    pub fn warm_start(&self, id: &str) -> Result<WarmStart, StoreError> {
        self.manifest(id)?;
        let path = self.plan_dir(id).join(WARM_START_FILE);
        let warm: WarmStart = read_json(&path, || StoreError::Corrupt { path: path.clone(), reason: format!("plan version {id} has no warm start (saved by an older allot); plan it once without --warm-from") })?;
        let mut exposures = KeyedExposures::default();
        self.for_each_eligibility(id, |row| exposures.push(row.customer_id, row.offer_id, row.x))?;
        Ok(WarmStart { source: Some(id.to_string()), ..warm }.with_exposures(exposures))
    }

    /// The KPIs of one version.
    pub fn kpis(&self, id: &str) -> Result<Kpis, StoreError> {
        check_plan_id(id)?;
        read_json(&self.plan_dir(id).join(KPIS_FILE), || StoreError::UnknownPlan(id.to_string()))
    }
}

/// The version a rollback re-activates, from an activation history oldest
/// first, as `(action, version)`: the history replays as a stack (an
/// activation pushes, a rollback pops), so successive rollbacks walk back
/// through earlier plans. The live-state database applies it to its history,
/// embedded or shared (`allot serve --database`).
pub fn rollback_target<'a>(history: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<&'a str, StoreError> {
    let mut stack: Vec<&str> = Vec::new();
    for (action, version) in history {
        if action == "rollback" {
            stack.pop();
        } else {
            stack.push(version);
        }
    }
    match stack.as_slice() {
        [] => Err(StoreError::NothingToRollBack("no plan is active")),
        [_] => Err(StoreError::NothingToRollBack("the active plan is the first one activated")),
        [.., previous, _] => Ok(previous),
    }
}

/// Whether to wait for a lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wait {
    Block,
    Try,
}

/// Opens (creating) `path` and takes an exclusive OS lock on it; the lock lasts
/// as long as the returned file is open. `Wait::Try` fails when another holds it.
fn lock_file(path: &Path, wait: Wait) -> Result<File, StoreError> {
    let file = OpenOptions::new().create(true).truncate(false).write(true).open(path).map_err(|e| StoreError::io("cannot open lock", path, e))?;
    match wait {
        Wait::Block => file.lock().map_err(|e| StoreError::io("cannot lock", path, e))?,
        Wait::Try => file.try_lock().map_err(|e| StoreError::io("cannot lock", path, std::io::Error::other(e.to_string())))?,
    }
    Ok(file)
}

/// Reads a JSON artefact of any supported schema version (see [`crate::schema`]).
fn read_json<T: for<'de> Deserialize<'de>>(path: &Path, missing: impl FnOnce() -> StoreError) -> Result<T, StoreError> {
    Ok(schema::read(path, missing)?.1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Protects the rollback rule both histories share: successive rollbacks
    /// walk back (not back and forth between the last two plans).
    #[test]
    fn rollbacks_walk_back_through_the_history() {
        let h = |steps: &[(&'static str, &'static str)]| rollback_target(steps.iter().copied()).map(str::to_string);
        let mut steps = vec![("activate", "1"), ("activate", "2"), ("activate", "3")];
        assert_eq!(h(&steps).unwrap(), "2");
        steps.push(("rollback", "2"));
        assert_eq!(h(&steps).unwrap(), "1", "a second rollback goes to the plan before, not back to 3");
        steps.push(("rollback", "1"));
        assert!(matches!(h(&steps), Err(StoreError::NothingToRollBack(_))));
        assert!(matches!(h(&[]), Err(StoreError::NothingToRollBack(_))));
    }
}
