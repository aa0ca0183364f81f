//! The driver's input (`tools/grade/driver/PROTOCOL.md`): which features to run, with their
//! UI contract and scripted steps, built from `levels/levels.toml`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use bench_content::levels::UiKind;
use bench_content::{Feature, Levels};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Version of the program format the driver reads.
pub const PROGRAM_VERSION: u32 = 1;

/// The whole program file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Program {
    pub version: u32,
    pub url: String,
    pub browser: String,
    pub artifacts_dir: String,
    pub trace: bool,
    pub warmup: bool,
    /// The panel headings of every feature's UI contract, graded or not: a panel's region
    /// stops at the others' headings, so that an app of a higher level graded at level 1
    /// keeps `Bob` under its `Offline` heading out of `Online`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headings: Vec<String>,
    pub features: Vec<ProgramFeature>,
}

/// One feature to run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProgramFeature {
    pub id: u32,
    pub key: String,
    pub name: String,
    pub ui: Value,
    pub steps: Vec<ProgramStep>,
}

/// One step: the plan's prose and its script, exactly as the levels file gives it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProgramStep {
    pub index: u32,
    pub actor: String,
    pub action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub within_s: Option<f64>,
    pub script: Value,
}

/// The features to grade: those of levels 1..=level, or the `selection` among them.
pub fn select_features(levels: &Levels, level: u32, selection: &[u32]) -> Result<Vec<Feature>> {
    if level == 0 || level > levels.max_level() {
        bail!(
            "--level {level} does not exist: levels are 1..={} (see levels/levels.toml)",
            levels.max_level()
        );
    }
    let all = levels.features_up_to(level)?;
    for id in selection {
        if !all.iter().any(|f| f.id == *id) {
            bail!(
                "--features {id}: feature {id} is not part of level {level} (its features are {})",
                ids_text(&all)
            );
        }
    }
    Ok(all
        .into_iter()
        .filter(|f| selection.is_empty() || selection.contains(&f.id))
        .cloned()
        .collect())
}

fn ids_text(features: &[&Feature]) -> String {
    let ids: Vec<String> = features.iter().map(|f| f.id.to_string()).collect();
    ids.join(", ")
}

/// A test step's script, read from its serialised form so that this crate follows the levels
/// file's grammar without restating it: `Ok(None)` for a step the file marks `manual` (no
/// browser script can carry it out); an error for a step with neither.
fn step_script(feature: &Feature, index: usize) -> Result<Option<Value>> {
    let step = &feature.test[index];
    let value = serde_json::to_value(step).context("cannot serialise a test step")?;
    let script = value
        .get("script")
        .filter(|s| s.as_array().is_some_and(|a| !a.is_empty()));
    if let Some(script) = script {
        return Ok(Some(script.clone()));
    }
    if value.get("manual").is_some_and(|m| !m.is_null()) {
        return Ok(None);
    }
    bail!(
        "feature {} ({}) step {} has no script in levels/levels.toml, so it cannot be graded automatically",
        feature.id,
        feature.key,
        index + 1
    )
}

/// The steps the levels file marks `manual`: `(step, why)`.
pub fn manual_steps(feature: &Feature) -> Vec<(u32, String)> {
    feature
        .test
        .iter()
        .enumerate()
        .filter_map(|(i, step)| {
            let value = serde_json::to_value(step).ok()?;
            let why = value.get("manual")?.as_str()?.to_string();
            Some((i as u32 + 1, why))
        })
        .collect()
}

/// The driver's feature entry for `feature` (its `manual` steps left out).
pub fn program_feature(feature: &Feature) -> Result<ProgramFeature> {
    let mut steps = Vec::new();
    for (i, step) in feature.test.iter().enumerate() {
        let Some(script) = step_script(feature, i)? else {
            continue;
        };
        steps.push(ProgramStep {
            index: i as u32 + 1,
            actor: step.actor.name().to_ascii_lowercase(),
            action: step.action.clone(),
            within_s: step.within_s,
            script,
        });
    }
    Ok(ProgramFeature {
        id: feature.id,
        key: feature.key.clone(),
        name: feature.name.clone(),
        ui: serde_json::to_value(&feature.ui).context("cannot serialise a UI contract")?,
        steps,
    })
}

/// The panel headings of the UI contract of every feature of the levels file: its `text`
/// entries on "the heading of …" (PROTOCOL.md, `headings`).
pub fn contract_headings(levels: &Levels) -> Vec<String> {
    let mut out: Vec<String> = levels
        .features
        .iter()
        .flat_map(|f| &f.ui)
        .filter(|u| u.kind == UiKind::Text && u.on.starts_with("the heading of"))
        .map(|u| u.text.clone())
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Where the driver is and what it is given.
pub struct ProgramSettings {
    pub url: String,
    pub browser: PathBuf,
    pub artifacts_dir: PathBuf,
    pub trace: bool,
    /// Every panel heading of the levels file ([`contract_headings`]).
    pub headings: Vec<String>,
}

impl Program {
    /// The program for `features`, in ascending id.
    pub fn build(settings: &ProgramSettings, features: &[Feature]) -> Result<Program> {
        let mut features: Vec<&Feature> = features.iter().collect();
        features.sort_by_key(|f| f.id);
        Ok(Program {
            version: PROGRAM_VERSION,
            url: settings.url.clone(),
            browser: settings.browser.display().to_string(),
            artifacts_dir: absolute(&settings.artifacts_dir).display().to_string(),
            trace: settings.trace,
            warmup: true,
            headings: settings.headings.clone(),
            features: features
                .into_iter()
                .map(program_feature)
                .collect::<Result<_>>()?,
        })
    }
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// The behaviours the levels file lists as not checkable by a browser script (`unscripted`:
/// the behaviour's 1-based index and why), as `(behaviour text, why)`.
pub fn unscripted(feature: &Feature) -> Vec<(String, String)> {
    let Ok(value) = serde_json::to_value(feature) else {
        return Vec::new();
    };
    let Some(list) = value.get("unscripted").and_then(Value::as_array) else {
        return Vec::new();
    };
    list.iter()
        .map(|item| {
            let why = item.get("why").and_then(Value::as_str).unwrap_or_default();
            let text = match item.get("behaviour") {
                Some(Value::Number(n)) => n
                    .as_u64()
                    .and_then(|n| feature.behaviours.get((n as usize).wrapping_sub(1)))
                    .cloned()
                    .unwrap_or_else(|| format!("behaviour {n}")),
                Some(Value::String(s)) => s.clone(),
                _ => String::from("(unnamed behaviour)"),
            };
            (text, why.to_string())
        })
        .collect()
}

impl Program {
    /// How long the driver may take before it counts as hung: two minutes to start, and per
    /// step 30 s plus every wait and twice every limit its items name (the driver waits up
    /// to twice a limit to time a late observation).
    pub fn time_budget(&self) -> std::time::Duration {
        let seconds: f64 = self
            .features
            .iter()
            .flat_map(|f| &f.steps)
            .map(|s| 30.0 + s.item_seconds())
            .sum();
        std::time::Duration::from_secs_f64(120.0 + seconds)
    }
}

impl ProgramStep {
    /// Waits and twice the limits of the step's items (a default of 5 s for an expectation
    /// that names none).
    fn item_seconds(&self) -> f64 {
        let items = self
            .script
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        items
            .iter()
            .map(|item| {
                let number = |key: &str| item.get(key).and_then(Value::as_f64);
                let wait = number("seconds").unwrap_or(0.0).max(0.0);
                let limit = match item.get("expect") {
                    Some(_) => number("within_s").or(self.within_s).unwrap_or(5.0),
                    None => 0.0,
                };
                wait + 2.0 * limit.max(0.0)
            })
            .sum()
    }

    /// The script item at `item` (0-based), if any.
    pub fn item(&self, item: u32) -> Option<&Value> {
        self.script.as_array()?.get(item as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn levels() -> Levels {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        Levels::load(&root).unwrap()
    }

    fn settings() -> ProgramSettings {
        ProgramSettings {
            url: "http://127.0.0.1:1/".into(),
            browser: PathBuf::from("/usr/lib/chromium/chromium"),
            artifacts_dir: PathBuf::from("/tmp/artifacts"),
            trace: false,
            headings: Vec::new(),
        }
    }

    #[test]
    fn the_level_12_program_carries_every_scripted_step_of_features_1_to_15() {
        let levels = levels();
        let features = select_features(&levels, 12, &[]).unwrap();
        let program = Program::build(&settings(), &features).unwrap();
        let ids: Vec<u32> = program.features.iter().map(|f| f.id).collect();
        assert_eq!(ids, (1..=15).collect::<Vec<_>>());
        for (f, feature) in program.features.iter().zip(&features) {
            let manual = manual_steps(feature).len();
            assert_eq!(
                f.steps.len() + manual,
                feature.test.len(),
                "feature {}",
                f.id
            );
            assert!(
                f.steps
                    .iter()
                    .all(|s| s.script.as_array().is_some_and(|a| !a.is_empty()))
            );
        }
        let budget = program.time_budget().as_secs();
        assert!((600..7_200).contains(&budget), "{budget} s");
    }

    #[test]
    fn a_selection_must_belong_to_the_level() {
        let levels = levels();
        let picked = select_features(&levels, 2, &[3]).unwrap();
        assert_eq!(picked.len(), 1);
        let e = select_features(&levels, 1, &[5]).unwrap_err().to_string();
        assert!(e.contains("feature 5 is not part of level 1"), "{e}");
        let e = select_features(&levels, 0, &[]).unwrap_err().to_string();
        assert!(e.contains("--level 0 does not exist"), "{e}");
    }

    /// A level-1 program names the panels of later levels too (`Offline`, `Members`): the
    /// driver bounds `Online` by them in an app that already has those panels.
    #[test]
    fn a_level_1_program_names_the_panel_headings_of_every_level() {
        let levels = levels();
        let mut settings = settings();
        settings.headings = contract_headings(&levels);
        let features = select_features(&levels, 1, &[]).unwrap();
        let program = Program::build(&settings, &features).unwrap();
        for heading in ["Online", "Offline", "Members"] {
            assert!(
                program.headings.iter().any(|h| h == heading),
                "{heading} not in {:?}",
                program.headings
            );
        }
        let level_1_ui = serde_json::to_string(&program.features).unwrap();
        assert!(
            !level_1_ui.contains("\"Offline\""),
            "a later level's heading"
        );
        let json = serde_json::to_value(&program).unwrap();
        assert_eq!(json["headings"], serde_json::json!(program.headings));
    }
}
