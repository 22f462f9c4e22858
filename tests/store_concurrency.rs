//! One writer at a time on the plan store: concurrent saves and activations
//! from threads and from two processes leave every version whole and the
//! activation history (in the store's live-state database) exact: every
//! activation once, each writer's in its own order, none of a version not yet
//! whole; the staging sweep never removes a live writer's directory, however
//! old it looks.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{mpsc, Arc, Barrier};
use std::time::{Duration, SystemTime};

use allot_scenarios::plans::store::Activation;
use allot_scenarios::{PlanStore, VersionMeta};

mod support;

/// A copy of the version-1 fixture store (two saved versions).
fn store() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("store");
    support::copy_tree(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/store-v1"), &root);
    (tmp, root)
}

/// Saves a version whose only file is `marker` holding `text`.
fn save(store: &PlanStore, text: &str, during: impl FnOnce(&Path)) -> String {
    let kpis = store.kpis("000001").unwrap();
    let meta = VersionMeta { kpis: &kpis, scenario: Path::new("/nowhere"), scenario_hash: "0", lineage: &[], warm_from: None, replan_of: None };
    let manifest = store
        .save(&meta, |dir| {
            during(dir);
            std::fs::write(dir.join("marker"), text).map_err(|e| allot_scenarios::StoreError::io("write", dir, e))
        })
        .unwrap();
    manifest.id
}

/// A plan whose objective is not a number is refused before anything is
/// written: the store keeps its versions readable (`plans list` reads
/// every manifest's objective as a number).
#[test]
fn a_plan_with_an_objective_that_is_not_finite_is_not_saved() {
    let (_tmp, root) = store();
    let store = PlanStore::open(&root).unwrap();
    let before = store.list().unwrap().len();
    let mut kpis = store.kpis("000001").unwrap();
    for objective in [f64::INFINITY, f64::NAN] {
        kpis.objective = objective;
        let meta = VersionMeta { kpis: &kpis, scenario: Path::new("/nowhere"), scenario_hash: "0", lineage: &[], warm_from: None, replan_of: None };
        let refused = store.save(&meta, |_| panic!("nothing is written for a plan that is refused"));
        assert!(matches!(refused, Err(allot_scenarios::StoreError::NotFinite(_))), "{refused:?}");
    }
    assert_eq!(store.list().unwrap().len(), before);
    // A plan with no proven gap (a MIP stopped before HiGHS had a bound) is
    // saved, and its version stays readable: JSON writes the gap as null.
    kpis.objective = 1.0;
    kpis.gap = f64::INFINITY;
    let meta = VersionMeta { kpis: &kpis, scenario: Path::new("/nowhere"), scenario_hash: "0", lineage: &[], warm_from: None, replan_of: None };
    let saved = store.save(&meta, |_| Ok(())).unwrap();
    let listed = store.list().unwrap();
    assert_eq!((listed.len(), listed.last().map(|m| (m.id.clone(), m.gap))), (before + 1, Some((saved.id, f64::INFINITY))));
    // So do its KPIs, written as the run writes kpis.json.
    kpis.bound = f64::INFINITY;
    let back: allot_optimizer::plan::Kpis = serde_json::from_str(&serde_json::to_string(&kpis).unwrap()).unwrap();
    assert!(back.gap.is_infinite() && back.bound.is_infinite(), "{back:?}");
}

/// The activation history; and the active plan.
fn history_and_active(root: &Path) -> (Vec<Activation>, Option<String>) {
    let live = support::live(root);
    (live.activations().unwrap(), live.active_plan().unwrap().map(|(_, id)| id))
}

#[test]
fn concurrent_saves_and_activations_from_threads_keep_the_store_whole() {
    let (_tmp, root) = store();
    let (before, _) = history_and_active(&root);
    let threads = 8;
    let rounds = 8;
    let barrier = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let (root, barrier) = (root.clone(), barrier.clone());
            std::thread::spawn(move || {
                // Each thread its own connection: activations serialize in the database.
                let (store, live) = (PlanStore::open(&root).unwrap(), support::live(&root));
                barrier.wait();
                (0..rounds)
                    .map(|r| {
                        let text = format!("thread {t} round {r}");
                        let id = save(&store, &text, |_| {});
                        assert_eq!(live.activate(&store, &id).unwrap().plan_id, id);
                        (id, text)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    // Meanwhile: every recorded activation names a version that is whole.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let checker = {
        let (root, stop, at_start) = (root.clone(), stop.clone(), before.len());
        std::thread::spawn(move || {
            let (store, live) = (PlanStore::open(&root).unwrap(), support::live(&root));
            let mut checks = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let history = live.activations().unwrap();
                for a in &history {
                    store.manifest(&a.plan_id).unwrap_or_else(|e| panic!("activation of {} recorded before the version was whole: {e}", a.plan_id));
                }
                assert!(history.len() >= at_start, "the history only grows");
                checks += 1;
            }
            checks
        })
    };
    let saved: Vec<Vec<(String, String)>> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(checker.join().unwrap() > 0);

    let all: Vec<&(String, String)> = saved.iter().flatten().collect();
    let mut ids: Vec<&String> = all.iter().map(|(id, _)| id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), threads * rounds, "every save got its own id");
    for (id, text) in &all {
        let dir = root.join("plans").join(id);
        assert_eq!(std::fs::read_to_string(dir.join("marker")).unwrap(), *text, "version {id} holds its own writer's files");
        assert!(dir.join("manifest.json").is_file());
        assert!(!dir.join(".writer.lock").exists(), "the writer lock is not published");
    }
    let leftovers: Vec<_> = std::fs::read_dir(root.join("plans")).unwrap().flatten().filter(|e| e.file_name().to_string_lossy().starts_with('.')).collect();
    assert!(leftovers.is_empty(), "no staging directory left: {leftovers:?}");
    let (history, active) = history_and_active(&root);
    assert_eq!(history[..before.len()], before[..], "the history before is untouched");
    let added: Vec<&str> = history[before.len()..].iter().map(|a| a.plan_id.as_str()).collect();
    assert_eq!(added.len(), threads * rounds, "every activation is in the history, once");
    for thread in &saved {
        let own: Vec<&str> = added.iter().copied().filter(|id| thread.iter().any(|(t, _)| t == id)).collect();
        assert_eq!(own, thread.iter().map(|(id, _)| id.as_str()).collect::<Vec<_>>(), "a thread's activations are recorded in its order");
    }
    assert_eq!(active.as_deref(), Some(history.last().unwrap().plan_id.as_str()), "the active plan is the newest activation");
}

#[test]
fn activations_from_two_processes_are_serialized() {
    let (_tmp, root) = store();
    let (before, _) = history_and_active(&root);
    let per_process = 12;
    let script = |id: &str| format!("for i in $(seq {per_process}); do \"$0\" plans activate {id} --store \"$1\" >/dev/null || exit 1; done");
    let children: Vec<_> = ["000001", "000002"]
        .iter()
        .map(|id| Command::new("sh").arg("-c").arg(script(id)).arg(env!("CARGO_BIN_EXE_allot")).arg(&root).env_remove("ALLOT_DATABASE_URL").spawn().unwrap())
        .collect();
    for mut child in children {
        assert!(child.wait().unwrap().success(), "every activation succeeded");
    }
    let (history, active) = history_and_active(&root);
    assert_eq!(history.len(), before.len() + 2 * per_process);
    for id in ["000001", "000002"] {
        let count = |h: &[Activation]| h.iter().filter(|a| a.plan_id == id).count();
        assert_eq!(count(&history) - count(&before), per_process, "each of {id}'s activations recorded once");
    }
    assert!(history.windows(2).all(|w| w[0].at <= w[1].at), "recorded in one order");
    assert_eq!(active.as_deref(), Some(history.last().unwrap().plan_id.as_str()));
}

/// A slow writer whose staging directory looks an hour old keeps it while
/// another save sweeps: only a writer that is gone loses its directory.
#[test]
fn the_sweep_never_removes_a_live_writers_directory() {
    let (_tmp, root) = store();
    let (go, wait) = mpsc::channel::<()>();
    let (done, finished) = mpsc::channel::<()>();
    let slow_root = root.clone();
    let slow = std::thread::spawn(move || {
        let store = PlanStore::open(&slow_root).unwrap();
        save(&store, "slow", |dir| {
            let an_hour_ago = SystemTime::now() - Duration::from_secs(3600);
            std::fs::File::open(dir).unwrap().set_modified(an_hour_ago).unwrap();
            go.send(()).unwrap();
            finished.recv().unwrap();
        })
    });
    wait.recv().unwrap();
    let store = PlanStore::open(&root).unwrap();
    let fast = save(&store, "fast", |_| {});
    done.send(()).unwrap();
    let slow = slow.join().unwrap();
    assert_eq!(std::fs::read_to_string(root.join("plans").join(&slow).join("marker")).unwrap(), "slow");
    assert_ne!(slow, fast);

    // A writer that is gone: its directory (no live lock) is swept by the next save.
    let dead = root.join("plans").join(".staging-dead");
    std::fs::create_dir(&dead).unwrap();
    std::fs::write(dead.join(".writer.lock"), "").unwrap();
    save(&store, "after", |_| {});
    assert!(!dead.exists(), "a dead writer's staging directory is swept");
}

/// Protects "an activation of an unknown or unreadable version records
/// nothing": an absent version, and one whose manifest no longer reads, are
/// refused and the history is unchanged; so is a rollback to such a version.
#[test]
fn an_unknown_or_unreadable_version_is_never_recorded() {
    let (_tmp, root) = store();
    let (store, live) = (PlanStore::open(&root).unwrap(), support::live(&root));
    let before = live.activations().unwrap();
    assert!(matches!(live.activate(&store, "000009"), Err(allot_api::ActivationError::Store(allot_scenarios::StoreError::UnknownPlan(_)))));
    assert!(live.activate(&store, "../000001").is_err(), "not an id");
    std::fs::write(root.join("plans/000001/manifest.json"), "{\"id\": \"000001\", \"created_at\":").unwrap();
    let err = live.activate(&store, "000001").unwrap_err().to_string();
    assert!(err.contains("manifest.json"), "{err}");
    // The fixture's history is 000001 then 000002: a rollback would go to the unreadable 000001.
    assert!(live.rollback(&store).unwrap_err().to_string().contains("manifest.json"));
    assert_eq!(live.activations().unwrap(), before, "nothing recorded");
    assert_eq!(live.active_plan().unwrap().map(|(_, id)| id).as_deref(), Some("000002"));
}
