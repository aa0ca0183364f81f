//! Backends live in their data: a copy of `backends/postgres` under another name (with its
//! own `name` and ports) is a backend that bench-prompts, `bench-run --rehearse` and
//! bench-report handle with no code change. The content is copied into a temporary
//! repository root; the session is a real rehearsal with the real Claude Code CLI, its
//! telemetry going to an embedded OTLP receiver on free ports.

use std::path::{Path, PathBuf};
use std::time::Duration;

use bench_content::{Content, PromptRequest, Rules, UiContracts};
use bench_formats::{CostSummary, Phase, read_json};
use bench_report::{ContentLocRules, data, load_runs, run_metrics, write_outputs};
use bench_runner::{Cancel, ModelSource, RunOptions, Task, TelemetrySink};
use otlp_receiver::{Receiver, ReceiverConfig};

const COPY: &str = "pgcopy";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// A repository root holding the content, plus `backends/pgcopy`: postgres renamed, on
/// ports of its own, claiming none of postgres's aliases in reports.
fn root_with_copy(tmp: &Path) -> PathBuf {
    let root = tmp.join("repo");
    for dir in ["levels", "prompts", "backends", "grading"] {
        copy_tree(&repo_root().join(dir), &root.join(dir));
    }
    let copy = root.join("backends").join(COPY);
    copy_tree(&root.join("backends/postgres"), &copy);
    let file = copy.join("backend.toml");
    let text = std::fs::read_to_string(&file).unwrap();
    let mut changed = text.clone();
    for (from, to) in [
        ("name = \"postgres\"", "name = \"pgcopy\""),
        ("vite = { base = 6183,", "vite = { base = 6187,"),
        ("express = { base = 6001,", "express = { base = 6005,"),
        ("aliases = [\"pg\", \"postgresql\"]", "aliases = []"),
    ] {
        assert!(
            changed.contains(from),
            "backends/postgres/backend.toml has {from}"
        );
        changed = changed.replacen(from, to, 1);
    }
    std::fs::write(&file, changed).unwrap();
    root
}

/// What `bench-prompts` does with the content: every rendering is current, and the copy's
/// session prompts and grading sheet render.
fn prompts_handle_the_copy(content: &Content) {
    assert!(content.backends().any(|b| b.name == COPY));
    let stale = content
        .stale_files(&[UiContracts::Include, UiContracts::Strip])
        .unwrap();
    assert!(stale.is_empty(), "stale renderings: {stale:?}");
    for phase in [Phase::Generate, Phase::Upgrade, Phase::Fix] {
        let mut vars = std::collections::BTreeMap::new();
        vars.insert("run_index".to_string(), "0".to_string());
        vars.insert("app_dir".to_string(), "/tmp/app".to_string());
        let prompt = content
            .session_prompt(&PromptRequest {
                backend: COPY,
                phase,
                level: 2,
                rules: Rules::Guided,
                composed: false,
                ui_contracts: true,
                vars,
            })
            .unwrap();
        assert!(prompt.text.contains("6187"), "the copy's own vite port");
    }
    assert!(content.grading_sheet(1, COPY).unwrap().contains(COPY));
}

#[test]
fn a_copied_backend_needs_no_code_change() {
    let tmp = tempfile::tempdir().unwrap();
    let root = root_with_copy(tmp.path());
    let content = Content::load(&root).unwrap();
    prompts_handle_the_copy(&content);

    // bench-run --rehearse: a real CLI session generating level 1 on the copy.
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target"));
    let agent_bin = bench_runner::agent::install_agent_cli(&target.join("claude-code")).unwrap();
    let receiver =
        Receiver::start(ReceiverConfig::ephemeral(tmp.path().join("telemetry"))).unwrap();
    let runs = tmp.path().join("runs");
    let opts = RunOptions {
        task: Task::Generate {
            backend: COPY.into(),
            level: 1,
        },
        root: root.clone(),
        runs_dir: runs.clone(),
        variant: None,
        rules: None,
        run_index: None,
        model: "claude-sonnet-4-6".into(),
        max_budget_usd: None,
        timeout: Some(Duration::from_secs(120)),
        agent_bin,
        models: ModelSource::Rehearsal(repo_root().join("rehearsal/generate-l1.toml")),
        telemetry: TelemetrySink {
            endpoint: receiver.http_endpoint(),
            protocol: "http/json".into(),
            dir: receiver.dir().to_path_buf(),
        },
        ui_contracts: true,
        show_progress: false,
        cancel: Cancel::new(),
        flush_wait: Duration::from_secs(15),
        extra_env: vec![(
            "CLAUDE_CONFIG_DIR".into(),
            tmp.path().join("claude-config").display().to_string(),
        )],
    };
    let report = bench_runner::run_session(&opts).unwrap();
    assert_eq!(report.outcome.to_string(), "completed", "{report:?}");
    let summary: CostSummary = read_json(&report.session_dir.join("cost-summary.json")).unwrap();
    assert!(summary.total_cost_usd > 0.0);
    assert!(report.app_dir.join("server/index.ts").is_file());

    // bench-report: the run has the copy's figures, with its own line-count rules.
    let run_dirs: Vec<PathBuf> = std::fs::read_dir(&runs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let loaded = load_runs(&run_dirs).unwrap();
    let rules = ContentLocRules { content };
    let metrics: Vec<_> = loaded
        .iter()
        .map(|r| run_metrics(r, &rules).unwrap())
        .collect();
    let figures = &metrics[0].backends[COPY];
    assert!((figures.cost.total - summary.total_cost_usd).abs() < 1e-9);
    let out = tmp.path().join("report");
    std::fs::create_dir_all(&out).unwrap();
    let data = data::build(metrics, None, 1, &rules.level_names(), "t".into());
    write_outputs(&data, &out).unwrap();
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains(COPY));
}
