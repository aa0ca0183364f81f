//! `--check <published.json>`: recompute every figure a published metrics file states.
//!
//! Two shapes are read: the original harness's `METRICS_REPORT.json` (`cost.<b>.total_usd`,
//! `timing_seconds`, `bugs.by_level[]`, …) and `METRICS_DATA.json` (`cost.<b>.total`,
//! `time_seconds`, `quality`, `bugs_by_level[]`, … — this tool's own output included).
//! Backends are named `spacetime`/`postgres`/`mongodb` or `stdb`/`pg`/`mongo`.
//!
//! Every numeric (and identifying text) leaf of the file becomes a row: it agrees, disagrees,
//! or is not checkable from the run's data (lines of code without the app source, bug
//! categories, guideline sizes, comparisons with other runs, …), with the reason. A number
//! agrees when the recomputed value rounds to it: the difference is at most half a unit of
//! the last decimal as the file writes it, trailing zeros included (`12.62` allows ±0.005,
//! `26.0` ±0.05, `56` ±0.5).

use std::collections::BTreeMap;

use serde_json::Value;

use crate::data::RunMetrics;
use crate::looks::Looks;
use crate::metrics::BackendMetrics;

/// How a published figure compares.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Agrees,
    Disagrees,
    NotCheckable(String),
}

/// One published figure.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckRow {
    /// Dotted path, arrays of levels as `bugs.by_level[level=3].pg`.
    pub figure: String,
    pub published: String,
    pub recomputed: Option<String>,
    pub outcome: Outcome,
}

/// The whole comparison.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckReport {
    pub shape: &'static str,
    pub rows: Vec<CheckRow>,
}

impl CheckReport {
    pub fn disagreements(&self) -> Vec<&CheckRow> {
        self.rows
            .iter()
            .filter(|r| r.outcome == Outcome::Disagrees)
            .collect()
    }

    pub fn count(&self, pred: impl Fn(&Outcome) -> bool) -> usize {
        self.rows.iter().filter(|r| pred(&r.outcome)).count()
    }

    /// A fixed-width table of rows.
    pub fn table<'a>(rows: impl IntoIterator<Item = &'a CheckRow>) -> String {
        let rows: Vec<&CheckRow> = rows.into_iter().collect();
        let w = rows
            .iter()
            .map(|r| r.figure.len())
            .max()
            .unwrap_or(6)
            .max(6);
        let mut out = format!(
            "{:<w$}  {:>14}  {:>14}  {}\n",
            "figure", "published", "recomputed", "result"
        );
        for r in rows {
            let result = match &r.outcome {
                Outcome::Agrees => "ok".to_string(),
                Outcome::Disagrees => "DISAGREES".to_string(),
                Outcome::NotCheckable(why) => format!("not checkable: {why}"),
            };
            out.push_str(&format!(
                "{:<w$}  {:>14}  {:>14}  {}\n",
                r.figure,
                r.published,
                r.recomputed.as_deref().unwrap_or("-"),
                result
            ));
        }
        out
    }

    /// One line of counts.
    pub fn summary_line(&self) -> String {
        format!(
            "{} figures in the {} file: {} agree, {} disagree, {} not checkable",
            self.rows.len(),
            self.shape,
            self.count(|o| *o == Outcome::Agrees),
            self.count(|o| *o == Outcome::Disagrees),
            self.count(|o| matches!(o, Outcome::NotCheckable(_))),
        )
    }
}

enum Recomputed {
    Num(f64),
    Text(String),
    NotCheckable(String),
    /// Not a figure (an identifier, a note, this tool's bookkeeping).
    Skip,
}

/// Compares a published file's text with a run's recomputed figures; the decimals each
/// number was published with (trailing zeros included: `26.0` means one decimal) set how
/// much rounding is allowed.
pub fn check_text(text: &str, run: &RunMetrics) -> serde_json::Result<CheckReport> {
    let published: Value = serde_json::from_str(text)?;
    let decimals = literal_decimals(text);
    Ok(check_with(&published, &decimals, run))
}

/// Compares a published JSON value with a run's figures (decimals from each number's
/// shortest form: use [`check_text`] when the file's text is at hand).
pub fn check(published: &Value, run: &RunMetrics) -> CheckReport {
    check_with(published, &BTreeMap::new(), run)
}

fn check_with(
    published: &Value,
    decimals: &BTreeMap<String, usize>,
    run: &RunMetrics,
) -> CheckReport {
    let shape = if published.get("schema").and_then(Value::as_str) == Some(crate::data::SCHEMA) {
        "bench-report METRICS_DATA.json"
    } else if published.get("timing_seconds").is_some()
        || published.pointer("/bugs/by_level").is_some()
    {
        "METRICS_REPORT.json"
    } else {
        "METRICS_DATA.json"
    };
    let mut leaves = Vec::new();
    flatten(published, &mut Vec::new(), &mut leaves);
    let mut rows = Vec::new();
    for (path, value) in leaves {
        let recomputed = recompute(&path, run);
        let figure = path.join(".");
        let published_text = match &value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let row = match (recomputed, &value) {
            (Recomputed::Skip, _) => continue,
            (_, Value::Null | Value::Bool(_)) => continue,
            (Recomputed::NotCheckable(why), _) => CheckRow {
                figure,
                published: published_text,
                recomputed: None,
                outcome: Outcome::NotCheckable(why),
            },
            (Recomputed::Num(x), Value::Number(n)) => {
                let p = n.as_f64().unwrap_or(f64::NAN);
                let places = decimals
                    .get(&figure)
                    .copied()
                    .unwrap_or_else(|| shortest_decimals(p));
                let published_text = match decimals.get(&figure) {
                    Some(&d) => format!("{p:.d$}"),
                    None => published_text,
                };
                CheckRow {
                    figure,
                    published: published_text,
                    recomputed: Some(format_recomputed(x, places)),
                    outcome: if agrees(p, x, places) {
                        Outcome::Agrees
                    } else {
                        Outcome::Disagrees
                    },
                }
            }
            (Recomputed::Text(t), Value::String(s)) => CheckRow {
                figure,
                published: published_text,
                outcome: if t == *s {
                    Outcome::Agrees
                } else {
                    Outcome::Disagrees
                },
                recomputed: Some(t),
            },
            (Recomputed::Num(x), _) => CheckRow {
                figure,
                published: published_text,
                recomputed: Some(format!("{x}")),
                outcome: Outcome::Disagrees,
            },
            (Recomputed::Text(t), _) => CheckRow {
                figure,
                published: published_text,
                recomputed: Some(t),
                outcome: Outcome::Disagrees,
            },
        };
        rows.push(row);
    }
    CheckReport { shape, rows }
}

/// Leaves of the JSON value with their paths; array items of level tables are addressed by
/// their `level` (`by_level[level=3]`).
fn flatten(value: &Value, path: &mut Vec<String>, out: &mut Vec<(Vec<String>, Value)>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                path.push(k.clone());
                flatten(v, path, out);
                path.pop();
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let level = item.get("level").and_then(Value::as_u64);
                in_array_item(path, level, i, |path| flatten(item, path, out));
            }
        }
        leaf => out.push((path.clone(), leaf.clone())),
    }
}

/// Runs `visit` with `path` addressing item `index` of the array `path` ends at: the array's
/// name followed by `[level=N]` for an item of a level table, `[index]` otherwise.
fn in_array_item(
    path: &mut Vec<String>,
    level: Option<u64>,
    index: usize,
    visit: impl FnOnce(&mut Vec<String>),
) {
    let key = match level {
        Some(level) => format!("[level={level}]"),
        None => format!("[{index}]"),
    };
    if let Some(last) = path.last_mut() {
        last.push_str(&key);
    } else {
        path.push(key.clone());
    }
    visit(path);
    if let Some(last) = path.last_mut() {
        let cut = last.len() - key.len();
        last.truncate(cut);
        if last.is_empty() {
            path.pop();
        }
    }
}

/// Decimals of a number's shortest form (`32.3` → 1).
fn shortest_decimals(x: f64) -> usize {
    let text = format!("{x}");
    text.split_once('.').map_or(0, |(_, d)| d.len())
}

/// Agrees within half a unit of the published value's last decimal.
fn agrees(published: f64, recomputed: f64, decimals: usize) -> bool {
    let tolerance = 0.5 * 10f64.powi(-(decimals as i32)) + 1e-9 * published.abs().max(1.0);
    (published - recomputed).abs() <= tolerance
}

fn format_recomputed(x: f64, decimals: usize) -> String {
    if x.fract() == 0.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.*}", decimals + 2)
    }
}

/// The decimals every number literal of a JSON text was written with, by figure path (the
/// paths [`flatten`] gives). Literals in exponent form are left out (their shortest form is
/// used). The text must be valid JSON (checked before by serde_json); anything else gives
/// an empty or partial map, which only makes the tolerance fall back.
fn literal_decimals(text: &str) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    let mut parser = Literals {
        bytes: text.as_bytes(),
        pos: 0,
    };
    if let Some(tree) = parser.value() {
        collect_literals(&tree, &mut Vec::new(), &mut out);
    }
    out
}

enum Lit {
    Obj(Vec<(String, Lit)>),
    Arr(Vec<Lit>),
    Num(String),
    Other,
}

struct Literals<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Literals<'_> {
    fn ws(&mut self) {
        while self.pos < self.bytes.len() && self.bytes[self.pos].is_ascii_whitespace() {
            self.pos += 1;
        }
    }

    fn string(&mut self) -> Option<String> {
        // At the opening quote; JSON escapes are decoded by serde_json on the same text.
        let start = self.pos;
        self.pos += 1;
        while self.pos < self.bytes.len() {
            match self.bytes[self.pos] {
                b'\\' => self.pos += 2,
                b'"' => {
                    self.pos += 1;
                    return serde_json::from_slice(&self.bytes[start..self.pos]).ok();
                }
                _ => self.pos += 1,
            }
        }
        None
    }

    fn value(&mut self) -> Option<Lit> {
        self.ws();
        match *self.bytes.get(self.pos)? {
            b'{' => {
                self.pos += 1;
                let mut items = Vec::new();
                loop {
                    self.ws();
                    match *self.bytes.get(self.pos)? {
                        b'}' => {
                            self.pos += 1;
                            return Some(Lit::Obj(items));
                        }
                        b',' => self.pos += 1,
                        b'"' => {
                            let key = self.string()?;
                            self.ws();
                            if self.bytes.get(self.pos) != Some(&b':') {
                                return None;
                            }
                            self.pos += 1;
                            items.push((key, self.value()?));
                        }
                        _ => return None,
                    }
                }
            }
            b'[' => {
                self.pos += 1;
                let mut items = Vec::new();
                loop {
                    self.ws();
                    match *self.bytes.get(self.pos)? {
                        b']' => {
                            self.pos += 1;
                            return Some(Lit::Arr(items));
                        }
                        b',' => self.pos += 1,
                        _ => items.push(self.value()?),
                    }
                }
            }
            b'"' => self.string().map(|_| Lit::Other),
            b'-' | b'0'..=b'9' => {
                let start = self.pos;
                while self.pos < self.bytes.len()
                    && matches!(
                        self.bytes[self.pos],
                        b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9'
                    )
                {
                    self.pos += 1;
                }
                Some(Lit::Num(
                    String::from_utf8_lossy(&self.bytes[start..self.pos]).into_owned(),
                ))
            }
            _ => {
                // true, false, null
                while self.pos < self.bytes.len() && self.bytes[self.pos].is_ascii_alphabetic() {
                    self.pos += 1;
                }
                Some(Lit::Other)
            }
        }
    }
}

fn collect_literals(lit: &Lit, path: &mut Vec<String>, out: &mut BTreeMap<String, usize>) {
    match lit {
        Lit::Obj(items) => {
            for (k, v) in items {
                path.push(k.clone());
                collect_literals(v, path, out);
                path.pop();
            }
        }
        Lit::Arr(items) => {
            for (i, item) in items.iter().enumerate() {
                let level = match item {
                    Lit::Obj(fields) => fields.iter().find_map(|(k, v)| match (k.as_str(), v) {
                        ("level", Lit::Num(n)) => n.parse::<u64>().ok(),
                        _ => None,
                    }),
                    _ => None,
                };
                in_array_item(path, level, i, |path| collect_literals(item, path, out));
            }
        }
        Lit::Num(text) if !text.contains(['e', 'E']) => {
            let decimals = text.split_once('.').map_or(0, |(_, d)| d.len());
            out.insert(path.join("."), decimals);
        }
        _ => {}
    }
}

/// The run's figures of the backend a published key names (its name or one of the
/// `[report] aliases` of its `backend.toml`).
fn backend<'a>(run: &'a RunMetrics, key: &str) -> Option<&'a BackendMetrics> {
    run.backends.get(Looks::of_repo().resolve(key))
}

/// The baseline of published comparisons (`[report] baseline = true`), when in the run.
fn baseline_of(run: &RunMetrics) -> Option<&BackendMetrics> {
    run.backends.get(Looks::of_repo().baseline.as_deref()?)
}

/// `(backend, in percent)` of a `<backend>_premium_usd` or `<backend>_premium_pct` key.
fn premium(key: &str) -> Option<(&str, bool)> {
    let (name, unit) = key.rsplit_once("_premium_")?;
    match unit {
        "usd" => Some((name, false)),
        "pct" => Some((name, true)),
        _ => None,
    }
}

/// The level number of a `name[level=N]` segment.
fn level_of(segment: &str) -> Option<(String, u32)> {
    let (name, rest) = segment.split_once("[level=")?;
    let n = rest.strip_suffix(']')?.parse().ok()?;
    Some((name.to_string(), n))
}

const NO_SOURCE: &str = "the app source is not in the run";
const BUG_REPORTS: &str =
    "not every fix session's bug report is in the run (the original layout keeps only the last)";

/// Reads one figure of a backend by its published field name.
type Figure = fn(&BackendMetrics, &str) -> Recomputed;

fn recompute(path: &[String], run: &RunMetrics) -> Recomputed {
    use Recomputed::*;
    let p: Vec<&str> = path.iter().map(String::as_str).collect();
    // A figure of the backend `key` names.
    let of = |key: &str, figure: Figure, field: &str| match backend(run, key) {
        None => NotCheckable(format!("no backend `{key}` in the run")),
        Some(m) => figure(m, field),
    };
    match p.as_slice() {
        // This tool's own bookkeeping, not published figures.
        [
            "schema" | "schema_version" | "generator" | "generated_at" | "baseline" | "warnings",
            ..,
        ] => Skip,
        [first, ..]
            if first.starts_with("runs")
                || first.starts_with("statistics")
                || first.starts_with("ratios") =>
        {
            Skip
        }
        ["meta", field] => meta_figure(run, field),
        ["meta", ..] => NotCheckable("not recorded in the sessions' data".into()),
        ["guidelines", ..] => NotCheckable("the guideline files are not part of the run".into()),
        ["vs_previous_run", ..] => NotCheckable("compares with another run".into()),
        ["cost", "combined_usd"] => Num(run.backends.values().map(|m| m.cost.total).sum()),
        ["cost", key] if premium(key).is_some() => premium_figure(run, key),
        ["cost", key, field] => of(key, cost_figure, field),
        ["tokens", key, field] => of(key, token_figure, field),
        ["timing_seconds" | "time_seconds", key, field] => of(key, time_figure, field),
        ["efficiency", key, field] => of(key, efficiency_figure, field),
        ["bugs", "summary", key, field, ..] | ["quality", key, field, ..] => {
            of(key, quality_figure, field)
        }
        ["lines_of_code" | "loc", "methodology_note"] => Skip,
        [section, field] => match level_of(section) {
            Some((name, level))
                if (name == "by_level" || name == "bugs_by_level") && *field != "feature" =>
            {
                level_bugs(run, field, level)
            }
            Some(_) => Skip,
            None => NotCheckable("unknown figure".into()),
        },
        ["bugs", section, field] if level_of(section).is_some() => match level_of(section) {
            Some((_, level)) if *field != "feature" => level_bugs(run, field, level),
            _ => Skip,
        },
        ["lines_of_code" | "loc", key, field] => of(key, loc_figure, field),
        _ => NotCheckable("unknown figure".into()),
    }
}

fn meta_figure(run: &RunMetrics, field: &str) -> Recomputed {
    use Recomputed::*;
    match field {
        "run_id" => Text(run.name.clone()),
        "levels_completed" => Num(run
            .backends
            .values()
            .map(|m| m.levels_completed)
            .max()
            .unwrap_or(0) as f64),
        "model" if !run.models.is_empty() => Text(run.models.join(", ")),
        "variant" if !run.variants.is_empty() => Text(run.variants.join(", ")),
        _ => NotCheckable("not recorded in the sessions' data".into()),
    }
}

/// `<backend>_premium_usd|pct`: what the backend cost more than the baseline.
fn premium_figure(run: &RunMetrics, key: &str) -> Recomputed {
    use Recomputed::*;
    let Some((name, pct)) = premium(key) else {
        return NotCheckable("unknown figure".into());
    };
    match (backend(run, name), baseline_of(run)) {
        (Some(m), Some(base)) if !pct => Num(m.cost.total - base.cost.total),
        (Some(m), Some(base)) if base.cost.total > 0.0 => {
            Num((m.cost.total - base.cost.total) / base.cost.total * 100.0)
        }
        _ => NotCheckable(format!("needs both `{name}` and the baseline backend")),
    }
}

fn cost_figure(m: &BackendMetrics, field: &str) -> Recomputed {
    use Recomputed::*;
    match field {
        "upgrades_usd" | "upgrades" => Num(m.cost.upgrades),
        "fixes_usd" | "fixes" => Num(m.cost.fixes),
        "total_usd" | "total" => Num(m.cost.total),
        "per_feature_usd" | "per_feature" => Num(m.cost.per_feature),
        "per_feature_upgrades_usd" => Num(m.cost.per_feature_upgrades),
        "per_feature_fixes_usd" => Num(m.cost.per_feature_fixes),
        _ => NotCheckable("unknown figure".into()),
    }
}

fn token_figure(m: &BackendMetrics, field: &str) -> Recomputed {
    use Recomputed::*;
    match field {
        "fresh_input" => Num(m.tokens.fresh_input as f64),
        "fresh_output" => Num(m.tokens.fresh_output as f64),
        "cache_read" => Num(m.tokens.cache_read as f64),
        "cache_creation" => Num(m.tokens.cache_creation as f64),
        "total_api_calls" | "api_calls" => Num(m.tokens.api_calls as f64),
        "output_per_feature" => Num(m.tokens.output_per_feature),
        "calls_per_feature" => Num(m.tokens.calls_per_feature),
        _ => NotCheckable("unknown figure".into()),
    }
}

fn time_figure(m: &BackendMetrics, field: &str) -> Recomputed {
    use Recomputed::*;
    match field {
        "total_duration" | "total" => Num(m.time.total),
        "upgrade_total" => Num(m.time.upgrade_total),
        "fix_total" => Num(m.time.fix_total),
        "upgrade_avg" => Num(m.time.upgrade_avg_incl_generate),
        "fix_avg" | "avg_fix_session" => Num(m.time.avg_fix_session),
        "total_minutes" => Num(m.time.total_minutes),
        "l1_generation" => Num(m.time.generation),
        "avg_upgrade" => Num(m.time.avg_upgrade),
        "wall_clock" => match m.time.wall_clock_total {
            Some(w) => Num(w),
            None => NotCheckable("a session lacks its start or end time".into()),
        },
        _ => NotCheckable("unknown figure".into()),
    }
}

/// `f(total bugs)` when every fix session's bug report is in the run.
fn bugs_known(m: &BackendMetrics, f: impl Fn(u32) -> f64) -> Recomputed {
    match m.quality.total_bugs {
        Some(n) => Recomputed::Num(f(n)),
        None => Recomputed::NotCheckable(BUG_REPORTS.into()),
    }
}

/// `a / b`, 0 when `b` is 0.
fn per(a: f64, b: u32) -> f64 {
    if b > 0 { a / f64::from(b) } else { 0.0 }
}

fn efficiency_figure(m: &BackendMetrics, field: &str) -> Recomputed {
    use Recomputed::*;
    match field {
        "fix_cost_pct_of_total" => Num(m.cost.fix_share_pct),
        "avg_fix_cost_per_bug_usd" => bugs_known(m, |n| per(m.cost.fixes, n)),
        "fix_sessions_per_bug" => bugs_known(m, |n| per(m.quality.fix_sessions as f64, n)),
        _ => NotCheckable("needs a grader's judgement of which bugs recurred".into()),
    }
}

fn quality_figure(m: &BackendMetrics, field: &str) -> Recomputed {
    use Recomputed::*;
    match field {
        "fix_sessions" => Num(m.quality.fix_sessions as f64),
        "total_levels" => Num(m.quality.total_levels as f64),
        "zero_fix_levels" => Num(m.quality.zero_fix_levels as f64),
        "total_bugs" => bugs_known(m, f64::from),
        "bugs_per_feature" => bugs_known(m, |n| per(f64::from(n), m.features)),
        "zero_bug_levels" => match m.quality.zero_bug_levels {
            Some(z) => Num(z as f64),
            None => NotCheckable(BUG_REPORTS.into()),
        },
        "zero_bug_rate_pct" => match m.quality.zero_bug_levels {
            Some(z) if m.quality.total_levels > 0 => {
                Num(z as f64 / m.quality.total_levels as f64 * 100.0)
            }
            _ => NotCheckable(BUG_REPORTS.into()),
        },
        _ => NotCheckable("bug categories and repeat attempts are a grader's reading".into()),
    }
}

fn loc_figure(m: &BackendMetrics, field: &str) -> Recomputed {
    use Recomputed::*;
    let Some(l) = &m.loc else {
        return NotCheckable(NO_SOURCE.into());
    };
    match field {
        "backend_handwritten" => Num(l.backend_handwritten as f64),
        "frontend_handwritten" => Num(l.frontend_handwritten as f64),
        "generated_bindings" => Num(l.generated_bindings as f64),
        "total_handwritten" => Num(l.total_handwritten as f64),
        "loc_per_feature" if m.features > 0 => Num(l.total_handwritten as f64 / m.features as f64),
        _ => NotCheckable("unknown figure".into()),
    }
}

fn level_bugs(run: &RunMetrics, key: &str, level: u32) -> Recomputed {
    if key == "level" {
        return Recomputed::Skip;
    }
    let Some(m) = backend(run, key) else {
        return Recomputed::NotCheckable(format!("no backend `{key}` in the run"));
    };
    match m.by_level.iter().find(|l| l.level == level) {
        Some(l) => match l.bugs {
            Some(n) => Recomputed::Num(n as f64),
            None => Recomputed::NotCheckable(format!(
                "{} fix session(s) at this level, not every bug report is in the run",
                l.fix_sessions
            )),
        },
        None => Recomputed::NotCheckable(format!("the run has no level {level}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_tolerance_follows_the_published_decimals() {
        assert!(agrees(12.62, 12.6195, 2));
        assert!(!agrees(12.62, 12.6149, 2));
        assert!(agrees(56.0, 55.9, 0));
        assert!(!agrees(56.0, 56.6, 0));
        assert!(agrees(390.0, 390.0, 0));
        assert!(!agrees(390.0, 391.0, 0));
        // `26.0` as written means one decimal: 26.4 does not round to it.
        assert!(!agrees(26.0, 26.4, 1));
        assert!(agrees(26.0, 25.99, 1));
    }

    #[test]
    fn decimals_are_read_from_the_literals_as_written() {
        let text = r#"{"a": {"x": 26.0, "y": 32.30, "z": 7, "e": 1.5e3, "s": "1.00"},
                      "rows": [{"pg": 0.40, "level": 3}, {"level": 4, "pg": 1}], "n": [1.50],
                      "q\"k\\": 1.25}"#;
        let d = literal_decimals(text);
        assert_eq!(d["a.x"], 1);
        assert_eq!(d["a.y"], 2);
        assert_eq!(d["a.z"], 0);
        assert!(!d.contains_key("a.e"));
        assert!(!d.contains_key("a.s"));
        assert_eq!(d["rows[level=3].pg"], 2);
        assert_eq!(d["rows[level=4].pg"], 0);
        assert_eq!(d["n[0]"], 2);
        assert_eq!(d["q\"k\\"], 2);
        // The same paths as the flattening of the parsed value.
        let v: Value = serde_json::from_str(text).unwrap();
        let mut leaves = Vec::new();
        flatten(&v, &mut Vec::new(), &mut leaves);
        for (path, value) in leaves {
            if value.is_number() && path.join(".") != "a.e" {
                assert!(d.contains_key(&path.join(".")), "{}", path.join("."));
            }
        }
    }

    #[test]
    fn level_arrays_are_addressed_by_level() {
        let v: Value = serde_json::json!({"bugs": {"by_level": [{"level": 3, "pg": 1}]}});
        let mut out = Vec::new();
        flatten(&v, &mut Vec::new(), &mut out);
        let paths: Vec<String> = out.iter().map(|(p, _)| p.join(".")).collect();
        assert_eq!(
            paths,
            vec!["bugs.by_level[level=3].level", "bugs.by_level[level=3].pg"]
        );
    }
}
