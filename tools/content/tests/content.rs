//! The real content of the repository: it loads, validates, renders current prompts for
//! every backend, rules level, phase and level, and broken copies of it fail clearly.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use bench_content::backend::CommandKind;
use bench_content::{
    Content, LocClass, Preflight, PromptRequest, RepromptEfficiency, Rules, UiContracts, levels,
    template,
};
use bench_formats::Phase;
use bench_formats::app_docs::{
    EntryKind, parse_bug_report, parse_grading_results, parse_iteration_log,
};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .and_then(Path::parent)
        .expect("crate sits two levels below the repository root")
        .to_path_buf()
}

fn content() -> Content {
    Content::load(&repo_root()).unwrap_or_else(|e| panic!("content must load: {e:#}"))
}

/// A throwaway copy of the content folders, to break on purpose.
fn copy_of_content() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for d in bench_content::CONTENT_DIRS {
        copy_dir(&repo_root().join(d), &dir.path().join(d));
    }
    dir
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).unwrap();
        }
    }
}

fn edit(root: &Path, rel: &str, f: impl FnOnce(String) -> String) {
    let path = root.join(rel);
    let text = std::fs::read_to_string(&path).unwrap();
    let new = f(text.clone());
    assert_ne!(text, new, "the edit of {rel} must change something");
    std::fs::write(path, new).unwrap();
}

fn run_vars(backend: &str, run_index: u32) -> BTreeMap<String, String> {
    let mut v = BTreeMap::new();
    v.insert("run_index".to_string(), run_index.to_string());
    v.insert(
        "app_dir".to_string(),
        format!("/tmp/results/{backend}/chat-app-1"),
    );
    v
}

/// A named edit of a content file and the phrases its error must contain.
type Edit = Box<dyn Fn(String) -> String>;

fn load_err(root: &Path) -> String {
    match Content::load_sources(root) {
        Ok(_) => panic!("broken content must not load"),
        Err(e) => format!("{e:#}"),
    }
}

#[test]
fn levels_hold_the_22_features_and_19_cumulative_levels() {
    let c = content();
    let l = c.levels();
    let keys: Vec<&str> = l.features.iter().map(|f| f.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "basic-chat",
            "typing-indicators",
            "read-receipts",
            "unread-counts",
            "scheduled-messages",
            "ephemeral-messages",
            "reactions",
            "message-editing",
            "permissions",
            "rich-presence",
            "threads",
            "private-rooms",
            "activity-indicators",
            "draft-sync",
            "account-migration",
            "pinned-messages",
            "user-profiles",
            "mentions",
            "bookmarks",
            "forwarding",
            "slow-mode",
            "polls",
        ]
    );
    assert_eq!(l.max_level(), 19);
    assert_eq!(l.level(1).unwrap().features, vec![1, 2, 3, 4]);
    for n in 2..=19 {
        assert_eq!(l.level(n).unwrap().features, vec![n + 3], "level {n}");
        assert_eq!(l.level(n).unwrap().extension, n > 12, "level {n}");
    }
    assert_eq!(l.features_up_to(12).unwrap().len(), 15);
    assert_eq!(l.features_up_to(19).unwrap().len(), 22);
    for f in &l.features {
        assert_eq!(f.max_score, 3);
        assert!(f.test.len() >= 2, "feature {} has a real test plan", f.id);
    }
    assert!(
        l.level(20)
            .unwrap_err()
            .to_string()
            .contains("levels are 1..=19")
    );
}

#[test]
fn checked_in_renderings_are_current() {
    // The same check as `cargo xtask bench-prompts --check`.
    let c = content();
    let stale = c
        .stale_files(&[UiContracts::Include, UiContracts::Strip])
        .unwrap();
    assert!(
        stale.is_empty(),
        "stale renderings (run `cargo xtask bench-prompts`): {stale:?}"
    );
    bench_content::cli::run(bench_content::cli::Args {
        check: true,
        ui_contracts: None,
        show: None,
        phase: Phase::Generate,
        level: 1,
        rules: Rules::Guided,
        run_index: 0,
        composed: false,
        version_only: false,
        grading_sheet: None,
    })
    .unwrap();
}

#[test]
fn every_level_renders_for_every_backend_rules_and_phase() {
    let c = content();
    let mut rendered = 0;
    for b in c.backends() {
        let title = &b.file.app.title;
        for rules in Rules::ALL {
            for level in 1..=c.levels().max_level() {
                for phase in [Phase::Generate, Phase::Upgrade, Phase::Fix] {
                    if phase == Phase::Upgrade && level == 1 {
                        continue;
                    }
                    for (composed, ui) in
                        [(false, true), (true, true), (false, false), (true, false)]
                    {
                        let req = PromptRequest {
                            backend: &b.name,
                            phase,
                            level,
                            rules,
                            composed,
                            ui_contracts: ui,
                            vars: run_vars(&b.name, 3),
                        };
                        let p = c.session_prompt(&req).unwrap_or_else(|e| {
                            panic!("{} {phase} L{level} {rules}: {e:#}", b.name)
                        });
                        let what = format!(
                            "{} {phase} L{level} {rules} composed={composed} ui={ui}",
                            b.name
                        );
                        assert!(
                            template::placeholders(&p.text).is_empty(),
                            "{what}: unfilled placeholder"
                        );
                        assert!(p.text.contains(phase.completion_marker()), "{what}: marker");
                        assert!(p.text.contains(title.as_str()), "{what}: app title");
                        let vite = b.ports(3).vite.to_string();
                        assert!(p.text.contains(&vite), "{what}: vite port {vite}");
                        let shows_spec = phase != Phase::Fix || composed;
                        let own = &c.levels().features_added_by(level).unwrap()[0];
                        assert_eq!(
                            p.text
                                .contains(&format!("Feature {}: {}", own.id, own.name)),
                            shows_spec,
                            "{what}: the level's own feature"
                        );
                        let earlier = c.levels().feature(1).unwrap();
                        let shows_earlier = phase == Phase::Generate || (composed && level >= 1);
                        assert_eq!(
                            p.text.contains(&format!("## Feature 1: {}", earlier.name)),
                            shows_earlier,
                            "{what}: earlier features only in whole specs"
                        );
                        assert_eq!(
                            p.text.contains("### UI contract"),
                            ui && shows_spec,
                            "{what}: UI contract sections"
                        );
                        assert_eq!(p.files.len(), 1);
                        let (name, guide) = &p.files[0];
                        assert_eq!(name, Path::new("CLAUDE.md"));
                        assert!(template::placeholders(guide).is_empty(), "{what}: guide");
                        assert!(guide.contains(&b.database_name(3)), "{what}: database name");
                        for s in &p.sources {
                            assert!(repo_root().join(s).is_file(), "{what}: source {s:?}");
                        }
                        rendered += 1;
                    }
                }
            }
        }
    }
    assert_eq!(rendered, 3 * 3 * (19 * 3 - 1) * 4);
}

#[test]
fn fix_prompts_point_at_the_bug_report_and_the_log_format() {
    let c = content();
    let p = c
        .session_prompt(&PromptRequest {
            backend: "spacetime",
            phase: Phase::Fix,
            level: 6,
            rules: Rules::Standard,
            composed: false,
            ui_contracts: true,
            vars: run_vars("spacetime", 0),
        })
        .unwrap();
    assert!(p.text.contains("BUG_REPORT.md"));
    assert!(p.text.contains("ITERATION_LOG.md"));
    assert!(
        p.text
            .trim_end()
            .ends_with("its own as the last line of your final answer.")
    );
    assert!(p.text.contains("FIX_COMPLETE"));
    // The format block embedded in the prompt parses as one fix entry.
    let start = p.text.find("```markdown\n").unwrap() + "```markdown\n".len();
    let end = start + p.text[start..].find("\n```").unwrap();
    let log = parse_iteration_log(&p.text[start..end]);
    assert_eq!(log.entries.len(), 1);
    assert_eq!(log.entries[0].kind, EntryKind::Fix);
    assert!(p.text[start..end].contains("http://localhost:6173"));
    assert!(
        p.sources
            .contains(&PathBuf::from("grading/templates/ITERATION_LOG.md"))
    );
    assert!(
        p.sources
            .contains(&PathBuf::from("backends/spacetime/guide-standard.md"))
    );
}

#[test]
fn upgrade_delta_holds_only_the_new_feature_with_contract_strings() {
    let c = content();
    let req = PromptRequest {
        backend: "mongodb",
        phase: Phase::Upgrade,
        level: 4,
        rules: Rules::Guided,
        composed: false,
        ui_contracts: true,
        vars: run_vars("mongodb", 0),
    };
    let p = c.session_prompt(&req).unwrap();
    assert!(p.text.contains("# Level 4: Message reactions"));
    assert!(p.text.contains("implements levels 1 to 3 of"));
    let l2 = c
        .session_prompt(&PromptRequest {
            level: 2,
            ..req.clone()
        })
        .unwrap();
    assert!(l2.text.contains("implements level 1 of its specification"));
    assert!(p.text.contains("Button `React`"));
    assert!(!p.text.contains("Feature 6: Ephemeral messages"));
    assert!(p.text.contains("UPGRADE_COMPLETE"));
    assert!(
        p.sources
            .contains(&PathBuf::from("prompts/features/07-reactions.md"))
    );
    assert!(
        !p.sources
            .contains(&PathBuf::from("prompts/features/06-ephemeral-messages.md"))
    );
}

#[test]
fn prompt_requests_fail_clearly() {
    let c = content();
    let base = PromptRequest {
        backend: "postgres",
        phase: Phase::Generate,
        level: 1,
        rules: Rules::Minimal,
        composed: false,
        ui_contracts: false,
        vars: BTreeMap::new(),
    };
    // No run values: every missing placeholder is named.
    let e = format!("{:#}", c.session_prompt(&base).unwrap_err());
    assert!(e.contains("no value for"), "{e}");
    assert!(e.contains("{{vite_port}}"), "{e}");
    let e = format!(
        "{:#}",
        c.session_prompt(&PromptRequest {
            backend: "mysql",
            ..base.clone()
        })
        .unwrap_err()
    );
    assert!(e.contains("unknown backend \"mysql\""), "{e}");
    assert!(e.contains("mongodb, postgres, spacetime"), "{e}");
    let e = format!(
        "{:#}",
        c.session_prompt(&PromptRequest {
            phase: Phase::Upgrade,
            vars: run_vars("postgres", 0),
            ..base.clone()
        })
        .unwrap_err()
    );
    assert!(e.contains("upgrade goes to level 2 or higher"), "{e}");
    let e = format!(
        "{:#}",
        c.session_prompt(&PromptRequest {
            level: 25,
            vars: run_vars("postgres", 0),
            ..base.clone()
        })
        .unwrap_err()
    );
    assert!(e.contains("no level 25"), "{e}");
    let mut vars = run_vars("postgres", 0);
    vars.insert("run_index".into(), "first".into());
    let e = format!(
        "{:#}",
        c.session_prompt(&PromptRequest { vars, ..base })
            .unwrap_err()
    );
    assert!(e.contains("run_index = \"first\" is not a number"), "{e}");
}

#[test]
fn backends_ports_databases_and_commands() {
    let c = content();
    let st = c.backend("spacetime").unwrap();
    let pg = c.backend("postgres").unwrap();
    let mg = c.backend("mongodb").unwrap();
    assert_eq!(st.ports(0).vite, 6173);
    assert_eq!(st.ports(2).vite, 6373);
    assert_eq!(st.ports(2).spacetime, Some(3000));
    assert_eq!(st.ports(0).express, None);
    assert_eq!(pg.ports(0).express, Some(6001));
    assert_eq!(pg.ports(1).express, Some(6101));
    assert_eq!(mg.ports(1).vite, 6293);
    assert_eq!(st.database_name(4), "chat-app-run4");
    assert_eq!(pg.database_name(4), "chat_run4");
    assert_eq!(mg.database_name(0), "chat_run0");
    let v = pg.vars(1);
    assert_eq!(
        v["database_url"],
        "postgresql://spacetime:spacetime@127.0.0.1:6432/chat_run1"
    );
    assert_eq!(
        mg.vars(2)["mongodb_uri"],
        "mongodb://127.0.0.1:6437/chat_run2"
    );
    assert_eq!(st.vars(0)["module_name"], "chat-app-run0");

    let app = Path::new("/tmp/apps/chat-app-x");
    let start = pg.commands(CommandKind::Start, 1, app).unwrap();
    let server = start.iter().find(|c| c.name == "server").unwrap();
    assert!(server.background);
    assert!(server.run.contains("PORT=6101"), "{}", server.run);
    assert_eq!(
        server.ready_url.as_deref(),
        Some("http://127.0.0.1:6101/health")
    );
    let reset = mg.commands(CommandKind::Reset, 0, app).unwrap();
    assert!(
        reset[0].run.contains("/tmp/apps/chat-app-x/server"),
        "{}",
        reset[0].run
    );
    for b in c.backends() {
        for kind in [CommandKind::Start, CommandKind::Stop, CommandKind::Reset] {
            for cmd in b.commands(kind, 7, app).unwrap() {
                assert!(
                    template::placeholders(&cmd.run).is_empty(),
                    "{} {}",
                    b.name,
                    cmd.name
                );
            }
        }
        let checks = b.preflight(0).unwrap();
        assert!(checks.iter().any(|p| p.name == "node"), "{}", b.name);
        assert!(
            checks
                .iter()
                .all(|p| template::placeholders(&p.run).is_empty())
        );
    }
}

#[test]
fn preflight_checks_run_and_explain_failures() {
    let ok = Preflight {
        name: "echo".into(),
        run: "echo; echo ' tool 1.2.3 '".into(),
        hint: "unused".into(),
    };
    assert_eq!(ok.check().unwrap(), "tool 1.2.3");
    let bad = Preflight {
        name: "missing".into(),
        run: "definitely-not-a-command-here --version".into(),
        hint: "install the missing tool".into(),
    };
    let e = bad.check().unwrap_err().to_string();
    assert!(e.contains("preflight missing"), "{e}");
    assert!(e.contains("install the missing tool"), "{e}");
}

fn write(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

#[test]
fn detection_tells_the_backends_apart() {
    let c = content();
    let apps = tempfile::tempdir().unwrap();
    let st = apps.path().join("st");
    write(
        &st,
        "backend/spacetimedb/package.json",
        r#"{"dependencies":{"spacetimedb":"^1.3.0"}}"#,
    );
    write(
        &st,
        "client/package.json",
        r#"{"dependencies":{"spacetimedb":"^1.3.0"}}"#,
    );
    let pg = apps.path().join("pg");
    write(
        &pg,
        "server/package.json",
        r#"{"dependencies":{"drizzle-orm":"^0.36","pg":"^8"}}"#,
    );
    write(&pg, "client/package.json", "{}");
    let mg = apps.path().join("mg");
    write(
        &mg,
        "server/package.json",
        r#"{"dependencies":{"mongoose":"^8"}}"#,
    );
    write(&mg, "client/package.json", "{}");
    assert_eq!(c.detect_backend(&st).unwrap().name, "spacetime");
    assert_eq!(c.detect_backend(&pg).unwrap().name, "postgres");
    assert_eq!(c.detect_backend(&mg).unwrap().name, "mongodb");
    let half = apps.path().join("half");
    write(
        &half,
        "server/package.json",
        r#"{"dependencies":{"mongoose":"^8"}}"#,
    );
    let e = c.detect_backend(&half).unwrap_err().to_string();
    assert!(
        e.contains("does not look like an app of any backend"),
        "{e}"
    );
}

#[test]
fn line_counts_follow_the_backend_rules() {
    let c = content();
    let app = tempfile::tempdir().unwrap();
    let a = app.path();
    write(a, "backend/spacetimedb/src/index.ts", "a\nb\nc\n");
    write(a, "backend/spacetimedb/src/schema.ts", "a\nb"); // no final newline: still 2 lines
    write(a, "client/src/App.tsx", "1\n2\n3\n4\n");
    write(a, "client/src/App.css", "x\ny\n");
    write(a, "client/src/vite-env.d.ts", "declare\n");
    write(a, "client/src/module_bindings/index.ts", "g\ng\ng\ng\ng\n");
    write(a, "client/node_modules/pkg/index.ts", "n\n");
    write(a, "level-1/client/src/App.tsx", "old\nold\n");
    write(a, "client/dist/assets/index.js", "built\n");
    let loc = c.backend("spacetime").unwrap().loc_rules();
    assert_eq!(
        loc.classify(Path::new("client/src/App.tsx")),
        Some(LocClass::Frontend)
    );
    assert_eq!(loc.classify(Path::new("client/src/App.css")), None);
    let count = loc.count(a).unwrap();
    assert_eq!(count.lines_of(LocClass::Backend), 5);
    assert_eq!(count.lines_of(LocClass::Frontend), 4);
    assert_eq!(count.lines_of(LocClass::Generated), 5);
    assert_eq!(count.handwritten(), 9);
    assert_eq!(count.files[&LocClass::Backend], 2);

    let pg = c.backend("postgres").unwrap().loc_rules();
    assert_eq!(
        pg.classify(Path::new("server/src/routes/rooms.ts")),
        Some(LocClass::Backend)
    );
    assert_eq!(
        pg.classify(Path::new("server/drizzle/0000_init.sql")),
        Some(LocClass::Generated)
    );
    assert_eq!(
        pg.classify(Path::new("server/node_modules/x/index.ts")),
        None
    );
    assert_eq!(pg.classify(Path::new("level-3/server/src/index.ts")), None);
}

#[test]
fn the_templates_parse_with_the_shared_parsers() {
    let root = repo_root();
    let read = |rel: &str| std::fs::read_to_string(root.join(rel)).unwrap();

    let bugs = parse_bug_report(&read(bench_content::BUG_REPORT_TEMPLATE));
    assert_eq!(bugs.count(), 1);
    assert_eq!(bugs.level, Some(1));
    assert_eq!(bugs.iteration, Some(1));
    let bug = &bugs.bugs[0];
    assert_eq!(bug.number, 1);
    assert!(bug.title.starts_with("Unread badge"), "{}", bug.title);
    assert_eq!(bug.feature.as_deref(), Some("Unread counts (Feature 4)"));
    assert_eq!(bug.severity.as_deref(), Some("Major"));
    assert_eq!(bug.level, Some(1));

    let log = parse_iteration_log(&read(bench_content::ITERATION_LOG_TEMPLATE));
    assert_eq!(log.entries.len(), 1);
    let e = &log.entries[0];
    assert_eq!(e.kind, EntryKind::Fix);
    assert_eq!(e.number, Some(1));
    assert_eq!(e.time.as_deref(), Some("HH:MM"));
    assert_eq!(e.categories, vec!["Feature Broken".to_string()]);
    for field in [
        "What broke",
        "Root cause",
        "What I fixed",
        "Files changed",
        "Redeploy",
        "Server verified",
    ] {
        assert!(
            e.fields.contains_key(field),
            "field {field}: {:?}",
            e.fields.keys()
        );
    }

    let results = parse_grading_results(&read(bench_content::GRADING_RESULTS_TEMPLATE));
    let numbers: Vec<Option<u32>> = results.features.iter().map(|f| f.number).collect();
    assert_eq!(numbers, vec![Some(1), Some(2), Some(3), Some(4)]);
    assert!(!results.total_is_computed);
    let total = results.total.unwrap();
    assert_eq!((total.score, total.max), (9.0, Some(12.0)));
    let sum: f64 = results.features.iter().map(|f| f.score.score).sum();
    assert_eq!(sum, total.score, "the example TOTAL is the sum of its rows");
}

#[test]
fn grading_sheets_list_every_feature_of_the_level() {
    let c = content();
    let sheet = c.grading_sheet(12, "postgres").unwrap();
    // Blank: nothing graded yet.
    let blank = parse_grading_results(&sheet);
    assert!(blank.features.is_empty(), "{:?}", blank.features);
    assert_eq!(blank.total, None);
    // Filled in: 15 features out of 3, total out of 45.
    let filled = sheet
        .replace("| /3 |", "| 2/3 |")
        .replace("| /45 |", "| 30/45 |");
    let r = parse_grading_results(&filled);
    assert_eq!(r.features.len(), 15);
    assert_eq!(r.features[14].number, Some(15));
    assert!(r.features.iter().all(|f| f.score.max == Some(3.0)));
    let total = r.total.unwrap();
    assert_eq!((total.score, total.max), (30.0, Some(45.0)));
    assert!(c.grading_sheet(1, "oracle").is_err());
}

#[test]
fn reprompt_efficiency_bands() {
    let c = content();
    let t = c.reprompt_efficiency();
    assert_eq!(t.band(0).factor, 1.0);
    assert_eq!(t.band(1).factor, 0.8);
    assert_eq!(t.band(4).factor, 0.3);
    assert_eq!(t.band(5).factor, 0.3);
    assert_eq!(t.band(6).label, "struggling");
    assert_eq!(t.band(1000).factor, 0.15);
    let e = RepromptEfficiency::parse(
        "schema = 1\n[[band]]\nmax_fix_sessions = 2\nfactor = 0.5\nlabel = \"a\"\n[[band]]\nmax_fix_sessions = 1\nfactor = 0.9\nlabel = \"b\"\n",
        "t.toml",
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("must be above the previous band's 2"), "{e}");
    assert!(
        e.contains("factor 0.9 is above the previous band's 0.5"),
        "{e}"
    );
    assert!(
        e.contains("the last band must leave out max_fix_sessions"),
        "{e}"
    );
}

#[test]
fn content_version_is_stable_and_tracks_every_content_file() {
    let c = content();
    let v = c.version().to_string();
    assert_eq!(v.len(), 64);
    assert!(v.chars().all(|ch| ch.is_ascii_hexdigit()));
    assert_eq!(content().version(), v, "same files, same version");
    let copy = copy_of_content();
    assert_eq!(
        bench_content::content_version(copy.path()).unwrap(),
        v,
        "independent of location"
    );
    edit(copy.path(), "grading/rubric.md", |t| t + "\n");
    let changed = bench_content::content_version(copy.path()).unwrap();
    assert_ne!(changed, v);
    std::fs::write(copy.path().join("prompts/.levels.toml.swp"), "editor").unwrap();
    std::fs::write(copy.path().join("prompts/ui-guide.md~"), "backup").unwrap();
    assert_eq!(
        bench_content::content_version(copy.path()).unwrap(),
        changed,
        "leftovers ignored"
    );
    std::fs::write(copy.path().join("backends/postgres/notes.txt"), "x").unwrap();
    assert_ne!(
        bench_content::content_version(copy.path()).unwrap(),
        changed
    );
}

#[test]
fn a_stale_rendering_blocks_loading_until_rendered_again() {
    let copy = copy_of_content();
    let root = copy.path();
    edit(root, "prompts/features/07-reactions.md", |t| {
        t + "\nReactions are kept per message.\n"
    });
    let e = match Content::load(root) {
        Ok(_) => panic!("stale renderings must block loading"),
        Err(e) => format!("{e:#}"),
    };
    assert!(e.contains("out of date"), "{e}");
    assert!(e.contains("prompts/composed/with-ui/level-04.md"), "{e}");
    assert!(
        !e.contains("level-03.md"),
        "levels before the feature are unaffected: {e}"
    );
    let c = Content::load_sources(root).unwrap();
    for (rel, text) in c
        .rendered(&[UiContracts::Include, UiContracts::Strip])
        .unwrap()
    {
        std::fs::write(root.join(rel), text).unwrap();
    }
    std::fs::write(root.join("prompts/composed/with-ui/level-42.md"), "orphan").unwrap();
    let stale = c.stale_files(&[UiContracts::Include]).unwrap();
    assert_eq!(
        stale,
        vec![PathBuf::from("prompts/composed/with-ui/level-42.md")]
    );
    std::fs::remove_file(root.join("prompts/composed/with-ui/level-42.md")).unwrap();
    Content::load(root).unwrap();
}

#[test]
fn broken_levels_files_give_clear_errors() {
    let cases: Vec<(&str, Edit, Vec<&str>)> = vec![
        (
            "max score",
            Box::new(|t: String| {
                t.replacen(
                    "id = 7\nkey = \"reactions\"\nname = \"Message reactions\"\nmax_score = 3",
                    "id = 7\nkey = \"reactions\"\nname = \"Message reactions\"\nmax_score = 5",
                    1,
                )
            }),
            vec![
                "levels/levels.toml",
                "feature 7 (reactions): max_score must be 3, found 5",
            ],
        ),
        (
            "feature added twice",
            Box::new(|t: String| {
                t.replace(
                    "number = 3\nname = \"Ephemeral messages\"\nfeatures = [6]",
                    "number = 3\nname = \"Ephemeral messages\"\nfeatures = [5]",
                )
            }),
            vec![
                "level 3: feature 5 is already added by level 2",
                "feature 6 (ephemeral-messages): no level adds it",
            ],
        ),
        (
            "unknown field",
            Box::new(|t: String| t.replacen("max_score = 3", "max_score = 3\nweight = 2", 1)),
            vec!["levels/levels.toml: not a valid levels file", "weight"],
        ),
        (
            "toml syntax",
            Box::new(|t: String| t.replacen("schema = 1", "schema = = 1", 1)),
            vec!["levels/levels.toml: not a valid levels file", "line"],
        ),
        (
            "test step without observation",
            Box::new(|t: String| {
                t.replacen("alice = \"`Self-destruct` disappears; `Stays` remains.\"\nbob = \"`Self-destruct` disappears; `Stays` remains.\"\n", "", 1)
            }),
            vec![
                "feature 6 (ephemeral-messages): test step 2 says what neither alice nor bob must observe",
            ],
        ),
        (
            "feature numbering",
            Box::new(|t: String| t.replacen("id = 13\n", "id = 31\n", 1)),
            vec!["feature 31 (activity-indicators): id must be 13"],
        ),
    ];
    for (what, f, needles) in cases {
        let copy = copy_of_content();
        edit(copy.path(), levels::LEVELS_FILE, f);
        let e = load_err(copy.path());
        for n in needles {
            assert!(e.contains(n), "{what}: expected {n:?} in:\n{e}");
        }
    }
    // A missing spec file is named.
    let copy = copy_of_content();
    std::fs::remove_file(copy.path().join("prompts/features/11-threads.md")).unwrap();
    let e = load_err(copy.path());
    assert!(
        e.contains("feature 11 (threads): spec file prompts/features/11-threads.md does not exist"),
        "{e}"
    );
}

#[test]
fn broken_backend_files_give_clear_errors() {
    let cases: Vec<(&str, &str, Edit, Vec<&str>)> = vec![
        (
            "name and colour",
            "backends/postgres/backend.toml",
            Box::new(|t: String| {
                t.replace("name = \"postgres\"", "name = \"pg\"")
                    .replace("#336791", "blue")
            }),
            vec![
                "backends/postgres/backend.toml: 2 problem(s)",
                "name = \"pg\" must equal its folder name \"postgres\"",
                "app.primary = \"blue\" is not a #rrggbb colour",
            ],
        ),
        (
            "unknown placeholder in a command",
            "backends/mongodb/backend.toml",
            Box::new(|t: String| {
                t.replace(
                    "MONGODB_URI='{{mongodb_uri}}' npm start",
                    "MONGODB_URI='{{mongo_url}}' npm start",
                )
            }),
            vec![
                "backends/mongodb/backend.toml",
                "commands.start \"server\"",
                "no value for {{mongo_url}}",
            ],
        ),
        (
            "database name without run index",
            "backends/spacetime/backend.toml",
            Box::new(|t: String| {
                t.replace(
                    "name = \"chat-app-run{{run_index}}\"",
                    "name = \"chat-app\"",
                )
            }),
            vec!["database.name = \"chat-app\" must use {{run_index}}"],
        ),
        (
            "ports overlap",
            "backends/mongodb/backend.toml",
            Box::new(|t: String| {
                t.replace(
                    "vite = { base = 6193, per_run = 100 }",
                    "vite = { base = 6273, per_run = 100 }",
                )
            }),
            vec!["backend ports overlap", "port 6273", "collides with"],
        ),
        (
            "port on the infrastructure",
            "backends/postgres/backend.toml",
            Box::new(|t: String| {
                t.replace(
                    "express = { base = 6001, per_run = 100 }",
                    "express = { base = 6432, per_run = 0 }",
                )
            }),
            vec!["port 6432", "PostgreSQL (infrastructure)"],
        ),
        (
            "bad glob",
            "backends/postgres/backend.toml",
            Box::new(|t: String| t.replace("\"server/src/**/*.ts\"", "\"server/src/[*.ts\"")),
            vec!["loc.backend.include", "invalid glob \"server/src/[*.ts\""],
        ),
        (
            "unknown port name",
            "backends/spacetime/backend.toml",
            Box::new(|t: String| {
                t.replace(
                    "spacetime = { base = 3000, per_run = 0 }",
                    "spacetimedb = { base = 3000, per_run = 0 }",
                )
            }),
            vec![
                "backends/spacetime/backend.toml: not a valid backend file",
                "spacetimedb",
            ],
        ),
    ];
    for (what, file, f, needles) in cases {
        let copy = copy_of_content();
        edit(copy.path(), file, f);
        let e = load_err(copy.path());
        for n in needles {
            assert!(e.contains(n), "{what}: expected {n:?} in:\n{e}");
        }
    }
    // A missing guide is named.
    let copy = copy_of_content();
    std::fs::remove_file(copy.path().join("backends/mongodb/guide-minimal.md")).unwrap();
    let e = load_err(copy.path());
    assert!(
        e.contains("backend mongodb is missing its text files: backends/mongodb/guide-minimal.md"),
        "{e}"
    );
    // A guide using a value no session provides is refused at load.
    let copy = copy_of_content();
    edit(copy.path(), "backends/spacetime/guide-guided.md", |t| {
        t + "\nSee {{dashboard_url}}.\n"
    });
    let e = load_err(copy.path());
    assert!(e.contains("no value for {{dashboard_url}}"), "{e}");
    assert!(e.contains("backends/spacetime/guide-guided.md"), "{e}");
}

#[test]
fn guides_have_the_same_structure_on_every_backend() {
    let c = content();
    let root = repo_root();
    let headings = |rel: &Path| -> Vec<String> {
        std::fs::read_to_string(root.join(rel))
            .unwrap()
            .lines()
            .filter(|l| l.starts_with("## "))
            // `## Phase 1: the module` / `## Phase 1: the server`: same section.
            .map(|l| l.split(':').next().unwrap_or(l).to_string())
            .collect()
    };
    for rules in Rules::ALL {
        let mut shapes = Vec::new();
        let mut sizes = Vec::new();
        for b in c.backends() {
            let path = b.guide_path(rules);
            shapes.push((b.name.clone(), headings(&path)));
            sizes.push(std::fs::read_to_string(root.join(&path)).unwrap().len());
        }
        for (name, h) in &shapes[1..] {
            assert_eq!(
                h, &shapes[0].1,
                "{rules} guide of {name} vs {}",
                shapes[0].0
            );
        }
        let (min, max) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
        assert!(
            *max as f64 <= *min as f64 * 1.3,
            "{rules} guides differ too much in length: {sizes:?}"
        );
    }
    // Every backend's language file names its title and colours.
    for b in c.backends() {
        let text = std::fs::read_to_string(root.join(b.language_path())).unwrap();
        for p in ["{{app_title}}", "{{brand_primary}}", "{{brand_accent}}"] {
            assert!(text.contains(p), "{}: {p}", b.name);
        }
    }
}
