//! Rendering the level specs and the graders' test plans from `levels.toml` and the
//! feature spec files. The rendered files are checked in; `bench-prompts --check` and a
//! test fail when they are stale.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::levels::{Feature, Level, Levels, UiKind};

/// The shared UI and style guide, relative to the repository root.
pub const UI_GUIDE: &str = "prompts/ui-guide.md";
/// Rendered level specs with UI contracts.
pub const COMPOSED_WITH_UI: &str = "prompts/composed/with-ui";
/// Rendered level specs without UI contracts.
pub const COMPOSED_WITHOUT_UI: &str = "prompts/composed/without-ui";
/// Rendered test plans for graders.
pub const TEST_PLANS: &str = "grading/test-plans.md";

const NOTICE: &str = "<!-- Rendered by `cargo xtask bench-prompts` from levels/levels.toml and prompts/. Do not edit: edit the sources and render again. -->";

/// Whether rendered specs carry the UI contract sections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum UiContracts {
    Include,
    Strip,
}

impl UiContracts {
    pub fn dir(self) -> &'static str {
        match self {
            UiContracts::Include => COMPOSED_WITH_UI,
            UiContracts::Strip => COMPOSED_WITHOUT_UI,
        }
    }
}

/// The texts a rendering reads, loaded once.
pub struct Sources<'a> {
    pub levels: &'a Levels,
    /// Root-relative spec path → file text.
    pub specs: &'a std::collections::BTreeMap<String, String>,
    pub ui_guide: &'a str,
}

/// The name of a rendered level file.
pub fn level_file_name(level: u32) -> String {
    format!("level-{level:02}.md")
}

/// The body of a feature's spec file: the text after its first `# ` heading line (the
/// heading is replaced by the rendered one).
fn spec_body(text: &str) -> &str {
    let trimmed = text.trim_start();
    match trimmed.strip_prefix("# ") {
        Some(rest) => rest.split_once('\n').map(|(_, b)| b).unwrap_or("").trim(),
        None => trimmed.trim(),
    }
}

/// One feature's section of a spec.
pub fn feature_section(src: &Sources<'_>, f: &Feature, ui: UiContracts) -> Result<String> {
    let text = src
        .specs
        .get(&f.spec)
        .with_context(|| format!("feature {} ({}): spec {} not loaded", f.id, f.key, f.spec))?;
    let level = src.levels.level_of(f.id).map(|l| l.number).unwrap_or(0);
    let mut s = String::new();
    let _ = writeln!(s, "## Feature {}: {} (level {level})\n", f.id, f.name);
    let _ = writeln!(s, "{}\n", f.summary.trim());
    let body = spec_body(text);
    if !body.is_empty() {
        let _ = writeln!(s, "{body}\n");
    }
    let _ = writeln!(s, "### Required behaviour\n");
    for (i, b) in f.behaviours.iter().enumerate() {
        let _ = writeln!(s, "{}. {}", i + 1, b.trim());
    }
    s.push('\n');
    if ui == UiContracts::Include {
        let _ = writeln!(s, "### UI contract\n");
        let _ = writeln!(
            s,
            "Automated tests find elements by these exact strings: use them verbatim (same case and punctuation). `{{…}}` stands for a value filled in at run time.\n"
        );
        for u in &f.ui {
            let _ = writeln!(s, "- {} `{}` — {}", kind_label(u.kind), u.text, u.on);
        }
        s.push('\n');
    }
    Ok(s)
}

fn kind_label(k: UiKind) -> &'static str {
    match k {
        UiKind::Placeholder => "Placeholder",
        UiKind::Button => "Button",
        UiKind::Text => "Text",
        UiKind::Label => "aria-label",
        UiKind::Title => "Tooltip (title)",
    }
}

/// The whole spec of an app at `level` (features of levels 1..=level).
pub fn composed_level(src: &Sources<'_>, level: u32, ui: UiContracts) -> Result<String> {
    let lv = src.levels.level(level)?;
    let mut s = String::new();
    let _ = writeln!(s, "{NOTICE}\n");
    if level == 1 {
        let _ = writeln!(s, "# Chat app specification: level 1\n");
    } else {
        let _ = writeln!(s, "# Chat app specification: levels 1–{level}\n");
    }
    let _ = writeln!(
        s,
        "The app has every feature below, from level 1 up to level {level} ({}). Later features build on earlier ones: an earlier feature must keep working when a later one is added.\n",
        lv.name
    );
    let _ = writeln!(s, "{}\n", src.ui_guide.trim());
    for f in src.levels.features_up_to(level)? {
        s.push_str(&feature_section(src, f, ui)?);
    }
    Ok(s.trim_end().to_string() + "\n")
}

/// What level `level` adds to the level before it.
pub fn level_delta(src: &Sources<'_>, level: u32, ui: UiContracts) -> Result<String> {
    let lv = src.levels.level(level)?;
    let mut s = String::new();
    let _ = writeln!(s, "# Level {level}: {}\n", lv.name);
    for f in src.levels.features_added_by(level)? {
        s.push_str(&feature_section(src, f, ui)?);
    }
    Ok(s.trim_end().to_string() + "\n")
}

/// The graders' document: for every level, each feature's contract and test plan.
pub fn test_plans(src: &Sources<'_>) -> Result<String> {
    let mut s = String::new();
    let _ = writeln!(s, "{NOTICE}\n");
    let _ = writeln!(s, "# Test plans\n");
    let _ = writeln!(
        s,
        "How to grade each feature by hand. Open the app in two browser profiles (or two different browsers) that share no storage: **Alice** uses one, **Bob** the other; place the windows side by side and keep each one's developer console open. Do not use a private window for Alice or Bob: some steps close the app's tab and reopen it, and a private window forgets its identity when closed (\"close the app tab\" means close that tab while the browser stays open). \"Alice's second tab\" is another tab of her profile, so it is the same user.\n\nRun the plans in order, from feature 1 up to the app's level: each plan starts from what the previous ones left (the rooms `General`, `Other`, `Mods`, `Secret`, their messages and roles). A time limit means the observation must be complete on the other screen within that many seconds of the action, **without refreshing the page**. Score each feature with `grading/rubric.md` and record the results in `GRADING_RESULTS.md` (template: `grading/templates/GRADING_RESULTS.md`).\n\n`cargo xtask bench-grade` carries out the same plans automatically: each step's script in `levels/levels.toml` does what its prose says. What a script cannot check is listed under each feature as \"Not checked by `bench-grade`\".\n"
    );
    for lv in &src.levels.levels {
        level_plans(&mut s, src, lv)?;
    }
    Ok(s.trim_end().to_string() + "\n")
}

fn level_plans(s: &mut String, src: &Sources<'_>, lv: &Level) -> Result<()> {
    let tag = if lv.extension { " (extension)" } else { "" };
    let _ = writeln!(s, "## Level {}: {}{tag}\n", lv.number, lv.name);
    for &id in &lv.features {
        let f = src.levels.feature(id)?;
        let _ = writeln!(
            s,
            "### Feature {}: {} (max {} points)\n",
            f.id, f.name, f.max_score
        );
        let _ = writeln!(s, "{}\n", f.summary.trim());
        let _ = writeln!(s, "Strings to look for:");
        for u in &f.ui {
            let _ = writeln!(s, "- {} `{}` — {}", kind_label(u.kind), u.text, u.on);
        }
        s.push('\n');
        let _ = writeln!(
            s,
            "| # | Who | Action | Alice must see | Bob must see | Within |"
        );
        let _ = writeln!(
            s,
            "|---|-----|--------|----------------|--------------|--------|"
        );
        for (i, t) in f.test.iter().enumerate() {
            let within = t
                .within_s
                .map(|w| format!("{w} s"))
                .unwrap_or_else(|| "—".into());
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} |",
                i + 1,
                t.actor.name(),
                cell(&t.action),
                cell(t.alice.as_deref().unwrap_or("—")),
                cell(t.bob.as_deref().unwrap_or("—")),
                within
            );
        }
        s.push('\n');
        let _ = writeln!(s, "Behaviours checked:");
        for (i, b) in f.behaviours.iter().enumerate() {
            let _ = writeln!(s, "{}. {}", i + 1, b.trim());
        }
        s.push('\n');
        by_hand(s, f);
    }
    Ok(())
}

/// What the automatic grader leaves to a person: steps without a script and behaviours no
/// browser script can check.
fn by_hand(s: &mut String, f: &Feature) {
    if f.unscripted.is_empty() && f.test.iter().all(|t| t.manual.is_none()) {
        return;
    }
    let _ = writeln!(s, "Not checked by `bench-grade` (check by hand):");
    for (i, t) in f.test.iter().enumerate() {
        if let Some(why) = &t.manual {
            let _ = writeln!(s, "- step {}: {}", i + 1, why.trim());
        }
    }
    for u in &f.unscripted {
        let _ = writeln!(s, "- behaviour {}: {}", u.behaviour, u.why.trim());
    }
    s.push('\n');
}

fn cell(t: &str) -> String {
    t.trim().replace('|', "\\|").replace('\n', " ")
}

/// Every rendered file: root-relative path → expected text.
pub fn all_rendered(src: &Sources<'_>, which: &[UiContracts]) -> Result<Vec<(PathBuf, String)>> {
    let mut out = Vec::new();
    for &ui in which {
        for lv in &src.levels.levels {
            out.push((
                Path::new(ui.dir()).join(level_file_name(lv.number)),
                composed_level(src, lv.number, ui)?,
            ));
        }
    }
    out.push((PathBuf::from(TEST_PLANS), test_plans(src)?));
    Ok(out)
}
