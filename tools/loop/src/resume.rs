//! `--resume RUN_DIR…`: the loops whose apps are in these run folders, from their manifests
//! (or, when a manifest is gone, from the apps' own loop records).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::fleet::{Manifest, SlotEntry};
use crate::record;

/// The runs folder of run folders: `runs/` of `runs/<variant>-<date>`.
pub fn runs_dir_of(run_dirs: &[PathBuf]) -> Result<PathBuf> {
    let first = run_dirs
        .first()
        .context("--resume needs at least one run folder")?;
    let dir = first.canonicalize().with_context(|| {
        format!(
            "{} does not exist (give runs/<variant>-<date> folders)",
            first.display()
        )
    })?;
    dir.parent()
        .map(Path::to_path_buf)
        .with_context(|| format!("{} has no parent folder", dir.display()))
}

/// The manifests of the loops that made the apps under `run_dirs`.
pub fn manifests(run_dirs: &[PathBuf]) -> Result<Vec<Manifest>> {
    let runs_dir = runs_dir_of(run_dirs)?;
    let apps = record::loop_apps(run_dirs)?;
    if apps.is_empty() {
        bail!(
            "no app made by bench-loop under {} (bench-loop records its apps in their .bench/state.json)",
            run_dirs
                .iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let mut by_loop: BTreeMap<String, Manifest> = BTreeMap::new();
    for app in apps {
        let state = record::read_state(&app)?;
        let Some(rec) = state.loop_record.clone() else {
            continue;
        };
        if !by_loop.contains_key(&rec.loop_id) {
            let path = Manifest::path(&runs_dir, &rec.loop_id);
            let manifest = if path.is_file() {
                bench_formats::read_json(&path)?
            } else {
                Manifest {
                    loop_id: rec.loop_id.clone(),
                    key: String::new(),
                    variant: state.variant,
                    rules: state.rules,
                    settings: rec.settings.clone(),
                    slots: Vec::new(),
                }
            };
            by_loop.insert(rec.loop_id.clone(), manifest);
        }
        let manifest = by_loop
            .get_mut(&rec.loop_id)
            .context("a loop was lost while grouping apps")?;
        let known = manifest.slots.iter().any(|s| {
            s.app_dir
                .as_deref()
                .is_some_and(|d| d.canonicalize().ok().as_deref() == Some(app.as_path()))
        });
        if !known {
            manifest.slots.push(SlotEntry {
                backend: state.backend.clone(),
                repetition: rec.repetition,
                run_index: state.run_index,
                app_dir: Some(app.clone()),
                error: None,
            });
        }
    }
    Ok(by_loop.into_values().collect())
}
