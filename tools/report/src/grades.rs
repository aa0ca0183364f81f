//! Grades per level, feature by feature, from the gradings an app folder keeps.
//!
//! Where they are found, in an app folder (`results/chat-app-<ts>/`):
//! - `.bench/grading/<ts>-level-<N>/grading.json`: every `bench-grade` run (folders named
//!   `replaced-*` hold files a grading moved aside and are skipped);
//! - `grading.json` in the app folder and in its `level-<N>/` snapshots;
//! - else `GRADING_RESULTS.md` (scores only, bugs unknown) in the app folder (its title
//!   names the level) and in `level-<N>/` snapshots.
//!
//! Gradings of a `--features` selection are partial and skipped. Per level, the **first**
//! full grading (the app as its upgrade session left it) gives the score, the bugs and the
//! per-feature figures; the **last** gives `final_score` (after fix sessions).

use std::collections::BTreeMap;
use std::path::Path;

use bench_formats::app_docs::parse_grading_results;
use bench_formats::files::GRADING_RESULTS_FILE;
use bench_formats::grading::{GRADING_FILE, GradingFile};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::charts;
use crate::data::{MetricsData, num};
use crate::render::Block;

/// One feature's grade at one level.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureRow {
    pub id: u32,
    pub name: String,
    pub score: f64,
    pub max: f64,
    /// `None` when only `GRADING_RESULTS.md` was found.
    pub bugs: Option<u32>,
}

/// One level's grading of one app.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LevelGrade {
    pub level: u32,
    /// First full grading at this level.
    pub score: f64,
    pub max: Option<f64>,
    /// Last full grading at this level.
    pub final_score: f64,
    /// Bugs the first grading found (failed expectations and steps that could not be
    /// carried out); `None` when only `GRADING_RESULTS.md` was found.
    pub bugs: Option<u32>,
    /// How many full gradings of this level were found.
    pub gradings: u32,
    pub features: Vec<FeatureRow>,
    /// The first grading's file.
    pub source: String,
}

/// One grading, whichever file it came from.
struct Found {
    level: u32,
    /// RFC 3339 for `grading.json`; empty for Markdown (sorts first).
    at: String,
    score: f64,
    max: Option<f64>,
    bugs: Option<u32>,
    features: Vec<FeatureRow>,
    source: String,
}

fn from_json(path: &Path, warnings: &mut Vec<String>) -> Option<Found> {
    let file = match GradingFile::read(path) {
        Ok(f) => f,
        Err(e) => {
            warnings.push(format!("grading skipped: {e:#}"));
            return None;
        }
    };
    if !file.selection.is_empty() {
        return None;
    }
    let bugs = file.bugs_by_feature();
    let features = file
        .features
        .iter()
        .map(|f| FeatureRow {
            id: f.id,
            name: f.name.clone(),
            score: f.score.into(),
            max: f.max.into(),
            bugs: Some(bugs.get(&f.id).copied().unwrap_or(0)),
        })
        .collect();
    Some(Found {
        level: file.level,
        at: file.graded_at.clone(),
        score: file.score.into(),
        max: Some(file.max.into()),
        bugs: Some(bugs.values().sum()),
        features,
        source: path.display().to_string(),
    })
}

/// `# Grading Results — Level 3 (…)` → 3.
fn title_level(text: &str) -> Option<u32> {
    let title = text.lines().find(|l| l.starts_with("# "))?;
    let rest = &title[title.find("Level ")? + "Level ".len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

fn from_markdown(path: &Path, level: Option<u32>) -> Option<Found> {
    let text = std::fs::read_to_string(path).ok()?;
    let level = level.or_else(|| title_level(&text))?;
    let parsed = parse_grading_results(&text);
    let total = parsed.total?;
    let features = parsed
        .features
        .iter()
        .map(|f| FeatureRow {
            id: f.number.unwrap_or(0),
            name: f.name.clone(),
            score: f.score.score,
            max: f.score.max.unwrap_or(3.0),
            bugs: None,
        })
        .collect();
    Some(Found {
        level,
        at: String::new(),
        score: total.score,
        max: total.max,
        bugs: None,
        features,
        source: path.display().to_string(),
    })
}

fn sub_dirs(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    out.sort();
    out
}

/// `level-3` → 3.
fn snapshot_level(dir: &Path) -> Option<u32> {
    dir.file_name()?
        .to_str()?
        .strip_prefix("level-")?
        .parse()
        .ok()
}

/// Every grading found in `app`, deduplicated (a file and its copy count once).
fn find_all(app: &Path, warnings: &mut Vec<String>) -> Vec<Found> {
    let mut found = Vec::new();
    let runs = sub_dirs(&app.join(".bench/grading"));
    for dir in runs.iter().filter(|d| {
        d.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| !n.starts_with("replaced-"))
    }) {
        let path = dir.join(GRADING_FILE);
        if path.is_file() {
            found.extend(from_json(&path, warnings));
        }
    }
    let snapshots: Vec<(Option<u32>, std::path::PathBuf)> = std::iter::once((None, app.into()))
        .chain(
            sub_dirs(app)
                .into_iter()
                .filter_map(|d| Some((Some(snapshot_level(&d)?), d))),
        )
        .collect();
    for (level, dir) in snapshots {
        let json = dir.join(GRADING_FILE);
        let md = dir.join(GRADING_RESULTS_FILE);
        if json.is_file() {
            found.extend(from_json(&json, warnings));
        } else if md.is_file() {
            found.extend(from_markdown(&md, level));
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    found.retain(|f| f.at.is_empty() || seen.insert((f.level, f.at.clone())));
    found
}

/// The cost of the agent grading sessions kept in apps (`.bench/grading/*/session/`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GradingCost {
    pub sessions: u32,
    pub cost_usd: f64,
}

/// The agent grading sessions' cost summed over `apps`; `None` when none was graded by an
/// agent. Never added to the cost of building the apps.
pub fn grading_cost<'a>(apps: impl Iterator<Item = &'a Path>) -> Option<GradingCost> {
    let mut total = GradingCost::default();
    for app in apps {
        for dir in sub_dirs(&app.join(".bench/grading")) {
            let path = dir
                .join("session")
                .join(bench_formats::files::COST_SUMMARY_FILE);
            if let Ok(summary) = bench_formats::read_json::<bench_formats::CostSummary>(&path) {
                total.sessions += 1;
                total.cost_usd += summary.total_cost_usd;
            }
        }
    }
    (total.sessions > 0).then_some(total)
}

/// The grades per level of the app in `app` (empty when it was never graded).
pub fn load(app: &Path, warnings: &mut Vec<String>) -> Vec<LevelGrade> {
    let mut by_level: BTreeMap<u32, Vec<Found>> = BTreeMap::new();
    for f in find_all(app, warnings) {
        by_level.entry(f.level).or_default().push(f);
    }
    by_level
        .into_iter()
        .filter_map(|(level, mut list)| {
            // JSON gradings win over Markdown ones of the same level.
            if list.iter().any(|f| f.bugs.is_some()) {
                list.retain(|f| f.bugs.is_some());
            }
            list.sort_by(|a, b| a.at.cmp(&b.at));
            let last = list.last()?.score;
            let first = list.first()?;
            Some(LevelGrade {
                level,
                score: first.score,
                max: first.max,
                final_score: last,
                bugs: first.bugs,
                gradings: list.len() as u32,
                features: first.features.clone(),
                source: first.source.clone(),
            })
        })
        .collect()
}

/// Mean over `values`, or `null` when there are none.
fn mean(values: &[f64]) -> Value {
    if values.is_empty() {
        Value::Null
    } else {
        num(values.iter().sum::<f64>() / values.len() as f64)
    }
}

/// `grades_by_level[] = {level, <b>: {score, max, final_score, bugs, runs} | null}`: means
/// over the runs that graded the level (`bugs` over those whose bugs are known).
pub fn rows(data_runs: &[crate::data::RunMetrics], backends: &[String]) -> Vec<Value> {
    let grades = |b: &str| -> Vec<&LevelGrade> {
        data_runs
            .iter()
            .filter_map(|r| r.backends.get(b))
            .flat_map(|m| &m.grades_by_level)
            .collect()
    };
    let max_level = backends
        .iter()
        .flat_map(|b| grades(b))
        .map(|g| g.level)
        .max()
        .unwrap_or(0);
    (1..=max_level)
        .map(|level| {
            let mut row = Map::new();
            row.insert("level".into(), json!(level));
            for b in backends {
                let at: Vec<&LevelGrade> =
                    grades(b).into_iter().filter(|g| g.level == level).collect();
                let value = if at.is_empty() {
                    Value::Null
                } else {
                    let of = |f: fn(&LevelGrade) -> Option<f64>| -> Vec<f64> {
                        at.iter().filter_map(|g| f(g)).collect()
                    };
                    json!({
                        "score": mean(&of(|g| Some(g.score))),
                        "max": mean(&of(|g| g.max)),
                        "final_score": mean(&of(|g| Some(g.final_score))),
                        "bugs": mean(&of(|g| g.bugs.map(f64::from))),
                        "runs": at.len(),
                    })
                };
                row.insert(b.clone(), value);
            }
            Value::Object(row)
        })
        .collect()
}

fn figure(row: &Value, b: &str, key: &str) -> Option<f64> {
    row.get(b)?.get(key)?.as_f64()
}

fn cell(x: Option<f64>) -> String {
    match x {
        Some(x) if x.fract() == 0.0 => format!("{x:.0}"),
        Some(x) => format!("{x:.1}"),
        None => "–".into(),
    }
}

/// The report's section: scores and bugs per level (table and chart), then each app's
/// grades feature by feature.
pub fn push_blocks(doc: &mut Vec<Block>, data: &MetricsData, backends: &[String], charts_on: bool) {
    if data.grades_by_level.is_empty() {
        return;
    }
    doc.push(Block::Heading(2, "Grades per level".into()));
    doc.push(Block::Para(
        "From `bench-grade`'s gradings kept in each app (`.bench/grading/`, `level-N/` snapshots): \
         the first full grading of each level (the app as its upgrade left it), score / maximum \
         and bugs found; \"final\" is the last grading of the level, after fix sessions. Means \
         over runs."
            .into(),
    ));
    let mut headers = vec!["Level".to_string()];
    for b in backends {
        headers.extend([
            format!("{b} score"),
            format!("{b} final"),
            format!("{b} bugs"),
        ]);
    }
    let rows: Vec<Vec<String>> = data
        .grades_by_level
        .iter()
        .map(|row| {
            let level = row.get("level").and_then(Value::as_u64).unwrap_or(0);
            let mut cells = vec![format!("L{level}")];
            for b in backends {
                let score = figure(row, b, "score");
                let max = figure(row, b, "max");
                cells.push(match (score, max) {
                    (Some(s), Some(m)) => format!("{}/{}", cell(Some(s)), cell(Some(m))),
                    (s, _) => cell(s),
                });
                cells.push(cell(figure(row, b, "final_score")));
                cells.push(cell(figure(row, b, "bugs")));
            }
            cells
        })
        .collect();
    doc.push(Block::Table { headers, rows });
    push_grading_cost(doc, data);
    if charts_on {
        push_chart(doc, data, backends);
    }
    for run in &data.runs {
        for (b, m) in &run.backends {
            push_features(doc, &format!("{} / {b}", run.name), &m.grades_by_level);
        }
    }
}

/// One line per app graded by an agent: what its grading sessions cost, apart from the
/// cost of building it.
fn push_grading_cost(doc: &mut Vec<Block>, data: &MetricsData) {
    for run in &data.runs {
        for (b, m) in &run.backends {
            if let Some(c) = &m.grading_cost {
                doc.push(Block::Para(format!(
                    "Agent grading, {} / {b}: ${:.4} over {} session(s) — not included in the cost of building the app.",
                    run.name, c.cost_usd, c.sessions
                )));
            }
        }
    }
}

fn push_chart(doc: &mut Vec<Block>, data: &MetricsData, backends: &[String]) {
    let groups: Vec<String> = data
        .grades_by_level
        .iter()
        .map(|r| format!("L{}", r.get("level").and_then(Value::as_u64).unwrap_or(0)))
        .collect();
    let series: Vec<(String, Vec<f64>)> = backends
        .iter()
        .map(|b| {
            let values = data
                .grades_by_level
                .iter()
                .map(|row| {
                    let score = figure(row, b, "score").unwrap_or(0.0);
                    let max = figure(row, b, "max").unwrap_or(0.0);
                    if max > 0.0 { 100.0 * score / max } else { 0.0 }
                })
                .collect();
            (b.clone(), values)
        })
        .collect();
    let title = "Score per level, first grading (% of the maximum)";
    doc.push(Block::Chart {
        caption: title.into(),
        svg: charts::grouped_bars(title, "% of maximum", &groups, &series, false),
    });
}

/// One table per app: a row per feature, a column per level, `score (bugs)` in each cell.
fn push_features(doc: &mut Vec<Block>, who: &str, grades: &[LevelGrade]) {
    if grades.is_empty() {
        return;
    }
    let mut names: BTreeMap<u32, String> = BTreeMap::new();
    for f in grades.iter().flat_map(|g| &g.features) {
        names.entry(f.id).or_insert_with(|| f.name.clone());
    }
    doc.push(Block::Heading(
        3,
        format!("Grades feature by feature: {who}"),
    ));
    let mut headers = vec!["Feature".to_string()];
    headers.extend(grades.iter().map(|g| format!("L{}", g.level)));
    let rows = names
        .iter()
        .map(|(id, name)| {
            let mut cells = vec![format!("{id}. {name}")];
            for g in grades {
                cells.push(match g.features.iter().find(|f| f.id == *id) {
                    Some(f) => match f.bugs {
                        Some(n) if n > 0 => format!(
                            "{} ({n} bug{})",
                            cell(Some(f.score)),
                            if n == 1 { "" } else { "s" }
                        ),
                        _ => cell(Some(f.score)),
                    },
                    None => String::new(),
                });
            }
            cells
        })
        .collect();
    doc.push(Block::Table { headers, rows });
}
