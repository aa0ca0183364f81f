//! The grading session's prompt: the same structured test plans (levels/levels.toml) and
//! rubric (grading/rubric.md) the deterministic grader uses, and the `grading.json` skeleton
//! the agent fills in.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use bench_content::{Feature, Levels};
use bench_formats::grading::{
    BrowserInfo, FeatureGrade, GRADING_SCHEMA, GRADING_SCHEMA_VERSION, GradingFile, StepResult,
};

/// The text the agent ends with once the results file is written.
pub const COMPLETION_MARKER: &str = "GRADING_COMPLETE";

/// The rubric, relative to the repository root.
pub const RUBRIC_FILE: &str = "grading/rubric.md";

/// What the prompt is about.
pub struct PromptInput<'a> {
    pub root: &'a Path,
    pub levels: &'a Levels,
    pub features: &'a [Feature],
    pub level: u32,
    pub url: &'a str,
    /// Where the agent writes its grading.json (absolute).
    pub results_file: &'a Path,
    /// For hybrid grading: what the deterministic grader already settled, and what is left.
    pub hybrid: Option<String>,
}

/// The `grading.json` the agent starts from: every feature and step of the plan, nothing run
/// yet. The harness fills in its own fields (time, address, browser) afterwards.
pub fn skeleton(levels: &Levels, features: &[Feature], level: u32, url: &str) -> GradingFile {
    let graded: Vec<FeatureGrade> = features
        .iter()
        .map(|f| FeatureGrade {
            id: f.id,
            key: f.key.clone(),
            name: f.name.clone(),
            level: levels.level_of(f.id).map_or(0, |l| l.number),
            score: 0,
            max: f.max_score,
            reasons: Vec::new(),
            steps: f
                .test
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    let actor = serde_json::to_value(s.actor)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default();
                    StepResult::not_run(i as u32 + 1, actor, s.action.clone(), s.within_s)
                })
                .collect(),
            console_errors: Vec::new(),
            borrowed_checks: Vec::new(),
        })
        .collect();
    GradingFile {
        schema: GRADING_SCHEMA.into(),
        schema_version: GRADING_SCHEMA_VERSION,
        generator: "agent".into(),
        graded_at: String::new(),
        duration_ms: 0,
        url: url.into(),
        app_dir: None,
        backend: None,
        level,
        selection: Vec::new(),
        browser: BrowserInfo::default(),
        score: 0,
        max: graded.iter().map(|f| f.max).sum(),
        features: graded,
        not_checked: Vec::new(),
    }
}

fn feature_plan(out: &mut String, f: &Feature) {
    let _ = writeln!(out, "\n### Feature {}: {} (`{}`)\n", f.id, f.name, f.key);
    let _ = writeln!(out, "{}\n\nBehaviours:", f.summary);
    for b in &f.behaviours {
        let _ = writeln!(out, "- {b}");
    }
    let _ = writeln!(
        out,
        "\nUI contract strings (may be worded differently in this app):"
    );
    for ui in &f.ui {
        let _ = writeln!(out, "- `{}` on the {}", ui.text, ui.on);
    }
    let _ = writeln!(out, "\nTest plan:");
    for (i, s) in f.test.iter().enumerate() {
        let actor = serde_json::to_value(s.actor)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        let _ = write!(out, "{}. {actor}: {}", i + 1, s.action);
        if let Some(a) = &s.alice {
            let _ = write!(out, " — Alice sees: {a}");
        }
        if let Some(b) = &s.bob {
            let _ = write!(out, " — Bob sees: {b}");
        }
        if let Some(w) = s.within_s {
            let _ = write!(out, " (within {w} s, no reload)");
        }
        let _ = writeln!(out);
    }
    let unscripted = crate::program::unscripted(f);
    if !unscripted.is_empty() {
        let _ = writeln!(out, "\nAlso judge (no script checks these):");
        for (behaviour, why) in unscripted {
            let _ = writeln!(out, "- {behaviour} ({why})");
        }
    }
}

/// The whole prompt.
pub fn build(input: &PromptInput) -> Result<String> {
    let rubric_path = input.root.join(RUBRIC_FILE);
    let rubric = std::fs::read_to_string(&rubric_path)
        .with_context(|| format!("cannot read the rubric {}", rubric_path.display()))?;
    let skeleton = skeleton(input.levels, input.features, input.level, input.url);
    let skeleton = serde_json::to_string_pretty(&skeleton).context("cannot render skeleton")?;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "You are grading a real-time chat app at level {level}, running at {url}.\n\n\
         You have two browsers, one per user, each with its own storage: Alice's tools are \
         `mcp__alice__*` and Bob's are `mcp__bob__*` (navigate, snapshot, click, type, press \
         key, wait for text, tabs). Open {url} in both. Carry out each feature's test plan in \
         order (later plans build on the users, rooms and messages earlier ones created), \
         observing each user's screen with a snapshot after every action. The app may word \
         its controls differently from the contract strings: look for the control that does \
         the job. Your tool calls take about a second each, so do not judge time limits \
         under a few seconds; judge what shows up.\n\n\
         You may only use the two browsers and write one file: {results}.",
        level = input.level,
        url = input.url,
        results = input.results_file.display()
    );
    if let Some(hybrid) = &input.hybrid {
        let _ = writeln!(out, "\n## What is left to judge\n\n{hybrid}");
    }
    let _ = writeln!(out, "\n## Features and test plans");
    for f in input.features {
        feature_plan(&mut out, f);
    }
    let _ = writeln!(out, "\n## Rubric\n\n{rubric}");
    let _ = writeln!(
        out,
        "\n## Results\n\nWrite {results} with the Write tool: this JSON (schema `{GRADING_SCHEMA}` \
         version {GRADING_SCHEMA_VERSION}) with every feature and every step filled in. Per step: \
         `outcome` (`passed`, `failed`, `not_carried_out` when an action could not be done, \
         `not_run`), `actions` (`item`, `user`, `what`, `ok`, `error`), `checks` (`item`, \
         `user`, `what`, `expect` (`appears` or `gone`), `passed`, `observed`, `severity` \
         (`minor`, `major`, `critical`)). Per feature: `score` 0..=`max` by the rubric and \
         `reasons` (one line per point lost). Top level: `score` and `max` are the sums. \
         List what you could not judge in `not_checked` (`feature`, `behaviour`, `reason`). \
         Leave the other fields as they are: the harness fills them in.\n\n```json\n{skeleton}\n```\n\n\
         When the file is written, end with the line {COMPLETION_MARKER}.",
        results = input.results_file.display()
    );
    Ok(out)
}
