//! `cargo xtask bench-grade`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Parser;
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};

use crate::grade::{Graded, Request, Target, grade};

/// Exit code when every graded feature got its maximum.
pub const EXIT_ALL_POINTS: u8 = 0;
/// Exit code when the app lost points (bugs were found and written to BUG_REPORT.md).
pub const EXIT_BUGS: u8 = 1;
/// Exit code when the grading itself could not run (nothing was written).
pub const EXIT_HARNESS: u8 = 2;

#[derive(Parser, Debug, Clone)]
#[command(
    about = "Grade a chat app in a real Chromium with two users (Alice, Bob) by the levels' scripted test plans and grading/rubric.md.",
    after_long_help = "Runs features 1..N of --level N in order (or the --features selection), scores each 0-3 by the rubric's automatic rule, and writes GRADING_RESULTS.md, grading.json and, when points are lost, BUG_REPORT.md into the app folder (or --out). Files they replace are moved to .bench/grading/replaced-<ts>/; each grading keeps a copy, its driver log and the screenshots and traces of failed steps in .bench/grading/<ts>-level-<N>/.\n\n\
        --self-test grades a copy of the bundled reference app (reference-app/, started with bench-app on a throwaway PostgreSQL) at level 12: it should score every point. --bench prints grading times and the latency measurement's error.\n\n\
        Exit status: 0 every feature got 3; 1 points were lost (see BUG_REPORT.md); 2 the grading could not run (app not answering, no browser, bad --level or --features, driver failure) and nothing was written."
)]
pub struct Args {
    /// The app folder (results/chat-app-<ts>): its database is reset and the app started
    /// with bench-app before grading.
    #[arg(value_name = "APP_DIR", conflicts_with_all = ["url", "self_test", "bench"])]
    pub app: Option<PathBuf>,
    /// Grade an app running at this address instead (needs --level and --out).
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// The level to grade: features of levels 1..=N (default: the app folder's level).
    #[arg(long, value_name = "N")]
    pub level: Option<u32>,
    /// Grade only these features of the level, e.g. `--features 1,3`. The features before
    /// the last one selected still run first, unscored: plans build on what they leave.
    #[arg(long, value_name = "IDS", value_delimiter = ',')]
    pub features: Vec<u32>,
    /// The Chromium binary (default: /usr/lib/chromium/chromium, then chromium,
    /// chromium-browser, google-chrome on PATH).
    #[arg(long, value_name = "PATH")]
    pub browser: Option<PathBuf>,
    /// Where the results go (default: the app folder; required with --url).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Also record a Playwright trace of failed steps (screenshots are always taken).
    #[arg(long)]
    pub trace: bool,
    /// Check this machine: copy the bundled reference app, start it with bench-app on a
    /// throwaway PostgreSQL, grade it at level 12 and print the score.
    #[arg(long, conflicts_with_all = ["url", "bench"])]
    pub self_test: bool,
    /// Print figures: grading time at levels 1 and 12 with the reference app running, and
    /// the latency measurement's error against a page with a known delay.
    #[arg(long, conflicts_with = "url")]
    pub bench: bool,
    /// Where the driver's npm packages are installed (default: .bench/grade-driver).
    #[arg(long, value_name = "DIR", env = "BENCH_GRADE_DRIVER_DIR", hide = true)]
    pub driver_dir: Option<PathBuf>,
    #[command(flatten)]
    pub agent: crate::agent::cli::AgentArgs,
}

/// Runs the command; prints errors itself and returns the exit status (0, 1 or 2).
pub fn run(args: Args) -> ExitCode {
    if args.bench {
        return run_bench(&args);
    }
    match run_grade(&args) {
        Ok(graded) => {
            print_summary(&graded);
            ExitCode::from(if graded.all_points() {
                EXIT_ALL_POINTS
            } else {
                EXIT_BUGS
            })
        }
        Err(err) => {
            eprintln!("error: {err:#}");
            eprintln!("the grading could not run; nothing was written (exit {EXIT_HARNESS})");
            ExitCode::from(EXIT_HARNESS)
        }
    }
}

fn request(args: &Args) -> Result<Request> {
    let root = bench_formats::paths::repo_root()?;
    let target = match (&args.app, &args.url) {
        (Some(dir), None) => Target::App(dir.clone()),
        (None, Some(url)) => Target::Url(url.clone()),
        _ => anyhow::bail!("give an app folder, or --url URL --level N --out DIR, or --self-test"),
    };
    let driver_dir = args
        .driver_dir
        .clone()
        .unwrap_or_else(|| crate::driver::default_install_dir(&root));
    Ok(Request {
        root,
        target,
        level: args.level,
        features: args.features.clone(),
        browser: args.browser.clone(),
        out: args.out.clone(),
        driver_dir,
        trace: args.trace,
        app_options: None,
    })
}

fn run_grade(args: &Args) -> Result<Graded> {
    let by_agent = args.agent.grader != crate::agent::cli::Grader::Deterministic;
    if args.self_test && by_agent {
        return crate::agent::cli::self_test(args, &self_test_setup(args)?);
    }
    if by_agent {
        return crate::agent::cli::run_grade(args, request(args)?);
    }
    if args.self_test {
        let test = self_test_setup(args)?;
        let graded = crate::selftest::self_test(&test, &mut |line| eprintln!("{line}"))?;
        println!(
            "self-test: the reference app scored {}/{} at level {} (expected: every point)",
            graded.file.score, graded.file.max, graded.file.level
        );
        return Ok(graded);
    }
    let req = request(args)?;
    grade(&req, &mut |line| eprintln!("{line}"))
}

fn self_test_setup(args: &Args) -> Result<crate::selftest::SelfTest> {
    let root = bench_formats::paths::repo_root()?;
    let driver_dir = args
        .driver_dir
        .clone()
        .unwrap_or_else(|| crate::driver::default_install_dir(&root));
    let mut test = crate::selftest::SelfTest::for_user(&root, driver_dir, args.browser.clone());
    if let Some(level) = args.level {
        test.level = level;
    }
    test.features = args.features.clone();
    Ok(test)
}

fn run_bench(args: &Args) -> ExitCode {
    let result = self_test_setup(args)
        .and_then(|test| crate::bench::run(&test, &mut |line| eprintln!("{line}")));
    match result {
        Ok(figures) => {
            println!("{}", crate::bench::table(&figures));
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(EXIT_HARNESS)
        }
    }
}

/// The per-feature table and where the files went.
pub fn summary_table(graded: &Graded) -> Table {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    table.set_header(["Feature", "Score", "Why points were lost"]);
    for f in &graded.file.features {
        table.add_row([
            format!("{}. {}", f.id, f.name),
            format!("{}/{}", f.score, f.max),
            f.reasons.join("\n"),
        ]);
    }
    table.add_row([
        "TOTAL".to_string(),
        format!("{}/{}", graded.file.score, graded.file.max),
        String::new(),
    ]);
    table
}

fn print_summary(graded: &Graded) {
    let f = &graded.file;
    println!(
        "Level {} graded in {:.1} s ({}):",
        f.level,
        f.duration_ms as f64 / 1000.0,
        f.url
    );
    println!("{}", summary_table(graded));
    if !f.not_checked.is_empty() {
        println!(
            "{} behaviour(s) no browser script checks are listed as not checked in GRADING_RESULTS.md.",
            f.not_checked.len()
        );
    }
    for path in &graded.written {
        println!("wrote {}", path.display());
    }
    println!("artifacts and driver log: {}", graded.run_dir.display());
}
