//! `backends/<name>/backend.toml`: how the harness runs, detects and measures an app of
//! one backend, and the guides given to the agent.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, anyhow, bail};
use globset::{Glob, GlobSet, GlobSetBuilder};
use serde::{Deserialize, Serialize};

use crate::Rules;
use crate::template;

/// Folder holding one sub-folder per backend.
pub const BACKENDS_DIR: &str = "backends";

/// Highest run index the port scheme is checked for (run indices 0..=MAX_RUN_INDEX can
/// run side by side, on all backends at once, without sharing a port).
pub const MAX_RUN_INDEX: u32 = 49;

/// A backend, validated.
#[derive(Debug, Clone)]
pub struct Backend {
    /// Folder name under `backends/` (`spacetime`, `postgres`, `mongodb`).
    pub name: String,
    pub file: BackendFile,
    loc: LocRules,
}

/// The contents of `backend.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendFile {
    pub schema: u32,
    /// Must equal the folder name.
    pub name: String,
    /// Human name of the database (`PostgreSQL`).
    pub display_name: String,
    /// The stack in a few words (`TypeScript + PostgreSQL + Express + Socket.io + Drizzle`).
    pub stack: String,
    pub app: AppBrand,
    pub ports: PortsSpec,
    pub database: DatabaseSpec,
    /// Extra placeholders for this backend's texts; values may use other placeholders.
    #[serde(default)]
    pub vars: BTreeMap<String, String>,
    pub detect: Detect,
    /// Infrastructure services its runs need started besides telemetry, by name
    /// ([`bench_formats::infra::SERVICES`]: `postgres`, `mongodb`).
    #[serde(default)]
    pub services: Vec<String>,
    #[serde(default)]
    pub preflight: Vec<Preflight>,
    pub commands: Commands,
    pub loc: LocSpec,
    #[serde(default)]
    pub report: ReportSpec,
}

/// How reports name and show the backend.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportSpec {
    /// Other names published figures use for it (`stdb`, `pg`, …).
    #[serde(default)]
    pub aliases: Vec<String>,
    /// Whether ratios divide by this backend when no baseline is asked for.
    #[serde(default)]
    pub baseline: bool,
}

/// The app's title and colours, shown in its header and used by the style guide.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppBrand {
    pub title: String,
    /// `#rrggbb`.
    pub primary: String,
    /// `#rrggbb`.
    pub accent: String,
}

/// A port: `base + per_run * run_index`. `per_run = 0` marks a shared server.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortSpec {
    pub base: u16,
    pub per_run: u16,
}

impl PortSpec {
    pub fn at(&self, run_index: u32) -> Result<u16> {
        let p = u32::from(self.base) + u32::from(self.per_run) * run_index;
        u16::try_from(p).map_err(|_| anyhow!("port {p} for run index {run_index} is above 65535"))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortsSpec {
    /// The Vite dev server of the client.
    pub vite: PortSpec,
    /// The Express API server (PostgreSQL and MongoDB backends).
    #[serde(default)]
    pub express: Option<PortSpec>,
    /// The SpacetimeDB server.
    #[serde(default)]
    pub spacetime: Option<PortSpec>,
}

/// The ports of one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Ports {
    pub vite: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub express: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spacetime: Option<u16>,
}

/// How each run's database (or SpacetimeDB module) is named.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSpec {
    /// Template; `{{run_index}}` is the only placeholder allowed.
    pub name: String,
}

/// Files that mark an app as built on this backend; all must match.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Detect {
    pub all: Vec<DetectRule>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetectRule {
    /// Relative to the app folder.
    pub path: String,
    /// Text the file must contain (absent: the file just has to exist).
    #[serde(default)]
    pub contains: Option<String>,
}

/// A tool the sessions need, checked before any agent starts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Preflight {
    pub name: String,
    /// Shell command that must exit 0 (run with `sh -c`).
    pub run: String,
    /// What to do when it fails.
    pub hint: String,
}

impl Preflight {
    /// Runs the check; returns the first line it printed (usually a version).
    pub fn check(&self) -> Result<String> {
        let out = Command::new("sh")
            .arg("-c")
            .arg(&self.run)
            .output()
            .with_context(|| format!("preflight {}: cannot run `sh`", self.name))?;
        if !out.status.success() {
            bail!(
                "preflight {}: `{}` failed ({}): {}",
                self.name,
                self.run,
                out.status,
                self.hint
            );
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let first = text
            .lines()
            .chain(String::from_utf8_lossy(&out.stderr).lines())
            .map(str::trim)
            .find(|l| !l.is_empty())
            .unwrap_or("")
            .to_string();
        Ok(first)
    }
}

/// The commands the harness uses on an app of this backend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Commands {
    /// Install dependencies, build and start the app (background entries stay running).
    pub start: Vec<AppCommand>,
    /// Stop whatever serves the app's ports.
    pub stop: Vec<AppCommand>,
    /// Give the run a fresh, empty database.
    pub reset: Vec<AppCommand>,
}

/// One command, with `{{placeholders}}` (the backend's run values and `{{app_dir}}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppCommand {
    pub name: String,
    /// Shell command, run with `sh -c`.
    pub run: String,
    /// Working directory relative to the app folder. Absent: the app folder when it
    /// exists, else the repository root (a reset can run before the app exists, so reset
    /// commands reach the app only through `{{app_dir}}` paths they test first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    /// Keeps running (a server): start it and move on.
    #[serde(default)]
    pub background: bool,
    /// For background commands: the URL that answers once it is ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_url: Option<String>,
    /// Give up after this many seconds (foreground: the command; background: readiness).
    #[serde(default = "default_timeout")]
    pub timeout_s: u64,
}

fn default_timeout() -> u64 {
    120
}

/// Which kind of command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandKind {
    Start,
    Stop,
    Reset,
}

/// Which files count as code, as written in `backend.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocSpec {
    /// Never counted (dependencies, build output, level snapshots, styles).
    pub exclude: Vec<String>,
    /// Hand-written server code.
    pub backend: GlobGroup,
    /// Hand-written client code.
    pub frontend: GlobGroup,
    /// Generated client bindings (counted apart, not as hand-written).
    pub generated: GlobGroup,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GlobGroup {
    pub include: Vec<String>,
    #[serde(default)]
    pub exclude: Vec<String>,
}

/// The class a file counts in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LocClass {
    Backend,
    Frontend,
    Generated,
}

/// Compiled line-count rules. A path (relative to the app folder, `/`-separated) is
/// excluded if it matches `exclude`; otherwise it is generated, backend or frontend — the
/// first group (in that order) whose include matches and whose exclude does not.
#[derive(Debug, Clone)]
pub struct LocRules {
    exclude: GlobSet,
    groups: Vec<(LocClass, GlobSet, GlobSet)>,
}

/// Line counts of an app.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocCount {
    /// Per class: files and lines (every line, blank ones included, like `wc -l`).
    pub files: BTreeMap<LocClass, u64>,
    pub lines: BTreeMap<LocClass, u64>,
}

impl LocCount {
    pub fn lines_of(&self, class: LocClass) -> u64 {
        self.lines.get(&class).copied().unwrap_or(0)
    }
    /// Backend + frontend (the generated bindings are not hand-written).
    pub fn handwritten(&self) -> u64 {
        self.lines_of(LocClass::Backend) + self.lines_of(LocClass::Frontend)
    }
}

impl LocSpec {
    /// The rules the original harness's published figures were measured with, for apps
    /// laid out the way its agents built them. Its metrics report describes the method:
    /// TypeScript sources (`.ts`, `.tsx`) under the server's `src/` (`backend/<db>/src/`
    /// or `server/src/`) and under `client/src/` count as hand-written; dependencies
    /// (`node_modules`), build output (`dist`, `build`), the `level-N/` snapshots kept
    /// between levels and every stylesheet are left out (CSS says nothing about the
    /// backend and varies with taste); SpacetimeDB's generated client bindings
    /// (`module_bindings/`) are counted on their own, never as hand-written. Type
    /// declarations (`.d.ts`) and the harness's own folders (`.bench`, `.git`) do not count.
    pub fn original_harness() -> LocSpec {
        let list = |patterns: &[&str]| patterns.iter().map(|p| p.to_string()).collect();
        LocSpec {
            exclude: list(&[
                "**/node_modules/**",
                "**/dist/**",
                "**/build/**",
                "level-*/**",
                "**/.bench/**",
                "**/.git/**",
                "**/*.css",
            ]),
            backend: GlobGroup {
                include: list(&["backend/**/src/**/*.ts", "server/src/**/*.ts"]),
                exclude: list(&["**/*.d.ts"]),
            },
            frontend: GlobGroup {
                include: list(&["client/src/**/*.ts", "client/src/**/*.tsx"]),
                exclude: list(&["**/*.d.ts"]),
            },
            generated: GlobGroup {
                include: list(&["**/module_bindings/**"]),
                exclude: Vec::new(),
            },
        }
    }
}

impl LocRules {
    /// The original harness's rules ([`LocSpec::original_harness`]), for re-measuring its
    /// published apps and for apps of a backend with no `backend.toml`.
    pub fn original_harness() -> LocRules {
        // The patterns are constants; a test compiles them.
        LocRules::compile(&LocSpec::original_harness())
            .unwrap_or_else(|e| unreachable!("the original harness's LOC globs are valid: {e:#}"))
    }

    fn compile(spec: &LocSpec) -> Result<LocRules> {
        let exclude = globs(&spec.exclude).context("loc.exclude")?;
        let mut groups = Vec::new();
        for (class, g, what) in [
            (LocClass::Generated, &spec.generated, "loc.generated"),
            (LocClass::Backend, &spec.backend, "loc.backend"),
            (LocClass::Frontend, &spec.frontend, "loc.frontend"),
        ] {
            if g.include.is_empty() {
                bail!("{what}.include is empty");
            }
            groups.push((
                class,
                globs(&g.include).with_context(|| format!("{what}.include"))?,
                globs(&g.exclude).with_context(|| format!("{what}.exclude"))?,
            ));
        }
        Ok(LocRules { exclude, groups })
    }

    /// The class of the file at `rel` (relative to the app folder), if it counts.
    pub fn classify(&self, rel: &Path) -> Option<LocClass> {
        let rel = slash(rel);
        if self.exclude.is_match(&rel) {
            return None;
        }
        self.groups
            .iter()
            .find(|(_, inc, exc)| inc.is_match(&rel) && !exc.is_match(&rel))
            .map(|(c, _, _)| *c)
    }

    /// Whether a folder is excluded as a whole (nothing under it can count).
    fn skips_dir(&self, rel: &Path) -> bool {
        let rel = slash(rel);
        self.exclude.is_match(&rel) || self.exclude.is_match(format!("{rel}/x"))
    }

    /// Counts the lines of every file that counts under `app_dir`.
    pub fn count(&self, app_dir: &Path) -> Result<LocCount> {
        let mut count = LocCount::default();
        let mut stack = vec![PathBuf::new()];
        while let Some(rel_dir) = stack.pop() {
            let dir = app_dir.join(&rel_dir);
            let entries = std::fs::read_dir(&dir)
                .with_context(|| format!("cannot list {}", dir.display()))?;
            for entry in entries {
                let entry = entry.with_context(|| format!("cannot list {}", dir.display()))?;
                let rel = rel_dir.join(entry.file_name());
                let kind = entry
                    .file_type()
                    .with_context(|| format!("cannot stat {}", entry.path().display()))?;
                if kind.is_dir() {
                    if !self.skips_dir(&rel) {
                        stack.push(rel);
                    }
                } else if kind.is_file()
                    && let Some(class) = self.classify(&rel)
                {
                    let bytes = std::fs::read(entry.path())
                        .with_context(|| format!("cannot read {}", entry.path().display()))?;
                    *count.files.entry(class).or_default() += 1;
                    *count.lines.entry(class).or_default() += count_lines(&bytes);
                }
            }
        }
        Ok(count)
    }
}

/// Lines as `wc -l` counts them, plus a last line that lacks its newline.
pub fn count_lines(bytes: &[u8]) -> u64 {
    let mut n = bytes.iter().filter(|&&b| b == b'\n').count() as u64;
    if bytes.last().is_some_and(|&b| b != b'\n') {
        n += 1;
    }
    n
}

fn slash(p: &Path) -> String {
    p.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

fn globs(patterns: &[String]) -> Result<GlobSet> {
    let mut b = GlobSetBuilder::new();
    for p in patterns {
        let glob = globset::GlobBuilder::new(p)
            .literal_separator(true)
            .build()
            .or_else(|_| Glob::new(p))
            .with_context(|| format!("invalid glob {p:?}"))?;
        b.add(glob);
    }
    Ok(b.build()?)
}

/// The backends under `root`: every folder of `backends/` holding a `backend.toml`, sorted.
pub fn backend_names(root: &Path) -> Result<Vec<String>> {
    let dir = root.join(BACKENDS_DIR);
    let mut names = Vec::new();
    for entry in
        std::fs::read_dir(&dir).with_context(|| format!("cannot list {}", dir.display()))?
    {
        let entry = entry.with_context(|| format!("cannot list {}", dir.display()))?;
        if entry.path().join("backend.toml").is_file() {
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    names.sort();
    if names.is_empty() {
        bail!("no backends: {} has no <name>/backend.toml", dir.display());
    }
    Ok(names)
}

impl Backend {
    /// Reads and validates `backends/<name>/backend.toml` and checks the backend's guides
    /// and language file exist under `root`.
    pub fn load(root: &Path, name: &str) -> Result<Backend> {
        let rel = format!("{BACKENDS_DIR}/{name}/backend.toml");
        let path = root.join(&rel);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let backend = Backend::parse(&text, &rel, name)?;
        let mut missing = Vec::new();
        for f in backend.content_files() {
            if !root.join(&f).is_file() {
                missing.push(f.display().to_string());
            }
        }
        if !missing.is_empty() {
            bail!(
                "{rel}: backend {name} is missing its text files: {} (every backend needs a guide per rules level and a language file)",
                missing.join(", ")
            );
        }
        Ok(backend)
    }

    /// Parses and validates a `backend.toml`; `file` names it in errors, `folder` is the
    /// folder name it must declare.
    pub fn parse(text: &str, file: &str, folder: &str) -> Result<Backend> {
        let parsed: BackendFile =
            toml::from_str(text).map_err(|e| anyhow!("{file}: not a valid backend file: {e}"))?;
        let mut problems = parsed.field_problems(folder);
        let mut loc = None;
        match LocRules::compile(&parsed.loc) {
            Ok(l) => loc = Some(l),
            Err(e) => problems.push(format!("{e:#}")),
        }
        // Every template must fill from the run's values.
        if problems.is_empty() {
            problems = parsed.template_problems();
        }
        crate::no_problems(file, &problems)?;
        let loc = loc.ok_or_else(|| anyhow!("{file}: loc rules did not compile"))?;
        Ok(Backend {
            name: parsed.name.clone(),
            file: parsed,
            loc,
        })
    }

    /// The text files this backend brings: its guides and its language file.
    pub fn content_files(&self) -> Vec<PathBuf> {
        let mut out: Vec<PathBuf> = Rules::ALL.iter().map(|r| self.guide_path(*r)).collect();
        out.push(self.language_path());
        out
    }

    /// `backends/<name>/guide-<rules>.md`, relative to the repository root.
    pub fn guide_path(&self, rules: Rules) -> PathBuf {
        PathBuf::from(BACKENDS_DIR)
            .join(&self.name)
            .join(format!("guide-{}.md", rules.as_str()))
    }

    /// `backends/<name>/language.md` (the backend's language notes for the prompts),
    /// relative to the repository root.
    pub fn language_path(&self) -> PathBuf {
        PathBuf::from(BACKENDS_DIR)
            .join(&self.name)
            .join("language.md")
    }

    /// The ports of run `run_index`.
    pub fn ports(&self, run_index: u32) -> Ports {
        // Validation checked every port up to MAX_RUN_INDEX; past it, saturate rather than wrap.
        let at = |p: &PortSpec| p.at(run_index).unwrap_or(u16::MAX);
        Ports {
            vite: at(&self.file.ports.vite),
            express: self.file.ports.express.as_ref().map(at),
            spacetime: self.file.ports.spacetime.as_ref().map(at),
        }
    }

    /// The database (SpacetimeDB: module) name of run `run_index`.
    pub fn database_name(&self, run_index: u32) -> String {
        self.file.database_name(run_index)
    }

    /// Every placeholder value of run `run_index`: the backend's identity and brand, the
    /// ports, the database name and the `[vars]` of its `backend.toml`.
    pub fn vars(&self, run_index: u32) -> BTreeMap<String, String> {
        // Validation filled these for run 0; the same templates fill for any index.
        self.file
            .vars_for(run_index, &BTreeMap::new())
            .unwrap_or_default()
    }

    /// [`Backend::vars`] with some values replaced, for infrastructure that is not the
    /// default (e.g. `pg_port` of a PostgreSQL on another port): the `[vars]` built from a
    /// replaced value follow it. A name that is not a value of this backend is an error.
    pub fn vars_with(
        &self,
        run_index: u32,
        overrides: &BTreeMap<String, String>,
    ) -> Result<BTreeMap<String, String>> {
        let vars = self.file.vars_for(run_index, overrides)?;
        let unknown: Vec<&str> = overrides
            .keys()
            .filter(|k| !vars.contains_key(*k))
            .map(String::as_str)
            .collect();
        if !unknown.is_empty() {
            bail!(
                "backend {} has no value named {}; its values are: {}",
                self.name,
                unknown.join(", "),
                vars.keys().cloned().collect::<Vec<_>>().join(", ")
            );
        }
        Ok(vars)
    }

    /// Whether `app_dir` holds an app of this backend.
    pub fn detects(&self, app_dir: &Path) -> bool {
        self.file.detect.all.iter().all(|r| {
            let path = app_dir.join(&r.path);
            match &r.contains {
                None => path.exists(),
                Some(needle) => std::fs::read_to_string(&path).is_ok_and(|t| t.contains(needle)),
            }
        })
    }

    /// The preflight checks of run `run_index`, placeholders filled.
    pub fn preflight(&self, run_index: u32) -> Result<Vec<Preflight>> {
        self.preflight_from(&self.vars(run_index))
    }

    /// The preflight checks, placeholders filled from `vars` (see [`Backend::vars_with`]).
    pub fn preflight_from(&self, vars: &BTreeMap<String, String>) -> Result<Vec<Preflight>> {
        self.file
            .preflight
            .iter()
            .map(|p| {
                let what = format!("backend {} preflight {:?}", self.name, p.name);
                Ok(Preflight {
                    name: p.name.clone(),
                    run: template::fill(&p.run, vars, &what)?,
                    hint: template::fill(&p.hint, vars, &what)?,
                })
            })
            .collect()
    }

    pub fn loc_rules(&self) -> &LocRules {
        &self.loc
    }

    /// The commands of `kind`, placeholders filled with the run's values and `app_dir`.
    pub fn commands(
        &self,
        kind: CommandKind,
        run_index: u32,
        app_dir: &Path,
    ) -> Result<Vec<AppCommand>> {
        let mut vars = self.vars(run_index);
        vars.insert("app_dir".into(), app_dir.display().to_string());
        self.commands_from(kind, &vars)
    }

    /// The commands of `kind`, placeholders filled from `vars`, which must hold `app_dir`
    /// (see [`Backend::vars_with`]).
    pub fn commands_from(
        &self,
        kind: CommandKind,
        vars: &BTreeMap<String, String>,
    ) -> Result<Vec<AppCommand>> {
        let list = match kind {
            CommandKind::Start => &self.file.commands.start,
            CommandKind::Stop => &self.file.commands.stop,
            CommandKind::Reset => &self.file.commands.reset,
        };
        list.iter()
            .map(|c| {
                let what = format!("backend {} command {:?}", self.name, c.name);
                Ok(AppCommand {
                    name: c.name.clone(),
                    run: template::fill(&c.run, vars, &what)?,
                    cwd: c
                        .cwd
                        .as_ref()
                        .map(|d| template::fill(d, vars, &what))
                        .transpose()?,
                    background: c.background,
                    ready_url: c
                        .ready_url
                        .as_ref()
                        .map(|u| template::fill(u, vars, &what))
                        .transpose()?,
                    timeout_s: c.timeout_s,
                })
            })
            .collect()
    }
}

impl BackendFile {
    /// What is wrong with the file's fields, each a sentence.
    fn field_problems(&self, folder: &str) -> Vec<String> {
        let mut problems = Vec::new();
        if self.schema != 1 {
            problems.push(format!(
                "schema = {} is not supported (this version reads schema = 1)",
                self.schema
            ));
        }
        if self.name != folder {
            problems.push(format!(
                "name = {:?} must equal its folder name {folder:?}",
                self.name
            ));
        }
        for (what, v) in [
            ("display_name", &self.display_name),
            ("stack", &self.stack),
            ("app.title", &self.app.title),
        ] {
            if v.trim().is_empty() {
                problems.push(format!("{what} is empty"));
            }
        }
        for (what, c) in [
            ("app.primary", &self.app.primary),
            ("app.accent", &self.app.accent),
        ] {
            if !(c.len() == 7
                && c.starts_with('#')
                && c[1..].chars().all(|h| h.is_ascii_hexdigit()))
            {
                problems.push(format!("{what} = {c:?} is not a #rrggbb colour"));
            }
        }
        if self.ports.express.is_none() && self.ports.spacetime.is_none() {
            problems.push(
                "ports: needs `express` or `spacetime` (the server the client talks to)".into(),
            );
        }
        for (what, p) in self.port_specs() {
            if p.base < 1024 {
                problems.push(format!(
                    "ports.{what}.base = {} is a privileged port",
                    p.base
                ));
            }
            if p.at(MAX_RUN_INDEX).is_err() {
                problems.push(format!(
                    "ports.{what}: base + per_run * {MAX_RUN_INDEX} exceeds 65535"
                ));
            }
        }
        let names = template::placeholders(&self.database.name);
        if !names.iter().any(|n| n == "run_index") || names.iter().any(|n| n != "run_index") {
            problems.push(format!(
                "database.name = {:?} must use {{{{run_index}}}} and no other placeholder",
                self.database.name
            ));
        }
        for name in &self.services {
            if bench_formats::infra::service(name).is_none() {
                let known: Vec<&str> = bench_formats::infra::SERVICES
                    .iter()
                    .map(|s| s.name)
                    .collect();
                problems.push(format!(
                    "services: {name:?} is not an infrastructure service (known: {})",
                    known.join(", ")
                ));
            }
        }
        if self.detect.all.is_empty() {
            problems
                .push("detect.all is empty: nothing would identify an app of this backend".into());
        }
        for (i, r) in self.detect.all.iter().enumerate() {
            if r.path.trim().is_empty() || r.path.starts_with('/') || r.path.contains("..") {
                problems.push(format!(
                    "detect.all[{i}].path {:?} must be relative to the app folder",
                    r.path
                ));
            }
        }
        for p in &self.preflight {
            if p.run.trim().is_empty() || p.hint.trim().is_empty() {
                problems.push(format!(
                    "preflight {:?}: run and hint must not be empty",
                    p.name
                ));
            }
        }
        if self.commands.start.is_empty() {
            problems.push("commands.start is empty: the harness could not start the app".into());
        }
        if self.commands.reset.is_empty() {
            problems.push("commands.reset is empty: runs could not get a fresh database".into());
        }
        problems
    }

    /// Templates of the preflight checks and commands that do not fill from run 0's values,
    /// and background commands without a ready URL.
    fn template_problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        match self.vars_for(0, &BTreeMap::new()) {
            Ok(vars) => {
                for p in &self.preflight {
                    for t in [&p.run, &p.hint] {
                        if let Err(e) = template::fill(t, &vars, &format!("preflight {:?}", p.name))
                        {
                            problems.push(format!("{e:#}"));
                        }
                    }
                }
                let mut vars = vars;
                vars.insert("app_dir".into(), "/app".into());
                for (kind, list) in [
                    ("start", &self.commands.start),
                    ("stop", &self.commands.stop),
                    ("reset", &self.commands.reset),
                ] {
                    for c in list {
                        for t in [Some(&c.run), c.ready_url.as_ref(), c.cwd.as_ref()]
                            .into_iter()
                            .flatten()
                        {
                            if let Err(e) =
                                template::fill(t, &vars, &format!("commands.{kind} {:?}", c.name))
                            {
                                problems.push(format!("{e:#}"));
                            }
                        }
                        if c.background && c.ready_url.is_none() {
                            problems.push(format!(
                                "commands.{kind} {:?}: background commands need a ready_url",
                                c.name
                            ));
                        }
                    }
                }
            }
            Err(e) => problems.push(format!("{e:#}")),
        }
        problems
    }

    fn port_specs(&self) -> Vec<(&'static str, PortSpec)> {
        let mut out = vec![("vite", self.ports.vite)];
        if let Some(p) = self.ports.express {
            out.push(("express", p));
        }
        if let Some(p) = self.ports.spacetime {
            out.push(("spacetime", p));
        }
        out
    }

    fn database_name(&self, run_index: u32) -> String {
        self.database
            .name
            .replace("{{run_index}}", &run_index.to_string())
    }

    /// The run's values; `overrides` replace built-in values and `[vars]` entries of the
    /// same name (names that are neither are ignored here).
    fn vars_for(
        &self,
        run_index: u32,
        overrides: &BTreeMap<String, String>,
    ) -> Result<BTreeMap<String, String>> {
        let mut v = BTreeMap::new();
        v.insert("backend".to_string(), self.name.clone());
        v.insert("backend_display".to_string(), self.display_name.clone());
        v.insert("stack".to_string(), self.stack.clone());
        v.insert("app_title".to_string(), self.app.title.clone());
        v.insert("brand_primary".to_string(), self.app.primary.clone());
        v.insert("brand_accent".to_string(), self.app.accent.clone());
        v.insert("run_index".to_string(), run_index.to_string());
        v.insert("database_name".to_string(), self.database_name(run_index));
        for (what, p) in self.port_specs() {
            v.insert(format!("{what}_port"), p.at(run_index)?.to_string());
        }
        for service in &bench_formats::infra::SERVICES {
            v.insert(service.port_var.to_string(), service.port.to_string());
        }
        for (k, val) in overrides {
            if v.contains_key(k) || self.vars.contains_key(k) {
                v.insert(k.clone(), val.clone());
            }
        }
        // [vars] may refer to the values above and to each other (in any order).
        let mut pending: Vec<(&String, &String)> = self
            .vars
            .iter()
            .filter(|(k, _)| !overrides.contains_key(*k))
            .collect();
        while !pending.is_empty() {
            let before = pending.len();
            let mut next = Vec::new();
            for (k, t) in pending {
                if v.contains_key(k) && !self.vars.contains_key(k) {
                    bail!("vars.{k} redefines a built-in value");
                }
                match template::fill(t, &v, &format!("vars.{k}")) {
                    Ok(val) => {
                        v.insert(k.clone(), val);
                    }
                    Err(_) => next.push((k, t)),
                }
            }
            if next.len() == before {
                let (k, t) = next[0];
                template::fill(t, &v, &format!("vars.{k}"))?;
            }
            pending = next;
        }
        Ok(v)
    }
}

/// Checks that no two backends use the same per-run port for any run index up to
/// [`MAX_RUN_INDEX`], and no per-run port lands on a shared one.
pub fn check_port_overlap(backends: &[Backend], reserved: &[(u16, String)]) -> Result<()> {
    let mut owner: BTreeMap<u16, String> = BTreeMap::new();
    for (port, what) in reserved {
        owner.insert(*port, what.clone());
    }
    let mut shared: BTreeMap<u16, String> = BTreeMap::new();
    for b in backends {
        for (what, p) in b.file.port_specs() {
            if p.per_run == 0 {
                shared.insert(p.base, format!("{} {what} (shared)", b.name));
            }
        }
    }
    for (port, what) in &shared {
        if let Some(other) = owner.get(port) {
            bail!("port {port}: {what} collides with {other}");
        }
    }
    owner.extend(shared);
    let mut problems = Vec::new();
    for b in backends {
        for (what, p) in b.file.port_specs() {
            if p.per_run == 0 {
                continue;
            }
            for run in 0..=MAX_RUN_INDEX {
                let port = p.at(run)?;
                let me = format!("{} {what} at run {run}", b.name);
                if let Some(other) = owner.insert(port, me.clone()) {
                    problems.push(format!("port {port}: {me} collides with {other}"));
                }
            }
        }
    }
    if !problems.is_empty() {
        bail!(
            "backend ports overlap ({} clash(es)); change base or per_run in backends/*/backend.toml:\n  - {}",
            problems.len(),
            problems
                .into_iter()
                .take(10)
                .collect::<Vec<_>>()
                .join("\n  - ")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn original_harness_rules_classify_the_original_layouts() {
        let r = LocRules::original_harness();
        let class = |rel: &str| r.classify(Path::new(rel));
        assert_eq!(
            class("backend/spacetimedb/src/index.ts"),
            Some(LocClass::Backend)
        );
        assert_eq!(class("server/src/index.ts"), Some(LocClass::Backend));
        assert_eq!(class("client/src/App.tsx"), Some(LocClass::Frontend));
        assert_eq!(
            class("client/src/module_bindings/index.ts"),
            Some(LocClass::Generated)
        );
        assert_eq!(class("client/src/App.css"), None);
        assert_eq!(class("client/node_modules/x/index.ts"), None);
        assert_eq!(class("level-3/client/src/App.tsx"), None);
        assert_eq!(class("client/dist/assets/index.ts"), None);
        assert_eq!(class("client/vite.config.ts"), None);
    }

    #[test]
    fn line_counting_matches_wc() {
        assert_eq!(count_lines(b""), 0);
        assert_eq!(count_lines(b"a\nb\n"), 2);
        assert_eq!(count_lines(b"a\n\nb"), 3);
    }
}
