//! Which agent session an OpenTelemetry record belongs to: the one rule, used by the
//! embedded receiver when it files records per session and by `bench-telemetry` when it
//! picks one session's records out of collector files.
//!
//! A record (a log record or a metric data point) carries up to four tags: `session.id`
//! and `run.id`, each on the record itself or on the resource it came with. A blank tag
//! counts as absent. The rule:
//!
//! 1. session ids first, then run ids;
//! 2. for each, the record's own tag before its resource's.
//!
//! So a record is filed under [`Tags::owner`], and a session known by its session id and
//! run id takes exactly the records [`Tags::belongs_to`] says are its own. A record with
//! no tag at all belongs to nobody by this rule (the caller may fall back to time).

/// The attribute the agent CLI puts on every record: its session id.
pub const SESSION_ID: &str = "session.id";
/// The resource attribute the harness sets (`OTEL_RESOURCE_ATTRIBUTES`): its run id.
pub const RUN_ID: &str = "run.id";

/// Where the tag that decided was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// On the record (or data point) itself.
    Record,
    /// On the resource the record came with.
    Resource,
}

/// The tags of a record and of its resource.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tags<'a> {
    pub record_session: Option<&'a str>,
    pub record_run: Option<&'a str>,
    pub resource_session: Option<&'a str>,
    pub resource_run: Option<&'a str>,
}

/// How a record relates to one session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Belongs {
    /// The session's own, by the tag at this level.
    Yes(Level),
    /// Tagged with another session or run.
    No,
    /// No tag at all.
    Untagged,
}

fn given(tag: Option<&str>) -> Option<&str> {
    tag.filter(|t| !t.trim().is_empty())
}

impl<'a> Tags<'a> {
    /// The record's session id (its own, else its resource's) and where it was.
    pub fn session(&self) -> Option<(&'a str, Level)> {
        Self::first(self.record_session, self.resource_session)
    }

    /// The record's run id (its own, else its resource's) and where it was.
    pub fn run(&self) -> Option<(&'a str, Level)> {
        Self::first(self.record_run, self.resource_run)
    }

    fn first(record: Option<&'a str>, resource: Option<&'a str>) -> Option<(&'a str, Level)> {
        given(record)
            .map(|t| (t, Level::Record))
            .or_else(|| given(resource).map(|t| (t, Level::Resource)))
    }

    /// The id the record is filed under: its session id, else its run id.
    pub fn owner(&self) -> Option<&'a str> {
        self.session().or_else(|| self.run()).map(|(id, _)| id)
    }

    /// Whether the record carries any tag.
    pub fn is_tagged(&self) -> bool {
        self.owner().is_some()
    }

    /// Whether the record belongs to the session with this session id and run id (either
    /// may be unknown). Session ids decide when both sides have one; else run ids do when
    /// both sides have one; a record tagged otherwise belongs to another session.
    pub fn belongs_to(&self, session_id: Option<&str>, run_id: Option<&str>) -> Belongs {
        for (mine, theirs) in [(session_id, self.session()), (run_id, self.run())] {
            if let (Some(mine), Some((tag, level))) = (given(mine), theirs) {
                return if tag == mine {
                    Belongs::Yes(level)
                } else {
                    Belongs::No
                };
            }
        }
        if self.is_tagged() {
            Belongs::No
        } else {
            Belongs::Untagged
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_is_session_then_run_record_before_resource() {
        let all = Tags {
            record_session: Some("s-rec"),
            record_run: Some("r-rec"),
            resource_session: Some("s-res"),
            resource_run: Some("r-res"),
        };
        assert_eq!(all.owner(), Some("s-rec"));
        let no_record_session = Tags {
            record_session: Some("  "),
            ..all
        };
        assert_eq!(no_record_session.owner(), Some("s-res"));
        let runs_only = Tags {
            record_session: None,
            resource_session: None,
            ..all
        };
        assert_eq!(runs_only.owner(), Some("r-rec"));
        assert_eq!(runs_only.run(), Some(("r-rec", Level::Record)));
        let resource_run = Tags {
            resource_run: Some("r-res"),
            ..Tags::default()
        };
        assert_eq!(resource_run.run(), Some(("r-res", Level::Resource)));
        assert_eq!(Tags::default().owner(), None);
    }

    #[test]
    fn belongs_by_session_then_run_and_never_to_another() {
        let tags = Tags {
            record_session: Some("other"),
            resource_session: Some("S"),
            resource_run: Some("R"),
            ..Tags::default()
        };
        assert_eq!(tags.belongs_to(Some("S"), Some("R")), Belongs::No);
        // A session known only by its run id takes its run's records.
        assert_eq!(
            tags.belongs_to(None, Some("R")),
            Belongs::Yes(Level::Resource)
        );
        let run_tagged = Tags {
            record_run: Some("R"),
            ..Tags::default()
        };
        assert_eq!(
            run_tagged.belongs_to(Some("S"), Some("R")),
            Belongs::Yes(Level::Record)
        );
        assert_eq!(run_tagged.belongs_to(Some("S"), None), Belongs::No);
        assert_eq!(
            Tags::default().belongs_to(Some("S"), Some("R")),
            Belongs::Untagged
        );
    }
}
