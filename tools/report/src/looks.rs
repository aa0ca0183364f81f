//! What reports know about each backend beyond its figures, read from its `backend.toml`:
//! its colour (`app.primary`), the other names published figures use for it
//! (`[report] aliases`) and whether ratios divide by it by default (`[report] baseline`).
//!
//! The repository's backends are read once per process ([`Looks::of_repo`]); without them
//! (a report run outside the repository) backends get palette colours, no aliases and the
//! first backend as the baseline.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::OnceLock;

use anyhow::{Context, Result};

/// Colour, aliases and baseline flag of every backend the content defines.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Looks {
    /// Backend → `#rrggbb`.
    pub colors: BTreeMap<String, String>,
    /// Alias (lower case) → backend.
    pub aliases: BTreeMap<String, String>,
    /// The backend `[report] baseline = true` marks.
    pub baseline: Option<String>,
}

impl Looks {
    /// Reads every `backends/<name>/backend.toml` under `root`.
    pub fn load(root: &Path) -> Result<Looks> {
        let mut looks = Looks::default();
        for name in bench_content::backend::backend_names(root)? {
            let backend = bench_content::Backend::load(root, &name)
                .with_context(|| format!("reading backend {name} for the report"))?;
            let file = &backend.file;
            looks.colors.insert(name.clone(), file.app.primary.clone());
            for alias in &file.report.aliases {
                looks.aliases.insert(alias.to_lowercase(), name.clone());
            }
            if file.report.baseline && looks.baseline.is_none() {
                looks.baseline = Some(name.clone());
            }
        }
        Ok(looks)
    }

    /// The repository's backends (`BENCH_ROOT` or the repository around the current
    /// directory), read once; empty when they cannot be read.
    pub fn of_repo() -> &'static Looks {
        static LOOKS: OnceLock<Looks> = OnceLock::new();
        LOOKS.get_or_init(|| {
            bench_formats::paths::repo_root()
                .and_then(|root| Looks::load(&root))
                .unwrap_or_default()
        })
    }

    /// The backend a name stands for: itself, or the backend it is an alias of.
    pub fn resolve<'a>(&'a self, name: &'a str) -> &'a str {
        self.aliases
            .get(&name.to_lowercase())
            .map_or(name, String::as_str)
    }

    /// The backend's colour as RGB, when the content gives one.
    pub fn rgb(&self, backend: &str) -> Option<(u8, u8, u8)> {
        let hex = self.colors.get(backend)?.strip_prefix('#')?;
        let channel = |i: usize| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok();
        Some((channel(0)?, channel(2)?, channel(4)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_repository_backends_give_colours_aliases_and_the_baseline() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let looks = Looks::load(&root).unwrap();
        let names = bench_content::backend::backend_names(&root).unwrap();
        for name in &names {
            assert!(looks.rgb(name).is_some(), "{name} has a colour");
            assert_eq!(looks.resolve(name), name);
        }
        for (alias, backend) in &looks.aliases {
            assert_eq!(looks.resolve(&alias.to_uppercase()), backend);
        }
        assert!(names.contains(looks.baseline.as_ref().unwrap()));
        assert_eq!(looks.resolve("no-such-backend"), "no-such-backend");
    }
}
