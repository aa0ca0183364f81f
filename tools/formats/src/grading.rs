//! `grading.json`: what `bench-grade` observed and scored for one app at one level.
//!
//! Written by `bench-grade` next to `GRADING_RESULTS.md` (in the app folder or `--out`), and
//! kept per grading under the app's `.bench/grading/<timestamp>-level-<N>/`; read by
//! `bench-report` for scores and bugs per level. The schema is versioned: readers call
//! [`GradingFile::check_version`] and refuse a newer version instead of misreading it.
//! Additions within a version are optional fields.
//!
//! Every step of every graded feature is listed with each action carried out and each
//! expectation checked (expected, observed, measured latency, pass/fail), the console errors
//! seen while the feature ran, the score the rubric gave and why, and the behaviours no
//! browser script checks (`not_checked`), so that a reader never mistakes "not tested" for
//! "passed".

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};

/// The schema's name, in [`GradingFile::schema`].
pub const GRADING_SCHEMA: &str = "bench-grade/grading";
/// Version of the schema this crate writes and reads.
pub const GRADING_SCHEMA_VERSION: u32 = 1;
/// The file's name in the app folder.
pub const GRADING_FILE: &str = "grading.json";

/// One grading of one app.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GradingFile {
    /// [`GRADING_SCHEMA`].
    pub schema: String,
    /// [`GRADING_SCHEMA_VERSION`] at writing time.
    pub schema_version: u32,
    /// `bench-grade <version>`.
    pub generator: String,
    /// When grading started, RFC 3339 UTC.
    pub graded_at: String,
    /// Wall time of the grading (browser launch to last feature), milliseconds.
    pub duration_ms: u64,
    /// The app's address the browser opened.
    pub url: String,
    /// The app folder, when one was graded (absent with `--url`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_dir: Option<String>,
    /// The app's backend, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend: Option<String>,
    /// The level graded: features of levels 1..=level, unless `selection` narrows them.
    pub level: u32,
    /// The feature ids a `--features` selection asked for; empty when every feature of the
    /// level was graded.
    #[serde(default)]
    pub selection: Vec<u32>,
    /// The browser that ran the scripts.
    pub browser: BrowserInfo,
    /// Sum of the graded features' scores.
    pub score: u32,
    /// Sum of their maximums.
    pub max: u32,
    /// The graded features, ascending id.
    pub features: Vec<FeatureGrade>,
    /// Behaviours of the graded features that no browser script checks.
    #[serde(default)]
    pub not_checked: Vec<NotChecked>,
}

/// The browser used.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BrowserInfo {
    pub path: String,
    /// As the driver reported it (`HeadlessChrome/…`).
    #[serde(default)]
    pub version: String,
}

/// One feature's outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureGrade {
    pub id: u32,
    pub key: String,
    pub name: String,
    /// The level that adds the feature.
    pub level: u32,
    /// 0..=max, by `grading/rubric.md`.
    pub score: u32,
    pub max: u32,
    /// Why points were lost, one line per rule applied (empty at full score).
    #[serde(default)]
    pub reasons: Vec<String>,
    pub steps: Vec<StepResult>,
    /// Errors in either browser console while the feature ran.
    #[serde(default)]
    pub console_errors: Vec<ConsoleError>,
    /// Expectations checked in other features' steps that count for this feature (e.g.
    /// `Seen by Bob` checked in feature 4's plan belongs to feature 3), as
    /// `(feature, step, item)`.
    #[serde(default)]
    pub borrowed_checks: Vec<CheckRef>,
}

/// Where a check was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckRef {
    pub feature: u32,
    pub step: u32,
    pub item: u32,
}

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepOutcome {
    /// Every action was carried out and every expectation held.
    Passed,
    /// Every action was carried out, some expectation did not hold.
    Failed,
    /// An action could not be carried out (the rest of the step was skipped).
    NotCarriedOut,
    /// The driver never reached the step.
    NotRun,
}

/// One test-plan step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepResult {
    /// 1-based, as in the test plan.
    pub index: u32,
    /// `alice` or `bob`.
    pub actor: String,
    /// The plan's prose.
    pub action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub within_s: Option<f64>,
    pub outcome: StepOutcome,
    pub actions: Vec<ActionResult>,
    pub checks: Vec<CheckResult>,
    /// Screenshots per user and a trace, written for failed steps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifacts: Option<Artifacts>,
}

impl StepResult {
    /// A step as it stands before it runs: no actions, no checks.
    pub fn not_run(index: u32, actor: String, action: String, within_s: Option<f64>) -> StepResult {
        StepResult {
            index,
            actor,
            action,
            within_s,
            outcome: StepOutcome::NotRun,
            actions: Vec::new(),
            checks: Vec::new(),
            artifacts: None,
        }
    }
}

/// One action of a step's script.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionResult {
    /// 0-based index of the script item.
    pub item: u32,
    pub user: String,
    /// What was done, in words.
    pub what: String,
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// How long the action took.
    #[serde(default)]
    pub ms: f64,
}

/// How much a failed expectation weighs (set by the script; `major` when it says nothing).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Cosmetic or secondary: a failure costs one point.
    Minor,
    /// A behaviour of the feature fails: the feature scores at most 1.
    #[default]
    Major,
    /// The feature's purpose fails: the feature scores 0.
    Critical,
}

impl Severity {
    /// Lenient reading of the driver's text; anything unknown is `major`.
    pub fn parse(text: &str) -> Severity {
        match text.trim().to_ascii_lowercase().as_str() {
            "minor" => Severity::Minor,
            "critical" => Severity::Critical,
            _ => Severity::Major,
        }
    }

    /// `Minor`, `Major`, `Critical`, as BUG_REPORT.md writes it.
    pub fn title(self) -> &'static str {
        match self {
            Severity::Minor => "Minor",
            Severity::Major => "Major",
            Severity::Critical => "Critical",
        }
    }
}

impl<'de> Deserialize<'de> for Severity {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Ok(Severity::parse(&text))
    }
}

/// One expectation's outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckResult {
    /// 0-based index of the script item.
    pub item: u32,
    /// Whose screen was checked.
    pub user: String,
    /// What was expected, in words.
    pub what: String,
    /// `appears`, `gone`, `value`, …
    pub expect: String,
    pub passed: bool,
    /// Measured in the page from the action that armed the check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub within_s: Option<f64>,
    /// What the page showed instead, in words (or what it showed when it passed).
    #[serde(default)]
    pub observed: String,
    #[serde(default)]
    pub severity: Severity,
    /// True when the expectation failed live but held after a page reload.
    #[serde(default)]
    pub after_refresh: bool,
    /// The feature the expectation counts for, when not the step's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counts_for: Option<u32>,
}

/// An error in a browser console (or an unhandled rejection).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConsoleError {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<u32>,
    pub user: String,
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// Screenshots and trace of a failed step, paths as the driver wrote them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Artifacts {
    /// `user → png path`.
    #[serde(default)]
    pub screenshots: std::collections::BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<String>,
}

/// A behaviour the grading did not check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NotChecked {
    pub feature: u32,
    pub behaviour: String,
    /// Why no browser script can check it.
    #[serde(default)]
    pub reason: String,
}

impl GradingFile {
    /// Fails on a file of another schema or a newer version.
    pub fn check_version(&self) -> Result<()> {
        if self.schema != GRADING_SCHEMA {
            bail!(
                "not a grading file: schema is {:?}, expected {GRADING_SCHEMA:?}",
                self.schema
            );
        }
        if self.schema_version > GRADING_SCHEMA_VERSION {
            bail!(
                "grading file schema version {} is newer than this tool reads ({GRADING_SCHEMA_VERSION}); update the benchmark",
                self.schema_version
            );
        }
        Ok(())
    }

    /// Reads and version-checks a `grading.json`.
    pub fn read(path: &std::path::Path) -> Result<GradingFile> {
        let file: GradingFile = crate::io::read_json(path)?;
        file.check_version()
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        Ok(file)
    }

    /// Bugs per feature id: each failed expectation under the feature it counts for, and
    /// each step that could not be carried out under its own feature (as `BUG_REPORT.md`
    /// lists them, console errors aside). Every graded feature has an entry.
    pub fn bugs_by_feature(&self) -> std::collections::BTreeMap<u32, u32> {
        let mut out: std::collections::BTreeMap<u32, u32> =
            self.features.iter().map(|f| (f.id, 0)).collect();
        for (f, _, c) in self.failed_checks() {
            *out.entry(c.counts_for.unwrap_or(f.id)).or_insert(0) += 1;
        }
        for f in &self.features {
            let blocked = f
                .steps
                .iter()
                .filter(|s| s.outcome == StepOutcome::NotCarriedOut)
                .count() as u32;
            *out.entry(f.id).or_insert(0) += blocked;
        }
        out
    }

    /// The failed expectations, each with the feature it counts for, in step order. Steps
    /// that could not be carried out are left out: their checks only record that they were
    /// not reached, and the step itself is the bug.
    pub fn failed_checks(
        &self,
    ) -> impl Iterator<Item = (&FeatureGrade, &StepResult, &CheckResult)> {
        self.features.iter().flat_map(|f| {
            let reached = f
                .steps
                .iter()
                .filter(|s| s.outcome != StepOutcome::NotCarriedOut);
            reached.flat_map(move |s| {
                s.checks
                    .iter()
                    .filter(|c| !c.passed)
                    .map(move |c| (f, s, c))
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_is_read_leniently_and_defaults_to_major() {
        assert_eq!(Severity::parse("Minor"), Severity::Minor);
        assert_eq!(Severity::parse("critical "), Severity::Critical);
        assert_eq!(Severity::parse("whatever"), Severity::Major);
        let check: CheckResult = serde_json::from_str(
            r#"{"item":0,"user":"bob","what":"x","expect":"appears","passed":true}"#,
        )
        .unwrap();
        assert_eq!(check.severity, Severity::Major);
        assert!(!check.after_refresh);
    }

    #[test]
    fn a_newer_version_or_another_schema_is_refused() {
        let mut file = GradingFile {
            schema: GRADING_SCHEMA.into(),
            schema_version: GRADING_SCHEMA_VERSION,
            generator: "t".into(),
            graded_at: "2026-01-01T00:00:00Z".into(),
            duration_ms: 0,
            url: "http://x/".into(),
            app_dir: None,
            backend: None,
            level: 1,
            selection: vec![],
            browser: BrowserInfo::default(),
            score: 0,
            max: 0,
            features: vec![],
            not_checked: vec![],
        };
        assert!(file.check_version().is_ok());
        file.schema_version += 1;
        assert!(
            file.check_version()
                .unwrap_err()
                .to_string()
                .contains("newer")
        );
        file.schema_version = 1;
        file.schema = "other".into();
        assert!(file.check_version().is_err());
    }
}
