//! The loop's rehearsal scripts stay true to the reference app they write and edit.

use std::path::{Path, PathBuf};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// Files of the reference app an app needs (not its README, nor bench-stress's shapes).
fn reference_files(dir: &Path, rel: &str, out: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = if rel.is_empty() {
            name.clone()
        } else {
            format!("{rel}/{name}")
        };
        if entry.file_type().unwrap().is_dir() {
            if !matches!(name.as_str(), "node_modules" | "dist" | ".bench") {
                reference_files(&entry.path(), &path, out);
            }
        } else if !(name == "README.md" || name == "stress-shapes.js" || name.ends_with(".log")) {
            out.push(path);
        }
    }
}

#[test]
fn generate_writes_every_file_of_the_reference_app() {
    let root = repo_root();
    let script = std::fs::read_to_string(root.join("rehearsal/loop/generate-l1.toml")).unwrap();
    let mut files = Vec::new();
    reference_files(&root.join("reference-app"), "", &mut files);
    let missing: Vec<&String> = files
        .iter()
        .filter(|f| !script.contains(&format!("content_file = \"../../reference-app/{f}\"")))
        .collect();
    assert!(
        missing.is_empty(),
        "rehearsal/loop/generate-l1.toml does not write {missing:?}: add a Write with content_file for each"
    );
}

#[test]
fn upgrade_and_fix_edit_text_the_reference_app_has() {
    let root = repo_root();
    let bugs = std::fs::read_to_string(root.join("reference-app/server/src/bugs.ts")).unwrap();
    let upgrade = std::fs::read_to_string(root.join("rehearsal/loop/upgrade-l2.toml")).unwrap();
    let fix = std::fs::read_to_string(root.join("rehearsal/loop/fix-l2.toml")).unwrap();
    let seeded = "process.env.REFERENCE_BUG || 'scheduled-past-accepted'";
    assert!(bugs.contains("process.env.REFERENCE_BUG || ''"), "{bugs}");
    assert!(bugs.contains("'scheduled-past-accepted'"), "{bugs}");
    assert!(upgrade.contains(seeded) && fix.contains(seeded));
}
