//! `METRICS_DATA.json`: what `bench-report` computed, in a versioned schema.
//!
//! # Schema `bench-report/metrics-data`, version 1
//! Top level (an object):
//! - `schema` (`"bench-report/metrics-data"`), `schema_version` (`1`): readers refuse a
//!   different schema or a newer version.
//! - `generator` (`bench-report <version>`), `generated_at` (RFC 3339 UTC).
//! - `runs[]`: one per run directory, `{name, path, variants[], backends{<b>: BackendMetrics},
//!   warnings[]}` — every per-run figure (see `metrics::BackendMetrics`: `sessions`,
//!   `levels_completed`, `features`, `cost`, `tokens`, `time`, `quality`, `by_level[]`,
//!   `feature_score`, `loc`, `session_list[]`, and `loop` when bench-loop made the app: its
//!   status, the reason it stopped, target level, fixes allowed, grader, last grade). Money
//!   in USD, time in seconds.
//! - The sections of the original harness's `METRICS_DATA.json`, per backend `<b>`, so that
//!   published files and this one are read (and `--check`ed) alike. With one run they hold that
//!   run's figures; with several, the mean over runs:
//!   - `cost.<b>.{upgrades, fixes, total, per_feature}`
//!   - `tokens.<b>.{fresh_input, fresh_output, cache_read, cache_creation, api_calls}`
//!   - `time_seconds.<b>.{l1_generation, avg_upgrade, avg_fix_session, total, wall_clock}`
//!     (`avg_upgrade` excludes the generate session; `total` is API time, see `metrics`)
//!   - `quality.<b>.{total_bugs, fix_sessions, zero_bug_levels, zero_fix_levels, total_levels}`
//!     (`total_bugs`/`zero_bug_levels` are `null` when a fix session's bug report is unknown)
//!   - `loc.<b>.{backend_handwritten, frontend_handwritten, generated_bindings,
//!     total_handwritten}` (`null` when the app source is not in the run)
//!   - `bugs_by_level[] = {level, feature, <b>: bugs or null, ...}` (`feature` is `null`
//!     when the level's name is not known)
//! - `grades_by_level[] = {level, <b>: {score, max, final_score, bugs, runs} | null}`: the
//!   first full `bench-grade` grading of each level (and the last, `final_score`), means
//!   over runs; per run, `runs[].backends.<b>.grades_by_level[]` has them feature by feature
//!   (see `grades`).
//! - `statistics.<b>.<figure>`: `{n, mean, median, min, max, sd, ci95: [lo, hi] | null,
//!   note}` over runs, for the figures in [`FIGURES`].
//! - `level_statistics.<b>[] = {level, cost, cumulative_cost, fix_sessions}`, each a summary
//!   as above over the runs that reached the level.
//! - `ratios[]`: `{figure, numerator, denominator, ratio, ci95, note}`: mean of the
//!   numerator backend over mean of the baseline, bootstrap interval (see `stats`).
//! - `warnings[]`: what was read with doubt (missing metadata, level labels that disagree,
//!   …), each prefixed with its run's name.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::metrics::BackendMetrics;
use crate::stats::{Ratio, Summary, ratio_of_means, summarize};

pub const SCHEMA: &str = "bench-report/metrics-data";
pub const SCHEMA_VERSION: u32 = 1;

/// One run's figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunMetrics {
    pub name: String,
    pub path: String,
    /// The variants its sessions state (`sequential-upgrade`, …).
    pub variants: Vec<String>,
    /// Models the sessions' metadata name.
    #[serde(default)]
    pub models: Vec<String>,
    pub backends: BTreeMap<String, BackendMetrics>,
    pub warnings: Vec<String>,
}

/// A ratio between backends for one figure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RatioRow {
    pub figure: String,
    pub numerator: String,
    pub denominator: String,
    #[serde(flatten)]
    pub ratio: Ratio,
}

/// One level's figures over runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LevelSummary {
    pub level: u32,
    pub cost: Summary,
    pub cumulative_cost: Summary,
    pub fix_sessions: Summary,
}

/// The whole file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricsData {
    pub schema: String,
    pub schema_version: u32,
    pub generator: String,
    pub generated_at: String,
    pub runs: Vec<RunMetrics>,
    pub cost: Map<String, Value>,
    pub tokens: Map<String, Value>,
    pub time_seconds: Map<String, Value>,
    pub quality: Map<String, Value>,
    pub loc: Map<String, Value>,
    pub bugs_by_level: Vec<Value>,
    /// `bench-grade` scores and bugs per level (see `grades::rows`).
    #[serde(default)]
    pub grades_by_level: Vec<Value>,
    pub statistics: BTreeMap<String, BTreeMap<String, Summary>>,
    /// Per backend and level, over the runs that reached the level.
    #[serde(default)]
    pub level_statistics: BTreeMap<String, Vec<LevelSummary>>,
    pub baseline: Option<String>,
    pub ratios: Vec<RatioRow>,
    pub warnings: Vec<String>,
}

type Getter = fn(&BackendMetrics) -> Option<f64>;

/// The figures summarised across runs (name, how to read it from one run).
pub const FIGURES: &[(&str, Getter)] = &[
    ("cost.total", |m| Some(m.cost.total)),
    ("cost.upgrades", |m| Some(m.cost.upgrades)),
    ("cost.fixes", |m| Some(m.cost.fixes)),
    ("cost.per_feature", |m| Some(m.cost.per_feature)),
    ("tokens.api_calls", |m| Some(m.tokens.api_calls as f64)),
    ("tokens.fresh_input", |m| Some(m.tokens.fresh_input as f64)),
    ("tokens.fresh_output", |m| {
        Some(m.tokens.fresh_output as f64)
    }),
    ("tokens.cache_read", |m| Some(m.tokens.cache_read as f64)),
    ("tokens.cache_creation", |m| {
        Some(m.tokens.cache_creation as f64)
    }),
    ("tokens.tokens_per_feature", |m| {
        Some(m.tokens.tokens_per_feature)
    }),
    ("time.agent_minutes", |m| Some(m.time.total_minutes)),
    ("time.wall_clock_minutes", |m| {
        m.time.wall_clock_total.map(|s| s / 60.0)
    }),
    ("quality.fix_sessions", |m| {
        Some(m.quality.fix_sessions as f64)
    }),
    ("quality.total_bugs", |m| {
        m.quality.total_bugs.map(f64::from)
    }),
    ("levels_completed", |m| Some(m.levels_completed as f64)),
    ("feature_score", |m| m.feature_score.map(|s| s.score)),
    ("loc.total_handwritten", |m| {
        m.loc.as_ref().map(|l| l.total_handwritten as f64)
    }),
    ("loc.backend_handwritten", |m| {
        m.loc.as_ref().map(|l| l.backend_handwritten as f64)
    }),
    ("loc.frontend_handwritten", |m| {
        m.loc.as_ref().map(|l| l.frontend_handwritten as f64)
    }),
    ("stress.acked_per_second", |m| m.stress_acked_per_second),
];

/// A JSON number: an integer when whole, else the float.
pub fn num(x: f64) -> Value {
    if x.fract() == 0.0 && x.abs() < 9.0e15 {
        json!(x as i64)
    } else {
        json!(x)
    }
}

/// The values of `figure` for `backend` over the runs that have it.
pub fn values(runs: &[RunMetrics], backend: &str, get: Getter) -> Vec<f64> {
    runs.iter()
        .filter_map(|r| r.backends.get(backend))
        .filter_map(get)
        .collect()
}

/// Every backend named in any run, in order.
pub fn backend_names(runs: &[RunMetrics]) -> Vec<String> {
    let mut names: Vec<String> = runs
        .iter()
        .flat_map(|r| r.backends.keys().cloned())
        .collect();
    names.sort();
    names.dedup();
    names
}

/// The baseline for ratios: the one asked for, else the backend whose `backend.toml` says
/// `[report] baseline = true` when present, else the first.
pub fn pick_baseline(backends: &[String], asked: Option<&str>) -> Option<String> {
    if let Some(a) = asked {
        return backends.iter().find(|b| b.as_str() == a).cloned();
    }
    let marked = crate::looks::Looks::of_repo().baseline.as_deref();
    backends
        .iter()
        .find(|b| Some(b.as_str()) == marked)
        .or_else(|| backends.first())
        .cloned()
}

/// Builds the file from the runs' figures.
pub fn build(
    runs: Vec<RunMetrics>,
    baseline: Option<&str>,
    seed: u64,
    level_names: &BTreeMap<u32, String>,
    generated_at: String,
) -> MetricsData {
    let backends = backend_names(&runs);
    let baseline = pick_baseline(&backends, baseline);
    let mut cost = Map::new();
    let mut tokens = Map::new();
    let mut time_seconds = Map::new();
    let mut quality = Map::new();
    let mut loc = Map::new();
    let mut statistics = BTreeMap::new();
    let mut level_statistics = BTreeMap::new();
    for b in &backends {
        let of = Means {
            runs: &runs,
            backend: b,
        };
        cost.insert(b.clone(), of.cost());
        tokens.insert(b.clone(), of.tokens());
        time_seconds.insert(b.clone(), of.time());
        quality.insert(b.clone(), of.quality());
        loc.insert(b.clone(), of.loc());
        statistics.insert(b.clone(), of.statistics());
        level_statistics.insert(b.clone(), of.level_summaries());
    }
    let bugs_by_level = bugs_by_level(&runs, &backends, level_names);
    let ratios = match &baseline {
        Some(base) => ratios(&runs, &backends, base, seed),
        None => Vec::new(),
    };
    let warnings = run_warnings(&runs);
    let grades_by_level = crate::grades::rows(&runs, &backends);
    MetricsData {
        schema: SCHEMA.into(),
        schema_version: SCHEMA_VERSION,
        generator: format!("bench-report {}", env!("CARGO_PKG_VERSION")),
        generated_at,
        runs,
        cost,
        tokens,
        time_seconds,
        quality,
        loc,
        bugs_by_level,
        grades_by_level,
        statistics,
        level_statistics,
        baseline,
        ratios,
        warnings,
    }
}

/// One backend's figures over the runs: the sections of the file that hold means.
struct Means<'a> {
    runs: &'a [RunMetrics],
    backend: &'a str,
}

impl Means<'_> {
    /// The mean over the runs that have the figure, `null` when none has it.
    fn mean(&self, get: Getter) -> Value {
        let v = values(self.runs, self.backend, get);
        if v.is_empty() {
            Value::Null
        } else {
            num(v.iter().sum::<f64>() / v.len() as f64)
        }
    }

    /// Whether every run of the backend has the figure.
    fn all_have(&self, get: Getter) -> bool {
        self.runs
            .iter()
            .filter_map(|r| r.backends.get(self.backend))
            .all(|m| get(m).is_some())
    }

    fn cost(&self) -> Value {
        json!({
            "upgrades": self.mean(|m| Some(m.cost.upgrades)),
            "fixes": self.mean(|m| Some(m.cost.fixes)),
            "total": self.mean(|m| Some(m.cost.total)),
            "per_feature": self.mean(|m| Some(m.cost.per_feature)),
        })
    }

    fn tokens(&self) -> Value {
        json!({
            "fresh_input": self.mean(|m| Some(m.tokens.fresh_input as f64)),
            "fresh_output": self.mean(|m| Some(m.tokens.fresh_output as f64)),
            "cache_read": self.mean(|m| Some(m.tokens.cache_read as f64)),
            "cache_creation": self.mean(|m| Some(m.tokens.cache_creation as f64)),
            "api_calls": self.mean(|m| Some(m.tokens.api_calls as f64)),
        })
    }

    fn time(&self) -> Value {
        json!({
            "l1_generation": self.mean(|m| Some(m.time.generation)),
            "avg_upgrade": self.mean(|m| Some(m.time.avg_upgrade)),
            "avg_fix_session": self.mean(|m| Some(m.time.avg_fix_session)),
            "total": self.mean(|m| Some(m.time.total)),
            "wall_clock": self.mean(|m| m.time.wall_clock_total),
        })
    }

    fn quality(&self) -> Value {
        let bugs_getter: Getter = |m| m.quality.total_bugs.map(f64::from);
        let zero_getter: Getter = |m| m.quality.zero_bug_levels.map(f64::from);
        let known = |get: Getter| {
            if self.all_have(get) {
                self.mean(get)
            } else {
                Value::Null
            }
        };
        json!({
            "total_bugs": known(bugs_getter),
            "fix_sessions": self.mean(|m| Some(m.quality.fix_sessions as f64)),
            "zero_bug_levels": known(zero_getter),
            "zero_fix_levels": self.mean(|m| Some(m.quality.zero_fix_levels as f64)),
            "total_levels": self.mean(|m| Some(m.quality.total_levels as f64)),
        })
    }

    fn loc(&self) -> Value {
        let loc_getter: Getter = |m| m.loc.as_ref().map(|l| l.total_handwritten as f64);
        if !self.all_have(loc_getter) {
            return Value::Null;
        }
        json!({
            "backend_handwritten": self.mean(|m| m.loc.as_ref().map(|l| l.backend_handwritten as f64)),
            "frontend_handwritten": self.mean(|m| m.loc.as_ref().map(|l| l.frontend_handwritten as f64)),
            "generated_bindings": self.mean(|m| m.loc.as_ref().map(|l| l.generated_bindings as f64)),
            "total_handwritten": self.mean(loc_getter),
        })
    }

    /// Every figure of [`FIGURES`] summarised across runs.
    fn statistics(&self) -> BTreeMap<String, Summary> {
        FIGURES
            .iter()
            .filter_map(|(name, get)| {
                Some((
                    name.to_string(),
                    summarize(&values(self.runs, self.backend, *get))?,
                ))
            })
            .collect()
    }

    /// Per level, over the runs that reached it.
    fn level_summaries(&self) -> Vec<LevelSummary> {
        let runs = self.runs;
        let b = self.backend;
        let metrics: Vec<&BackendMetrics> = runs.iter().filter_map(|r| r.backends.get(b)).collect();
        let top = metrics.iter().map(|m| m.by_level.len()).max().unwrap_or(0) as u32;
        (1..=top)
            .filter_map(|level| {
                let rows: Vec<_> = metrics
                    .iter()
                    .filter_map(|m| m.by_level.iter().find(|l| l.level == level))
                    .collect();
                Some(LevelSummary {
                    level,
                    cost: summarize(&rows.iter().map(|l| l.cost).collect::<Vec<_>>())?,
                    cumulative_cost: summarize(
                        &rows.iter().map(|l| l.cumulative_cost).collect::<Vec<_>>(),
                    )?,
                    fix_sessions: summarize(
                        &rows
                            .iter()
                            .map(|l| l.fix_sessions as f64)
                            .collect::<Vec<_>>(),
                    )?,
                })
            })
            .collect()
    }
}

/// Bugs per level, one row per level with the feature's name and the mean per backend
/// (`null` when a run's count for the level is unknown).
fn bugs_by_level(
    runs: &[RunMetrics],
    backends: &[String],
    level_names: &BTreeMap<u32, String>,
) -> Vec<Value> {
    let max_level = runs
        .iter()
        .flat_map(|r| r.backends.values())
        .map(|m| m.by_level.len() as u32)
        .max()
        .unwrap_or(0);
    (1..=max_level)
        .map(|level| {
            let mut row = Map::new();
            row.insert("level".into(), json!(level));
            row.insert(
                "feature".into(),
                level_names
                    .get(&level)
                    .map(|n| json!(n))
                    .unwrap_or(Value::Null),
            );
            for b in backends {
                let per_run: Vec<Option<u32>> = runs
                    .iter()
                    .filter_map(|r| r.backends.get(b))
                    .map(|m| {
                        m.by_level
                            .iter()
                            .find(|l| l.level == level)
                            .map_or(Some(0), |l| l.bugs)
                    })
                    .collect();
                let value = if !per_run.is_empty() && per_run.iter().all(Option::is_some) {
                    num(per_run.iter().flatten().sum::<u32>() as f64 / per_run.len() as f64)
                } else {
                    Value::Null
                };
                row.insert(b.clone(), value);
            }
            Value::Object(row)
        })
        .collect()
}

/// Ratios of every other backend's means to the baseline's, with bootstrap intervals.
fn ratios(runs: &[RunMetrics], backends: &[String], base: &String, seed: u64) -> Vec<RatioRow> {
    let mut ratios = Vec::new();
    for other in backends.iter().filter(|b| *b != base) {
        for (name, get) in FIGURES {
            let num_values = values(runs, other, *get);
            let den_values = values(runs, base, *get);
            if let Some(ratio) = ratio_of_means(&num_values, &den_values, seed) {
                ratios.push(RatioRow {
                    figure: name.to_string(),
                    numerator: other.clone(),
                    denominator: base.clone(),
                    ratio,
                });
            }
        }
    }
    ratios
}

/// Mixed variants, and each run's own warnings.
fn run_warnings(runs: &[RunMetrics]) -> Vec<String> {
    let mut warnings = Vec::new();
    let mut variants: Vec<&String> = runs.iter().flat_map(|r| &r.variants).collect();
    variants.sort();
    variants.dedup();
    if variants.len() > 1 {
        warnings.push(format!(
            "the runs mix variants ({}): their statistics pool different experiments",
            variants
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    for r in runs {
        for w in &r.warnings {
            warnings.push(format!("{}: {w}", r.name));
        }
    }
    warnings
}
