//! Lines of code of an app, as the report records them: hand-written backend, hand-written
//! frontend, generated bindings.
//!
//! Counting belongs to the content crate ([`bench_content::LocRules`]): a backend's rules
//! come from `backends/<name>/backend.toml`, and [`LocRules::original_harness`] holds the
//! rules the original harness measured its published apps with (used with
//! `--loc-rules defaults` and for a backend the content does not know).
//!
//! Every line counts, blank ones included (as `wc -l`; a last line without a newline counts).

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

pub use bench_content::{LocClass, LocCount, LocRules, count_lines};

/// Line and file counts of one app.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LocFigures {
    pub backend_handwritten: u64,
    pub frontend_handwritten: u64,
    pub generated_bindings: u64,
    /// Backend + frontend.
    pub total_handwritten: u64,
    pub files: BTreeMap<LocClass, u64>,
    /// Where the counting rules came from (`backends/<b>/backend.toml` or `defaults`).
    pub rules: String,
    /// The app folder counted.
    pub app: String,
}

impl LocFigures {
    /// The figures of a count of `app_dir` made with the rules named `rules`; `None` when
    /// no file counted (the app's source is not in the run).
    pub fn from_count(count: LocCount, rules: &str, app_dir: &Path) -> Option<LocFigures> {
        if count.files.values().all(|&n| n == 0) {
            return None;
        }
        Some(LocFigures {
            backend_handwritten: count.lines_of(LocClass::Backend),
            frontend_handwritten: count.lines_of(LocClass::Frontend),
            generated_bindings: count.lines_of(LocClass::Generated),
            total_handwritten: count.handwritten(),
            files: count.files,
            rules: rules.to_string(),
            app: app_dir.display().to_string(),
        })
    }
}
