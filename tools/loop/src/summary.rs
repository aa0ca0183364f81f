//! The end of a loop: a table of what became of each app, and bench-report over their runs.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use bench_formats::Phase;
use clap::Parser;
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};

use crate::fleet::AppResult;
use crate::machine;

/// One row per app: levels reached, final score, fixes, sessions, cost, how it ended.
pub fn table(results: &[AppResult]) -> Table {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    table.set_header([
        "App",
        "Level",
        "Final score",
        "Fixes",
        "Sessions",
        "Cost (USD)",
        "Status",
    ]);
    for r in results {
        let name = format!("{} #{}", r.slot.backend, r.slot.repetition);
        let Some(state) = &r.state else {
            let why = r.error.clone().unwrap_or_else(|| "not started".into());
            table.add_row([
                name,
                "–".into(),
                "–".into(),
                "–".into(),
                "0".into(),
                "–".into(),
                why,
            ]);
            continue;
        };
        let rec = state.loop_record.as_ref();
        let score = rec
            .and_then(|l| l.last_grade())
            .map_or("–".to_owned(), |g| {
                format!("{}/{} (level {})", g.score, g.max, g.level)
            });
        let fixes = state
            .sessions
            .iter()
            .filter(|s| s.phase == Phase::Fix)
            .count();
        let status = match (&r.error, rec) {
            (Some(e), _) => format!("unfinished: {e}"),
            (None, Some(l)) => match &l.stop_reason {
                Some(why) => format!("{}: {why}", l.status),
                None => l.status.to_string(),
            },
            (None, None) => "no loop record".into(),
        };
        table.add_row([
            name,
            state.level.to_string(),
            score,
            fixes.to_string(),
            state.sessions.len().to_string(),
            format!("{:.4}", machine::total_cost(state)),
            status,
        ]);
    }
    table
}

/// Prints the table and where each app is.
pub fn print(results: &[AppResult]) {
    println!();
    println!("{}", table(results));
    for r in results {
        if let Some(dir) = &r.slot.app_dir {
            println!(
                "{} #{}: {}",
                r.slot.backend,
                r.slot.repetition,
                dir.display()
            );
        }
    }
}

/// `runs/<run>` of `runs/<run>/<backend>/results/<app>`.
fn run_dir_of(app_dir: &Path) -> Option<PathBuf> {
    app_dir.ancestors().nth(3).map(Path::to_path_buf)
}

#[derive(Parser)]
struct ReportCommand {
    #[command(flatten)]
    args: bench_report::cli::Args,
}

/// Runs bench-report over the run folders of the apps that have sessions: into the run
/// folder for one run, into `<runs>/reports/<loop>` for several.
pub fn report(results: &[AppResult], runs_dir: &Path) -> Result<Vec<PathBuf>> {
    let mut runs: Vec<PathBuf> = results
        .iter()
        .filter(|r| r.state.as_ref().is_some_and(|s| !s.sessions.is_empty()))
        .filter_map(|r| r.slot.app_dir.as_deref().and_then(run_dir_of))
        .collect();
    runs.sort();
    runs.dedup();
    if runs.is_empty() {
        println!("no session ran: no report");
        return Ok(runs);
    }
    let mut argv: Vec<String> = vec!["bench-report".into()];
    argv.extend(runs.iter().map(|r| r.display().to_string()));
    let out = if runs.len() > 1 {
        let loop_id = results
            .iter()
            .find_map(|r| {
                r.state
                    .as_ref()?
                    .loop_record
                    .as_ref()
                    .map(|l| l.loop_id.clone())
            })
            .unwrap_or_else(|| "loop".into());
        let dir = runs_dir.join("reports").join(loop_id);
        argv.push("--out".into());
        argv.push(dir.display().to_string());
        dir
    } else {
        runs[0].clone()
    };
    let cmd =
        ReportCommand::try_parse_from(&argv).context("cannot build the bench-report command")?;
    bench_report::cli::run(cmd.args).context("bench-report over the loop's runs failed")?;
    println!("report: {}", out.join("BENCHMARK_REPORT.md").display());
    Ok(runs)
}
