//! Rehearsal scripts: the turns the scripted API plays back, read from TOML.
//!
//! ```toml
//! # Optional: what the server answers to requests that are not part of the conversation
//! # (title generation, quota checks: requests that offer the model no tools).
//! [side]
//! text = "ok"
//! usage = { input = 20, output = 2 }
//!
//! [[turn]]
//! usage = { input = 3, output = 180, cache_read = 12000, cache_creation = 2400 }
//! [[turn.tool]]
//! name = "Write"
//! input = { file_path = "{{app_dir}}/package.json", content = "{}\n" }
//!
//! [[turn]]
//! text = "Done. DEPLOY_COMPLETE"
//! usage = { input = 1, output = 40, cache_read = 14000 }
//! ```
//!
//! A turn with tool calls ends with `stop_reason = "tool_use"` (the agent runs the tools and
//! calls again); a turn with only text ends the conversation (`end_turn`). Every string in a
//! turn may hold `{{name}}` placeholders (no spaces inside: `{{ x }}` is text, as in JSX),
//! filled by [`Script::render`]. A tool input may give `content_file = "path"` (relative to
//! the script's folder) instead of `content`: the file's text, as it is, becomes `content`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use bench_formats::template;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A tool input key naming a file (relative to the script's folder) whose text becomes the
/// input's `content`: `Write` calls can carry whole files without inlining them.
pub const CONTENT_FILE: &str = "content_file";

/// Tokens one API response reports, priced by the agent CLI itself.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Usage {
    /// Fresh (uncached) input tokens.
    #[serde(default)]
    pub input: u64,
    #[serde(default)]
    pub output: u64,
    #[serde(default)]
    pub cache_read: u64,
    #[serde(default)]
    pub cache_creation: u64,
}

/// One tool call the model "makes".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolCall {
    /// The agent tool's name: `Write`, `Edit`, `Read`, `Bash`, …
    pub name: String,
    /// The tool's input object, exactly as the agent expects it.
    pub input: Value,
}

/// One model response.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Turn {
    /// Text the model says (before its tool calls, if any).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, rename = "tool", skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<ToolCall>,
    #[serde(default)]
    pub usage: Usage,
    /// Wait this long before answering (to rehearse slow responses or interruptions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<u64>,
}

impl Turn {
    /// `tool_use` when the turn calls tools, else `end_turn`.
    pub fn stop_reason(&self) -> &'static str {
        if self.tools.is_empty() {
            "end_turn"
        } else {
            "tool_use"
        }
    }
}

/// The answer to requests outside the scripted conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SideAnswer {
    #[serde(default = "default_side_text")]
    pub text: String,
    #[serde(default = "default_side_usage")]
    pub usage: Usage,
}

fn default_side_text() -> String {
    "ok".to_owned()
}

fn default_side_usage() -> Usage {
    Usage {
        input: 12,
        output: 1,
        cache_read: 0,
        cache_creation: 0,
    }
}

impl Default for SideAnswer {
    fn default() -> Self {
        SideAnswer {
            text: default_side_text(),
            usage: default_side_usage(),
        }
    }
}

/// A whole rehearsal script.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Script {
    /// What the script rehearses (shown in logs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default)]
    pub side: SideAnswer,
    #[serde(default, rename = "turn")]
    pub turns: Vec<Turn>,
    /// The script's folder: a tool input's `content_file` is read relative to it.
    #[serde(skip)]
    pub base_dir: Option<PathBuf>,
}

impl Script {
    /// Reads a script file; errors name the file and the offending line.
    pub fn load(path: &Path) -> Result<Script> {
        let text = std::fs::read_to_string(path).with_context(|| {
            format!(
                "cannot read rehearsal script {} (check the path; scripts live in rehearsal/)",
                path.display()
            )
        })?;
        let mut script = Script::parse(&text)
            .with_context(|| format!("in rehearsal script {}", path.display()))?;
        script.base_dir = path.parent().map(Path::to_path_buf);
        script
            .check_content_files()
            .with_context(|| format!("in rehearsal script {}", path.display()))?;
        Ok(script)
    }

    /// Every `content_file` a tool input names (without placeholders) exists.
    fn check_content_files(&self) -> Result<()> {
        for (i, turn) in self.turns.iter().enumerate() {
            for tool in &turn.tools {
                if let Some(rel) = tool.input.get(CONTENT_FILE).and_then(Value::as_str)
                    && template::placeholders(rel).is_empty()
                {
                    self.content_file(rel)
                        .with_context(|| format!("turn {}, tool {}", i + 1, tool.name))?;
                }
            }
        }
        Ok(())
    }

    /// The text of a `content_file`, relative to the script's folder.
    fn content_file(&self, rel: &str) -> Result<String> {
        let path = match &self.base_dir {
            Some(dir) => dir.join(rel),
            None => PathBuf::from(rel),
        };
        std::fs::read_to_string(&path).with_context(|| {
            format!(
                "cannot read {CONTENT_FILE} {} (paths are relative to the script's folder)",
                path.display()
            )
        })
    }

    /// Parses a script from TOML text and checks it.
    pub fn parse(text: &str) -> Result<Script> {
        let script: Script = toml::from_str(text).context("not a valid rehearsal script")?;
        script.check()?;
        Ok(script)
    }

    fn check(&self) -> Result<()> {
        if self.turns.is_empty() {
            bail!("the script has no [[turn]]: add at least one");
        }
        for (i, turn) in self.turns.iter().enumerate() {
            if turn.text.is_none() && turn.tools.is_empty() {
                bail!(
                    "turn {} has neither text nor tool calls: give it `text = \"…\"` or a [[turn.tool]]",
                    i + 1
                );
            }
            for tool in &turn.tools {
                if !tool.input.is_object() {
                    bail!(
                        "turn {}: the input of tool {} must be a table",
                        i + 1,
                        tool.name
                    );
                }
            }
        }
        if !self.turns.last().is_some_and(|t| t.tools.is_empty()) {
            bail!(
                "the last turn must be text only (it ends the session); add a final [[turn]] with `text`"
            );
        }
        // A text-only turn ends the session, so one before the last leaves the rest unplayed.
        if let Some(i) = self.turns[..self.turns.len() - 1]
            .iter()
            .position(|t| t.tools.is_empty())
        {
            bail!(
                "turn {} is text only, which ends the session: the {} turn(s) after it would never be played \
                 (give it a [[turn.tool]], or merge its text into the next turn)",
                i + 1,
                self.turns.len() - 1 - i
            );
        }
        Ok(())
    }

    /// The `{{name}}` placeholders the script uses, sorted (the benchmark's one template
    /// syntax, [`bench_formats::template`]).
    pub fn placeholders(&self) -> Vec<String> {
        let mut names = BTreeSet::new();
        names.extend(template::placeholders(&self.side.text));
        for turn in &self.turns {
            if let Some(text) = &turn.text {
                names.extend(template::placeholders(text));
            }
            for tool in &turn.tools {
                names.extend(template::placeholders(&tool.name));
                template::json_placeholders(&tool.input, &mut names);
            }
        }
        names.into_iter().collect()
    }

    /// A copy with every `{{name}}` replaced by `vars[name]`; an unknown name is an error
    /// that lists the known ones.
    pub fn render(&self, vars: &BTreeMap<String, String>) -> Result<Script> {
        let missing: Vec<String> = self
            .placeholders()
            .into_iter()
            .filter(|n| !vars.contains_key(n))
            .collect();
        if !missing.is_empty() {
            bail!(
                "the script uses placeholders with no value: {} (known: {})",
                missing.join(", "),
                vars.keys().cloned().collect::<Vec<_>>().join(", ")
            );
        }
        let fill = |s: &str| template::fill_with(s, |name| vars.get(name).cloned());
        let mut json_value = |name: &str| vars.get(name).cloned().map(Value::String);
        let mut out = self.clone();
        out.side.text = fill(&out.side.text);
        for turn in &mut out.turns {
            if let Some(text) = &mut turn.text {
                *text = fill(text);
            }
            for tool in &mut turn.tools {
                tool.name = fill(&tool.name);
                tool.input = template::fill_json(&tool.input, &mut json_value);
                // A file's text is put in after the placeholders are filled: it is the
                // file as it is, never a template.
                if let Some(map) = tool.input.as_object_mut()
                    && let Some(Value::String(rel)) = map.remove(CONTENT_FILE)
                {
                    map.insert(
                        "content".to_owned(),
                        Value::String(self.content_file(&rel)?),
                    );
                }
            }
        }
        Ok(out)
    }

    /// Sum of the usage of every scripted turn.
    pub fn total_usage(&self) -> Usage {
        self.turns.iter().fold(Usage::default(), |acc, t| Usage {
            input: acc.input + t.usage.input,
            output: acc.output + t.usage.output,
            cache_read: acc.cache_read + t.usage.cache_read,
            cache_creation: acc.cache_creation + t.usage.cache_creation,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCRIPT: &str = r#"
        description = "two writes then done"
        [[turn]]
        usage = { input = 3, output = 50, cache_read = 100, cache_creation = 20 }
        [[turn.tool]]
        name = "Write"
        input = { file_path = "{{app_dir}}/a.txt", content = "port {{vite_port}}\n" }
        [[turn]]
        text = "DEPLOY_COMPLETE"
        usage = { input = 1, output = 5 }
    "#;

    #[test]
    fn parses_turns_usage_and_placeholders() {
        let script = Script::parse(SCRIPT).unwrap();
        assert_eq!(script.turns.len(), 2);
        assert_eq!(script.turns[0].stop_reason(), "tool_use");
        assert_eq!(script.turns[1].stop_reason(), "end_turn");
        assert_eq!(script.placeholders(), vec!["app_dir", "vite_port"]);
        assert_eq!(
            script.total_usage(),
            Usage {
                input: 4,
                output: 55,
                cache_read: 100,
                cache_creation: 20
            }
        );
    }

    #[test]
    fn render_fills_every_string_and_rejects_unknown_names() {
        let script = Script::parse(SCRIPT).unwrap();
        let mut vars = BTreeMap::new();
        vars.insert("app_dir".to_owned(), "/tmp/app".to_owned());
        let err = script.render(&vars).unwrap_err().to_string();
        assert!(err.contains("vite_port"), "{err}");
        vars.insert("vite_port".to_owned(), "6173".to_owned());
        let done = script.render(&vars).unwrap();
        let input = &done.turns[0].tools[0].input;
        assert_eq!(input["file_path"], "/tmp/app/a.txt");
        assert_eq!(input["content"], "port 6173\n");
        assert!(done.placeholders().is_empty());
    }

    #[test]
    fn content_files_are_read_relative_to_the_script_and_never_templated() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("src")).unwrap();
        std::fs::write(tmp.path().join("src/App.tsx"), "style={{color}}\n").unwrap();
        let script = r#"
            [[turn]]
            [[turn.tool]]
            name = "Write"
            input = { file_path = "{{app_dir}}/App.tsx", content_file = "src/App.tsx" }
            [[turn]]
            text = "done"
        "#;
        let path = tmp.path().join("s.toml");
        std::fs::write(&path, script).unwrap();
        let loaded = Script::load(&path).unwrap();
        assert_eq!(loaded.placeholders(), vec!["app_dir"]);
        let vars = BTreeMap::from([("app_dir".to_owned(), "/a".to_owned())]);
        let input = &loaded.render(&vars).unwrap().turns[0].tools[0].input;
        assert_eq!(input["content"], "style={{color}}\n");
        assert_eq!(input["file_path"], "/a/App.tsx");
        assert!(input.get(CONTENT_FILE).is_none());

        std::fs::write(&path, script.replace("src/App.tsx", "src/Gone.tsx")).unwrap();
        let err = format!("{:#}", Script::load(&path).unwrap_err());
        assert!(
            err.contains("Gone.tsx") && err.contains("relative to the script"),
            "{err}"
        );
    }

    #[test]
    fn rejects_scripts_that_cannot_end_or_have_empty_turns() {
        let no_end = r#"
            [[turn]]
            [[turn.tool]]
            name = "Bash"
            input = { command = "true" }
        "#;
        let err = format!("{:#}", Script::parse(no_end).unwrap_err());
        assert!(err.contains("last turn"), "{err}");
        let empty = "[[turn]]\nusage = { input = 1 }\n";
        let err = format!("{:#}", Script::parse(empty).unwrap_err());
        assert!(err.contains("neither text nor tool"), "{err}");
        let early_end = "[[turn]]\ntext = \"a\"\n[[turn]]\ntext = \"b\"\n";
        let err = format!("{:#}", Script::parse(early_end).unwrap_err());
        assert!(err.contains("turn 1 is text only"), "{err}");
        let typo = "[[turn]]\ntext = \"x\"\nusage = { inptu = 1 }\n";
        assert!(Script::parse(typo).is_err());
    }
}
