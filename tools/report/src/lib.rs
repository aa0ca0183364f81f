//! Run reports: per-backend figures, N-run statistics, HTML charts, checks of published figures.
//!
//! `cargo xtask bench-report <run-dir>...` reads one or more run directories (this project's
//! `runs/<variant>-<date>/` or the original harness's published runs), computes every
//! backend's figures per run ([`metrics`]), summarises them across runs ([`stats`]), and
//! writes `METRICS_DATA.json` ([`data`] documents its schema), `BENCHMARK_REPORT.md` and a
//! self-contained `report.html` ([`render`], [`charts`]). `--check <published.json>`
//! recomputes the figures of a published metrics file instead ([`check`]).

pub mod charts;
pub mod check;
pub mod data;
pub mod grades;
pub mod load;
pub mod loc;
pub mod looks;
pub mod metrics;
pub mod render;
pub mod stats;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use bench_formats::io::write_atomic;

use crate::data::{MetricsData, RunMetrics};
use crate::load::Run;
use crate::loc::{LocFigures, LocRules};

/// The output file names.
pub const METRICS_FILE: &str = "METRICS_DATA.json";
pub const REPORT_MD: &str = "BENCHMARK_REPORT.md";
pub const REPORT_HTML: &str = "report.html";

/// Counts an app's lines of code for a backend.
pub trait LocCounter {
    /// `None` when no file counts (the app source is not in the run).
    fn count(&self, backend: &str, app_dir: &Path) -> Result<Option<LocFigures>>;
}

/// The documented defaults (the original harness's methodology) for every backend.
pub struct DefaultLocRules;

impl LocCounter for DefaultLocRules {
    fn count(&self, _backend: &str, app_dir: &Path) -> Result<Option<LocFigures>> {
        let count = LocRules::original_harness().count(app_dir)?;
        Ok(LocFigures::from_count(count, "defaults", app_dir))
    }
}

/// The rules of `backends/<name>/backend.toml`, and the level names of `levels/levels.toml`;
/// a backend the content does not know falls back to the defaults.
pub struct ContentLocRules {
    pub content: bench_content::Content,
}

impl ContentLocRules {
    /// Reads the repository's content (`BENCH_ROOT` or the repository around the current
    /// directory).
    pub fn from_repo() -> Result<ContentLocRules> {
        let root = bench_formats::paths::repo_root()?;
        let content = bench_content::Content::load_sources(&root)
            .with_context(|| format!("reading the benchmark content under {}", root.display()))?;
        Ok(ContentLocRules { content })
    }

    /// Level number → name.
    pub fn level_names(&self) -> BTreeMap<u32, String> {
        self.content
            .levels()
            .levels
            .iter()
            .map(|l| (l.number, l.name.clone()))
            .collect()
    }
}

impl LocCounter for ContentLocRules {
    fn count(&self, backend: &str, app_dir: &Path) -> Result<Option<LocFigures>> {
        let Ok(b) = self.content.backend(backend) else {
            return DefaultLocRules.count(backend, app_dir);
        };
        let count = b.loc_rules().count(app_dir)?;
        let rules = format!("backends/{backend}/backend.toml");
        Ok(LocFigures::from_count(count, &rules, app_dir))
    }
}

/// Computes one run's figures.
pub fn run_metrics(run: &Run, rules: &dyn LocCounter) -> Result<RunMetrics> {
    let mut backends = BTreeMap::new();
    let mut warnings = Vec::new();
    let mut variants = Vec::new();
    let mut models = Vec::new();
    for (name, backend) in &run.backends {
        for w in &backend.warnings {
            warnings.push(format!("{name}: {w}"));
        }
        for s in &backend.sessions {
            let variant = s
                .metadata
                .as_ref()
                .and_then(|m| m.variant)
                .or(s.summary.variant)
                .map(|v| v.to_string());
            if let Some(v) = variant
                && !variants.contains(&v)
            {
                variants.push(v);
            }
            if let Some(model) = s.metadata.as_ref().and_then(|m| m.model.clone())
                && !models.contains(&model)
            {
                models.push(model);
            }
        }
        // The final app: the newest app folder (names carry their creation time).
        let loc = match backend.apps.last() {
            Some(app) => rules
                .count(name, &app.path)
                .with_context(|| format!("counting the lines of {}", app.path.display()))?,
            None => None,
        };
        if backend.apps.len() > 1 {
            warnings.push(format!(
                "{name}: {} app folders; lines of code are those of the newest, {}",
                backend.apps.len(),
                backend.apps.last().map(|a| a.name.as_str()).unwrap_or("")
            ));
        }
        backends.insert(name.clone(), metrics::compute(backend, loc));
    }
    Ok(RunMetrics {
        name: run.name.clone(),
        path: run.path.display().to_string(),
        variants,
        models,
        backends,
        warnings,
    })
}

/// Reads every run an argument list names (a folder of runs stands for all of them).
pub fn load_runs(paths: &[PathBuf]) -> Result<Vec<Run>> {
    let mut runs = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for p in paths {
        for dir in load::expand_run_arg(p)? {
            // The same run named twice (`runs/` and `runs/x`) counts once.
            if !seen.insert(std::fs::canonicalize(&dir).unwrap_or_else(|_| dir.clone())) {
                continue;
            }
            runs.push(
                load::load_run(&dir)
                    .with_context(|| format!("reading run directory {}", dir.display()))?,
            );
        }
    }
    Ok(runs)
}

/// Refuses to overwrite a file that this tool did not write.
fn ensure_ours(path: &Path) -> Result<()> {
    if !path.exists() {
        return Ok(());
    }
    use std::io::Read as _;
    // The marks sit at the top of every file this tool writes: read no more than that.
    let mut text = Vec::with_capacity(4096);
    std::fs::File::open(path)
        .and_then(|f| f.take(4096).read_to_end(&mut text))
        .with_context(|| format!("cannot read {}", path.display()))?;
    let head = String::from_utf8_lossy(&text);
    if head.contains(render::GENERATED_MARK) || head.contains(data::SCHEMA) {
        Ok(())
    } else {
        bail!(
            "{} exists and was not written by bench-report (a published file?); not overwriting it: \
             move it away or write elsewhere with --out DIR",
            path.display()
        )
    }
}

/// Writes the three outputs into `dir`; returns their paths.
pub fn write_outputs(data: &MetricsData, dir: &Path) -> Result<Vec<PathBuf>> {
    let paths = [
        dir.join(METRICS_FILE),
        dir.join(REPORT_MD),
        dir.join(REPORT_HTML),
    ];
    for p in &paths {
        ensure_ours(p)?;
    }
    let mut json = serde_json::to_string_pretty(data).context("cannot encode METRICS_DATA")?;
    json.push('\n');
    write_atomic(&paths[0], json.as_bytes())?;
    let md = render::to_markdown(&render::document(data, false));
    write_atomic(&paths[1], md.as_bytes())?;
    let title = format!(
        "Benchmark report: {}",
        data.runs
            .iter()
            .map(|r| r.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let html = render::to_html(&render::document(data, true), &title);
    write_atomic(&paths[2], html.as_bytes())?;
    Ok(paths.to_vec())
}

/// Reads a published metrics file and compares it with a run's figures.
pub fn check_published(run: &RunMetrics, published: &Path) -> Result<check::CheckReport> {
    let text = std::fs::read_to_string(published)
        .with_context(|| format!("cannot read {}", published.display()))?;
    let value: serde_json::Value = serde_json::from_str(&text).with_context(|| {
        format!(
            "{} is not valid JSON: give a published METRICS_REPORT.json or METRICS_DATA.json",
            published.display()
        )
    })?;
    if let Some(schema) = value.get("schema").and_then(|s| s.as_str())
        && schema == data::SCHEMA
    {
        let version = value
            .get("schema_version")
            .and_then(|v| v.as_u64())
            .unwrap_or(0);
        if version > u64::from(data::SCHEMA_VERSION) {
            bail!(
                "{} has schema version {version}, newer than this tool's {}: update bench-report",
                published.display(),
                data::SCHEMA_VERSION
            );
        }
    }
    check::check_text(&text, run)
        .with_context(|| format!("{} is not valid JSON", published.display()))
}

pub mod cli {
    //! Command-line options of `cargo xtask bench-report`.

    use std::path::PathBuf;

    use anyhow::{Result, bail};

    use crate::check::{CheckReport, Outcome};
    use crate::stats::DEFAULT_SEED;

    /// Reports across backends and runs: cost, calls, tokens, bugs, lines of code, time.
    ///
    /// Writes METRICS_DATA.json, BENCHMARK_REPORT.md and report.html into the run directory
    /// (or --out DIR). With --check, compares a published metrics file with the figures
    /// recomputed from the run instead, and fails if any disagrees.
    #[derive(Debug, clap::Args)]
    pub struct Args {
        /// Run directories (`runs/<variant>-<date>`, or a published run of the original
        /// harness), or folders holding several runs.
        #[arg(required = true, value_name = "RUN_DIR")]
        pub runs: Vec<PathBuf>,
        /// Directory for the outputs (required when comparing several runs; default: the run
        /// directory).
        #[arg(long, value_name = "DIR")]
        pub out: Option<PathBuf>,
        /// A published METRICS_REPORT.json or METRICS_DATA.json: recompute its figures from the
        /// run and list every disagreement beyond rounding (exit non-zero if any).
        #[arg(long, value_name = "PUBLISHED_JSON")]
        pub check: Option<PathBuf>,
        /// Backend the ratios divide by (default: the one whose backend.toml says
        /// `[report] baseline = true`, spacetime, when present; else the first).
        #[arg(long)]
        pub baseline: Option<String>,
        /// Seed of the bootstrap resampling (same seed, same intervals).
        #[arg(long, default_value_t = DEFAULT_SEED)]
        pub seed: u64,
        /// With --check: print every figure, not only disagreements and a summary.
        #[arg(long)]
        pub verbose: bool,
        /// Line-count rules: `content` (`backends/<b>/backend.toml`, falling back to the defaults
        /// for a backend it does not know) or `defaults` (the original harness's
        /// methodology, for re-measuring its published apps).
        #[arg(long, value_enum, default_value_t = LocRulesChoice::Content)]
        pub loc_rules: LocRulesChoice,
    }

    /// Where line-count rules come from.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
    pub enum LocRulesChoice {
        Content,
        Defaults,
    }

    pub fn run(args: Args) -> Result<()> {
        let runs = crate::load_runs(&args.runs)?;
        let content = match args.loc_rules {
            LocRulesChoice::Defaults => None,
            LocRulesChoice::Content => match crate::ContentLocRules::from_repo() {
                Ok(c) => Some(c),
                Err(e) => {
                    eprintln!(
                        "warning: {e:#}; lines of code use the default rules and levels have no names"
                    );
                    None
                }
            },
        };
        let level_names = content
            .as_ref()
            .map(|c| c.level_names())
            .unwrap_or_default();
        let rules: &dyn crate::LocCounter = match &content {
            Some(c) => c,
            None => &crate::DefaultLocRules,
        };
        let mut metrics = Vec::new();
        for run in &runs {
            metrics.push(crate::run_metrics(run, rules)?);
        }
        for m in &metrics {
            for w in &m.warnings {
                eprintln!("warning: {}: {w}", m.name);
            }
        }

        if let Some(published) = &args.check {
            let [run] = metrics.as_slice() else {
                bail!(
                    "--check compares one run with its published figures, but {} runs were given: \
                     name the one run directory",
                    metrics.len()
                );
            };
            let report = crate::check_published(run, published)?;
            return print_check(&report, args.verbose);
        }

        if let Some(base) = &args.baseline {
            let names = crate::data::backend_names(&metrics);
            if !names.contains(base) {
                bail!(
                    "--baseline {base}: no such backend in the runs (they have {})",
                    names.join(", ")
                );
            }
        }
        let out = match (&args.out, runs.as_slice()) {
            (Some(out), _) => out.clone(),
            (None, [one]) => one.path.clone(),
            (None, _) => bail!(
                "{} runs given: say where the comparison goes with --out DIR",
                runs.len()
            ),
        };
        let data = crate::data::build(
            metrics,
            args.baseline.as_deref(),
            args.seed,
            &level_names,
            chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        );
        let written = crate::write_outputs(&data, &out)?;
        for b in crate::data::backend_names(&data.runs) {
            let total = data.cost.get(&b).and_then(|c| c.get("total"));
            let calls = data.tokens.get(&b).and_then(|c| c.get("api_calls"));
            let minutes = data
                .time_seconds
                .get(&b)
                .and_then(|c| c.get("total"))
                .and_then(|t| t.as_f64())
                .map(|s| s / 60.0);
            println!(
                "{b}: total ${:.2}, {} API calls, {:.1} min agent time{}",
                total.and_then(|t| t.as_f64()).unwrap_or(0.0),
                calls.map(|c| c.to_string()).unwrap_or_default(),
                minutes.unwrap_or(0.0),
                if data.runs.len() > 1 {
                    " (means over runs)"
                } else {
                    ""
                }
            );
        }
        for p in written {
            println!("wrote {}", p.display());
        }
        Ok(())
    }

    fn print_check(report: &CheckReport, verbose: bool) -> Result<()> {
        if verbose {
            print!("{}", CheckReport::table(&report.rows));
        } else {
            let not_checkable: Vec<_> = report
                .rows
                .iter()
                .filter(|r| matches!(r.outcome, Outcome::NotCheckable(_)))
                .collect();
            if !not_checkable.is_empty() {
                println!("Not checkable from the run's data:");
                print!("{}", CheckReport::table(not_checkable));
                println!();
            }
        }
        println!("{}", report.summary_line());
        let bad = report.disagreements();
        if bad.is_empty() {
            Ok(())
        } else {
            bail!(
                "{} published figure(s) disagree with the figures recomputed from the run:\n{}",
                bad.len(),
                CheckReport::table(bad)
            )
        }
    }
}
