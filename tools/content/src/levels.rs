//! `levels/levels.toml`: the chat app's features and the levels that add them.
//!
//! Each feature carries what the agent must build (behaviours), the strings a browser
//! test may rely on (its UI contract) and the steps a grader follows with two users
//! (its test plan). Levels add features cumulatively: level N's app has the features of
//! levels 1..=N.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

pub mod script;

pub use script::{Act, Expect, ScriptItem, Severity, Unscripted, User};

/// Path of the levels file, relative to the repository root.
pub const LEVELS_FILE: &str = "levels/levels.toml";

/// The score every feature is graded out of.
pub const MAX_SCORE: u32 = 3;

/// Longest wait a test plan step may allow before the observation counts as failed.
pub const MAX_WITHIN_SECONDS: f64 = 300.0;

/// All features and levels, validated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Levels {
    /// Format version of the file; this crate reads version 1.
    pub schema: u32,
    #[serde(rename = "feature")]
    pub features: Vec<Feature>,
    #[serde(rename = "level")]
    pub levels: Vec<Level>,
}

/// One feature of the chat app.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Feature {
    /// 1-based, in order of the file.
    pub id: u32,
    /// Short kebab-case name used in file names (`typing-indicators`).
    pub key: String,
    /// Display name (`Typing indicators`).
    pub name: String,
    /// Best possible grade (always [`MAX_SCORE`]).
    pub max_score: u32,
    /// One sentence saying what the feature is for.
    pub summary: String,
    /// The prose spec given to the agent, relative to the repository root
    /// (`prompts/features/NN-key.md`).
    pub spec: String,
    /// What the app must do, one testable statement each.
    pub behaviours: Vec<String>,
    /// Strings a browser test may rely on.
    pub ui: Vec<UiElement>,
    /// What a grader does with two users, and what each must observe.
    pub test: Vec<TestStep>,
    /// Data strings the scripts may use besides those backticked in a step's prose.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub data: Vec<String>,
    /// Behaviours no generic browser script can check, with the reason.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unscripted: Vec<Unscripted>,
}

/// One string of a feature's UI contract.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UiElement {
    pub kind: UiKind,
    /// The exact text (case-sensitive). `{…}` marks a variable part, e.g. `Seen by {names}`.
    pub text: String,
    /// Which element carries it (`message input`, `room list entry`).
    pub on: String,
}

/// How a UI contract string appears in the page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UiKind {
    /// The `placeholder` attribute of an input or textarea.
    Placeholder,
    /// The visible text of a `<button>` (or its `aria-label` when it shows an icon only).
    Button,
    /// Text visible in the page.
    Text,
    /// The `aria-label` of an element.
    Label,
    /// The `title` attribute (tooltip) of an element.
    Title,
}

impl UiKind {
    pub fn describe(self) -> &'static str {
        match self {
            UiKind::Placeholder => "placeholder",
            UiKind::Button => "button",
            UiKind::Text => "visible text",
            UiKind::Label => "aria-label",
            UiKind::Title => "title attribute",
        }
    }
}

/// One step of a feature's test plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestStep {
    /// Who acts: `alice` or `bob` (two browser profiles, or one normal and one private window).
    pub actor: Actor,
    /// What the actor does.
    pub action: String,
    /// What Alice must observe after the action (absent: nothing to check on her side).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alice: Option<String>,
    /// What Bob must observe after the action.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bob: Option<String>,
    /// The observations must hold within this many seconds of the action, without a
    /// page refresh.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub within_s: Option<f64>,
    /// The same step for the grading driver: actions and expectations, in order.
    #[serde(default)]
    pub script: Vec<ScriptItem>,
    /// Why no browser script can carry this step out (then it has no `script`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manual: Option<String>,
}

/// A user of a test plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Actor {
    Alice,
    Bob,
}

impl Actor {
    pub fn name(self) -> &'static str {
        match self {
            Actor::Alice => "Alice",
            Actor::Bob => "Bob",
        }
    }
}

/// One level: the features it adds to the previous level's app.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Level {
    pub number: u32,
    pub name: String,
    /// Ids of the features this level adds, ascending.
    pub features: Vec<u32>,
    /// Levels past the original twelve.
    #[serde(default)]
    pub extension: bool,
}

impl Levels {
    /// Reads and validates `levels/levels.toml` under `root`.
    pub fn load(root: &Path) -> Result<Levels> {
        let path = root.join(LEVELS_FILE);
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "cannot read {}: run from the benchmark repository (or set BENCH_ROOT)",
                path.display()
            )
        })?;
        Levels::parse(&text, LEVELS_FILE, Some(root))
    }

    /// Parses and validates levels from `text`; `name` is used in error messages. When
    /// `root` is given, each feature's spec file must exist under it.
    pub fn parse(text: &str, name: &str, root: Option<&Path>) -> Result<Levels> {
        let levels: Levels = toml::from_str(text)
            .map_err(|e| anyhow::anyhow!("{name}: not a valid levels file: {e}"))?;
        let problems = levels.problems(root);
        crate::no_problems(name, &problems)?;
        Ok(levels)
    }

    /// Every rule the file breaks, each naming the feature or level concerned.
    pub fn problems(&self, root: Option<&Path>) -> Vec<String> {
        let mut out = Vec::new();
        if self.schema != 1 {
            out.push(format!(
                "schema = {} is not supported (this version reads schema = 1)",
                self.schema
            ));
        }
        if self.features.is_empty() {
            out.push("no [[feature]] entries".into());
        }
        if self.levels.is_empty() {
            out.push("no [[level]] entries".into());
        }
        let mut keys = BTreeSet::new();
        for (i, f) in self.features.iter().enumerate() {
            let who = format!("feature {} ({})", f.id, f.key);
            Self::identity_problems(f, i, &who, root, &mut keys, &mut out);
            Self::ui_problems(f, &who, &mut out);
            Self::plan_problems(f, &who, &mut out);
        }
        out.extend(self.script_problems());
        self.level_problems(&mut out);
        out
    }

    /// A feature's id, key, names, spec file and behaviours.
    fn identity_problems(
        f: &Feature,
        i: usize,
        who: &str,
        root: Option<&Path>,
        keys: &mut BTreeSet<String>,
        out: &mut Vec<String>,
    ) {
        let expected = i as u32 + 1;
        if f.id != expected {
            out.push(format!(
                "{who}: id must be {expected} (features are numbered 1, 2, 3… in file order)"
            ));
        }
        if !is_kebab(&f.key) {
            out.push(format!(
                "{who}: key must be lower-case kebab-case (letters, digits, '-')"
            ));
        }
        if !keys.insert(f.key.clone()) {
            out.push(format!("{who}: key is used by another feature"));
        }
        if f.name.trim().is_empty() {
            out.push(format!("{who}: name is empty"));
        }
        if f.summary.trim().is_empty() {
            out.push(format!("{who}: summary is empty"));
        }
        if f.max_score != MAX_SCORE {
            out.push(format!(
                "{who}: max_score must be {MAX_SCORE}, found {}",
                f.max_score
            ));
        }
        let spec_name = format!("prompts/features/{:02}-{}.md", f.id, f.key);
        if f.spec != spec_name {
            out.push(format!(
                "{who}: spec must be \"{spec_name}\", found \"{}\"",
                f.spec
            ));
        } else if let Some(root) = root
            && !root.join(&f.spec).is_file()
        {
            out.push(format!("{who}: spec file {} does not exist", f.spec));
        }
        if f.behaviours.is_empty() {
            out.push(format!("{who}: behaviours is empty"));
        }
        for (n, b) in f.behaviours.iter().enumerate() {
            if b.trim().is_empty() {
                out.push(format!("{who}: behaviour {} is empty", n + 1));
            }
        }
    }

    /// A feature's UI contract.
    fn ui_problems(f: &Feature, who: &str, out: &mut Vec<String>) {
        if f.ui.is_empty() {
            out.push(format!("{who}: ui contract is empty ([[feature.ui]])"));
        }
        let mut seen_ui = BTreeSet::new();
        for (n, u) in f.ui.iter().enumerate() {
            if u.text.trim().is_empty() || u.text.trim() != u.text {
                out.push(format!(
                    "{who}: ui {} text {:?} is empty or has surrounding spaces",
                    n + 1,
                    u.text
                ));
            }
            if u.on.trim().is_empty() {
                out.push(format!(
                    "{who}: ui {} ({:?}) says nothing in `on`",
                    n + 1,
                    u.text
                ));
            }
            if !seen_ui.insert((u.text.clone(), u.on.clone())) {
                out.push(format!(
                    "{who}: ui {:?} on {:?} is listed twice",
                    u.text, u.on
                ));
            }
        }
    }

    /// A feature's test plan (its prose; scripts are checked by `script_problems`).
    fn plan_problems(f: &Feature, who: &str, out: &mut Vec<String>) {
        if f.test.len() < 2 {
            out.push(format!(
                "{who}: test plan needs at least 2 steps, found {}",
                f.test.len()
            ));
        }
        let mut alice = false;
        let mut bob = false;
        for (n, s) in f.test.iter().enumerate() {
            let step = n + 1;
            match s.actor {
                Actor::Alice => alice = true,
                Actor::Bob => bob = true,
            }
            alice |= s.alice.is_some();
            bob |= s.bob.is_some();
            if s.action.trim().is_empty() {
                out.push(format!("{who}: test step {step} has an empty action"));
            }
            if s.alice.is_none() && s.bob.is_none() {
                out.push(format!(
                    "{who}: test step {step} says what neither alice nor bob must observe"
                ));
            }
            for obs in [&s.alice, &s.bob].into_iter().flatten() {
                if obs.trim().is_empty() {
                    out.push(format!("{who}: test step {step} has an empty observation"));
                }
            }
            if let Some(w) = s.within_s
                && !(w > 0.0 && w <= MAX_WITHIN_SECONDS)
            {
                out.push(format!(
                    "{who}: test step {step}: within_s must be in (0, {MAX_WITHIN_SECONDS}], found {w}"
                ));
            }
        }
        let both = alice && bob;
        if !f.test.is_empty() && !both {
            out.push(format!(
                "{who}: test plan must involve both alice and bob (as actor or observer)"
            ));
        }
    }

    /// Levels: numbering, and every feature added exactly once, in ascending order.
    fn level_problems(&self, out: &mut Vec<String>) {
        let feature_count = self.features.len() as u32;
        let mut owner: Vec<Option<u32>> = vec![None; self.features.len()];
        let mut previous_max = 0;
        for (i, l) in self.levels.iter().enumerate() {
            let who = format!("level {}", l.number);
            let expected = i as u32 + 1;
            if l.number != expected {
                out.push(format!(
                    "{who}: number must be {expected} (levels are numbered 1, 2, 3… in file order)"
                ));
            }
            if l.name.trim().is_empty() {
                out.push(format!("{who}: name is empty"));
            }
            if l.features.is_empty() {
                out.push(format!("{who}: adds no features"));
            }
            for &id in &l.features {
                if id == 0 || id > feature_count {
                    out.push(format!(
                        "{who}: feature {id} does not exist (features are 1..={feature_count})"
                    ));
                    continue;
                }
                let slot = &mut owner[id as usize - 1];
                if let Some(other) = slot {
                    out.push(format!(
                        "{who}: feature {id} is already added by level {other}"
                    ));
                } else {
                    *slot = Some(l.number);
                }
                if id <= previous_max {
                    out.push(format!(
                        "{who}: feature {id} is out of order (levels add features in ascending id order; an earlier level already reached feature {previous_max})"
                    ));
                }
                previous_max = previous_max.max(id);
            }
        }
        for (i, o) in owner.iter().enumerate() {
            if o.is_none() && !self.levels.is_empty() {
                out.push(format!(
                    "feature {} ({}): no level adds it",
                    i + 1,
                    self.features[i].key
                ));
            }
        }
    }

    /// Problems of every feature's scripts, in plan order (tabs opened by one plan stay
    /// open for the next).
    fn script_problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut tabs = [User::Alice, User::Bob]
            .map(|u| (u, script::FIRST_TAB.to_string()))
            .into_iter()
            .collect();
        for f in &self.features {
            let contract = self
                .features
                .iter()
                .filter(|g| g.id <= f.id)
                .flat_map(|g| &g.ui)
                .collect();
            out.extend(script::feature_problems(f, contract, &mut tabs));
        }
        out
    }

    /// The feature with this id.
    pub fn feature(&self, id: u32) -> Result<&Feature> {
        self.features
            .iter()
            .find(|f| f.id == id)
            .with_context(|| format!("no feature {id} (features are 1..={})", self.features.len()))
    }

    /// The level with this number.
    pub fn level(&self, number: u32) -> Result<&Level> {
        self.levels
            .iter()
            .find(|l| l.number == number)
            .with_context(|| {
                format!(
                    "no level {number}: levels are 1..={} (see {LEVELS_FILE})",
                    self.levels.len()
                )
            })
    }

    /// The highest level number.
    pub fn max_level(&self) -> u32 {
        self.levels.len() as u32
    }

    /// The features level `number` adds.
    pub fn features_added_by(&self, number: u32) -> Result<Vec<&Feature>> {
        let level = self.level(number)?;
        level.features.iter().map(|&id| self.feature(id)).collect()
    }

    /// The features an app at level `number` has (levels 1..=number).
    pub fn features_up_to(&self, number: u32) -> Result<Vec<&Feature>> {
        self.level(number)?;
        let mut out = Vec::new();
        for n in 1..=number {
            out.extend(self.features_added_by(n)?);
        }
        Ok(out)
    }

    /// The level that adds feature `id`.
    pub fn level_of(&self, id: u32) -> Option<&Level> {
        self.levels.iter().find(|l| l.features.contains(&id))
    }
}

fn is_kebab(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with('-')
        && !s.ends_with('-')
        && !s.contains("--")
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A valid two-feature, two-level file to break in small ways.
    fn small() -> String {
        let feature = |id: u32, key: &str| {
            format!(
                r#"
[[feature]]
id = {id}
key = "{key}"
name = "Feature {id}"
max_score = 3
summary = "What it is for."
spec = "prompts/features/{id:02}-{key}.md"
behaviours = ["It works."]

[[feature.ui]]
kind = "button"
text = "Go"
on = "the form"

[[feature.test]]
actor = "alice"
action = "Click `Go`."
bob = "He sees `Done`."
within_s = 2
script = [
  {{ user = "alice", do = "click", button = "Go" }},
  {{ user = "bob", expect = "appears", text = "Done" }},
]

[[feature.test]]
actor = "bob"
action = "Refresh."
bob = "`Done` is still there."
script = [
  {{ user = "bob", do = "reload" }},
  {{ user = "bob", expect = "appears", text = "Done" }},
]
"#
            )
        };
        format!(
            "schema = 1\n{}{}\n[[level]]\nnumber = 1\nname = \"One\"\nfeatures = [1]\n\n[[level]]\nnumber = 2\nname = \"Two\"\nfeatures = [2]\n",
            feature(1, "first"),
            feature(2, "second")
        )
    }

    fn problems_of(text: &str) -> String {
        match Levels::parse(text, "t.toml", None) {
            Ok(_) => String::new(),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn the_checked_in_levels_file_and_its_scripts_are_valid() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let l = Levels::load(&root).unwrap_or_else(|e| panic!("{e:#}"));
        for f in &l.features {
            for (n, s) in f.test.iter().enumerate() {
                assert!(
                    !s.script.is_empty() || s.manual.is_some(),
                    "feature {} step {}",
                    f.id,
                    n + 1
                );
            }
        }
        let manual: usize = l
            .features_up_to(12)
            .unwrap()
            .iter()
            .map(|f| f.test.iter().filter(|s| s.manual.is_some()).count())
            .sum();
        assert_eq!(
            manual, 1,
            "only the decay of activity badges is left to a person"
        );
    }

    #[test]
    fn the_small_file_is_valid() {
        let l = Levels::parse(&small(), "t.toml", None).unwrap();
        assert_eq!(l.features_up_to(2).unwrap().len(), 2);
        assert_eq!(l.level_of(2).unwrap().number, 2);
        assert_eq!(l.features[0].test[0].within_s, Some(2.0));
    }

    #[test]
    fn broken_scripts_are_refused_naming_feature_step_and_item() {
        let go = "{ user = \"alice\", do = \"click\", button = \"Go\" }";
        let done = "{ user = \"bob\", expect = \"appears\", text = \"Done\" }";
        let cases: Vec<(String, &str)> = vec![
            (
                small().replacen(go, &go.replace("\"Go\"", "\"Stop\""), 1),
                "feature 1 (first): test step 1, item 1 (do = click): \"Stop\" is not a button of the UI contract of features 1–1",
            ),
            (
                small().replacen(go, &go.replace("button", "placeholder"), 1),
                "feature 1 (first): test step 1, item 1 (do = click): \"Go\" is not a placeholder of the UI contract",
            ),
            (
                small().replacen(done, &done.replace("Done", "Gone"), 1),
                "feature 1 (first): test step 1, item 2 (expect = appears): \"Gone\" is not a visible text of the UI contract of features 1–1 nor a data string of the step",
            ),
            (
                small().replacen(go, "{ user = \"alice\", do = \"click\" }", 1),
                "test step 1, item 1 (do = click): needs a target: one of button, text, placeholder, holding, label, title",
            ),
            (
                small().replacen(go, &go.replace(" }", ", seconds = 2 }"), 1),
                "test step 1, item 1 (do = click): `seconds` does not apply here",
            ),
            (
                small().replacen(done, &done.replace(" }", ", feature = 1 }"), 1),
                "feature 1 (first): test step 1, item 2 (expect = appears): `feature = 1` must name an earlier feature",
            ),
            (
                small().replacen(done, &done.replace(" }", ", since = \"due\" }"), 1),
                "`since = \"due\"` names no moment remembered earlier in this feature",
            ),
            (
                small().replacen(go, "{ user = \"alice\", do = \"switch_tab\", tab = \"a2\" }", 1),
                "test step 1, item 1 (do = switch_tab): tab \"a2\" was never opened",
            ),
            (
                small().replacen(done, "{ user = \"bob\", do = \"reload\" }", 1),
                "feature 1 (first): test step 1: its script checks nothing",
            ),
            (
                small().replacen("script = [\n  { user = \"bob\", do = \"reload\" },\n  { user = \"bob\", expect = \"appears\", text = \"Done\" },\n]\n", "", 1),
                "feature 1 (first): test step 2 has no script (script it, or say in `manual` why no browser script can)",
            ),
            (
                small().replacen("behaviours = [\"It works.\"]", "behaviours = [\"It works.\"]\nunscripted = [{ behaviour = 2, why = \"x\" }]", 1),
                "feature 1 (first): unscripted behaviour 2 does not exist (behaviours are 1..=1)",
            ),
            (
                small().replacen(go, &go.replace("click", "clik"), 1),
                "unknown variant `clik`",
            ),
        ];
        for (text, needle) in cases {
            let e = problems_of(&text);
            assert!(e.contains(needle), "expected {needle:?} in:\n{e}");
        }
    }

    #[test]
    fn each_rule_names_what_is_wrong() {
        let cases = [
            (
                small().replace("features = [2]", "features = [1, 2]"),
                vec![
                    "level 2: feature 1 is already added by level 1",
                    "level 2: feature 1 is out of order",
                ],
            ),
            (
                small().replace("features = [2]", "features = []"),
                vec![
                    "level 2: adds no features",
                    "feature 2 (second): no level adds it",
                ],
            ),
            (
                small().replace("features = [2]", "features = [9]"),
                vec!["level 2: feature 9 does not exist (features are 1..=2)"],
            ),
            (
                small().replace("key = \"second\"", "key = \"Second Feature\""),
                vec![
                    "key must be lower-case kebab-case",
                    "spec must be \"prompts/features/02-Second Feature.md\"",
                ],
            ),
            (
                small()
                    .replacen(
                        "actor = \"bob\"\naction = \"Refresh.\"\nbob = \"`Done` is still there.\"",
                        "actor = \"alice\"\naction = \"Refresh.\"\nalice = \"`Done` is still there.\"",
                        1,
                    )
                    .replacen("bob = \"He sees `Done`.\"", "alice = \"She sees `Done`.\"", 1),
                vec!["feature 1 (first): test plan must involve both alice and bob"],
            ),
            (
                small().replacen("within_s = 2", "within_s = 0", 1),
                vec!["feature 1 (first): test step 1: within_s must be in (0, 300], found 0"],
            ),
            (
                small().replacen("text = \"Go\"", "text = \" Go\"", 1),
                vec!["feature 1 (first): ui 1 text \" Go\" is empty or has surrounding spaces"],
            ),
            (
                small().replacen("schema = 1", "schema = 2", 1),
                vec!["schema = 2 is not supported"],
            ),
            (
                small().replacen("number = 2", "number = 3", 1),
                vec!["level 3: number must be 2"],
            ),
            (
                small().replacen("kind = \"button\"", "kind = \"link\"", 1),
                vec!["t.toml: not a valid levels file", "unknown variant `link`"],
            ),
        ];
        for (text, needles) in cases {
            let e = problems_of(&text);
            assert!(e.starts_with("t.toml"), "{e}");
            for n in needles {
                assert!(e.contains(n), "expected {n:?} in:\n{e}");
            }
        }
    }
}
