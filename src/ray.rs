//! `allot plan --solver ray`: the decomposition with its customers held by Ray
//! actors. This process stays the driver (multiplier update, network side,
//! repair LP: `allot_optimizer::decomposed::solve_with`, the same code as the
//! single-machine solver); the customers' side is a child process,
//! `python -m allot_ray.bridge`, that owns one long-lived actor per partition and
//! relays each request to all of them (protocol in `python/allot_ray/bridge.py`).

use std::io::{BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use allot_optimizer::decomposed::customers::{decode, encode, CustomerSide, MapReply, MapRequest};
use allot_optimizer::decomposed::{DecomposedError, DecomposedOptions};
use allot_optimizer::feasibility::{check_allocation, check_served};
use allot_optimizer::{Allocation, Candidates, Plan, Problem};
use anyhow::{Context, Result};

/// How to reach the Ray cluster and split the customers.
#[derive(Debug, Clone)]
pub struct RayOptions {
    /// Ray cluster address (`host:port`, or `auto`).
    pub address: String,
    /// Number of partitions, one actor each.
    pub partitions: usize,
    /// Python interpreter with `ray` and the `allot_ray` package installed.
    pub python: PathBuf,
    /// Where the partition files go; every node must be able to read it (a
    /// shared filesystem on a real cluster). A temporary directory when `None`.
    pub partitions_dir: Option<PathBuf>,
    /// Kernel threads per actor (CPUs Ray reserves for it): one actor per node
    /// with the node's cores beats one actor per core, whose calls the driver
    /// makes one by one (see ARCHITECTURE.md).
    pub actor_threads: usize,
    /// The decomposition's stopping rules.
    pub decomposed: DecomposedOptions,
}

/// Plans `problem` with its customers on Ray: the same plan format and
/// optimisation as the single-machine decomposed solver.
pub fn plan(problem: &Problem, opts: &RayOptions) -> Result<(Candidates, Allocation, Plan)> {
    let solver = format!("decomposed on ray ({} partitions)", opts.partitions);
    let temp;
    let dir = match &opts.partitions_dir {
        Some(dir) => dir.clone(),
        None => {
            temp = tempfile::Builder::new().prefix("allot-partitions-").tempdir().context("creating a directory for the partition files")?;
            temp.path().to_path_buf()
        }
    };
    let connect = |cands: &Candidates| -> Result<Box<dyn CustomerSide>, DecomposedError> {
        let t = std::time::Instant::now();
        let manifest = allot_scenarios::scenario::partitions::write_partitions(&dir, problem, cands, opts.partitions)
            .map_err(|e| DecomposedError::Workers(format!("writing the partition files: {e}")))?;
        tracing::info!(
            partitions = manifest.partitions,
            candidates = manifest.candidates,
            dir = %dir.display(),
            "partition files written in {:.2}s; starting the Ray actors",
            t.elapsed().as_secs_f64()
        );
        let t = std::time::Instant::now();
        let side = RayCustomers::start(opts, &dir, cands.len())?;
        tracing::info!(actors = side.partitions, "the Ray actors hold the customers (started and loaded in {:.2}s)", t.elapsed().as_secs_f64());
        Ok(Box::new(side))
    };
    let (cands, alloc, plan) = allot_optimizer::plan_with_side(problem, &opts.decomposed, &solver, connect)?;
    // A plan assembled from many workers is checked before it can be saved: the
    // same independent checker the agreement tests use.
    let mut violations = check_allocation(problem, &cands, &alloc, FEASIBILITY_TOLERANCE);
    violations.extend(check_served(problem, &cands, &plan, FEASIBILITY_TOLERANCE));
    anyhow::ensure!(violations.is_empty(), "the plan from Ray fails the feasibility checker, not saved:\n  {}", violations.iter().map(|v| format!("{}: {}", v.rule, v.detail)).collect::<Vec<_>>().join("\n  "));
    tracing::info!("feasibility checker: the plan from {} partitions respects every constraint", opts.partitions);
    Ok((cands, alloc, plan))
}

/// Absolute tolerance of the feasibility check (the solvers' own tolerance).
const FEASIBILITY_TOLERANCE: f64 = 1e-6;

/// The customers' side held by Ray actors, reached through the bridge process.
struct RayCustomers {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    partitions: usize,
}

fn workers_error(message: impl Into<String>) -> DecomposedError {
    DecomposedError::Workers(message.into())
}

impl RayCustomers {
    /// Starts the bridge and waits for every actor to load its partition; checks
    /// that together they hold all `candidates`.
    fn start(opts: &RayOptions, dir: &std::path::Path, candidates: usize) -> Result<Self, DecomposedError> {
        let mut child = Command::new(&opts.python)
            .args(["-m", "allot_ray.bridge", "--address", &opts.address, "--partitions"])
            .arg(opts.partitions.to_string())
            .arg("--partitions-dir")
            .arg(dir)
            .arg("--cpus-per-actor")
            .arg(opts.actor_threads.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| workers_error(format!("cannot start {} -m allot_ray.bridge: {e}", opts.python.display())))?;
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().ok_or_else(|| workers_error("the bridge has no stdout"))?);
        let mut side = RayCustomers { child, stdin, stdout, partitions: opts.partitions };
        let described = side.read_answer()?;
        let mut held = 0usize;
        for d in &described {
            let v: serde_json::Value = serde_json::from_slice(d).map_err(|e| workers_error(format!("a malformed actor description: {e}")))?;
            held += v["candidates"].as_u64().unwrap_or(0) as usize;
        }
        if held != candidates {
            return Err(workers_error(format!("the actors hold {held} candidates, the scenario has {candidates}")));
        }
        Ok(side)
    }

    fn read_answer(&mut self) -> Result<Vec<Vec<u8>>, DecomposedError> {
        let died = |this: &mut Self, e: std::io::Error| {
            let status = this.child.wait().map(|s| s.to_string()).unwrap_or_else(|_| "unknown status".into());
            workers_error(format!("the Ray bridge stopped answering ({e}); it exited with {status}"))
        };
        let mut status = [0u8; 1];
        if let Err(e) = self.stdout.read_exact(&mut status) {
            return Err(died(self, e));
        }
        let read_len = |this: &mut Self, bytes: usize| -> Result<usize, DecomposedError> {
            let mut buf = [0u8; 8];
            if let Err(e) = this.stdout.read_exact(&mut buf[..bytes]) {
                return Err(died(this, e));
            }
            Ok(u64::from_le_bytes(buf) as usize)
        };
        let read_bytes = |this: &mut Self, n: usize| -> Result<Vec<u8>, DecomposedError> {
            let mut data = vec![0u8; n];
            if let Err(e) = this.stdout.read_exact(&mut data) {
                return Err(died(this, e));
            }
            Ok(data)
        };
        match status[0] {
            b'O' => {
                let count = read_len(self, 4)?;
                if count != self.partitions {
                    return Err(workers_error(format!("{count} answers from {} partitions", self.partitions)));
                }
                (0..count)
                    .map(|_| {
                        let n = read_len(self, 8)?;
                        read_bytes(self, n)
                    })
                    .collect()
            }
            b'E' => {
                let n = read_len(self, 8)?;
                let message = read_bytes(self, n)?;
                Err(workers_error(String::from_utf8_lossy(&message).into_owned()))
            }
            other => Err(workers_error(format!("the Ray bridge sent status byte {other:#x}"))),
        }
    }
}

impl CustomerSide for RayCustomers {
    fn map(&mut self, request: &MapRequest) -> Result<Vec<MapReply>, DecomposedError> {
        let bytes = encode(request)?;
        let stdin = self.stdin.as_mut().ok_or_else(|| workers_error("the bridge's input is closed"))?;
        stdin
            .write_all(&(bytes.len() as u64).to_le_bytes())
            .and_then(|()| stdin.write_all(&bytes))
            .and_then(|()| stdin.flush())
            .map_err(|e| workers_error(format!("cannot write to the Ray bridge: {e}")))?;
        self.read_answer()?.iter().map(|reply| decode(reply)).collect()
    }
}

impl Drop for RayCustomers {
    /// Closing the bridge's input ends it, and it kills its actors; a bridge that
    /// does not exit within 30 s is killed.
    fn drop(&mut self) {
        drop(self.stdin.take());
        for _ in 0..300 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl allot_scenarios::PlanSolver for RayOptions {
    fn solve(&self, problem: &Problem) -> Result<(Candidates, Allocation, Plan), Box<dyn std::error::Error + Send + Sync>> {
        Ok(plan(problem, self)?)
    }

    fn replan_of(&self) -> Option<&str> {
        self.decomposed.warm_source()
    }
}
