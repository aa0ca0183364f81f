//! Lines of code of an app: hand-written backend, hand-written frontend, generated bindings.
//!
//! A backend's rules come from `backends/<name>/backend.toml` (the content crate) when the
//! repository has one for it. Otherwise the defaults below apply; they describe the layout
//! of the original harness's apps:
//! - never counted: `node_modules/`, `dist/`, `build/`, `level-*/` snapshots, `.bench/`,
//!   `.git/`, and every `*.css` file;
//! - generated bindings: `**/module_bindings/**` (SpacetimeDB's generated client code);
//! - backend: `.ts` files under `backend/**/src/` or `server/src/`;
//! - frontend: `.ts`/`.tsx` files under `client/src/`.
//!
//! Every line counts, blank ones included (as `wc -l`; a last line without a newline counts).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use serde::{Deserialize, Serialize};

/// The class a file counts in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LocClass {
    Backend,
    Frontend,
    Generated,
}

/// Line and file counts of one app.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LocFigures {
    pub backend_handwritten: u64,
    pub frontend_handwritten: u64,
    pub generated_bindings: u64,
    /// Backend + frontend.
    pub total_handwritten: u64,
    pub files: BTreeMap<LocClass, u64>,
    /// Where the counting rules came from (`backends/<b>/backend.toml` or `defaults`).
    pub rules: String,
    /// The app folder counted.
    pub app: String,
}

/// Glob rules (paths relative to the app folder, `/`-separated).
#[derive(Debug, Clone)]
pub struct LocRules {
    exclude: GlobSet,
    /// Checked in order; the first whose include matches and exclude does not wins.
    groups: Vec<(LocClass, GlobSet, GlobSet)>,
    pub source: String,
}

fn globs(patterns: &[&str]) -> Result<GlobSet> {
    let mut builder = GlobSetBuilder::new();
    for p in patterns {
        builder.add(
            GlobBuilder::new(p)
                .literal_separator(true)
                .build()
                .with_context(|| format!("invalid glob {p:?}"))?,
        );
    }
    Ok(builder.build()?)
}

impl LocRules {
    /// The documented defaults (see the module documentation).
    pub fn defaults() -> LocRules {
        // The patterns are constants: building them cannot fail.
        let build = || -> Result<LocRules> {
            Ok(LocRules {
                exclude: globs(&[
                    "**/node_modules/**",
                    "**/dist/**",
                    "**/build/**",
                    "level-*/**",
                    "**/.bench/**",
                    "**/.git/**",
                    "**/*.css",
                ])?,
                groups: vec![
                    (
                        LocClass::Generated,
                        globs(&["**/module_bindings/**"])?,
                        globs(&[])?,
                    ),
                    (
                        LocClass::Backend,
                        globs(&["backend/**/src/**/*.ts", "server/src/**/*.ts"])?,
                        globs(&["**/*.d.ts"])?,
                    ),
                    (
                        LocClass::Frontend,
                        globs(&["client/src/**/*.ts", "client/src/**/*.tsx"])?,
                        globs(&["**/*.d.ts"])?,
                    ),
                ],
                source: "defaults".into(),
            })
        };
        build().unwrap_or_else(|e| unreachable!("default LOC globs are valid: {e}"))
    }

    /// The class of the file at `rel`, if it counts.
    pub fn classify(&self, rel: &str) -> Option<LocClass> {
        if self.exclude.is_match(rel) {
            return None;
        }
        self.groups
            .iter()
            .find(|(_, inc, exc)| inc.is_match(rel) && !exc.is_match(rel))
            .map(|(c, _, _)| *c)
    }

    fn skips_dir(&self, rel: &str) -> bool {
        self.exclude.is_match(rel) || self.exclude.is_match(format!("{rel}/x"))
    }

    /// Counts an app folder; `None` when no file counts (no source in the run).
    pub fn count(&self, app_dir: &Path) -> Result<Option<LocFigures>> {
        let mut lines: BTreeMap<LocClass, u64> = BTreeMap::new();
        let mut files: BTreeMap<LocClass, u64> = BTreeMap::new();
        let mut stack = vec![PathBuf::new()];
        while let Some(rel_dir) = stack.pop() {
            let dir = app_dir.join(&rel_dir);
            let entries = std::fs::read_dir(&dir)
                .with_context(|| format!("cannot list {}", dir.display()))?;
            for entry in entries {
                let entry = entry.with_context(|| format!("cannot list {}", dir.display()))?;
                let rel = rel_dir.join(entry.file_name());
                let rel_text = slash(&rel);
                let kind = entry
                    .file_type()
                    .with_context(|| format!("cannot stat {}", entry.path().display()))?;
                if kind.is_dir() {
                    if !self.skips_dir(&rel_text) {
                        stack.push(rel);
                    }
                } else if kind.is_file()
                    && let Some(class) = self.classify(&rel_text)
                {
                    let bytes = std::fs::read(entry.path())
                        .with_context(|| format!("cannot read {}", entry.path().display()))?;
                    *lines.entry(class).or_default() += count_lines(&bytes);
                    *files.entry(class).or_default() += 1;
                }
            }
        }
        if files.is_empty() {
            return Ok(None);
        }
        let get = |c| lines.get(&c).copied().unwrap_or(0);
        let backend = get(LocClass::Backend);
        let frontend = get(LocClass::Frontend);
        Ok(Some(LocFigures {
            backend_handwritten: backend,
            frontend_handwritten: frontend,
            generated_bindings: get(LocClass::Generated),
            total_handwritten: backend + frontend,
            files,
            rules: self.source.clone(),
            app: app_dir.display().to_string(),
        }))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_rules_classify_the_original_layouts() {
        let r = LocRules::defaults();
        assert_eq!(
            r.classify("backend/spacetimedb/src/index.ts"),
            Some(LocClass::Backend)
        );
        assert_eq!(r.classify("server/src/index.ts"), Some(LocClass::Backend));
        assert_eq!(r.classify("client/src/App.tsx"), Some(LocClass::Frontend));
        assert_eq!(
            r.classify("client/src/module_bindings/index.ts"),
            Some(LocClass::Generated)
        );
        assert_eq!(r.classify("client/src/App.css"), None);
        assert_eq!(r.classify("client/node_modules/x/index.ts"), None);
        assert_eq!(r.classify("level-3/client/src/App.tsx"), None);
        assert_eq!(r.classify("client/dist/assets/index.ts"), None);
        assert_eq!(r.classify("client/vite.config.ts"), None);
    }

    #[test]
    fn line_counting_matches_wc() {
        assert_eq!(count_lines(b""), 0);
        assert_eq!(count_lines(b"a\nb\n"), 2);
        assert_eq!(count_lines(b"a\n\nb"), 3);
    }
}
