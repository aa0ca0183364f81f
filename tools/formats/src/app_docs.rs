//! The Markdown documents an app directory carries: `BUG_REPORT.md`, `ITERATION_LOG.md` and
//! `GRADING_RESULTS.md`.
//!
//! People (graders) and agents write these files, so the parsers are lenient: they read the
//! few machine-read parts described below and keep everything else as text. Nothing here
//! fails on prose; a document with none of the machine-read parts parses to an empty value.
//! The templates in the content crate follow these rules, and so do the files the original
//! harness published.
//!
//! # `BUG_REPORT.md` (written by the grader before a fix session)
//! - Optional first heading `# Bug Report …`. When it names a level (`Level 12`, `L12`) or an
//!   iteration (`Iteration 2`), [`BugReport::level`] / [`BugReport::iteration`] hold them.
//! - One second-level heading per bug: `## Bug <n>: <title>` (`:`, `—`, `-` or `.` after the
//!   number). Bugs are numbered from 1; the number is what the count relies on.
//! - Optional field lines inside a bug: `**Feature:** …`, `**Severity:** …`, `**Level:** <n>`,
//!   `**Category:** …` (any `**Name:** value` line is kept in [`Bug::fields`]).
//!
//! # `ITERATION_LOG.md` (appended by the agent, one block per fix or upgrade)
//! - One second-level heading per block. A fix: `## Iteration <n> — Fix (<time>)`; an upgrade:
//!   `## Upgrade — Level <n> (<time>)`. A heading naming neither `Fix` nor `Upgrade` is kept as
//!   [`EntryKind::Other`]. `Level <n>` / `L<n>` anywhere in the heading sets the entry's level;
//!   the text in the last parentheses is its time.
//! - Field lines `**Name:** value`; a value runs on over the following lines until the next
//!   field line or heading. `**Category:**` may list several categories separated by `|` or
//!   `,` (a `/` belongs to a category's name, as in `Compilation/Build`). `**Level:** <n>` in
//!   the body also sets the level.
//!
//! # `GRADING_RESULTS.md` (written by the grader after testing)
//! - A Markdown table whose rows score features: a row with a cell `<score>/<max>` (or a score
//!   cell followed by a max cell) is a feature row; its first cell names the feature
//!   (`Feature 3: Read receipts`, `F3`, `3`, or a name).
//! - The total: a table row whose first cell is `TOTAL` (any case, bold or not) or a line
//!   `**Total:** <score>/<max>` / `TOTAL: <score>/<max>`. When no total is written, the sum of
//!   the feature rows stands in and [`GradingResults::total_is_computed`] says so.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A parsed `BUG_REPORT.md`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BugReport {
    /// The first heading's text, without the `#`.
    pub title: Option<String>,
    /// The level the title names, if any.
    pub level: Option<u32>,
    /// The fix iteration the title names, if any.
    pub iteration: Option<u32>,
    /// The bugs, in the order written.
    pub bugs: Vec<Bug>,
}

/// One `## Bug <n>: <title>` section.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Bug {
    pub number: u32,
    pub title: String,
    /// `**Feature:**`, if given.
    pub feature: Option<String>,
    /// `**Severity:**`, if given.
    pub severity: Option<String>,
    /// `**Level:**`, if given and numeric.
    pub level: Option<u32>,
    /// Every `**Name:** value` line, by name as written.
    pub fields: BTreeMap<String, String>,
    /// The section's text below the heading.
    pub body: String,
}

impl BugReport {
    /// Number of bugs reported.
    pub fn count(&self) -> usize {
        self.bugs.len()
    }
}

/// Reads a `BUG_REPORT.md`.
pub fn parse_bug_report(text: &str) -> BugReport {
    let mut report = BugReport::default();
    for section in sections(text) {
        match section.depth {
            1 if report.title.is_none() => {
                report.level = find_level(&section.heading);
                report.iteration = number_after_word(&section.heading, "iteration");
                report.title = Some(section.heading.clone());
            }
            2 | 3 => {
                let Some((number, title)) = bug_heading(&section.heading) else {
                    continue;
                };
                let fields = field_lines(&section.body);
                let get = |name: &str| {
                    fields
                        .iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case(name))
                        .map(|(_, v)| v.clone())
                };
                let level = get("level").and_then(|v| find_level(&v).or_else(|| first_int(&v)));
                report.bugs.push(Bug {
                    number,
                    title,
                    feature: get("feature"),
                    severity: get("severity"),
                    level,
                    body: section.body.trim().to_string(),
                    fields,
                });
            }
            _ => {}
        }
    }
    report
}

/// A parsed `ITERATION_LOG.md`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IterationLog {
    pub entries: Vec<IterationEntry>,
}

/// What an iteration-log block records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    Fix,
    Upgrade,
    /// Neither; the heading says what.
    Other,
}

/// One `## …` block of the iteration log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IterationEntry {
    pub kind: EntryKind,
    /// The heading as written, without `##`.
    pub heading: String,
    /// `Iteration <n>` in the heading.
    pub number: Option<u32>,
    /// `Level <n>` / `L<n>` in the heading, else `**Level:**` in the body.
    pub level: Option<u32>,
    /// The heading's last parenthesised text (`15:38`, `current`).
    pub time: Option<String>,
    /// `**Category:**`, split into its parts.
    pub categories: Vec<String>,
    /// Every `**Name:** value` field, by name as written.
    pub fields: BTreeMap<String, String>,
}

impl IterationLog {
    /// The fix blocks.
    pub fn fixes(&self) -> impl Iterator<Item = &IterationEntry> {
        self.entries.iter().filter(|e| e.kind == EntryKind::Fix)
    }

    /// How many blocks name each category, over fix blocks only.
    pub fn fix_categories(&self) -> BTreeMap<String, u32> {
        let mut counts = BTreeMap::new();
        for entry in self.fixes() {
            for category in &entry.categories {
                *counts.entry(category.clone()).or_insert(0) += 1;
            }
        }
        counts
    }
}

/// Reads an `ITERATION_LOG.md`.
pub fn parse_iteration_log(text: &str) -> IterationLog {
    let mut log = IterationLog::default();
    for section in sections(text) {
        if section.depth != 2 {
            continue;
        }
        let heading = section.heading.clone();
        let lower = heading.to_ascii_lowercase();
        let kind = if contains_word(&lower, "fix") {
            EntryKind::Fix
        } else if contains_word(&lower, "upgrade") {
            EntryKind::Upgrade
        } else {
            EntryKind::Other
        };
        let fields = field_lines(&section.body);
        let field = |name: &str| {
            fields
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        };
        let categories = field("category")
            .map(|c| {
                c.split(['|', ','])
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        let level = find_level(&heading)
            .or_else(|| field("level").and_then(|v| find_level(v).or_else(|| first_int(v))));
        let time = heading
            .rfind('(')
            .and_then(|open| {
                heading[open + 1..]
                    .find(')')
                    .map(|close| heading[open + 1..open + 1 + close].trim().to_string())
            })
            .filter(|t| !t.is_empty());
        log.entries.push(IterationEntry {
            kind,
            number: number_after_word(&heading, "iteration"),
            level,
            time,
            categories,
            heading,
            fields,
        });
    }
    log
}

/// A parsed `GRADING_RESULTS.md`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GradingResults {
    pub features: Vec<FeatureScore>,
    /// The TOTAL row or line; else the sum of the feature rows (see `total_is_computed`).
    pub total: Option<Score>,
    /// True when no TOTAL was written and `total` is the sum of the feature rows.
    pub total_is_computed: bool,
}

/// A score out of a maximum.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Score {
    pub score: f64,
    /// The maximum, when written.
    pub max: Option<f64>,
}

/// One feature row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureScore {
    /// The row's first cell, without emphasis.
    pub name: String,
    /// The feature number the name gives (`Feature 3`, `F3`, `3`), if any.
    pub number: Option<u32>,
    pub score: Score,
}

/// Reads a `GRADING_RESULTS.md`.
pub fn parse_grading_results(text: &str) -> GradingResults {
    let mut results = GradingResults::default();
    let mut written_total = None;
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('|') {
            let cells: Vec<String> = trimmed
                .trim_matches('|')
                .split('|')
                .map(|c| strip_emphasis(c.trim()))
                .collect();
            if cells.iter().all(|c| c.chars().all(|ch| "-: ".contains(ch))) {
                continue; // the header separator row
            }
            let Some(score) = row_score(&cells[1.min(cells.len())..]) else {
                continue;
            };
            let name = cells.first().cloned().unwrap_or_default();
            if name.eq_ignore_ascii_case("total") || name.to_ascii_lowercase().starts_with("total")
            {
                written_total = Some(score);
            } else {
                results.features.push(FeatureScore {
                    number: feature_number(&name),
                    name,
                    score,
                });
            }
        } else if written_total.is_none() {
            let plain = strip_emphasis(trimmed);
            let lower = plain.to_ascii_lowercase();
            if let Some(rest) = lower.strip_prefix("total") {
                let rest = rest.trim_start_matches([':', ' ', '=', '-']);
                if let Some(score) = score_fraction(rest)
                    .or_else(|| first_number(rest).map(|score| Score { score, max: None }))
                {
                    written_total = Some(score);
                }
            }
        }
    }
    if let Some(total) = written_total {
        results.total = Some(total);
    } else if !results.features.is_empty() {
        let score = results.features.iter().map(|f| f.score.score).sum();
        let max = results
            .features
            .iter()
            .map(|f| f.score.max)
            .sum::<Option<f64>>();
        results.total = Some(Score { score, max });
        results.total_is_computed = true;
    }
    results
}

// ---- helpers ----

struct Section {
    depth: usize,
    heading: String,
    body: String,
}

/// Splits Markdown into heading sections (text before the first heading is dropped).
/// Headings inside fenced code blocks are ignored.
fn sections(text: &str) -> Vec<Section> {
    let mut out: Vec<Section> = Vec::new();
    let mut in_fence = false;
    for line in text.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            in_fence = !in_fence;
        }
        if !in_fence && trimmed.starts_with('#') {
            let depth = trimmed.chars().take_while(|&c| c == '#').count();
            let rest = &trimmed[depth..];
            if depth <= 6 && (rest.is_empty() || rest.starts_with(' ')) {
                out.push(Section {
                    depth,
                    heading: strip_emphasis(rest.trim()),
                    body: String::new(),
                });
                continue;
            }
        }
        if let Some(last) = out.last_mut() {
            last.body.push_str(line);
            last.body.push('\n');
        }
    }
    out
}

/// `Bug 3: title` → (3, "title").
fn bug_heading(heading: &str) -> Option<(u32, String)> {
    let lower = heading.to_ascii_lowercase();
    let rest = lower.strip_prefix("bug")?;
    let rest_orig = &heading[heading.len() - rest.len()..];
    let rest_orig = rest_orig.trim_start_matches([' ', '#']);
    let digits: String = rest_orig
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    let number = digits.parse().ok()?;
    let title = rest_orig[digits.len()..]
        .trim_start_matches([':', '.', '-', '—', '–', ')', ' '])
        .trim()
        .to_string();
    Some((number, title))
}

/// `**Name:** value` lines (also `- **Name:** value`, `**Name**: value`), with values running
/// on until the next field line.
fn field_lines(body: &str) -> BTreeMap<String, String> {
    let mut fields: BTreeMap<String, String> = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in body.lines() {
        let trimmed = line.trim();
        let unbulleted = trimmed
            .strip_prefix("- ")
            .or_else(|| trimmed.strip_prefix("* "))
            .unwrap_or(trimmed);
        if let Some((name, value)) = field_line(unbulleted) {
            fields.insert(name.clone(), value);
            current = Some(name);
        } else if let Some(name) = &current {
            if line.trim().is_empty() {
                // A blank line ends a one-line field but keeps a multi-line one going.
                if let Some(v) = fields.get_mut(name)
                    && !v.is_empty()
                {
                    current = None;
                }
                continue;
            }
            if let Some(v) = fields.get_mut(name) {
                if !v.is_empty() {
                    v.push('\n');
                }
                v.push_str(line.trim());
            }
        }
    }
    fields
}

fn field_line(line: &str) -> Option<(String, String)> {
    let rest = line.strip_prefix("**")?;
    let close = rest.find("**")?;
    let inside = &rest[..close];
    let after = &rest[close + 2..];
    let (name, value) = if let Some(name) = inside.strip_suffix(':') {
        (name, after)
    } else if let Some(value) = after.strip_prefix(':') {
        (inside, value)
    } else {
        return None;
    };
    let name = name.trim();
    if name.is_empty() || name.len() > 60 {
        return None;
    }
    Some((name.to_string(), value.trim().to_string()))
}

fn strip_emphasis(s: &str) -> String {
    s.replace("**", "").replace("__", "").trim().to_string()
}

fn contains_word(haystack: &str, word: &str) -> bool {
    haystack
        .split(|c: char| !c.is_ascii_alphanumeric())
        .any(|w| w == word)
}

/// `Level 12`, `level-12`, `L12`, `L 12` → 12.
fn find_level(text: &str) -> Option<u32> {
    if let Some(n) = number_after_word(text, "level") {
        return Some(n);
    }
    let bytes = text.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        if (b == b'L' || b == b'l')
            && (i == 0 || !bytes[i - 1].is_ascii_alphanumeric())
            && bytes.get(i + 1).is_some_and(|c| c.is_ascii_digit())
        {
            let digits: String = text[i + 1..]
                .chars()
                .take_while(|c| c.is_ascii_digit())
                .collect();
            let end = i + 1 + digits.len();
            if bytes.get(end).is_none_or(|c| !c.is_ascii_alphanumeric()) {
                return digits.parse().ok();
            }
        }
    }
    None
}

/// The number right after `word` (case-insensitive), e.g. `Iteration 3` → 3.
fn number_after_word(text: &str, word: &str) -> Option<u32> {
    let lower = text.to_ascii_lowercase();
    let mut from = 0;
    while let Some(pos) = lower[from..].find(word) {
        let start = from + pos;
        let end = start + word.len();
        let before_ok = start == 0 || !lower.as_bytes()[start - 1].is_ascii_alphanumeric();
        if before_ok {
            let rest = lower[end..].trim_start_matches([' ', '-', '_', '#', ':']);
            let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
            if let Ok(n) = digits.parse() {
                return Some(n);
            }
        }
        from = end;
    }
    None
}

fn first_int(text: &str) -> Option<u32> {
    let digits: String = text
        .chars()
        .skip_while(|c| !c.is_ascii_digit())
        .take_while(|c| c.is_ascii_digit())
        .collect();
    digits.parse().ok()
}

fn first_number(text: &str) -> Option<f64> {
    let start = text.find(|c: char| c.is_ascii_digit())?;
    let num: String = text[start..]
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    num.trim_end_matches('.').parse().ok()
}

/// `26/30`, `26 / 30`, `2.5/3` at the start of `text`.
fn score_fraction(text: &str) -> Option<Score> {
    let text = text.trim();
    let (a, b) = text.split_once('/')?;
    let score: f64 = a.trim().parse().ok()?;
    let max_text: String = b
        .trim()
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let max: f64 = max_text.trim_end_matches('.').parse().ok()?;
    Some(Score {
        score,
        max: Some(max),
    })
}

/// The score of a table row (cells after the first): the first cell holding `a/b`, else a
/// numeric cell, with the next numeric cell as its maximum.
fn row_score(cells: &[String]) -> Option<Score> {
    for cell in cells {
        if let Some(score) = score_fraction(cell) {
            return Some(score);
        }
    }
    let numeric: Vec<f64> = cells
        .iter()
        .filter_map(|c| c.trim().parse::<f64>().ok())
        .collect();
    match numeric.as_slice() {
        [] => None,
        [score] => Some(Score {
            score: *score,
            max: None,
        }),
        [score, max, ..] => Some(Score {
            score: *score,
            max: Some(*max),
        }),
    }
}

/// `Feature 3: …`, `F3 …`, `3` → 3.
fn feature_number(name: &str) -> Option<u32> {
    if let Some(n) = number_after_word(name, "feature") {
        return Some(n);
    }
    let t = name.trim();
    let t = t
        .strip_prefix('F')
        .or_else(|| t.strip_prefix('f'))
        .unwrap_or(t);
    let digits: String = t.chars().take_while(|c| c.is_ascii_digit()).collect();
    let rest = &t[digits.len()..];
    if !digits.is_empty()
        && rest
            .chars()
            .next()
            .is_none_or(|c| !c.is_ascii_alphanumeric())
    {
        digits.parse().ok()
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bug_report_with_title_level_iteration_and_fields() {
        let text = "# Bug Report — L12 Anonymous Migration (PostgreSQL) — Iteration 2\n\n\
                    ## Bug 1: List crashes on load\n\nThe app crashes.\n\n\
                    **Feature:** Presence (Feature 7)\n**Severity:** Critical\n\n\
                    ## Bug 2 — Reactions vanish\n**Level:** 4\nSteps…\n";
        let report = parse_bug_report(text);
        assert_eq!(report.level, Some(12));
        assert_eq!(report.iteration, Some(2));
        assert_eq!(report.count(), 2);
        assert_eq!(report.bugs[0].number, 1);
        assert_eq!(report.bugs[0].title, "List crashes on load");
        assert_eq!(
            report.bugs[0].feature.as_deref(),
            Some("Presence (Feature 7)")
        );
        assert_eq!(report.bugs[0].severity.as_deref(), Some("Critical"));
        assert_eq!(report.bugs[1].title, "Reactions vanish");
        assert_eq!(report.bugs[1].level, Some(4));
    }

    #[test]
    fn bug_report_without_bug_headings_has_no_bugs() {
        let report = parse_bug_report("# Bug Report\n\nEverything works.\n## Notes\ntext\n");
        assert_eq!(report.count(), 0);
        assert_eq!(report.level, None);
        assert_eq!(parse_bug_report("").count(), 0);
    }

    #[test]
    fn headings_inside_code_fences_are_not_bugs() {
        let text = "# Bug Report\n## Bug 1: real\n```\n## Bug 2: inside a fence\n```\n";
        let report = parse_bug_report(text);
        assert_eq!(report.count(), 1);
        assert!(report.bugs[0].body.contains("## Bug 2"));
    }

    #[test]
    fn iteration_log_kinds_levels_times_and_categories() {
        let text = "# Iteration Log\n\n## Iteration 1 — Fix (15:38)\n\n\
                    **Category:** Compilation/Build\n**What broke:** it\nspans lines\n\n\
                    ## Iteration 2 — Fix (current)\n**Category:** Feature Broken | Integration\n\n\
                    ## Upgrade — Level 11 (18:20)\n**Feature added:** Draft Sync\n\n\
                    ## Notes\nfree text\n";
        let log = parse_iteration_log(text);
        assert_eq!(log.entries.len(), 4);
        assert_eq!(log.entries[0].kind, EntryKind::Fix);
        assert_eq!(log.entries[0].number, Some(1));
        assert_eq!(log.entries[0].time.as_deref(), Some("15:38"));
        assert_eq!(log.entries[0].categories, vec!["Compilation/Build"]);
        assert_eq!(log.entries[0].fields["What broke"], "it\nspans lines");
        assert_eq!(log.entries[1].time.as_deref(), Some("current"));
        assert_eq!(
            log.entries[1].categories,
            vec!["Feature Broken", "Integration"]
        );
        assert_eq!(log.entries[2].kind, EntryKind::Upgrade);
        assert_eq!(log.entries[2].level, Some(11));
        assert_eq!(log.entries[3].kind, EntryKind::Other);
        assert_eq!(log.fixes().count(), 2);
        assert_eq!(log.fix_categories()["Integration"], 1);
    }

    #[test]
    fn grading_results_table_with_total_row() {
        let text = "# Grading\n\n| Feature | Score | Max | Notes |\n|---|---|---|---|\n\
                    | Feature 1: Basic chat | 3 | 3 | ok |\n| F2 Typing | 2.5 | 3 | slow |\n\
                    | 3. Receipts | 1/3 | | refresh |\n| **TOTAL** | **6.5** | **9** | |\n";
        let results = parse_grading_results(text);
        assert_eq!(results.features.len(), 3);
        assert_eq!(results.features[0].number, Some(1));
        assert_eq!(results.features[1].number, Some(2));
        assert_eq!(results.features[1].score.score, 2.5);
        assert_eq!(results.features[2].number, Some(3));
        assert_eq!(
            results.features[2].score,
            Score {
                score: 1.0,
                max: Some(3.0)
            }
        );
        assert_eq!(
            results.total,
            Some(Score {
                score: 6.5,
                max: Some(9.0)
            })
        );
        assert!(!results.total_is_computed);
    }

    #[test]
    fn grading_results_total_line_and_computed_total() {
        let line = parse_grading_results("Scores below.\n\n**Total: 26/30**\n");
        assert_eq!(
            line.total,
            Some(Score {
                score: 26.0,
                max: Some(30.0)
            })
        );
        let computed = parse_grading_results("| F1 | 3 | 3 |\n| F2 | 1 | 3 |\n");
        assert_eq!(
            computed.total,
            Some(Score {
                score: 4.0,
                max: Some(6.0)
            })
        );
        assert!(computed.total_is_computed);
        assert_eq!(parse_grading_results("no scores").total, None);
    }
}
