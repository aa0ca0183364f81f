//! `bench-grade --bench`: figures, not a test. Grading time at level 1 and level 12 with
//! the reference app already running, and the latency measurement's error against the
//! driver's test page that shows a text a known delay after a click.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use serde_json::json;

use crate::grade::{Request, Target, grade};
use crate::program::{Program, ProgramFeature, ProgramStep};
use crate::record::Recorder;
use crate::selftest::{ReferenceApp, SelfTest};
use crate::{browser, driver};

/// The delays shown by the test page, milliseconds, each measured `REPEATS` times.
pub const DELAYS_MS: [u32; 3] = [300, 900, 2_000];
pub const REPEATS: usize = 3;

/// One latency sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub delay_ms: f64,
    pub measured_ms: f64,
}

/// The test page server (`test-pages/server.mjs`); stopped when dropped.
struct TestPages {
    child: Child,
    url: String,
}

impl Drop for TestPages {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_test_pages(driver_main: &Path) -> Result<TestPages> {
    use std::io::BufRead;
    let server = driver_main
        .parent()
        .unwrap_or(Path::new("."))
        .join("test-pages/server.mjs");
    let mut child = Command::new("node")
        .arg(&server)
        .arg("0")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("cannot run node {}", server.display()))?;
    let stdout = child.stdout.take().context("test page server stdout")?;
    let mut line = String::new();
    std::io::BufReader::new(stdout)
        .read_line(&mut line)
        .context("cannot read the test page server's port")?;
    let port: u16 = line
        .split_whitespace()
        .last()
        .and_then(|p| p.parse().ok())
        .with_context(|| format!("the test page server said {line:?}, not its port"))?;
    Ok(TestPages {
        child,
        url: format!("http://127.0.0.1:{port}"),
    })
}

/// A program clicking `Start` on the delay page and timing `Delayed text`, `REPEATS`
/// times (a reload between).
fn delay_program(url: &str, browser: &Path, artifacts: &Path) -> Program {
    let mut steps = Vec::new();
    for i in 0..REPEATS as u32 {
        let first = if i == 0 { "open" } else { "reload" };
        steps.push(ProgramStep {
            index: i + 1,
            actor: "alice".into(),
            action: "Click `Start`; `Delayed text` appears after the page's delay.".into(),
            within_s: Some(5.0),
            script: json!([
                { "user": "alice", "do": first },
                { "user": "alice", "do": "click", "button": "Start" },
                { "user": "alice", "expect": "appears", "text": "Delayed text", "within_s": 5 },
            ]),
        });
    }
    Program {
        version: crate::program::PROGRAM_VERSION,
        url: url.into(),
        browser: browser.display().to_string(),
        artifacts_dir: artifacts.display().to_string(),
        trace: false,
        warmup: true,
        headings: Vec::new(),
        features: vec![ProgramFeature {
            id: 1,
            key: "latency".into(),
            name: "Latency".into(),
            ui: json!([
                { "kind": "button", "text": "Start", "on": "the page" },
                { "kind": "text", "text": "Delayed text", "on": "the page" },
            ]),
            steps,
        }],
    }
}

/// Measures the driver's latency against the delay page: one sample per delay and repeat.
pub fn latency_samples(
    root: &Path,
    driver_dir: &Path,
    browser: Option<&Path>,
    work: &Path,
) -> Result<Vec<Sample>> {
    let browser = browser::find_browser(browser)?;
    let main = driver::install(root, driver_dir)?;
    let pages = start_test_pages(&main)?;
    let mut samples = Vec::new();
    for delay in DELAYS_MS {
        let dir = work.join(format!("latency-{delay}"));
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let url = format!("{}/delay.html?delay={delay}", pages.url);
        let program = delay_program(&url, &browser, &dir.join("artifacts"));
        let path = dir.join("program.json");
        bench_formats::io::write_json(&path, &program)?;
        let mut recorder = Recorder::new(&program, |_| 0);
        driver::run(
            &main,
            &path,
            &dir.join("driver.log"),
            Duration::from_secs(120),
            &mut |e| recorder.apply(e).map(|_| ()),
        )?;
        for f in recorder.finish()? {
            for c in f.steps.iter().flat_map(|s| &s.checks) {
                let Some(ms) = c.latency_ms else {
                    bail!("the delay page's text was not seen ({})", c.observed);
                };
                samples.push(Sample {
                    delay_ms: delay.into(),
                    measured_ms: ms,
                });
            }
        }
    }
    Ok(samples)
}

/// What `--bench` measured.
pub struct Figures {
    pub level_1_s: f64,
    pub level_12_s: f64,
    pub samples: Vec<Sample>,
}

/// Runs the benchmark: the reference app started once, graded at level 1 then level 12.
/// Each grading resets the app's database first (the plans assume a fresh app), and the
/// time reported is the driver's alone (browser launch to the last feature), the app
/// running. Then the latency samples.
pub fn run(test: &SelfTest, progress: &mut dyn FnMut(&str)) -> Result<Figures> {
    let reference = ReferenceApp::prepare(test)?;
    let app = bench_app::App::open(&reference.dir, &reference.options)?;
    app.start().context("cannot start the reference app")?;
    let mut timed = |level: u32| -> Result<f64> {
        let req = Request {
            root: test.root.clone(),
            target: Target::App(reference.dir.clone()),
            level: Some(level),
            features: Vec::new(),
            browser: test.browser.clone(),
            out: None,
            driver_dir: test.driver_dir.clone(),
            trace: false,
            app_options: Some(reference.options.clone()),
        };
        let graded = grade(&req, progress)?;
        progress(&format!(
            "level {level}: {}/{} in {:.1} s",
            graded.file.score,
            graded.file.max,
            graded.file.duration_ms as f64 / 1000.0
        ));
        Ok(graded.file.duration_ms as f64 / 1000.0)
    };
    let level_1_s = timed(1);
    let level_12_s = timed(12);
    let stopped = app.stop();
    let (level_1_s, level_12_s) = (level_1_s?, level_12_s?);
    stopped?;
    let samples = latency_samples(
        &test.root,
        &test.driver_dir,
        test.browser.as_deref(),
        &test.work_dir.join("bench-latency"),
    )?;
    Ok(Figures {
        level_1_s,
        level_12_s,
        samples,
    })
}

/// The figures as a table.
pub fn table(figures: &Figures) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    t.set_header(["Figure", "Value"]);
    t.add_row([
        "grading time, level 1 (4 features), app running".to_string(),
        format!("{:.1} s", figures.level_1_s),
    ]);
    t.add_row([
        "grading time, level 12 (15 features), app running".to_string(),
        format!("{:.1} s", figures.level_12_s),
    ]);
    for delay in DELAYS_MS {
        let errors: Vec<f64> = figures
            .samples
            .iter()
            .filter(|s| s.delay_ms == f64::from(delay))
            .map(|s| s.measured_ms - s.delay_ms)
            .collect();
        let text: Vec<String> = errors.iter().map(|e| format!("{e:+.0}")).collect();
        t.add_row([
            format!("latency error at {delay} ms (measured − shown), ms"),
            text.join(", "),
        ]);
    }
    let worst = figures
        .samples
        .iter()
        .map(|s| (s.measured_ms - s.delay_ms).abs())
        .fold(0.0, f64::max);
    t.add_row([
        "largest latency error".to_string(),
        format!("{worst:.0} ms"),
    ]);
    t
}
