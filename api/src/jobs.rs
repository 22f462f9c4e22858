//! Planning jobs started over HTTP (`POST /v1/plans`): a scenario is planned in
//! the background and saved as a new version, optionally activated.
//!
//! Why a background thread and a queue of one: planning a large scenario takes
//! minutes and all cores, so it never runs on a request path, and two solves at
//! once would only slow each other (and the service) down. Jobs run one after
//! another in submission order. Job records are kept in the live-state
//! database ([`crate::live::LiveDb`]) at each change, so the list survives a
//! restart; a job queued or running when the service stopped is shown failed.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use allot_optimizer::decomposed::DecomposedOptions;
use allot_optimizer::exact::ExactOptions;
use allot_optimizer::SolverChoice;
use chrono::{DateTime, Utc};

use crate::live::LiveDb;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Which solver a job uses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum JobSolver {
    /// Exact below a measured size, decomposed above it (as `allot plan`).
    #[default]
    Auto,
    /// good_lp + HiGHS on the full model.
    Exact,
    /// Lagrangian decomposition with a certified gap.
    Decomposed,
}

impl JobSolver {
    fn choice(self) -> SolverChoice {
        match self {
            JobSolver::Auto => SolverChoice::Auto(ExactOptions::default(), DecomposedOptions::default()),
            JobSolver::Exact => SolverChoice::Exact(ExactOptions::default()),
            JobSolver::Decomposed => SolverChoice::Decomposed(DecomposedOptions::default()),
        }
    }
}

/// Where a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    /// Waiting for the job before it.
    Queued,
    /// Loading, solving or saving.
    Running,
    /// Saved (and activated, if asked).
    Succeeded,
    /// Stopped; `error` says why.
    Failed,
}

/// One planning job, as `GET /v1/jobs/{id}` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PlanJob {
    /// Job id (`job-1`, `job-2`, ... per process).
    pub job_id: String,
    /// The scenario directory.
    #[schema(value_type = String)]
    pub scenario: PathBuf,
    /// The solver asked for.
    pub solver: JobSolver,
    /// Whether the new version is activated and served when saved.
    pub activate: bool,
    /// Where the job is.
    pub status: JobStatus,
    /// When it was submitted.
    pub submitted_at: DateTime<Utc>,
    /// When it started running.
    pub started_at: Option<DateTime<Utc>>,
    /// When it succeeded or failed.
    pub finished_at: Option<DateTime<Utc>>,
    /// The saved plan version.
    pub plan_id: Option<String>,
    /// Why it failed (for bad input: the file, row and column).
    pub error: Option<String>,
}

/// Most job records kept: beyond it the oldest finished ones are deleted, so
/// the list (and `GET /v1/plans`) stays small however many jobs ran.
pub const MAX_JOBS: usize = 200;

/// A job's number (`job-7`: 7); ids are never reused, pruned or not.
fn job_number(job: &PlanJob) -> u64 {
    job.job_id.trim_start_matches("job-").parse().unwrap_or(u64::MAX)
}

/// What a job does once its turn comes: plan, save, maybe activate; returns the
/// saved version's id.
pub type JobWork = Box<dyn FnOnce(&SolverChoice) -> Result<String, String> + Send>;

/// The job table and the queue of work waiting for the runner thread.
#[derive(Default)]
pub struct PlanJobs {
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    /// Where records are kept (none: memory only).
    db: Option<Arc<LiveDb>>,
    jobs: Mutex<Vec<PlanJob>>,
    queue: Mutex<VecDeque<(String, JobWork)>>,
    ready: Condvar,
}

impl std::fmt::Debug for PlanJobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlanJobs").field("jobs", &self.shared.jobs().len()).finish()
    }
}

impl Shared {
    fn jobs(&self) -> MutexGuard<'_, Vec<PlanJob>> {
        self.jobs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Changes a job's record (a job pruned meanwhile is left alone).
    fn update(&self, job_id: &str, f: impl FnOnce(&mut PlanJob)) {
        let job = {
            let mut jobs = self.jobs();
            let Some(job) = jobs.iter_mut().find(|j| j.job_id == job_id) else { return };
            f(job);
            job.clone()
        };
        self.save(&job);
    }

    /// Deletes the oldest finished jobs beyond [`MAX_JOBS`], in memory and in
    /// the database (queued and running ones are never deleted).
    fn prune(&self) {
        let gone: Vec<String> = {
            let mut jobs = self.jobs();
            let mut excess = jobs.len().saturating_sub(MAX_JOBS);
            let mut gone = Vec::new();
            jobs.retain(|j| {
                let finished = matches!(j.status, JobStatus::Succeeded | JobStatus::Failed);
                if excess > 0 && finished {
                    excess -= 1;
                    gone.push(j.job_id.clone());
                    false
                } else {
                    true
                }
            });
            gone
        };
        let Some(db) = &self.db else { return };
        if let Err(e) = db.delete_jobs(&gone) {
            tracing::warn!(error = %e, "cannot delete {} old job records", gone.len());
        }
    }

    /// Keeps a job's record; a database that refuses is logged, the job goes on.
    fn save(&self, job: &PlanJob) {
        let Some(db) = &self.db else { return };
        let saved = serde_json::to_string(job).map_err(|e| e.to_string()).and_then(|body| db.save_job(&job.job_id, &body).map_err(|e| e.to_string()));
        if let Err(e) = saved {
            tracing::warn!(job = %job.job_id, error = %e, "cannot keep the job record");
        }
    }

    fn run(&self) {
        loop {
            let (job_id, work) = {
                let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
                loop {
                    if let Some(next) = queue.pop_front() {
                        break next;
                    }
                    queue = self.ready.wait(queue).unwrap_or_else(|e| e.into_inner());
                }
            };
            self.update(&job_id, |j| {
                j.status = JobStatus::Running;
                j.started_at = Some(Utc::now());
            });
            let Some(solver) = self.jobs().iter().find(|j| j.job_id == job_id).map(|j| j.solver.choice()) else { continue };
            // A panic in the solver fails the job, not the service.
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(&solver))).unwrap_or_else(|_| Err("the planner panicked".to_string()));
            self.update(&job_id, |j| {
                j.finished_at = Some(Utc::now());
                match result {
                    Ok(id) => {
                        j.status = JobStatus::Succeeded;
                        j.plan_id = Some(id);
                    }
                    Err(e) => {
                        j.status = JobStatus::Failed;
                        j.error = Some(e);
                    }
                }
            });
            self.prune();
        }
    }
}

impl PlanJobs {
    /// The job table (with the records kept in `db`, if any) and its runner
    /// thread. A kept job that was queued or running did not finish: it is
    /// recorded failed.
    pub fn start(db: Option<Arc<LiveDb>>) -> std::io::Result<Self> {
        let mut kept = Vec::new();
        for body in db.as_ref().map(|db| db.jobs()).transpose()?.unwrap_or_default() {
            let job: PlanJob = serde_json::from_str(&body).map_err(|e| std::io::Error::other(format!("a malformed row in allot_jobs: {e}")))?;
            kept.push(job);
        }
        kept.sort_by_key(job_number);
        let jobs = PlanJobs { shared: Arc::new(Shared { db, jobs: Mutex::new(kept.clone()), ..Shared::default() }) };
        for job in &kept {
            if matches!(job.status, JobStatus::Queued | JobStatus::Running) {
                jobs.shared.update(&job.job_id, |j| {
                    j.status = JobStatus::Failed;
                    j.finished_at = Some(Utc::now());
                    j.error = Some("the service stopped before the job finished".to_string());
                });
            }
        }
        jobs.shared.prune();
        let shared = jobs.shared.clone();
        std::thread::Builder::new().name("allot-plan-jobs".to_string()).spawn(move || shared.run())?;
        Ok(jobs)
    }

    /// Queues a job; returns its record.
    pub fn submit(&self, scenario: PathBuf, solver: JobSolver, activate: bool, work: JobWork) -> PlanJob {
        let mut jobs = self.shared.jobs();
        let job = PlanJob {
            job_id: format!("job-{}", jobs.last().map_or(0, job_number).saturating_add(1)),
            scenario,
            solver,
            activate,
            status: JobStatus::Queued,
            submitted_at: Utc::now(),
            started_at: None,
            finished_at: None,
            plan_id: None,
            error: None,
        };
        jobs.push(job.clone());
        drop(jobs);
        self.shared.save(&job);
        self.shared.prune();
        self.shared.queue.lock().unwrap_or_else(|e| e.into_inner()).push_back((job.job_id.clone(), work));
        self.shared.ready.notify_one();
        job
    }

    /// One job by id.
    pub fn get(&self, job_id: &str) -> Option<PlanJob> {
        self.shared.jobs().iter().find(|j| j.job_id == job_id).cloned()
    }

    /// Every job, oldest first.
    pub fn list(&self) -> Vec<PlanJob> {
        self.shared.jobs().clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wait_all_finished(jobs: &PlanJobs) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while jobs.list().iter().any(|j| matches!(j.status, JobStatus::Queued | JobStatus::Running)) {
            assert!(std::time::Instant::now() < deadline, "jobs did not finish");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    #[test]
    fn the_job_list_keeps_the_newest_jobs_and_never_reuses_an_id() {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(LiveDb::open_file(dir.path()).unwrap());
        let jobs = PlanJobs::start(Some(db.clone())).unwrap();
        let total = MAX_JOBS + 15;
        for i in 0..total {
            let work: JobWork = Box::new(move |_| if i % 2 == 0 { Ok(format!("{i:06}")) } else { Err("bad input".into()) });
            jobs.submit(PathBuf::from("s"), JobSolver::Auto, false, work);
        }
        wait_all_finished(&jobs);
        let ids = |list: Vec<PlanJob>| list.into_iter().map(|j| job_number(&j)).collect::<Vec<_>>();
        let newest: Vec<u64> = (16..=total as u64).collect();
        assert_eq!(ids(jobs.list()), newest, "the oldest finished jobs went");
        assert_eq!(db.jobs().unwrap().len(), MAX_JOBS, "and their records");
        assert!(jobs.get("job-1").is_none() && jobs.get(&format!("job-{total}")).is_some());
        drop(jobs);
        // After a restart the numbering goes on from the newest kept.
        let jobs = PlanJobs::start(Some(db)).unwrap();
        let next = jobs.submit(PathBuf::from("s"), JobSolver::Auto, false, Box::new(|_| Ok("000001".into())));
        assert_eq!(next.job_id, format!("job-{}", total + 1));
        wait_all_finished(&jobs);
        assert_eq!(jobs.list().len(), MAX_JOBS);
    }
}
