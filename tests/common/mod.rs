//! Helpers shared by the integration test binaries.
#![allow(dead_code)] // each test binary uses some of these

use std::path::Path;

/// Copy a folder tree (a rule pack, say) so a test can change it.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        let target = to.join(p.file_name().unwrap());
        if p.is_dir() {
            copy_dir(&p, &target);
        } else {
            std::fs::copy(&p, &target).unwrap();
        }
    }
}

/// The posaudit binary, with its parse cache in this build's test folder
/// (never the user's): a run after the first reads its inputs from the
/// cache, so every test that scans twice exercises it.
pub fn posaudit_command() -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_posaudit"));
    c.env(
        "POSAUDIT_CACHE_DIR",
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("parse-cache"),
    );
    c
}

/// The repository's root (where the binary is run from).
pub fn root() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// What a run printed, stdout then stderr.
pub fn text(o: &std::process::Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// A JSON Lines file, one value a line.
pub fn jsonl(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

/// Run posaudit from the repository's root, its cache in the test folder.
pub fn run(args: &[&str]) -> std::process::Output {
    posaudit_command().args(args).current_dir(root()).output().expect("run posaudit")
}
