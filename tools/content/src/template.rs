//! `{{name}}` placeholders in content files.
//!
//! A placeholder is `{{` + a lower-case identifier (`[a-z][a-z0-9_]*`) + `}}`. Anything
//! else between double braces (a JSX `style={{…}}`, say) is left alone.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Result, bail};

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
        let names: Vec<String> = missing
            .into_iter()
            .map(|n| format!("{{{{{n}}}}}"))
            .collect();
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

/// Walks `text`, calling `f` for each placeholder; `Some(v)` replaces it with `v`, `None`
/// keeps it as written. Returns the resulting text.
fn scan(text: &str, mut f: impl FnMut(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let name_len = after
            .char_indices()
            .take_while(|&(i, c)| {
                if i == 0 {
                    c.is_ascii_lowercase()
                } else {
                    c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'
                }
            })
            .count();
        if name_len > 0 && after[name_len..].starts_with("}}") {
            let name = &after[..name_len];
            match f(name) {
                Some(v) => out.push_str(&v),
                None => {
                    out.push_str("{{");
                    out.push_str(name);
                    out.push_str("}}");
                }
            }
            rest = &after[name_len + 2..];
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
}
