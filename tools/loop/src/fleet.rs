//! A loop's apps: one per backend and repetition, each with its own run index, driven
//! `parallel` at a time, with a progress line each. The loop's manifest
//! (`<runs>/.loops/<loop-id>.json`) lists them, and each app's folder once it exists, so that
//! the same command again finds and continues them.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Context, Result};
use bench_formats::loop_record::LoopSettings;
use bench_formats::{AppState, Rules, Variant};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::driver::{AppDriver, Observer, Slot};
use crate::env::LoopEnv;

/// The folder of loop manifests, under the runs folder.
pub const LOOPS_DIR: &str = ".loops";

/// One app of a loop, as the manifest keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SlotEntry {
    pub backend: String,
    pub repetition: u32,
    pub run_index: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_dir: Option<PathBuf>,
    /// Why the app could not be made or driven, if so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A loop's manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub loop_id: String,
    /// Same options, same key: how the same command finds its loop again.
    pub key: String,
    pub variant: Variant,
    pub rules: Rules,
    pub settings: LoopSettings,
    pub slots: Vec<SlotEntry>,
}

impl Manifest {
    pub fn path(runs_dir: &Path, loop_id: &str) -> PathBuf {
        runs_dir.join(LOOPS_DIR).join(format!("{loop_id}.json"))
    }

    pub fn save(&self, runs_dir: &Path) -> Result<()> {
        bench_formats::write_json(&Manifest::path(runs_dir, &self.loop_id), self)
    }

    /// The newest manifest with this key, if any.
    pub fn find(runs_dir: &Path, key: &str) -> Result<Option<Manifest>> {
        let dir = runs_dir.join(LOOPS_DIR);
        if !dir.is_dir() {
            return Ok(None);
        }
        let mut found: Vec<Manifest> = Vec::new();
        for entry in
            std::fs::read_dir(&dir).with_context(|| format!("cannot list {}", dir.display()))?
        {
            let path = entry
                .with_context(|| format!("cannot list {}", dir.display()))?
                .path();
            if path.extension().is_some_and(|e| e == "json") {
                let m: Manifest = bench_formats::read_json(&path)?;
                if m.key == key {
                    found.push(m);
                }
            }
        }
        found.sort_by(|a, b| a.loop_id.cmp(&b.loop_id));
        Ok(found.pop())
    }
}

/// The key of a loop's options: what makes "the same command".
pub fn loop_key(
    backends: &[String],
    repeat: u32,
    variant: Variant,
    rules: Rules,
    settings: &LoopSettings,
) -> String {
    let text = format!(
        "{}|{repeat}|{variant}|{rules}|{}|{}|{}|{}|{}",
        backends.join(","),
        settings.to_level,
        settings.max_fixes,
        settings.grader,
        settings.model,
        settings.rehearse.as_deref().unwrap_or("")
    );
    let digest = Sha256::digest(text.as_bytes());
    digest.iter().take(6).map(|b| format!("{b:02x}")).collect()
}

/// The loop's slots: every backend × repetition, run indexes `first`, `first + 1`… in that
/// order.
pub fn slots(backends: &[String], repeat: u32, first: u32) -> Vec<SlotEntry> {
    let mut out = Vec::new();
    for backend in backends {
        for repetition in 1..=repeat {
            out.push(SlotEntry {
                backend: backend.clone(),
                repetition,
                run_index: first + u32::try_from(out.len()).unwrap_or(u32::MAX),
                app_dir: None,
                error: None,
            });
        }
    }
    out
}

/// What became of one app.
#[derive(Debug, Clone)]
pub struct AppResult {
    pub slot: SlotEntry,
    pub state: Option<AppState>,
    pub error: Option<String>,
}

/// Progress lines, one per app, and the manifest kept current.
struct Board {
    multi: MultiProgress,
    bars: Vec<ProgressBar>,
    manifest: Mutex<Manifest>,
    runs_dir: PathBuf,
}

impl Board {
    fn bar(&self, slot: &Slot) -> Option<&ProgressBar> {
        self.bars.get(slot.position)
    }

    fn say(&self, line: String) {
        if self.multi.is_hidden() {
            eprintln!("{line}");
        } else {
            let _ = self.multi.println(line);
        }
    }
}

fn label(slot: &Slot) -> String {
    format!("{} #{}", slot.backend, slot.repetition)
}

impl Observer for Board {
    fn app_created(&self, slot: &Slot, app_dir: &Path) {
        if let Ok(mut m) = self.manifest.lock()
            && let Some(entry) = m.slots.get_mut(slot.position)
        {
            entry.app_dir = Some(app_dir.to_path_buf());
            if let Err(e) = m.save(&self.runs_dir) {
                self.say(format!("warning: cannot save the loop manifest: {e:#}"));
            }
        }
        self.say(format!("{}: app {}", label(slot), app_dir.display()));
    }

    fn status(&self, slot: &Slot, line: &str) {
        match self.bar(slot) {
            Some(bar) if !self.multi.is_hidden() => bar.set_message(line.to_owned()),
            _ => self.say(format!("{}: {line}", label(slot))),
        }
    }

    fn note(&self, slot: &Slot, line: &str) {
        self.say(format!("{}: {line}", label(slot)));
    }
}

/// Drives every unfinished app of the manifest, `parallel` at a time; returns each app's
/// result in slot order.
pub fn drive(env: &LoopEnv, manifest: Manifest, parallel: usize) -> Vec<AppResult> {
    let multi = MultiProgress::new();
    let style = ProgressStyle::with_template("{spinner} {prefix:<14} [{elapsed_precise}] {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_spinner());
    let bars = manifest
        .slots
        .iter()
        .map(|s| {
            let bar = multi.add(ProgressBar::new_spinner());
            bar.set_style(style.clone());
            bar.set_prefix(format!("{} #{}", s.backend, s.repetition));
            bar.set_message("waiting");
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        })
        .collect();
    let queue: Mutex<Vec<usize>> = Mutex::new((0..manifest.slots.len()).rev().collect());
    let results: Mutex<Vec<Option<AppResult>>> = Mutex::new(vec![None; manifest.slots.len()]);
    let board = Board {
        multi,
        bars,
        manifest: Mutex::new(manifest.clone()),
        runs_dir: env.runs_dir.clone(),
    };
    std::thread::scope(|scope| {
        for _ in 0..parallel.max(1) {
            scope.spawn(|| {
                // The queue's guard goes with the closure: no lock is held while driving.
                while let Some(i) = queue.lock().ok().and_then(|mut q| q.pop()) {
                    let result = drive_one(env, &manifest, i, &board);
                    if let Some(bar) = board.bars.get(i) {
                        bar.finish();
                    }
                    if let Ok(mut r) = results.lock() {
                        r[i] = Some(result);
                    }
                }
            });
        }
    });
    let final_manifest = board.manifest.lock().map(|m| m.clone()).unwrap_or(manifest);
    results
        .into_inner()
        .unwrap_or_default()
        .into_iter()
        .zip(final_manifest.slots)
        .map(|(r, slot)| {
            r.unwrap_or(AppResult {
                slot,
                state: None,
                error: Some("never driven".into()),
            })
        })
        .collect()
}

fn drive_one(env: &LoopEnv, manifest: &Manifest, i: usize, board: &Board) -> AppResult {
    let entry = board
        .manifest
        .lock()
        .map(|m| m.slots[i].clone())
        .unwrap_or_else(|_| manifest.slots[i].clone());
    let slot = Slot {
        position: i,
        backend: entry.backend.clone(),
        repetition: entry.repetition,
        run_index: entry.run_index,
        variant: manifest.variant,
        rules: manifest.rules,
    };
    let mut driver = AppDriver::new(
        env,
        slot,
        manifest.loop_id.clone(),
        manifest.settings.clone(),
        board,
        entry.app_dir.clone(),
    );
    let outcome = driver.run();
    let mut entry = board
        .manifest
        .lock()
        .map(|m| m.slots[i].clone())
        .unwrap_or(entry);
    entry.app_dir = driver.app_dir.clone();
    let (state, error) = match outcome {
        Ok(state) => (Some(state), None),
        Err(e) => {
            let msg = format!("{e:#}");
            board.say(format!("{} #{}: {msg}", entry.backend, entry.repetition));
            let state = driver
                .app_dir
                .as_deref()
                .and_then(|d| crate::record::read_state(d).ok());
            (state, Some(msg))
        }
    };
    entry.error = error.clone();
    if let Ok(mut m) = board.manifest.lock() {
        m.slots[i] = entry.clone();
        if let Err(e) = m.save(&env.runs_dir) {
            board.say(format!("warning: cannot save the loop manifest: {e:#}"));
        }
    }
    AppResult {
        slot: entry,
        state,
        error,
    }
}
