//! The machine-readable half of a test step: a list of actions and expectations that the
//! grading driver (`tools/grade/driver`) carries out in a real browser, next to the prose a
//! person follows. The grammar is documented in the header of `levels/levels.toml`.
//!
//! Items are deliberately flat (one TOML inline table each, every field optional) so that a
//! mistake is reported by [`item_problems`] naming the feature, step and item, rather than
//! as an opaque "did not match any variant" from the parser.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::{Feature, TestStep, UiElement, UiKind};

/// How long an expectation waits when neither it nor its step gives `within_s`.
pub const DEFAULT_WITHIN_S: f64 = 5.0;

/// The first tab of every user.
pub const FIRST_TAB: &str = "main";

/// A browser user of the plans: each has a profile (context) of their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum User {
    Alice,
    Bob,
}

/// What an action item does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Act {
    /// Load the app in the user's current tab (opening one if the user has none).
    Open,
    /// Set an input's value at once (`placeholder` or `label`; `value` or `time_from_now_s`).
    Fill,
    /// Type `value` key by key into an input (`placeholder` or `label`).
    Type,
    /// Click a button (`button`) or a clickable text (`text`, `label`, `title`).
    Click,
    /// Press `key` (Playwright key name) in the focused element, or in a target.
    Press,
    /// Choose `option` (its visible text) in a select found by `label`.
    Select,
    /// Tick a checkbox found by `label`.
    Check,
    /// Move the mouse over a target.
    Hover,
    /// Open a new tab named `tab` in the user's profile (same storage) and switch to it.
    NewTab,
    /// Open a tab named `tab` in a fresh private window of its own (no shared storage):
    /// the same person on another browser.
    NewPrivateTab,
    /// Make the tab named `tab` the user's current tab.
    SwitchTab,
    /// Close the user's current tab (the profile and its storage stay).
    CloseTab,
    /// Reload the user's current tab.
    Reload,
    /// Do nothing for `seconds`.
    Wait,
    /// Replace the user's page clock by a controllable one (time keeps flowing).
    InstallClock,
    /// Move the user's page clock `seconds` ahead, firing due timers (needs `install_clock`).
    FastForward,
    /// Set the user's page clock back to the real time (after `fast_forward`).
    RealTime,
}

/// What an expectation item checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Expect {
    /// The target is shown (exactly `count` times when `count` is given) within the limit.
    Appears,
    /// The target is no longer shown within the limit.
    Gone,
    /// The target is not shown at any moment of the limit (watched for that long).
    Absent,
    /// The input found by `placeholder` or `label` holds `value` within the limit.
    Value,
    /// The target's `attribute` contains `value` within the limit.
    Attribute,
    /// The `texts` are shown in this order (top to bottom) within the limit.
    Order,
    /// The button found by `button` is disabled within the limit.
    Disabled,
}

/// How much a failed expectation costs, by `grading/rubric.md`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The feature's main use: a failure gives at most 1.
    #[default]
    Major,
    /// A secondary behaviour: a failure gives at most 2.
    Minor,
}

/// One action or expectation of a step's script.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScriptItem {
    pub user: Option<User>,
    #[serde(rename = "do", default, skip_serializing_if = "Option::is_none")]
    pub act: Option<Act>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect: Option<Expect>,
    /// A button by its accessible name (contract kind `button`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub button: Option<String>,
    /// Text shown in the page: a contract `text` string or a data string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// An input by its placeholder (contract kind `placeholder`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placeholder: Option<String>,
    /// An input or textarea by the text it currently holds (an inline editor).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holding: Option<String>,
    /// An element by its aria-label (contract kind `label`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// An element by its title attribute (contract kind `title`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Scope: the target must lie in the region of this string (see the file header).
    #[serde(rename = "in", default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Text targets match the whole text of their element (default: a bounded substring).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exact: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// For `fill` of a `datetime-local` input: now plus this many seconds (may be negative).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_from_now_s: Option<i64>,
    /// Name under which `fill … time_from_now_s` keeps the moment it entered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remember: Option<String>,
    /// An expectation's limit counts from this remembered moment instead of its action.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// `appears`/`gone` must not happen sooner than this many seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_s: Option<f64>,
    /// A `click` is skipped when this string is already shown (as text, a button, an
    /// aria-label or a placeholder): for buttons that toggle a form open and closed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unless: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub option: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tab: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub within_s: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attribute: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub texts: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<Severity>,
    /// The earlier feature a failure of this expectation is scored against.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feature: Option<u32>,
}

/// A behaviour that no generic browser script can check, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Unscripted {
    /// 1-based index into the feature's `behaviours`.
    pub behaviour: u32,
    pub why: String,
}

/// The fields an item may carry besides `user`, `do`/`expect`, `severity` and `feature`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Field {
    Button,
    Text,
    Placeholder,
    Holding,
    Label,
    Title,
    Scope,
    Exact,
    Value,
    TimeFromNow,
    Since,
    After,
    Unless,
    Key,
    Option,
    Tab,
    Seconds,
    Within,
    Count,
    Attribute,
    Texts,
}

impl Field {
    fn name(self) -> &'static str {
        match self {
            Field::Button => "button",
            Field::Text => "text",
            Field::Placeholder => "placeholder",
            Field::Holding => "holding",
            Field::Label => "label",
            Field::Title => "title",
            Field::Scope => "in",
            Field::Exact => "exact",
            Field::Value => "value",
            Field::TimeFromNow => "time_from_now_s",
            Field::Since => "since",
            Field::After => "after_s",
            Field::Unless => "unless",
            Field::Key => "key",
            Field::Option => "option",
            Field::Tab => "tab",
            Field::Seconds => "seconds",
            Field::Within => "within_s",
            Field::Count => "count",
            Field::Attribute => "attribute",
            Field::Texts => "texts",
        }
    }
}

/// Which target fields a verb takes: none, exactly one of these, or optionally one.
enum Targets {
    None,
    One(&'static [Field]),
    Maybe(&'static [Field]),
}

const ANY_TARGET: &[Field] = &[
    Field::Button,
    Field::Text,
    Field::Placeholder,
    Field::Holding,
    Field::Label,
    Field::Title,
];
const INPUT: &[Field] = &[Field::Placeholder, Field::Holding, Field::Label];
const SCOPED: &[Field] = &[Field::Scope, Field::Exact];

/// A verb's grammar: targets, required fields, optional fields.
struct Grammar {
    targets: Targets,
    required: &'static [Field],
    optional: &'static [Field],
}

fn act_grammar(a: Act) -> Grammar {
    use Field::*;
    let g = |targets, required, optional| Grammar {
        targets,
        required,
        optional,
    };
    match a {
        Act::Open | Act::CloseTab | Act::Reload | Act::InstallClock | Act::RealTime => {
            g(Targets::None, &[], &[])
        }
        Act::Fill => g(Targets::One(INPUT), &[], &[Value, TimeFromNow, Scope]),
        Act::Type => g(Targets::One(INPUT), &[Value], &[Scope]),
        Act::Click => g(Targets::One(ANY_TARGET), &[], &[Scope, Exact, Unless]),
        Act::Hover => g(Targets::One(ANY_TARGET), &[], SCOPED),
        Act::Press => g(Targets::Maybe(INPUT), &[Key], &[Scope]),
        Act::Select => g(Targets::One(&[Label]), &[Option], &[Scope]),
        Act::Check => g(Targets::One(&[Label]), &[], &[Scope]),
        Act::NewTab | Act::NewPrivateTab | Act::SwitchTab => g(Targets::None, &[Tab], &[]),
        Act::Wait | Act::FastForward => g(Targets::None, &[Seconds], &[]),
    }
}

fn expect_grammar(e: Expect) -> Grammar {
    use Field::*;
    let g = |targets, required, optional| Grammar {
        targets,
        required,
        optional,
    };
    match e {
        Expect::Appears => g(
            Targets::One(ANY_TARGET),
            &[],
            &[Scope, Exact, Within, Since, After, Count, Tab],
        ),
        Expect::Gone => g(
            Targets::One(ANY_TARGET),
            &[],
            &[Scope, Exact, Within, Since, After, Tab],
        ),
        Expect::Absent => g(
            Targets::One(ANY_TARGET),
            &[],
            &[Scope, Exact, Within, Since, Tab],
        ),
        Expect::Value => g(Targets::One(INPUT), &[Value], &[Scope, Within, Tab]),
        Expect::Attribute => g(
            Targets::One(ANY_TARGET),
            &[Attribute, Value],
            &[Scope, Exact, Within, Tab],
        ),
        Expect::Order => g(Targets::None, &[Texts], &[Scope, Exact, Within, Tab]),
        Expect::Disabled => g(Targets::One(&[Button]), &[], &[Scope, Within, Tab]),
    }
}

impl ScriptItem {
    fn has(&self, f: Field) -> bool {
        match f {
            Field::Button => self.button.is_some(),
            Field::Text => self.text.is_some(),
            Field::Placeholder => self.placeholder.is_some(),
            Field::Holding => self.holding.is_some(),
            Field::Label => self.label.is_some(),
            Field::Title => self.title.is_some(),
            Field::Scope => self.scope.is_some(),
            Field::Exact => self.exact.is_some(),
            Field::Value => self.value.is_some(),
            Field::TimeFromNow => self.time_from_now_s.is_some(),
            Field::Since => self.since.is_some(),
            Field::After => self.after_s.is_some(),
            Field::Unless => self.unless.is_some(),
            Field::Key => self.key.is_some(),
            Field::Option => self.option.is_some(),
            Field::Tab => self.tab.is_some(),
            Field::Seconds => self.seconds.is_some(),
            Field::Within => self.within_s.is_some(),
            Field::Count => self.count.is_some(),
            Field::Attribute => self.attribute.is_some(),
            Field::Texts => self.texts.is_some(),
        }
    }

    /// The verb, as written (`do = "click"`, `expect = "appears"`).
    pub fn verb(&self) -> String {
        match (self.act, self.expect) {
            (Some(a), _) => format!("do = {}", enum_name(&a)),
            (None, Some(e)) => format!("expect = {}", enum_name(&e)),
            (None, None) => "no verb".into(),
        }
    }

    /// The contract kind its target field asks for, with the string (`None` for the kind:
    /// `holding`, whose string is data, not a contract string).
    pub fn target(&self) -> Option<(Option<UiKind>, &str)> {
        let pairs = [
            (Some(UiKind::Button), &self.button),
            (Some(UiKind::Text), &self.text),
            (Some(UiKind::Placeholder), &self.placeholder),
            (None, &self.holding),
            (Some(UiKind::Label), &self.label),
            (Some(UiKind::Title), &self.title),
        ];
        pairs
            .into_iter()
            .find_map(|(k, v)| v.as_deref().map(|s| (k, s)))
    }

    /// The limit this expectation waits for, given its step's.
    pub fn limit_s(&self, step: &TestStep) -> f64 {
        self.within_s.or(step.within_s).unwrap_or(DEFAULT_WITHIN_S)
    }
}

fn enum_name<T: Serialize>(v: &T) -> String {
    // The serde name is what the file says; the Debug name would be CamelCase.
    serde_json_name(v).unwrap_or_else(|| "?".into())
}

fn serde_json_name<T: Serialize>(v: &T) -> Option<String> {
    let t = toml::Value::try_from(std::collections::BTreeMap::from([("v", v)])).ok()?;
    t.get("v")?.as_str().map(str::to_string)
}

/// What the checks of one feature's scripts need to know besides the item.
pub struct Context<'a> {
    /// Contract strings of this feature and every earlier one (plans are cumulative).
    pub contract: Vec<&'a UiElement>,
    /// The feature's id.
    pub feature: u32,
    /// Strings declared in the step's prose (backticked) or the feature's `data`.
    pub data: BTreeSet<String>,
    /// Moments remembered so far in the feature (`remember`).
    pub remembered: BTreeSet<String>,
    /// Tabs opened so far, per user, across the plans run before this point.
    pub tabs: BTreeSet<(User, String)>,
}

/// Strings between backticks in `text`.
pub fn backticked(text: &str) -> impl Iterator<Item = &str> {
    text.split('`').skip(1).step_by(2)
}

/// Whether `s` is `pattern` with each `{…}` part filled by some non-empty text.
pub fn matches_pattern(pattern: &str, s: &str) -> bool {
    let norm = |t: &str| t.replace('\u{fe0f}', "");
    let (pattern, s) = (norm(pattern), norm(s));
    let parts: Vec<&str> = split_pattern(&pattern);
    if parts.len() == 1 {
        return pattern == s;
    }
    let mut rest = s.as_str();
    let last = parts.len() - 1;
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            let Some(r) = rest.strip_prefix(part) else {
                return false;
            };
            rest = r;
        } else if i == last {
            return rest.len() > part.len() && rest.ends_with(part);
            // (a hole before the last literal needs at least one character)
        } else {
            // A hole of at least one character, then this literal part.
            let skip = rest.chars().next().map_or(0, char::len_utf8);
            let Some(at) = rest.get(skip..).and_then(|r| r.find(part)) else {
                return false;
            };
            rest = &rest[skip + at + part.len()..];
        }
    }
    false
}

/// The literal parts of a contract pattern, split at its `{…}` holes.
fn split_pattern(p: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = p;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}') else {
            break;
        };
        out.push(&rest[..open]);
        rest = &rest[open + close + 1..];
    }
    out.push(rest);
    out
}

/// Whether `s` names a contract string of `kind` (the string itself, or a filled-in
/// pattern). Contract `text` entries also cover button texts shown as text.
fn in_contract(cx: &Context<'_>, kind: UiKind, s: &str) -> bool {
    cx.contract
        .iter()
        .filter(|u| u.kind == kind)
        .any(|u| u.text == s || matches_pattern(&u.text, s))
}

/// Every rule `item` breaks, each prefixed by `who` (feature, step and item).
pub fn item_problems(item: &ScriptItem, who: &str, cx: &mut Context<'_>) -> Vec<String> {
    let mut out = Vec::new();
    let grammar = match (item.act, item.expect) {
        (Some(a), None) => act_grammar(a),
        (None, Some(e)) => expect_grammar(e),
        (Some(_), Some(_)) => {
            out.push(format!(
                "{who}: has both `do` and `expect`; split it in two"
            ));
            return out;
        }
        (None, None) => {
            out.push(format!(
                "{who}: says neither `do` (an action) nor `expect` (a check)"
            ));
            return out;
        }
    };
    let verb = item.verb();
    if item.user.is_none() {
        out.push(format!("{who} ({verb}): `user` (alice or bob) is missing"));
    }
    grammar_problems(item, &grammar, &format!("{who} ({verb})"), &mut out);
    if out.is_empty() {
        string_problems(item, &format!("{who} ({verb})"), cx, &mut out);
        state_problems(item, &format!("{who} ({verb})"), cx, &mut out);
    }
    out
}

fn grammar_problems(item: &ScriptItem, g: &Grammar, who: &str, out: &mut Vec<String>) {
    let (allowed_targets, need_target): (&[Field], bool) = match g.targets {
        Targets::None => (&[], false),
        Targets::One(t) => (t, true),
        Targets::Maybe(t) => (t, false),
    };
    let given: Vec<Field> = ANY_TARGET
        .iter()
        .copied()
        .filter(|f| item.has(*f))
        .collect();
    let names = |fs: &[Field]| fs.iter().map(|f| f.name()).collect::<Vec<_>>().join(", ");
    if given.len() > 1 {
        out.push(format!(
            "{who}: names {} targets ({}); give one",
            given.len(),
            names(&given)
        ));
    }
    for f in &given {
        if !allowed_targets.contains(f) {
            let hint = if allowed_targets.is_empty() {
                "it takes no target".to_string()
            } else {
                format!("it takes {}", names(allowed_targets))
            };
            out.push(format!(
                "{who}: `{}` is not a target here ({hint})",
                f.name()
            ));
        }
    }
    if need_target && given.is_empty() {
        out.push(format!(
            "{who}: needs a target: one of {}",
            names(allowed_targets)
        ));
    }
    for f in g.required {
        if !item.has(*f) {
            out.push(format!("{who}: `{}` is missing", f.name()));
        }
    }
    let others = [
        Field::Scope,
        Field::Exact,
        Field::Value,
        Field::TimeFromNow,
        Field::Since,
        Field::After,
        Field::Unless,
        Field::Key,
        Field::Option,
        Field::Tab,
        Field::Seconds,
        Field::Within,
        Field::Count,
        Field::Attribute,
        Field::Texts,
    ];
    for f in others {
        if item.has(f) && !g.required.contains(&f) && !g.optional.contains(&f) {
            out.push(format!("{who}: `{}` does not apply here", f.name()));
        }
    }
    if item.act == Some(Act::Fill) && item.has(Field::Value) == item.has(Field::TimeFromNow) {
        out.push(format!(
            "{who}: give exactly one of `value` and `time_from_now_s`"
        ));
    }
    if item.remember.is_some() && item.act.is_none() {
        out.push(format!(
            "{who}: `remember` applies to actions only (it keeps the moment they ran)"
        ));
    }
    if item.tab.is_some() && item.act.is_none() && item.user.is_none() {
        out.push(format!("{who}: `tab` needs `user`"));
    }
    if item.act.is_some() && item.severity.is_some() {
        out.push(format!("{who}: `severity` applies to expectations only"));
    }
    if item.act.is_some() && item.feature.is_some() {
        out.push(format!("{who}: `feature` applies to expectations only"));
    }
}

/// Every string the item uses must be a contract string of the right kind or declared data.
fn string_problems(item: &ScriptItem, who: &str, cx: &Context<'_>, out: &mut Vec<String>) {
    match item.target() {
        Some((Some(kind), s)) => {
            let ok = in_contract(cx, kind, s)
                || (kind == UiKind::Text
                    && (cx.data.contains(s) || in_contract(cx, UiKind::Button, s)));
            if !ok {
                let data = if kind == UiKind::Text {
                    " nor a data string of the step (backticked in its prose, or in the feature's `data`)"
                } else {
                    ""
                };
                out.push(format!(
                    "{who}: {:?} is not a {} of the UI contract of features 1–{}{data}",
                    s,
                    kind.describe(),
                    cx.feature
                ));
            }
        }
        Some((None, s)) if !cx.data.contains(s) => out.push(format!(
            "{who}: `holding` {s:?} is not a data string of the step (backticked in its prose, or in the feature's `data`)"
        )),
        _ => {}
    }
    let mut free: Vec<(&str, &str)> = Vec::new();
    if let Some(s) = &item.unless {
        free.push(("unless", s));
    }
    if let Some(s) = &item.scope {
        free.push(("in", s));
    }
    if let Some(s) = &item.option {
        free.push(("option", s));
    }
    if let Some(s) = &item.value
        && !s.is_empty()
        && item.attribute.is_none()
    {
        free.push(("value", s));
    }
    for s in item.texts.iter().flatten() {
        free.push(("texts", s));
    }
    for (field, s) in free {
        let ok = cx.data.contains(s)
            || [
                UiKind::Text,
                UiKind::Button,
                UiKind::Label,
                UiKind::Placeholder,
            ]
            .into_iter()
            .any(|k| in_contract(cx, k, s));
        if !ok {
            out.push(format!(
                "{who}: `{field}` {s:?} is neither a contract string of features 1–{} nor a data string of the step (backticked in its prose, or in the feature's `data`)",
                cx.feature
            ));
        }
    }
}

/// Rules that depend on what came before: remembered moments, tabs, scored features, limits.
fn state_problems(item: &ScriptItem, who: &str, cx: &mut Context<'_>, out: &mut Vec<String>) {
    let user = item.user.unwrap_or(User::Alice);
    if let Some(r) = &item.remember {
        cx.remembered.insert(r.clone());
    }
    if let Some(s) = &item.since
        && !cx.remembered.contains(s)
    {
        out.push(format!(
            "{who}: `since = {s:?}` names no moment remembered earlier in this feature"
        ));
    }
    if let Some(t) = &item.tab {
        match item.act {
            Some(Act::NewTab | Act::NewPrivateTab) if !cx.tabs.insert((user, t.clone())) => {
                out.push(format!("{who}: tab {t:?} is already open"))
            }
            Some(Act::NewTab | Act::NewPrivateTab) => {}
            _ if !cx.tabs.contains(&(user, t.clone())) => out.push(format!(
                "{who}: tab {t:?} was never opened (the first tab is {FIRST_TAB:?})"
            )),
            _ => {}
        }
    }
    if let Some(f) = item.feature
        && (f == 0 || f >= cx.feature)
    {
        out.push(format!(
            "{who}: `feature = {f}` must name an earlier feature (1..{})",
            cx.feature
        ));
    }
    for (name, v) in [
        ("within_s", item.within_s),
        ("seconds", item.seconds),
        ("after_s", item.after_s),
    ] {
        if let Some(v) = v
            && !(v > 0.0 && v <= super::MAX_WITHIN_SECONDS)
        {
            out.push(format!(
                "{who}: {name} must be in (0, {}], found {v}",
                super::MAX_WITHIN_SECONDS
            ));
        }
    }
    if let Some(texts) = &item.texts
        && texts.len() < 2
    {
        out.push(format!("{who}: `texts` needs at least 2 strings to order"));
    }
}

/// Problems of a whole feature's scripts and its `unscripted` list.
pub fn feature_problems(
    f: &Feature,
    contract: Vec<&UiElement>,
    tabs: &mut BTreeSet<(User, String)>,
) -> Vec<String> {
    let who = format!("feature {} ({})", f.id, f.key);
    let mut out = Vec::new();
    let mut cx = Context {
        contract,
        feature: f.id,
        data: BTreeSet::new(),
        remembered: BTreeSet::new(),
        tabs: std::mem::take(tabs),
    };
    for (n, step) in f.test.iter().enumerate() {
        let step_who = format!("{who}: test step {}", n + 1);
        match (&step.manual, step.script.is_empty()) {
            (Some(why), true) => {
                if why.trim().is_empty() {
                    out.push(format!(
                        "{step_who}: `manual` must say why it is not scripted"
                    ));
                }
                continue;
            }
            (Some(_), false) => {
                out.push(format!(
                    "{step_who} has both a script and `manual`; keep one"
                ));
                continue;
            }
            (None, true) => {
                out.push(format!(
                    "{step_who} has no script (script it, or say in `manual` why no browser script can)"
                ));
                continue;
            }
            (None, false) => {}
        }
        if !step.script.iter().any(|i| i.expect.is_some()) {
            out.push(format!(
                "{step_who}: its script checks nothing (no `expect`)"
            ));
        }
        cx.data = f.data.iter().cloned().collect();
        for prose in [Some(&step.action), step.alice.as_ref(), step.bob.as_ref()]
            .into_iter()
            .flatten()
        {
            cx.data.extend(backticked(prose).map(str::to_string));
        }
        for (i, item) in step.script.iter().enumerate() {
            out.extend(item_problems(
                item,
                &format!("{step_who}, item {}", i + 1),
                &mut cx,
            ));
        }
    }
    for u in &f.unscripted {
        if u.behaviour == 0 || u.behaviour as usize > f.behaviours.len() {
            out.push(format!(
                "{who}: unscripted behaviour {} does not exist (behaviours are 1..={})",
                u.behaviour,
                f.behaviours.len()
            ));
        }
        if u.why.trim().is_empty() {
            out.push(format!(
                "{who}: unscripted behaviour {} does not say why",
                u.behaviour
            ));
        }
    }
    *tabs = cx.tabs;
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_filled_in_values() {
        assert!(matches_pattern("{name} is typing...", "Alice is typing..."));
        assert!(!matches_pattern("{name} is typing...", " is typing..."));
        assert!(matches_pattern("{emoji} {count}", "👍 2"));
        assert!(matches_pattern("{emoji} {count}", "❤️ 1"));
        assert!(matches_pattern("Seen by {names}", "Seen by Alice, Bob"));
        assert!(!matches_pattern("Seen by {names}", "Seen by"));
        assert!(matches_pattern("Join", "Join"));
        assert!(!matches_pattern("Join", "Joined"));
        assert!(matches_pattern("{count} unread", "3 unread"));
        assert!(matches_pattern(
            "{inviter} invited you to {room}",
            "Alice invited you to Secret"
        ));
    }

    #[test]
    fn backticks_give_the_declared_strings() {
        let v: Vec<&str> = backticked("Type `Hello Bob` and press `Enter`.").collect();
        assert_eq!(v, ["Hello Bob", "Enter"]);
    }
}
