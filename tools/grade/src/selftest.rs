//! `bench-grade --self-test`: the bundled reference app, started with bench-app on a
//! throwaway PostgreSQL, graded at level 12 — the one command that shows the browser stack
//! works on this machine.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use bench_app::AppOptions;
use bench_pg::PgCluster;

use crate::grade::{Graded, Request, Target, grade};

/// The level the reference app implements in full (features 1–15), and the one graded.
pub const SELF_TEST_LEVEL: u32 = 12;

/// Where things go.
#[derive(Debug, Clone)]
pub struct SelfTest {
    pub root: PathBuf,
    /// The folder the reference app is copied into (`chat-app-<ts>/` inside it).
    pub work_dir: PathBuf,
    /// The reference app's npm packages, installed once per lock file.
    pub modules_cache: PathBuf,
    pub driver_dir: PathBuf,
    pub browser: Option<PathBuf>,
    pub level: u32,
    /// Grade only these features (empty: every feature of the level).
    pub features: Vec<u32>,
}

impl SelfTest {
    /// The defaults for a user: everything under `<root>/.bench/grade-self-test/`.
    pub fn for_user(root: &Path, driver_dir: PathBuf, browser: Option<PathBuf>) -> SelfTest {
        let base = bench_formats::paths::state_dir(root).join("grade-self-test");
        SelfTest {
            root: root.to_path_buf(),
            work_dir: base.join("apps"),
            modules_cache: base.join("modules"),
            driver_dir,
            browser,
            level: SELF_TEST_LEVEL,
            features: Vec::new(),
        }
    }
}

/// The reference app on a throwaway PostgreSQL, ready for bench-app; the cluster stops
/// when this is dropped.
pub struct ReferenceApp {
    pub dir: PathBuf,
    pub options: AppOptions,
    pub pg: PgCluster,
}

impl ReferenceApp {
    /// Copies the reference app into a new folder under `work_dir` and chooses free ports
    /// and a throwaway PostgreSQL for it.
    pub fn prepare(test: &SelfTest) -> Result<ReferenceApp> {
        let stamp = chrono::Utc::now().format("%Y%m%d-%H%M%S%3f");
        std::fs::create_dir_all(&test.work_dir)
            .with_context(|| format!("cannot create {}", test.work_dir.display()))?;
        let dir = test.work_dir.join(format!("chat-app-{stamp}"));
        bench_app::reference::prepare(&test.root, &test.modules_cache, &dir)?;
        let pg = PgCluster::start_temp().context(
            "cannot start a throwaway PostgreSQL (PostgreSQL 15 server binaries are needed)",
        )?;
        let mut options = AppOptions::new(&test.root);
        options.backend = Some("postgres".into());
        options.grace = Duration::from_secs(5);
        options
            .overrides
            .insert("pg_port".into(), pg.port().to_string());
        for name in ["express_port", "vite_port"] {
            let port = bench_proc::free_port()?;
            options.overrides.insert(name.into(), port.to_string());
        }
        Ok(ReferenceApp { dir, options, pg })
    }
}

/// Runs the self-test: prepares the reference app and grades it.
pub fn self_test(test: &SelfTest, progress: &mut dyn FnMut(&str)) -> Result<Graded> {
    let reference = ReferenceApp::prepare(test)?;
    progress(&format!(
        "self-test: the reference app (levels 1–{SELF_TEST_LEVEL}) in {}, graded at level {}",
        reference.dir.display(),
        test.level
    ));
    let request = Request {
        root: test.root.clone(),
        target: Target::App(reference.dir.clone()),
        level: Some(test.level),
        features: test.features.clone(),
        browser: test.browser.clone(),
        out: None,
        driver_dir: test.driver_dir.clone(),
        trace: false,
        app_options: Some(reference.options.clone()),
    };
    grade(&request, progress)
}
