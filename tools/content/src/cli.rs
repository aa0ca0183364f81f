//! `cargo xtask bench-prompts`: render the level specs and test plans from their sources,
//! check the checked-in renderings are current, or show what a session would be given.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use bench_formats::Phase;

use crate::{Content, PromptRequest, Rules, UiContracts};

/// Options of `cargo xtask bench-prompts`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Do not write: fail (listing the files) if any checked-in rendering is stale.
    #[arg(long)]
    pub check: bool,
    /// Which renderings: with UI contracts (`prompts/composed/with-ui/`), without
    /// (`prompts/composed/without-ui/`), or both when not given. The test plans are
    /// always included.
    #[arg(long, value_enum)]
    pub ui_contracts: Option<UiContracts>,
    /// Print the prompt (and the guide file) one session would get, instead of rendering.
    #[arg(long, value_name = "BACKEND")]
    pub show: Option<String>,
    /// With --show: the session's phase.
    #[arg(long, value_enum, default_value_t = Phase::Generate)]
    pub phase: Phase,
    /// With --show: the level.
    #[arg(long, default_value_t = 1)]
    pub level: u32,
    /// With --show: the rules level.
    #[arg(long, value_enum, default_value_t = Rules::Guided)]
    pub rules: Rules,
    /// With --show: the run index (ports and database name).
    #[arg(long, default_value_t = 0)]
    pub run_index: u32,
    /// With --show: upgrade/fix prompts carry the whole spec of levels 1..=level.
    #[arg(long)]
    pub composed: bool,
    /// Print the content version (sha256 of levels, prompts, backends, grading) and exit.
    #[arg(long)]
    pub version_only: bool,
    /// Print a blank GRADING_RESULTS.md for an app of this backend at --level, and exit.
    #[arg(long, value_name = "BACKEND", conflicts_with = "show")]
    pub grading_sheet: Option<String>,
}

pub fn run(args: Args) -> Result<()> {
    let root = bench_formats::paths::repo_root()?;
    let content = Content::load_sources(&root)?;
    if args.version_only {
        println!("{}", content.version());
        return Ok(());
    }
    if let Some(backend) = &args.grading_sheet {
        print!("{}", content.grading_sheet(args.level, backend)?);
        return Ok(());
    }
    if let Some(backend) = &args.show {
        return show(&content, backend, &args);
    }
    let which: Vec<UiContracts> = match args.ui_contracts {
        Some(u) => vec![u],
        None => vec![UiContracts::Include, UiContracts::Strip],
    };
    let stale = content.stale_files(&which)?;
    if args.check {
        if stale.is_empty() {
            println!(
                "bench-prompts: rendered prompts are current ({} levels, {} features; content {})",
                content.levels().max_level(),
                content.levels().features.len(),
                &content.version()[..12]
            );
            return Ok(());
        }
        for f in &stale {
            eprintln!("stale: {}", f.display());
        }
        bail!(
            "{} rendered file(s) are stale: run `cargo xtask bench-prompts` and commit the result",
            stale.len()
        );
    }
    let rendered = content.rendered(&which)?;
    let mut written = 0;
    for (rel, text) in &rendered {
        let path = root.join(rel);
        if std::fs::read_to_string(&path).is_ok_and(|t| &t == text) {
            continue;
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        bench_formats::io::write_atomic(&path, text.as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))?;
        println!("wrote {}", rel.display());
        written += 1;
    }
    // Files in the rendered folders that no level produces any more.
    let mut removed = 0;
    for rel in stale {
        if !rendered.iter().any(|(p, _)| p == &rel) {
            std::fs::remove_file(root.join(&rel))
                .with_context(|| format!("cannot remove stale {}", rel.display()))?;
            println!("removed {}", rel.display());
            removed += 1;
        }
    }
    // The version covers the rendered files just written: hash again, no need to reload.
    println!(
        "bench-prompts: {} file(s) rendered, {written} changed, {removed} removed; content version {}",
        rendered.len(),
        crate::content_version(&root)?
    );
    Ok(())
}

fn show(content: &Content, backend: &str, args: &Args) -> Result<()> {
    let b = content.backend(backend)?;
    let mut vars: BTreeMap<String, String> = b.vars(args.run_index);
    vars.insert(
        "app_dir".into(),
        PathBuf::from("results")
            .join(backend)
            .join("chat-app-<timestamp>")
            .display()
            .to_string(),
    );
    let prompt = content.session_prompt(&PromptRequest {
        backend,
        phase: args.phase,
        level: args.level,
        rules: args.rules,
        composed: args.composed,
        ui_contracts: args.ui_contracts != Some(UiContracts::Strip),
        vars,
    })?;
    println!("{}", prompt.text);
    for (path, text) in &prompt.files {
        println!(
            "\n===== file placed in the app folder: {} =====\n{text}",
            path.display()
        );
    }
    println!("\n===== sources =====");
    for s in &prompt.sources {
        println!("{}", s.display());
    }
    Ok(())
}
