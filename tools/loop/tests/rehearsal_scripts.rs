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

/// The reference app's files a generate script (under rehearsal/) does not write.
fn unwritten(script: &str) -> Vec<String> {
    let root = repo_root();
    let text = std::fs::read_to_string(root.join("rehearsal").join(script)).unwrap();
    let mut files = Vec::new();
    reference_files(&root.join("reference-app"), "", &mut files);
    files
        .into_iter()
        .filter(|f| !text.contains(&format!("content_file = \"../../reference-app/{f}\"")))
        .collect()
}

#[test]
fn generate_writes_every_file_of_the_reference_app() {
    for script in ["loop/generate-l1.toml", "loop-perf/generate-l1.toml"] {
        let missing = unwritten(script);
        assert!(
            missing.is_empty(),
            "rehearsal/{script} does not write {missing:?}: add a Write with content_file for each"
        );
    }
}

/// Each turn of the scaling benchmark's generate script takes the model time of its header
/// comment's rule: 1.5 s plus 80 output tokens/s.
#[test]
fn the_perf_generate_takes_the_model_time_of_its_output() {
    let path = repo_root().join("rehearsal/loop-perf/generate-l1.toml");
    let doc: toml::Value = toml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let turns = doc["turn"].as_array().unwrap();
    assert!(turns.len() > 2);
    for (i, turn) in turns.iter().enumerate() {
        let output = turn["usage"]["output"].as_integer().unwrap();
        let delay = turn.get("delay_ms").and_then(toml::Value::as_integer);
        assert_eq!(delay, Some(1500 + output * 1000 / 80), "turn {}", i + 1);
    }
}

/// The `Edit` calls of a rehearsal script: (file under the app, old text, new text).
fn edits(script: &str) -> Vec<(String, String, String)> {
    let path = repo_root().join("rehearsal/loop").join(script);
    let doc: toml::Value = toml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut out = Vec::new();
    for turn in doc["turn"].as_array().unwrap() {
        let Some(tools) = turn.get("tool").and_then(toml::Value::as_array) else {
            continue;
        };
        for tool in tools.iter().filter(|t| t["name"].as_str() == Some("Edit")) {
            let input = &tool["input"];
            let text = |k: &str| input[k].as_str().unwrap().to_owned();
            let file = text("file_path");
            let rel = file.strip_prefix("{{app_dir}}/").unwrap().to_owned();
            out.push((rel, text("old_string"), text("new_string")));
        }
    }
    out
}

/// The upgrade seeds its bug with one edit of text the reference app has exactly once (as
/// the agent CLI's Edit tool needs), and the fix undoes exactly that edit.
#[test]
fn upgrade_and_fix_edit_text_the_reference_app_has() {
    let upgrade = edits("upgrade-l2.toml");
    let fix = edits("fix-l2.toml");
    assert_eq!(upgrade.len(), 1, "{upgrade:?}");
    let (file, old, new) = &upgrade[0];
    let source = std::fs::read_to_string(repo_root().join("reference-app").join(file)).unwrap();
    assert_eq!(source.matches(old.as_str()).count(), 1, "{old} in {file}");
    assert!(!source.contains(new.as_str()), "{new} in {file}");
    assert_eq!(fix, vec![(file.clone(), new.clone(), old.clone())]);
}
