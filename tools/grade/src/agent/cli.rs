//! The options of `bench-grade` that choose and run the agent grader, and its self-test.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Args as ClapArgs, ValueEnum};

use super::{AgentGraded, AgentOptions, SELF_TEST_SCRIPT, grade_agent};
use crate::cli::Args;
use crate::grade::{Graded, Request, Target};

/// Who judges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum Grader {
    /// The levels' scripts in the Playwright driver (needs the UI contract).
    #[default]
    Deterministic,
    /// A Claude Code session with two Playwright MCP browsers (alice, bob) judges by the
    /// test plans and rubric.
    Agent,
    /// Deterministic first; the agent re-judges the steps it could not carry out and the
    /// behaviours no script checks.
    Hybrid,
}

/// `bench-grade`'s agent options.
#[derive(ClapArgs, Debug, Clone, Default)]
pub struct AgentArgs {
    /// Who grades: the scripts (deterministic), an agent session with two browsers (agent),
    /// or both (hybrid).
    #[arg(long, value_enum, default_value_t = Grader::Deterministic)]
    pub grader: Grader,
    /// Agent grader: play this rehearsal script through the scripted API instead of the real
    /// one (zero cost), e.g. rehearsal/grade/level-1.toml.
    #[arg(long, value_name = "SCRIPT")]
    pub rehearse: Option<PathBuf>,
    /// Agent grader: the model (default: claude-sonnet-4-6).
    #[arg(long, value_name = "MODEL")]
    pub model: Option<String>,
    /// Agent grader: the session's spending cap, in USD.
    #[arg(long, value_name = "USD")]
    pub max_budget_usd: Option<f64>,
    /// Agent grader: the `claude` CLI (default: on PATH, else installed into .bench/agent-cli).
    #[arg(long, value_name = "PATH")]
    pub agent_bin: Option<PathBuf>,
    /// Agent grader: where `@playwright/mcp` is installed (default: .bench/grade-mcp).
    #[arg(long, value_name = "DIR", env = "BENCH_GRADE_MCP_DIR", hide = true)]
    pub mcp_dir: Option<PathBuf>,
    /// Agent grader: send telemetry to this running OTLP/HTTP receiver (with
    /// --telemetry-dir) instead of the embedded infrastructure's.
    #[arg(long, value_name = "URL", requires = "telemetry_dir", hide = true)]
    pub otlp_endpoint: Option<String>,
    /// The folder that receiver writes (sessions/SESSION_ID/logs.jsonl per session).
    #[arg(long, value_name = "DIR", requires = "otlp_endpoint", hide = true)]
    pub telemetry_dir: Option<PathBuf>,
}

impl AgentArgs {
    /// The session options these arguments give, for the repository at `root`.
    pub fn options(&self, root: &std::path::Path) -> Result<AgentOptions> {
        let mut opts = AgentOptions::new(root);
        opts.rehearse = self.rehearse.clone();
        if let Some(model) = &self.model {
            opts.model = model.clone();
        }
        if let Some(cap) = self.max_budget_usd {
            if !(cap.is_finite() && cap > 0.0) {
                bail!("--max-budget-usd must be an amount above zero, not {cap}");
            }
            opts.max_budget_usd = Some(cap);
        }
        opts.agent_bin = self.agent_bin.clone();
        if let Some(dir) = &self.mcp_dir {
            opts.mcp_dir = dir.clone();
        }
        if let (Some(endpoint), Some(dir)) = (&self.otlp_endpoint, &self.telemetry_dir) {
            opts.telemetry = Some(bench_runner::TelemetrySink {
                endpoint: endpoint.clone(),
                protocol: "http/json".into(),
                dir: std::path::absolute(dir)
                    .with_context(|| format!("cannot resolve {}", dir.display()))?,
            });
        }
        Ok(opts)
    }
}

/// `bench-grade --grader agent|hybrid`, with or without `--self-test`.
pub fn run_grade(args: &Args, request: Request) -> Result<Graded> {
    let opts = args.agent.options(&request.root)?;
    let mut progress = |line: &str| eprintln!("{line}");
    match args.agent.grader {
        Grader::Agent => {
            let graded = grade_agent(&request, &opts, &mut progress)?;
            print_session(&graded);
            Ok(graded.graded)
        }
        Grader::Hybrid => {
            let hybrid = super::hybrid::grade_hybrid(&request, &opts, &mut progress)?;
            if let Some(agent) = &hybrid.agent {
                print_session(agent);
            }
            Ok(hybrid.graded)
        }
        Grader::Deterministic => bail!("the deterministic grader does not run here"),
    }
}

/// `--self-test --grader agent --out DIR`: the rehearsal against the bundled reference app
/// (zero cost); grading.json and the transcript are left in DIR.
pub fn self_test(args: &Args, test: &crate::selftest::SelfTest) -> Result<Graded> {
    let Some(out) = args.out.clone() else {
        bail!(
            "--self-test --grader agent needs --out DIR (where grading.json and the transcript go)"
        );
    };
    let reference = crate::selftest::ReferenceApp::prepare(test)?;
    let request = Request {
        root: test.root.clone(),
        target: Target::App(reference.dir.clone()),
        level: Some(args.level.unwrap_or(1)),
        features: test.features.clone(),
        browser: test.browser.clone(),
        out: Some(out.clone()),
        driver_dir: test.driver_dir.clone(),
        trace: false,
        app_options: Some(reference.options.clone()),
    };
    let mut opts = args.agent.options(&test.root)?;
    if opts.rehearse.is_none() {
        opts.rehearse = Some(test.root.join(SELF_TEST_SCRIPT));
    }
    let graded = grade_agent(&request, &opts, &mut |line| eprintln!("{line}"))?;
    let copy = out.join("grading-transcript.jsonl");
    std::fs::copy(&graded.session.transcript, &copy)
        .with_context(|| format!("cannot copy the transcript to {}", copy.display()))?;
    print_session(&graded);
    println!("transcript: {}", copy.display());
    Ok(graded.graded)
}

fn print_session(graded: &AgentGraded) {
    let s = &graded.session;
    let cost = s.cost.as_ref().map_or("unknown".to_owned(), |c| {
        format!("${:.4}", c.total_cost_usd)
    });
    let reconciliation = s
        .cost
        .as_ref()
        .and_then(|c| c.reconciliation.as_ref())
        .map_or("none".to_owned(), |r| r.status.as_str().to_owned());
    let calls: Vec<String> = graded
        .calls
        .iter()
        .map(|(user, n)| format!("{user} {n}"))
        .collect();
    println!(
        "grading session {}: {} · cost {cost} (reconciliation: {reconciliation}; kept apart from the app's build cost) · browser calls: {}",
        s.session_id,
        s.outcome,
        calls.join(", ")
    );
}
