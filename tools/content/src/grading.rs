//! Grading material: the reprompt-efficiency table and blank grading sheets.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result, anyhow};
use serde::{Deserialize, Serialize};

use crate::levels::Levels;

/// The reprompt-efficiency table, relative to the repository root.
pub const REPROMPT_EFFICIENCY_FILE: &str = "grading/reprompt-efficiency.toml";

/// How much a level's score is worth given the fix sessions it needed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepromptEfficiency {
    pub schema: u32,
    #[serde(rename = "band")]
    pub bands: Vec<Band>,
}

/// One row of the table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Band {
    /// Highest number of fix sessions in this band (absent: no limit; last band only).
    #[serde(default)]
    pub max_fix_sessions: Option<u32>,
    /// Multiplier in [0, 1].
    pub factor: f64,
    pub label: String,
}

impl RepromptEfficiency {
    pub fn load(root: &Path) -> Result<RepromptEfficiency> {
        let path = root.join(REPROMPT_EFFICIENCY_FILE);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        RepromptEfficiency::parse(&text, REPROMPT_EFFICIENCY_FILE)
    }

    pub fn parse(text: &str, name: &str) -> Result<RepromptEfficiency> {
        let t: RepromptEfficiency =
            toml::from_str(text).map_err(|e| anyhow!("{name}: not a valid table: {e}"))?;
        let mut problems = Vec::new();
        if t.schema != 1 {
            problems.push(format!(
                "schema = {} is not supported (expected 1)",
                t.schema
            ));
        }
        if t.bands.is_empty() {
            problems.push("no [[band]] entries".to_string());
        }
        let mut prev_max: Option<u32> = None;
        let mut prev_factor = f64::INFINITY;
        for (i, b) in t.bands.iter().enumerate() {
            let who = format!("band {} ({:?})", i + 1, b.label);
            let last = i + 1 == t.bands.len();
            match (b.max_fix_sessions, last) {
                (None, false) => problems.push(format!(
                    "{who}: only the last band may leave out max_fix_sessions"
                )),
                (Some(_), true) => problems.push(format!(
                    "{who}: the last band must leave out max_fix_sessions (it covers every larger count)"
                )),
                _ => {}
            }
            if let (Some(m), Some(p)) = (b.max_fix_sessions, prev_max)
                && m <= p
            {
                problems.push(format!(
                    "{who}: max_fix_sessions {m} must be above the previous band's {p}"
                ));
            }
            if !(0.0..=1.0).contains(&b.factor) {
                problems.push(format!("{who}: factor {} is outside 0..=1", b.factor));
            }
            if b.factor > prev_factor {
                problems.push(format!(
                    "{who}: factor {} is above the previous band's {prev_factor} (more fixes cannot be worth more)",
                    b.factor
                ));
            }
            prev_max = b.max_fix_sessions.or(prev_max);
            prev_factor = b.factor;
        }
        crate::no_problems(name, &problems)?;
        Ok(t)
    }

    /// The band for a level that needed `fix_sessions` fix sessions.
    pub fn band(&self, fix_sessions: u32) -> &Band {
        self.bands
            .iter()
            .find(|b| b.max_fix_sessions.is_none_or(|m| fix_sessions <= m))
            .unwrap_or_else(|| &self.bands[self.bands.len() - 1])
    }
}

/// A blank `GRADING_RESULTS.md` for an app of `backend` at `level`: one row per feature of
/// levels 1..=level and the `TOTAL` row, in the shape of the template.
pub fn grading_sheet(levels: &Levels, level: u32, backend: &str) -> Result<String> {
    let features = levels.features_up_to(level)?;
    let mut s = String::new();
    let _ = writeln!(s, "# Grading Results — Level {level} ({backend})\n");
    let _ = writeln!(
        s,
        "**App:** (app folder)\n**Graded at:** (date and time, UTC)\n**Grader:** (name or tool)\n"
    );
    let _ = writeln!(
        s,
        "Score each feature 0–3 by `grading/rubric.md`, following `grading/test-plans.md`; fill the TOTAL row.\n"
    );
    let _ = writeln!(s, "| Feature | Score | Notes |");
    let _ = writeln!(s, "|---------|-------|-------|");
    let mut max = 0;
    for f in features {
        let _ = writeln!(s, "| Feature {}: {} | /{} | |", f.id, f.name, f.max_score);
        max += f.max_score;
    }
    let _ = writeln!(s, "| **TOTAL** | /{max} | |");
    Ok(s)
}
