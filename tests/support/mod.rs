//! Helpers shared by the root test files (each includes this with `mod support;`).
#![allow(dead_code)] // each test file uses its own part

use std::path::Path;

/// Copies a directory tree (files and folders) from `from` to `to`.
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(e.file_name());
        if e.path().is_dir() {
            copy_tree(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

/// The live state of the plan store `root` (its `live.db`, with any old
/// file-mode history imported), where activations are recorded.
pub fn live(root: &Path) -> allot_api::LiveDb {
    allot_api::live::import::open_store_live(root, None).unwrap()
}

/// The active plan of the plan store `root`.
pub fn active(root: &Path) -> Option<String> {
    live(root).active_plan().unwrap().map(|(_, id)| id)
}
