//! Benchmark content: the chat app's feature levels, the prompts, the backend guides and
//! the grading material — typed, validated, versioned and assembled into session prompts.
//!
//! Content lives in data files at the repository root:
//! - `levels/levels.toml` — features and levels ([`Levels`]);
//! - `prompts/` — feature specs, the UI guide, per-backend language files, phase
//!   templates, and the rendered level specs under `prompts/composed/`;
//! - `backends/<name>/` — `backend.toml` ([`Backend`]) and the guides per rules level;
//! - `grading/` — rubric, reprompt-efficiency table, templates, rendered test plans.
//!
//! [`Content::load`] reads and validates all of it; [`Content::session_prompt`] builds
//! what one agent session is given.

pub mod backend;
pub mod cli;
pub mod grading;
pub mod levels;
pub mod render;
pub mod template;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use bench_formats::Phase;
use sha2::{Digest, Sha256};

pub use backend::{
    AppCommand, Backend, CommandKind, LocClass, LocCount, LocRules, LocSpec, Ports, Preflight,
    count_lines,
};
pub use grading::RepromptEfficiency;
pub use levels::{Feature, Level, Levels};
pub use render::UiContracts;

/// Fails listing every problem found in `file`, one per line; `Ok` when there is none.
pub(crate) fn no_problems(file: &str, problems: &[String]) -> Result<()> {
    if problems.is_empty() {
        return Ok(());
    }
    bail!(
        "{file}: {} problem(s):\n  - {}",
        problems.len(),
        problems.join("\n  - ")
    )
}

/// The folders whose files make up the content (and its version).
pub const CONTENT_DIRS: [&str; 4] = ["levels", "prompts", "backends", "grading"];

/// Phase templates: `prompts/phases/<phase>.md`.
pub const PHASES_DIR: &str = "prompts/phases";

/// The iteration-log template shown to fix sessions.
pub const ITERATION_LOG_TEMPLATE: &str = "grading/templates/ITERATION_LOG.md";
/// The bug-report template graders fill in.
pub const BUG_REPORT_TEMPLATE: &str = "grading/templates/BUG_REPORT.md";
/// The grading-results template graders fill in.
pub const GRADING_RESULTS_TEMPLATE: &str = "grading/templates/GRADING_RESULTS.md";

/// The file a session's backend guide is placed in, inside the app folder.
pub const GUIDE_FILE_NAME: &str = "CLAUDE.md";

/// How much help the agent's guide gives (typed in bench-formats: it is written into every
/// session's records).
pub use bench_formats::Rules;

/// What a session prompt is for.
#[derive(Debug, Clone)]
pub struct PromptRequest<'a> {
    pub backend: &'a str,
    pub phase: Phase,
    /// The level the session builds (generate), upgrades to (upgrade) or fixes (fix).
    pub level: u32,
    pub rules: Rules,
    /// Upgrade: give the whole spec of levels 1..=level instead of only what `level` adds.
    /// Fix: append the whole spec for reference. Generate always gets the whole spec.
    pub composed: bool,
    /// Include the UI contract sections.
    pub ui_contracts: bool,
    /// Run values for the placeholders. When it holds `run_index`, the backend's values
    /// for that run ([`Backend::vars`]) are filled in first and these override them;
    /// `app_dir` should be given too.
    pub vars: BTreeMap<String, String>,
}

/// What one agent session is given.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionPrompt {
    /// The prompt, every placeholder filled.
    pub text: String,
    /// Files to write into the app folder before the session (relative path, text).
    pub files: Vec<(PathBuf, String)>,
    /// Content files the prompt was built from, relative to the repository root.
    pub sources: Vec<PathBuf>,
}

/// All benchmark content, validated.
#[derive(Debug, Clone)]
pub struct Content {
    root: PathBuf,
    levels: Levels,
    backends: BTreeMap<String, Backend>,
    /// Root-relative path → text, for every text file the prompts use.
    texts: BTreeMap<String, String>,
    reprompt: RepromptEfficiency,
    version: String,
}

impl Content {
    /// Reads and validates all content under the repository root `root`, including that
    /// the checked-in rendered specs are current.
    pub fn load(root: &Path) -> Result<Content> {
        let content = Content::load_sources(root)?;
        let stale = content.stale_files(&[UiContracts::Include, UiContracts::Strip])?;
        if !stale.is_empty() {
            bail!(
                "the rendered prompts are out of date with levels/levels.toml and prompts/ ({}): run `cargo xtask bench-prompts` and commit the result",
                stale
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        Ok(content)
    }

    /// Reads and validates the sources, without checking the rendered files (what
    /// `bench-prompts` uses before rendering them).
    pub fn load_sources(root: &Path) -> Result<Content> {
        let levels = Levels::load(root)?;
        let mut texts = BTreeMap::new();
        let mut read = |rel: &str| -> Result<()> {
            let text = std::fs::read_to_string(root.join(rel))
                .with_context(|| format!("cannot read {rel} (under {})", root.display()))?;
            texts.insert(rel.to_string(), text);
            Ok(())
        };
        for f in &levels.features {
            read(&f.spec)?;
        }
        read(render::UI_GUIDE)?;
        for p in [Phase::Generate, Phase::Upgrade, Phase::Fix] {
            read(&phase_template(p))?;
        }
        read(ITERATION_LOG_TEMPLATE)?;
        read(BUG_REPORT_TEMPLATE)?;
        read(GRADING_RESULTS_TEMPLATE)?;

        let mut backends = BTreeMap::new();
        for name in backend::backend_names(root)? {
            let b = Backend::load(root, &name)?;
            for f in b.content_files() {
                read(&f.to_string_lossy())?;
            }
            backends.insert(name, b);
        }
        let list: Vec<Backend> = backends.values().cloned().collect();
        backend::check_port_overlap(&list, &infrastructure_ports())?;

        let reprompt = RepromptEfficiency::load(root)?;
        let content = Content {
            reprompt,
            root: root.to_path_buf(),
            version: content_version(root)?,
            levels,
            backends,
            texts,
        };
        content.check_templates()?;
        Ok(content)
    }

    /// Where the content was loaded from.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// SHA-256 (hex) over every file under `levels/`, `prompts/`, `backends/` and
    /// `grading/` (hidden files and `~` backups excepted): sorted relative paths, each
    /// with its length and bytes.
    pub fn version(&self) -> &str {
        &self.version
    }

    pub fn levels(&self) -> &Levels {
        &self.levels
    }

    /// The reprompt-efficiency table (`grading/reprompt-efficiency.toml`).
    pub fn reprompt_efficiency(&self) -> &RepromptEfficiency {
        &self.reprompt
    }

    /// A blank `GRADING_RESULTS.md` for an app of `backend` at `level`.
    pub fn grading_sheet(&self, level: u32, backend: &str) -> Result<String> {
        self.backend(backend)?;
        grading::grading_sheet(&self.levels, level, backend)
    }

    /// The backend called `name`.
    pub fn backend(&self, name: &str) -> Result<&Backend> {
        self.backends.get(name).with_context(|| {
            format!(
                "unknown backend {name:?}: known backends are {}",
                self.backends.keys().cloned().collect::<Vec<_>>().join(", ")
            )
        })
    }

    /// All backends, by name.
    pub fn backends(&self) -> impl Iterator<Item = &Backend> {
        self.backends.values()
    }

    /// The backend whose detection rules match `app_dir`, if exactly one does.
    pub fn detect_backend(&self, app_dir: &Path) -> Result<&Backend> {
        let hits: Vec<&Backend> = self.backends().filter(|b| b.detects(app_dir)).collect();
        match hits.as_slice() {
            [one] => Ok(one),
            [] => bail!(
                "{} does not look like an app of any backend ({}); pass the backend explicitly",
                app_dir.display(),
                self.backends.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
            many => bail!(
                "{} looks like an app of several backends ({}); pass the backend explicitly",
                app_dir.display(),
                many.iter()
                    .map(|b| b.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }

    fn text(&self, rel: &str) -> Result<&str> {
        self.texts
            .get(rel)
            .map(String::as_str)
            .with_context(|| format!("{rel} was not loaded"))
    }

    fn sources(&self) -> render::Sources<'_> {
        render::Sources {
            levels: &self.levels,
            specs: &self.texts,
            ui_guide: self
                .texts
                .get(render::UI_GUIDE)
                .map(String::as_str)
                .unwrap_or(""),
        }
    }

    /// Every rendered file (root-relative path, text) for the given UI-contract choices.
    pub fn rendered(&self, which: &[UiContracts]) -> Result<Vec<(PathBuf, String)>> {
        render::all_rendered(&self.sources(), which)
    }

    /// Rendered files whose checked-in copy is missing or differs, plus files in the
    /// rendered folders that no longer correspond to a level.
    pub fn stale_files(&self, which: &[UiContracts]) -> Result<Vec<PathBuf>> {
        let expected = self.rendered(which)?;
        let mut stale = Vec::new();
        for (rel, text) in &expected {
            match std::fs::read_to_string(self.root.join(rel)) {
                Ok(on_disk) if &on_disk == text => {}
                _ => stale.push(rel.clone()),
            }
        }
        for ui in which {
            let dir = self.root.join(ui.dir());
            if let Ok(entries) = std::fs::read_dir(&dir) {
                for e in entries.flatten() {
                    let rel = Path::new(ui.dir()).join(e.file_name());
                    if !expected.iter().any(|(p, _)| p == &rel) {
                        stale.push(rel);
                    }
                }
            }
        }
        stale.sort();
        Ok(stale)
    }

    /// The prompt and files for one agent session.
    pub fn session_prompt(&self, req: &PromptRequest<'_>) -> Result<SessionPrompt> {
        let backend = self.backend(req.backend)?;
        let level = self.levels.level(req.level)?;
        let ui = if req.ui_contracts {
            UiContracts::Include
        } else {
            UiContracts::Strip
        };
        let src = self.sources();

        let mut sources: Vec<PathBuf> = Vec::new();
        let spec_sources = |sources: &mut Vec<PathBuf>, up_to: bool| -> Result<()> {
            sources.push(levels::LEVELS_FILE.into());
            sources.push(render::UI_GUIDE.into());
            let feats = if up_to {
                self.levels.features_up_to(req.level)?
            } else {
                self.levels.features_added_by(req.level)?
            };
            sources.extend(feats.iter().map(|f| PathBuf::from(&f.spec)));
            Ok(())
        };
        let spec = match req.phase {
            Phase::Generate => {
                spec_sources(&mut sources, true)?;
                render::composed_level(&src, req.level, ui)?
            }
            Phase::Upgrade => {
                if req.level < 2 {
                    bail!(
                        "an upgrade goes to level 2 or higher (asked for level {})",
                        req.level
                    );
                }
                spec_sources(&mut sources, req.composed)?;
                if req.composed {
                    render::composed_level(&src, req.level, ui)?
                } else {
                    render::level_delta(&src, req.level, ui)?
                }
            }
            Phase::Fix => {
                if req.composed {
                    spec_sources(&mut sources, true)?;
                    format!(
                        "---\n\nFor reference, the specification the app implements:\n\n{}",
                        strip_notice(&render::composed_level(&src, req.level, ui)?)
                    )
                } else {
                    String::new()
                }
            }
        };
        let spec = strip_notice(&spec);

        let template_path = phase_template(req.phase);
        let language_path = backend.language_path().to_string_lossy().into_owned();
        let guide_path = backend.guide_path(req.rules).to_string_lossy().into_owned();
        sources.push(template_path.clone().into());
        sources.push(language_path.clone().into());
        sources.push(guide_path.clone().into());

        let mut vars = match req.vars.get("run_index") {
            Some(i) => {
                let i: u32 = i
                    .parse()
                    .with_context(|| format!("vars.run_index = {i:?} is not a number"))?;
                backend.vars(i)
            }
            None => BTreeMap::new(),
        };
        vars.extend(req.vars.iter().map(|(k, v)| (k.clone(), v.clone())));
        vars.insert("level".into(), req.level.to_string());
        vars.insert("level_name".into(), level.name.clone());
        vars.insert(
            "previous_level".into(),
            req.level.saturating_sub(1).to_string(),
        );
        vars.insert(
            "built_levels".into(),
            match req.level {
                0 | 1 => "nothing yet".to_string(),
                2 => "level 1".to_string(),
                n => format!("levels 1 to {}", n - 1),
            },
        );
        vars.insert("phase".into(), req.phase.as_str().into());
        vars.insert("rules".into(), req.rules.as_str().into());
        vars.insert(
            "completion_marker".into(),
            req.phase.completion_marker().into(),
        );
        vars.insert("guide_file".into(), GUIDE_FILE_NAME.into());
        // Whole texts go in first, so their own placeholders are filled with the rest.
        vars.insert("spec".into(), spec);
        vars.insert(
            "stack_notes".into(),
            self.text(&language_path)?.trim().to_string(),
        );
        if req.phase == Phase::Fix {
            sources.push(ITERATION_LOG_TEMPLATE.into());
            vars.insert(
                "iteration_log_format".into(),
                self.text(ITERATION_LOG_TEMPLATE)?.trim().to_string(),
            );
        }
        let what = format!(
            "{} prompt (backend {}, level {}, rules {})",
            req.phase, backend.name, req.level, req.rules
        );
        let stage1 = template::fill(self.text(&template_path)?, &vars, &what)?;
        let text = template::fill(&stage1, &vars, &what)?.trim().to_string() + "\n";
        let guide = template::fill(
            self.text(&guide_path)?,
            &vars,
            &format!("{guide_path} (run values)"),
        )?;
        let mut seen = std::collections::BTreeSet::new();
        sources.retain(|p| seen.insert(p.clone()));
        Ok(SessionPrompt {
            text,
            files: vec![(PathBuf::from(GUIDE_FILE_NAME), guide)],
            sources,
        })
    }

    /// Every phase template, guide and language file must fill from the values a session
    /// provides (checked with run 0 of every backend and a sample app folder).
    fn check_templates(&self) -> Result<()> {
        for b in self.backends() {
            for phase in [Phase::Generate, Phase::Upgrade, Phase::Fix] {
                for rules in Rules::ALL {
                    let mut vars = BTreeMap::new();
                    vars.insert("run_index".to_string(), "0".to_string());
                    vars.insert("app_dir".to_string(), "/tmp/app".to_string());
                    let req = PromptRequest {
                        backend: &b.name,
                        phase,
                        level: 2,
                        rules,
                        composed: false,
                        ui_contracts: true,
                        vars,
                    };
                    self.session_prompt(&req).with_context(
                        || "a content file uses a placeholder sessions do not provide",
                    )?;
                }
            }
        }
        Ok(())
    }
}

/// `prompts/phases/<phase>.md`.
pub fn phase_template(phase: Phase) -> String {
    format!("{PHASES_DIR}/{}.md", phase.as_str())
}

/// Ports of the embedded infrastructure that no app may use.
pub fn infrastructure_ports() -> Vec<(u16, String)> {
    bench_formats::infra::SERVICES
        .iter()
        .map(|s| (s.port, format!("{} (infrastructure)", s.what)))
        .collect()
}

fn strip_notice(spec: &str) -> String {
    let mut lines = spec.lines().peekable();
    if lines
        .peek()
        .is_some_and(|l| l.starts_with("<!-- Rendered by"))
    {
        lines.next();
    }
    lines.collect::<Vec<_>>().join("\n").trim().to_string()
}

/// SHA-256 over the content folders under `root` (see [`Content::version`]).
pub fn content_version(root: &Path) -> Result<String> {
    let mut files = Vec::new();
    for dir in CONTENT_DIRS {
        collect_files(root, Path::new(dir), &mut files)?;
    }
    files.sort();
    let mut h = Sha256::new();
    for rel in &files {
        let bytes = std::fs::read(root.join(rel))
            .with_context(|| format!("cannot read {}", rel.display()))?;
        let name = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/");
        h.update((name.len() as u64).to_le_bytes());
        h.update(name.as_bytes());
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(&bytes);
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

fn collect_files(root: &Path, rel: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let dir = root.join(rel);
    let entries = std::fs::read_dir(&dir).with_context(|| {
        format!(
            "cannot list {}: is {} the benchmark repository?",
            dir.display(),
            root.display()
        )
    })?;
    for e in entries {
        let e = e.with_context(|| format!("cannot list {}", dir.display()))?;
        let name = e.file_name();
        let name_text = name.to_string_lossy();
        // Editor and OS leftovers are not content.
        if name_text.starts_with('.') || name_text.ends_with('~') {
            continue;
        }
        let child = rel.join(&name);
        let kind = e
            .file_type()
            .with_context(|| format!("cannot stat {}", e.path().display()))?;
        if kind.is_dir() {
            collect_files(root, &child, out)?;
        } else if kind.is_file() {
            out.push(child);
        }
    }
    Ok(())
}
