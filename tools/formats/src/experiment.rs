//! What a run varies besides the backend: how the levels are reached ([`Variant`]) and how
//! much the backend guide tells the agent ([`Rules`]). Both are written into every session's
//! `metadata.json` and `cost-summary.json` and into the app's state, with the original
//! harness's words.

use crate::named::named_enum;

named_enum! {
    /// How the levels are reached.
    pub enum Variant ("variant") {
        /// Generate level 1, then upgrade one level per session.
        SequentialUpgrade => "sequential-upgrade",
        /// Generate the target level in one session.
        OneShot => "one-shot",
    }
}

named_enum! {
    /// How much the backend guide gives the agent.
    pub enum Rules ("rules level") {
        /// Step-by-step phases with exact commands and the stack's known pitfalls.
        Guided => "guided",
        /// The phases and the commands, without the pitfalls.
        Standard => "standard",
        /// Only the facts: stack, ports, credentials, required scripts.
        Minimal => "minimal",
    }
}

impl Default for Variant {
    /// What a new app gets when nobody says otherwise.
    fn default() -> Variant {
        Variant::SequentialUpgrade
    }
}

impl Default for Rules {
    /// What a new app gets when nobody says otherwise.
    fn default() -> Rules {
        Rules::Guided
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_original_harness_words_and_unknown_ones_are_refused() {
        assert_eq!(
            serde_json::to_value(Variant::SequentialUpgrade).unwrap(),
            "sequential-upgrade"
        );
        let rules: Rules = serde_json::from_value(serde_json::json!("minimal")).unwrap();
        assert_eq!(rules, Rules::Minimal);
        assert!(rules == "minimal");
        let err = serde_json::from_value::<Rules>(serde_json::json!("lenient"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("guided, standard, minimal"), "{err}");
        assert_eq!("one-shot".parse::<Variant>(), Ok(Variant::OneShot));
        assert_eq!(Rules::ALL.len(), 3);
    }
}
