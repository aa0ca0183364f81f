//! Ranked candidate shapes for probing: what the app's source says first
//! ([`crate::source`]), then the shapes generated apps commonly have.
//!
//! Field names become template variables by what they mean (`roomId`, `channel_id` →
//! `{{room_id}}`; `userName`, `nickname` → `{{name}}`; `content`, `text` → `{{content}}`;
//! ...); a field with no known meaning is left out of the payload.

use serde_json::{Map, Value, json};

use crate::adapter::{SetupEvent, VerifySpec};
use crate::source::{Handler, Payload, Route, SourceFacts, Table};

/// A REST call to try: path (Express `:param`s already written as `{{room_id}}`) and body.
#[derive(Debug, Clone, PartialEq)]
pub struct RestCandidate {
    pub path: String,
    pub body: Value,
}

/// A socket event to try as the message send.
#[derive(Debug, Clone, PartialEq)]
pub struct SendCandidate {
    pub event: String,
    pub payload: Value,
}

/// Everything probing tries, best first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Candidates {
    pub users: Vec<RestCandidate>,
    pub rooms: Vec<RestCandidate>,
    pub joins_rest: Vec<RestCandidate>,
    /// Identity events (at most one, from the source), emitted before the joins.
    pub identity: Vec<SetupEvent>,
    /// Identity events to try, all at once, when no send works without one (only when
    /// the source did not say whether the app has one).
    pub identity_fallback: Vec<SetupEvent>,
    /// Join events (from the source: the one the app has; otherwise the common ones).
    pub joins: Vec<SetupEvent>,
    /// Whether `joins` came from the source (then it is used as is, acknowledged or not).
    pub joins_known: bool,
    pub sends: Vec<SendCandidate>,
    pub rest_sends: Vec<RestCandidate>,
    /// Handshake `auth` payload.
    pub auth: Value,
    pub verify: Option<VerifySpec>,
    /// Notes on what the source contributed.
    pub notes: Vec<String>,
}

/// What a field name means, as a template variable.
fn meaning(field: &str, room_name: bool) -> Option<Value> {
    let f = field.to_ascii_lowercase().replace(['_', '-'], "");
    let var = match f.as_str() {
        "roomname" | "channelname" => "room",
        "roomid" | "room" | "channelid" | "channel" | "chatid" | "conversationid" => "room_id",
        "userid" | "user" | "senderid" | "authorid" | "uid" | "ownerid" | "createdby"
        | "creatorid" | "fromid" => "user_id",
        "name" | "title" if room_name => "room",
        "username" | "name" | "nickname" | "displayname" | "handle" | "login" => "name",
        "content" | "text" | "message" | "body" | "msg" | "messagetext" => "content",
        "token" | "accesstoken" | "jwt" | "sessiontoken" => "token",
        "password" => return Some(json!("bench-password-1")),
        "email" => return Some(json!("{{name}}@bench.invalid")),
        _ => return None,
    };
    Some(Value::String(format!("{{{{{var}}}}}")))
}

fn object_of(fields: &[String], room_name: bool) -> Value {
    let map: Map<String, Value> = fields
        .iter()
        .filter_map(|f| meaning(f, room_name).map(|v| (f.clone(), v)))
        .collect();
    Value::Object(map)
}

fn has(fields: &[String], var: &str) -> bool {
    fields
        .iter()
        .any(|f| meaning(f, false) == Some(Value::String(format!("{{{{{var}}}}}"))))
}

/// `/api/rooms/:id/join` → `/api/rooms/{{room_id}}/join`.
fn express_path(path: &str) -> String {
    path.split('/')
        .map(|seg| match seg.strip_prefix(':') {
            Some(param) => {
                let p = param.to_ascii_lowercase();
                if p.contains("user") {
                    "{{user_id}}".to_string()
                } else {
                    "{{room_id}}".to_string()
                }
            }
            None => seg.to_string(),
        })
        .collect::<Vec<_>>()
        .join("/")
}

fn words(name: &str, any: &[&str]) -> bool {
    let n = name.to_ascii_lowercase();
    any.iter().any(|w| n.contains(w))
}

impl Candidates {
    /// The common shapes only.
    pub fn generic() -> Candidates {
        let rest = |path: &str, body: Value| RestCandidate {
            path: path.into(),
            body,
        };
        let mut c = Candidates::default();
        for path in [
            "/api/users",
            "/users",
            "/api/auth/register",
            "/api/register",
        ] {
            for body in [
                json!({"username": "{{name}}"}),
                json!({"name": "{{name}}"}),
                json!({"username": "{{name}}", "name": "{{name}}"}),
            ] {
                c.users.push(rest(path, body));
            }
        }
        for path in ["/api/rooms", "/rooms"] {
            c.rooms.push(rest(
                path,
                json!({"name": "{{room}}", "userId": "{{user_id}}", "createdBy": "{{user_id}}"}),
            ));
            c.rooms.push(rest(path, json!({"name": "{{room}}"})));
        }
        for path in [
            "/api/rooms/{{room_id}}/join",
            "/rooms/{{room_id}}/join",
            "/api/rooms/{{room_id}}/members",
        ] {
            c.joins_rest
                .push(rest(path, json!({"userId": "{{user_id}}"})));
        }
        let payload = json!({"roomId": "{{room_id}}", "userId": "{{user_id}}"});
        c.joins = ["join_room", "joinRoom", "join"]
            .iter()
            .map(|e| SetupEvent {
                event: e.to_string(),
                payload: payload.clone(),
                ack: true,
            })
            .collect();
        let send =
            json!({"roomId": "{{room_id}}", "userId": "{{user_id}}", "content": "{{content}}"});
        for event in [
            "send_message",
            "sendMessage",
            "message",
            "chat_message",
            "chatMessage",
            "new_message",
        ] {
            c.sends.push(SendCandidate {
                event: event.into(),
                payload: send.clone(),
            });
        }
        for path in [
            "/api/rooms/{{room_id}}/messages",
            "/rooms/{{room_id}}/messages",
            "/api/messages",
        ] {
            c.rest_sends.push(rest(path, send.clone()));
        }
        c.auth = json!({"userId": "{{user_id}}"});
        let who = json!({"userId": "{{user_id}}", "userName": "{{name}}", "username": "{{name}}"});
        c.identity_fallback = [
            "register",
            "identify",
            "authenticate",
            "user_connected",
            "login",
        ]
        .iter()
        .map(|e| SetupEvent {
            event: e.to_string(),
            payload: who.clone(),
            ack: false,
        })
        .collect();
        c
    }

    /// The source's candidates first, then the common shapes.
    pub fn from_source(facts: &SourceFacts) -> Candidates {
        let mut c = Candidates::generic();
        if !facts.handlers.is_empty() {
            // The source lists the socket handlers: no guessing of identity events or joins.
            c.identity_fallback.clear();
            c.joins.clear();
            c.joins_known = true;
        }
        let posts: Vec<&Route> = facts.routes.iter().filter(|r| r.method == "POST").collect();
        prepend(&mut c.users, user_routes(&posts));
        prepend(&mut c.rooms, room_routes(&posts));
        prepend(&mut c.joins_rest, join_routes(&posts));
        prepend(&mut c.rest_sends, send_routes(&posts));
        if let Some(h) = best(
            &facts.handlers,
            is_identity,
            &[
                "register",
                "identify",
                "auth",
                "login",
                "user_connected",
                "connect_user",
                "set_user",
                "hello",
            ],
        ) {
            c.notes
                .push(format!("source: identity event {:?} ({})", h.event, h.at));
            c.identity.push(SetupEvent {
                event: h.event.clone(),
                payload: identity_payload(&h.payload),
                ack: h.ack,
            });
        }
        if let Some(h) = best(
            &facts.handlers,
            is_join,
            &["join_room", "joinroom", "room:join", "join"],
        ) {
            c.notes
                .push(format!("source: join event {:?} ({})", h.event, h.at));
            c.joins = vec![SetupEvent {
                event: h.event.clone(),
                payload: match &h.payload {
                    Payload::Fields(f) => object_of(f, false),
                    _ => json!("{{room_id}}"),
                },
                ack: h.ack,
            }];
            c.joins_known = true;
        }
        let mut sends: Vec<&Handler> = facts.handlers.iter().filter(|h| is_send(h)).collect();
        sends.sort_by_key(|h| !words(&h.event, &["send", "message", "msg", "chat"]));
        let sends: Vec<SendCandidate> = sends
            .iter()
            .filter_map(|h| match &h.payload {
                Payload::Fields(f) => Some(SendCandidate {
                    event: h.event.clone(),
                    payload: object_of(f, false),
                }),
                _ => None,
            })
            .collect();
        for s in &sends {
            c.notes
                .push(format!("source: send event candidate {:?}", s.event));
        }
        prepend_sends(&mut c.sends, sends);
        if !facts.handshake_auth.is_empty() {
            c.auth = object_of(&facts.handshake_auth, false);
        }
        c.verify = message_table(&facts.tables);
        c
    }
}

fn prepend(list: &mut Vec<RestCandidate>, first: Vec<RestCandidate>) {
    let rest = std::mem::take(list);
    *list = first;
    for r in rest {
        if !list.contains(&r) {
            list.push(r);
        }
    }
}

fn prepend_sends(list: &mut Vec<SendCandidate>, first: Vec<SendCandidate>) {
    let rest = std::mem::take(list);
    *list = first;
    for r in rest {
        if !list.iter().any(|s| s.event == r.event) {
            list.push(r);
        }
    }
}

fn user_routes(posts: &[&Route]) -> Vec<RestCandidate> {
    posts
        .iter()
        .filter(|r| {
            !r.path.contains(':')
                && words(
                    &r.path,
                    &[
                        "user", "register", "signup", "sign-up", "join", "login", "auth", "session",
                    ],
                )
                && r.body_fields
                    .iter()
                    .any(|f| has(std::slice::from_ref(f), "name"))
        })
        .map(|r| RestCandidate {
            path: r.path.clone(),
            body: object_of(&r.body_fields, false),
        })
        .collect()
}

fn room_routes(posts: &[&Route]) -> Vec<RestCandidate> {
    posts
        .iter()
        .filter(|r| !r.path.contains(':') && words(&r.path, &["room", "channel"]))
        .map(|r| RestCandidate {
            path: r.path.clone(),
            body: object_of(&r.body_fields, true),
        })
        .collect()
}

fn join_routes(posts: &[&Route]) -> Vec<RestCandidate> {
    posts
        .iter()
        .filter(|r| {
            r.path.contains(':')
                && words(&r.path, &["join", "member"])
                && words(&r.path, &["room", "channel"])
        })
        .map(|r| RestCandidate {
            path: express_path(&r.path),
            body: object_of(&r.body_fields, false),
        })
        .collect()
}

fn send_routes(posts: &[&Route]) -> Vec<RestCandidate> {
    posts
        .iter()
        .filter(|r| {
            words(&r.path, &["message"])
                && !words(
                    &r.path,
                    &["read", "reaction", "schedule", "repl", "thread", "edit"],
                )
                && has(&r.body_fields, "content")
        })
        .map(|r| {
            let mut body = object_of(&r.body_fields, false);
            if !r.path.contains(':')
                && let Value::Object(map) = &mut body
                && !map.values().any(|v| v == "{{room_id}}")
            {
                map.insert("roomId".into(), json!("{{room_id}}"));
            }
            RestCandidate {
                path: express_path(&r.path),
                body,
            }
        })
        .collect()
}

/// The handler that fits `fits`, preferring event names in `names` (in that order).
fn best<'a>(
    handlers: &'a [Handler],
    fits: fn(&Handler) -> bool,
    names: &[&str],
) -> Option<&'a Handler> {
    let rank = |h: &Handler| {
        let e = h.event.to_ascii_lowercase();
        names
            .iter()
            .position(|n| e == *n)
            .or_else(|| names.iter().position(|n| e.contains(n)))
            .unwrap_or(names.len())
    };
    handlers.iter().filter(|h| fits(h)).min_by_key(|h| rank(h))
}

fn is_identity(h: &Handler) -> bool {
    if h.joins_room
        || is_send(h)
        || words(
            &h.event,
            &[
                "typing", "status", "draft", "read", "leave", "presence", "activity",
            ],
        )
    {
        return false;
    }
    let user_payload = match &h.payload {
        Payload::Fields(f) => has(f, "user_id") || has(f, "name") || has(f, "token"),
        Payload::Scalar(name) => words(name, &["user", "name", "token", "id"]),
        Payload::Unknown => false,
    };
    user_payload && (h.sets_identity || words(&h.event, &["register", "identify", "auth", "login"]))
}

fn is_join(h: &Handler) -> bool {
    if !h.joins_room || words(&h.event, &["thread", "leave", "typing"]) {
        return false;
    }
    match &h.payload {
        Payload::Fields(f) => has(f, "room_id"),
        Payload::Scalar(name) => words(name, &["room", "channel", "id"]),
        Payload::Unknown => false,
    }
}

fn is_send(h: &Handler) -> bool {
    let Payload::Fields(f) = &h.payload else {
        return false;
    };
    has(f, "content")
        && (has(f, "room_id") || !h.room_emits.is_empty())
        && !words(
            &h.event,
            &[
                "draft", "typing", "edit", "schedule", "delete", "react", "update", "status",
            ],
        )
}

fn identity_payload(payload: &Payload) -> Value {
    match payload {
        Payload::Fields(f) => object_of(f, false),
        Payload::Scalar(name) if words(name, &["name"]) => json!("{{name}}"),
        Payload::Scalar(name) if words(name, &["token"]) => json!("{{token}}"),
        _ => json!("{{user_id}}"),
    }
}

/// The message table: named like messages (not edits, reactions, receipts, drafts or
/// scheduled ones), with a text column and, when it has one, a room column.
fn message_table(tables: &[Table]) -> Option<VerifySpec> {
    let candidates = tables.iter().filter(|t| {
        words(&t.name, &["message", "chat", "post"])
            && !words(
                &t.name,
                &[
                    "edit", "reaction", "receipt", "read", "draft", "schedul", "histor", "attach",
                    "mention", "pin", "bookmark",
                ],
            )
    });
    let mut best: Option<(usize, VerifySpec)> = None;
    for t in candidates {
        let Some(text) = t
            .columns
            .iter()
            .find(|c| has(std::slice::from_ref(*c), "content"))
        else {
            continue;
        };
        let room = t
            .columns
            .iter()
            .find(|c| has(std::slice::from_ref(*c), "room_id"));
        let exact = matches!(
            t.name.to_ascii_lowercase().as_str(),
            "messages" | "message" | "chat_messages"
        );
        let score = usize::from(exact) * 2 + usize::from(room.is_some());
        if best.as_ref().is_none_or(|(s, _)| score > *s) {
            best = Some((
                score,
                VerifySpec {
                    table: t.name.clone(),
                    text_column: text.clone(),
                    room_column: room.cloned(),
                },
            ));
        }
    }
    best.map(|(_, spec)| spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_names_mean_variables() {
        assert_eq!(meaning("roomId", false), Some(json!("{{room_id}}")));
        assert_eq!(meaning("room_name", false), Some(json!("{{room}}")));
        assert_eq!(meaning("name", true), Some(json!("{{room}}")));
        assert_eq!(meaning("userName", false), Some(json!("{{name}}")));
        assert_eq!(meaning("text", false), Some(json!("{{content}}")));
        assert_eq!(meaning("expiresInMs", false), None);
        assert_eq!(
            express_path("/api/rooms/:roomId/join"),
            "/api/rooms/{{room_id}}/join"
        );
        assert_eq!(
            express_path("/api/users/:userId/x"),
            "/api/users/{{user_id}}/x"
        );
    }
}
