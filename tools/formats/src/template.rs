//! The one placeholder syntax of the benchmark's files: `{{name}}`.
//!
//! Content (prompts, guides, `backend.toml`), rehearsal scripts and stress adapters all
//! write a value to fill in as `{{` + a lower-case identifier (`[a-z][a-z0-9_]*`) + `}}`,
//! with no spaces inside. Anything else between double braces (a JSX `style={{…}}` or
//! `value={{ socket }}`, an empty `{{}}`) is text, left as written, so that code samples
//! in guides and in the files a script writes need no escaping.
//!
//! - [`placeholders`] lists the names a text uses;
//! - [`fill`] replaces all of them and fails naming every one without a value;
//! - [`fill_with`] replaces those a lookup knows and keeps the others as written;
//! - [`sole_placeholder`], [`json_placeholders`] and [`fill_json`] do the same inside
//!   JSON values, where a string that is exactly one placeholder takes the value's own
//!   JSON type (a numeric id stays a number).

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Result, bail};
use serde_json::Value;

/// The placeholder names used in `text`, in order of first use, without duplicates.
pub fn placeholders(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    scan(text, |name| {
        if !out.iter().any(|n| n == name) {
            out.push(name.to_string());
        }
        None
    });
    out
}

/// Replaces every placeholder with its value from `vars`. Fails, naming `what` and every
/// missing name, when any placeholder has no value.
pub fn fill(text: &str, vars: &BTreeMap<String, String>, what: &str) -> Result<String> {
    let mut missing = BTreeSet::new();
    let out = scan(text, |name| match vars.get(name) {
        Some(v) => Some(v.clone()),
        None => {
            missing.insert(name.to_string());
            None
        }
    });
    if !missing.is_empty() {
        let names: Vec<String> = missing.iter().map(|n| spelled(n)).collect();
        let known: Vec<&str> = vars.keys().map(String::as_str).collect();
        bail!(
            "{what}: no value for {} (values known: {})",
            names.join(", "),
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        );
    }
    Ok(out)
}

/// Replaces each placeholder for which `lookup` gives a value; the others stay as written.
pub fn fill_with(text: &str, lookup: impl FnMut(&str) -> Option<String>) -> String {
    scan(text, lookup)
}

/// How a placeholder named `name` is written.
pub fn spelled(name: &str) -> String {
    format!("{{{{{name}}}}}")
}

/// The name when the whole of `text` is one placeholder (`"{{room_id}}"`), else `None`.
pub fn sole_placeholder(text: &str) -> Option<&str> {
    let name = text.strip_prefix("{{")?.strip_suffix("}}")?;
    (name_len(name) == name.len() && !name.is_empty()).then_some(name)
}

/// Adds the placeholder names used in the strings and object keys of `value` to `names`.
pub fn json_placeholders(value: &Value, names: &mut BTreeSet<String>) {
    let mut add = |s: &str| names.extend(placeholders(s));
    walk_json(value, &mut add);
}

fn walk_json(value: &Value, visit: &mut impl FnMut(&str)) {
    match value {
        Value::String(s) => visit(s),
        Value::Array(items) => items.iter().for_each(|v| walk_json(v, visit)),
        Value::Object(map) => map.iter().for_each(|(k, v)| {
            visit(k);
            walk_json(v, visit)
        }),
        _ => {}
    }
}

/// A copy of `value` with the placeholders in its strings and object keys filled from
/// `lookup`. A string that is exactly one known placeholder becomes the value itself (of
/// whatever JSON type); inside longer text a string value is written without its quotes
/// and any other value as its JSON text. Unknown placeholders stay as written.
pub fn fill_json(value: &Value, lookup: &mut impl FnMut(&str) -> Option<Value>) -> Value {
    match value {
        Value::String(s) => {
            if let Some(v) = sole_placeholder(s).and_then(&mut *lookup) {
                return v;
            }
            Value::String(fill_json_text(s, lookup))
        }
        Value::Array(items) => Value::Array(items.iter().map(|v| fill_json(v, lookup)).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (fill_json_text(k, lookup), fill_json(v, lookup)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn fill_json_text(text: &str, lookup: &mut impl FnMut(&str) -> Option<Value>) -> String {
    scan(text, |name| {
        lookup(name).map(|v| match v {
            Value::String(t) => t,
            other => other.to_string(),
        })
    })
}

/// Length of the identifier at the start of `text` (`[a-z][a-z0-9_]*`), 0 when none.
fn name_len(text: &str) -> usize {
    text.char_indices()
        .take_while(|&(i, c)| c.is_ascii_lowercase() || (i > 0 && (c.is_ascii_digit() || c == '_')))
        .count()
}

/// Walks `text`, calling `f` for each placeholder; `Some(v)` replaces it with `v`, `None`
/// keeps it as written. Returns the resulting text.
fn scan(text: &str, mut f: impl FnMut(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let len = name_len(after);
        if len > 0 && after[len..].starts_with("}}") {
            let name = &after[..len];
            match f(name) {
                Some(v) => out.push_str(&v),
                None => out.push_str(&spelled(name)),
            }
            rest = &after[len + 2..];
        } else {
            out.push_str("{{");
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn fills_names_and_leaves_other_braces() {
        let v = vars(&[("port", "6173"), ("db", "chat_run0")]);
        let out = fill(
            "open http://127.0.0.1:{{port}}/ db={{db}} style={{color: 'red'}} {{}} {{port}}",
            &v,
            "t",
        )
        .unwrap();
        assert_eq!(
            out,
            "open http://127.0.0.1:6173/ db=chat_run0 style={{color: 'red'}} {{}} 6173"
        );
    }

    #[test]
    fn missing_values_are_all_named() {
        let err = fill("{{a}} {{b}} {{a}} {{c}}", &vars(&[("b", "x")]), "guide.md")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("guide.md: no value for {{a}}, {{c}}"),
            "{err}"
        );
        assert!(err.contains("values known: b"), "{err}");
    }

    #[test]
    fn lists_placeholders_once() {
        assert_eq!(
            placeholders("{{x}} {{y_2}} {{x}} {{Z}} {{ z }}"),
            vec!["x".to_string(), "y_2".to_string()]
        );
    }

    #[test]
    fn fill_with_keeps_unknown_names_and_jsx() {
        let out = fill_with("{{a}}-{{b}} <P value={{ socket }}>{{{a}}}", |n| {
            (n == "a").then(|| "1".to_string())
        });
        assert_eq!(out, "1-{{b}} <P value={{ socket }}>{{{a}}}");
    }

    #[test]
    fn sole_placeholder_is_the_whole_string_only() {
        assert_eq!(sole_placeholder("{{room_id}}"), Some("room_id"));
        for text in [
            "{{room_id}}/x",
            "{{ room_id }}",
            "{{}}",
            "{{Room}}",
            "{room_id}",
        ] {
            assert_eq!(sole_placeholder(text), None, "{text}");
        }
    }

    #[test]
    fn json_keeps_types_of_whole_placeholders_and_fills_keys() {
        let template = json!({
            "roomId": "{{room_id}}",
            "text": "[{{content}}] in {{room_id}}",
            "{{key}}": ["{{user_id}}", 3, null],
            "other": "{{unknown}}",
        });
        let mut names = BTreeSet::new();
        json_placeholders(&template, &mut names);
        assert_eq!(
            names.into_iter().collect::<Vec<_>>(),
            ["content", "key", "room_id", "unknown", "user_id"]
        );
        let values = BTreeMap::from([
            ("room_id", json!(7)),
            ("content", json!("hi")),
            ("key", json!("k")),
            ("user_id", json!("u-1")),
        ]);
        let out = fill_json(&template, &mut |n| values.get(n).cloned());
        assert_eq!(
            out,
            json!({"roomId": 7, "text": "[hi] in 7", "k": ["u-1", 3, null], "other": "{{unknown}}"})
        );
    }
}
