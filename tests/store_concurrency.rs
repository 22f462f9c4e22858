//! One writer at a time on the plan store: concurrent saves and activations
//! from threads and from two processes leave every version whole, the history
//! with every activation, and `active.json` equal to its last line; the
//! staging sweep never removes a live writer's directory, however old it looks.

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
    let meta = VersionMeta { kpis: &kpis, scenario: Path::new("/nowhere"), scenario_hash: "0", lineage: &[] };
    let manifest = store
        .save(&meta, |dir| {
            during(dir);
            std::fs::write(dir.join("marker"), text).map_err(|e| allot_scenarios::StoreError::io("write", dir, e))
        })
        .unwrap();
    manifest.id
}

/// The history's lines, each parsed; and the active plan.
fn history_and_active(root: &Path) -> (Vec<Activation>, Option<String>) {
    let store = PlanStore::open(root).unwrap();
    (store.history().unwrap(), store.active().unwrap())
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
                let store = PlanStore::open(&root).unwrap();
                barrier.wait();
                (0..rounds)
                    .map(|r| {
                        let text = format!("thread {t} round {r}");
                        let id = save(&store, &text, |_| {});
                        store.activate(&id).unwrap();
                        (id, text)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    // Whoever holds `store.lock` sees a consistent store: active.json is the
    // history's last line (activation appends, then replaces active.json, under it).
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let checker = {
        let (root, stop) = (root.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut checks = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let lock = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(root.join("store.lock")).unwrap();
                lock.lock().unwrap();
                let (history, active) = history_and_active(&root);
                assert_eq!(active.as_deref(), history.last().map(|a| a.plan_id.as_str()), "under the store lock, active.json is the last activation");
                drop(lock);
                checks += 1;
            }
            checks
        })
    };
    let saved: Vec<(String, String)> = handles.into_iter().flat_map(|h| h.join().unwrap()).collect();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(checker.join().unwrap() > 0);

    let mut ids: Vec<&String> = saved.iter().map(|(id, _)| id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), threads * rounds, "every save got its own id");
    for (id, text) in &saved {
        let dir = root.join("plans").join(id);
        assert_eq!(std::fs::read_to_string(dir.join("marker")).unwrap(), *text, "version {id} holds its own writer's files");
        assert!(dir.join("manifest.json").is_file());
        assert!(!dir.join(".writer.lock").exists(), "the writer lock is not published");
    }
    let leftovers: Vec<_> = std::fs::read_dir(root.join("plans")).unwrap().flatten().filter(|e| e.file_name().to_string_lossy().starts_with('.')).collect();
    assert!(leftovers.is_empty(), "no staging directory left: {leftovers:?}");
    let (history, active) = history_and_active(&root);
    assert_eq!(history.len(), before.len() + threads * rounds, "every activation is in the history");
    assert_eq!(active.as_deref(), Some(history.last().unwrap().plan_id.as_str()), "active.json is the history's last line");
}

#[test]
fn activations_from_two_processes_are_serialized() {
    let (_tmp, root) = store();
    let (before, _) = history_and_active(&root);
    let per_process = 12;
    let script = |id: &str| format!("for i in $(seq {per_process}); do \"$0\" plans activate {id} --store \"$1\" >/dev/null || exit 1; done");
    let children: Vec<_> = ["000001", "000002"]
        .iter()
        .map(|id| Command::new("sh").arg("-c").arg(script(id)).arg(env!("CARGO_BIN_EXE_allot")).arg(&root).spawn().unwrap())
        .collect();
    for mut child in children {
        assert!(child.wait().unwrap().success(), "every activation succeeded");
    }
    let (history, active) = history_and_active(&root);
    assert_eq!(history.len(), before.len() + 2 * per_process);
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

/// A torn last history line (a crash mid-append) is cut before the next
/// append, so the next activation is not glued onto it and lost.
#[test]
fn an_activation_after_a_torn_history_line_is_kept() {
    let (_tmp, root) = store();
    let store = PlanStore::open(&root).unwrap();
    let before = store.history().unwrap().len();
    let history = root.join("activations.jsonl");
    let mut text = std::fs::read_to_string(&history).unwrap();
    text.push_str("{\"schema_version\":2,\"plan_id\":\"0000");
    std::fs::write(&history, text).unwrap();
    store.activate("000001").unwrap();
    store.activate("000002").unwrap();
    let after = store.history().unwrap();
    assert_eq!(after.len(), before + 2);
    assert_eq!(after.last().unwrap().plan_id, "000002");
    store.rollback().unwrap();
    assert_eq!(store.active().unwrap().as_deref(), Some("000001"), "rollback restores the plan before");
}
