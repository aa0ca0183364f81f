//! SpacetimeDB chat-app discovery (moved here from stdb-client, which is only the client).
//! Finds a generated chat app's reducers and tables in its schema, whatever the agent named them
//! (`set_name` or `register`, `room_id` or `channel_id`, `text` or `content`), and builds their
//! arguments. Every choice is explained by [`ChatShape::describe`]; a role that cannot be found
//! fails with the candidates tried and the reducers or tables that exist.
//!
//! Reducers are found by exact name (case aside), among the candidate lists below, tried in order.
//! A role's parameter is the one with a known name, else the one whose name contains the role
//! (`name`, `room`, `text`), else the only parameter of the right type left; any other parameter
//! must be an `Option`. Tables are found by a known name, else by a name containing `message` /
//! `room`. Their columns follow the reducers' parameter names first, then known names, then a
//! name containing the role (room column) or the only / first column of the right type.

use anyhow::{Context, Result, anyhow, bail};
use serde::{Deserialize, Serialize};
use serde_json::{Value as Json, json};
use stdb_client::AlgebraicType;

use stdb_client::{Column, ModuleSchema, ReducerArgs, ReducerSchema, TableSchema, type_name};

// Each list starts with the names bench-stress's own discovery accepted, in its order, so a
// module offering several candidates resolves as it did there.
const SET_NAME: &[&str] = &[
    "set_name",
    "register",
    "set_username",
    "create_user",
    "register_user",
    "set_display_name",
    "set_nickname",
    "login",
];
const CREATE_ROOM: &[&str] = &[
    "create_room",
    "add_room",
    "new_room",
    "create_channel",
    "create_chat_room",
];
const JOIN_ROOM: &[&str] = &["join_room", "enter_room", "join_channel", "join"];
const SEND_MESSAGE: &[&str] = &[
    "send_message",
    "post_message",
    "send_msg",
    "send",
    "send_chat_message",
    "add_message",
    "create_message",
    "message",
    "post",
];
const MESSAGE_TABLES: &[&str] = &["message", "messages", "chat_message", "chat_messages"];
const ROOM_TABLES: &[&str] = &[
    "room",
    "rooms",
    "channel",
    "channels",
    "chat_room",
    "chat_rooms",
];
const NAME_PARAMS: &[&str] = &["name", "username", "display_name", "nickname", "user_name"];
const ROOM_NAME_PARAMS: &[&str] = &["name", "room_name", "title", "channel_name"];
const ROOM_PARAMS: &[&str] = &[
    "room_id",
    "channel_id",
    "room",
    "channel",
    "roomid",
    "chat_room_id",
];
const TEXT_PARAMS: &[&str] = &["text", "content", "body", "message", "msg", "message_text"];
const ROOM_ID_COLUMNS: &[&str] = &["id", "room_id", "channel_id"];
/// What a table's name contains when none of the known names exists.
const MESSAGE_TABLE_PART: &str = "message";
const ROOM_TABLE_PART: &str = "room";

/// A role: its name, the parameter/column names that signal it, and the types that fit it.
type Role = (
    &'static str,
    &'static [&'static str],
    fn(&AlgebraicType) -> bool,
);

/// Optional names that override discovery. This is also the SpacetimeDB adapter file of
/// `bench-stress` (TOML, every key optional, unknown keys refused).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChatHints {
    /// Reducer that names the caller (`set_name`, `register`, …).
    pub set_name: Option<String>,
    pub create_room: Option<String>,
    pub join_room: Option<String>,
    pub send_message: Option<String>,
    pub message_table: Option<String>,
    /// The message table's column holding the room key.
    pub room_column: Option<String>,
    pub room_table: Option<String>,
}

/// One reducer with the parameters that play each role; other parameters must be `Option`s
/// (sent as `None`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReducerCall {
    pub reducer: String,
    /// `(role, parameter name)`, e.g. `("room", "channel_id")`.
    pub params: Vec<(&'static str, String)>,
}

/// A table and the columns playing each role.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TableRole {
    pub table: String,
    /// `(role, column name)`, e.g. `("room", "room_id")`, `("text", "content")`; a role whose
    /// column was not found is absent.
    pub columns: Vec<(&'static str, String)>,
}

impl TableRole {
    /// The column that plays `role`.
    pub fn column(&self, role: &str) -> Option<&str> {
        self.columns
            .iter()
            .find(|(r, _)| *r == role)
            .map(|(_, c)| c.as_str())
    }
}

/// Where a chat app keeps users, rooms and messages.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChatShape {
    /// Absent when the app has no way to set a name (users are anonymous identities).
    pub set_name: Option<ReducerCall>,
    pub create_room: ReducerCall,
    /// Absent when creating a room is enough to post in it.
    pub join_room: Option<ReducerCall>,
    pub send_message: ReducerCall,
    /// The table holding messages (`room`, `text` columns), for subscriptions and verification;
    /// absent when no table was found.
    pub message_table: Option<TableRole>,
    /// The table holding rooms (`id`, `name` columns), to find a created room's id; absent when
    /// no table was found.
    pub room_table: Option<TableRole>,
}

fn lower(s: &str) -> String {
    s.to_ascii_lowercase()
}

fn pick_reducer<'a>(
    schema: &'a ModuleSchema,
    role: &str,
    hint: Option<&str>,
    candidates: &[&str],
) -> Result<Option<&'a ReducerSchema>> {
    if let Some(name) = hint {
        return schema
            .reducer(name)
            .map(Some)
            .with_context(|| format!("the {role} reducer named in the hints"));
    }
    Ok(candidates.iter().find_map(|c| {
        schema
            .reducers
            .iter()
            .find(|r| r.lifecycle.is_none() && lower(&r.name) == *c)
    }))
}

fn is_text(ty: &AlgebraicType) -> bool {
    matches!(ty, AlgebraicType::String)
}

fn is_room_key(ty: &AlgebraicType) -> bool {
    ty.is_integer() || matches!(ty, AlgebraicType::String)
}

/// The parameter for `role`: by a known name first, then the first whose name contains the
/// role's name, then the only parameter of the right type left.
fn pick_param<'a>(
    params: &'a [Column],
    taken: &[String],
    role: &str,
    names: &[&str],
    fits: fn(&AlgebraicType) -> bool,
) -> Option<&'a Column> {
    let free = || {
        params
            .iter()
            .filter(|p| !taken.contains(&p.name) && fits(&p.ty))
    };
    names
        .iter()
        .find_map(|n| free().find(|p| lower(&p.name) == *n))
        .or_else(|| free().find(|p| lower(&p.name).contains(role)))
        .or_else(|| {
            let mut it = free().filter(|p| !p.ty.is_option());
            match (it.next(), it.next()) {
                (Some(only), None) => Some(only),
                _ => None,
            }
        })
}

fn build_call(reducer: &ReducerSchema, roles: &[Role]) -> Result<ReducerCall> {
    let mut params: Vec<(&'static str, String)> = Vec::new();
    for (role, names, fits) in roles {
        let taken: Vec<String> = params.iter().map(|(_, p)| p.clone()).collect();
        let p = pick_param(&reducer.params, &taken, role, names, *fits).ok_or_else(|| {
            anyhow!(
                "reducer {} has no parameter for the {role} (tried names {}, a name containing `{role}`, or a single parameter of the right type)",
                reducer.describe(),
                names.join("/")
            )
        })?;
        params.push((role, p.name.clone()));
    }
    for p in &reducer.params {
        if !params.iter().any(|(_, n)| *n == p.name) && !p.ty.is_option() {
            bail!(
                "reducer {} has a parameter `{}` ({}) that no role explains: name it in the adapter file",
                reducer.describe(),
                p.name,
                type_name(&p.ty)
            );
        }
    }
    Ok(ReducerCall {
        reducer: reducer.name.clone(),
        params,
    })
}

fn pick_table<'a>(
    schema: &'a ModuleSchema,
    hint: Option<&str>,
    candidates: &[&str],
    part: &str,
) -> Result<Option<&'a TableSchema>> {
    if let Some(name) = hint {
        return schema.table(name).map(|t| Some(&**t));
    }
    Ok(candidates
        .iter()
        .find_map(|c| schema.tables.iter().find(|t| lower(&t.name) == *c))
        .or_else(|| schema.tables.iter().find(|t| lower(&t.name).contains(part)))
        .map(|t| &**t))
}

/// What a column rule falls back to when no name matched.
#[derive(Clone, Copy, PartialEq)]
enum LastResort {
    Nothing,
    /// The only column of a fitting type left.
    Only,
    /// The first column of a fitting type left.
    First,
}

/// How a table column for a role is found, tried in order until one rule gives a column of a
/// fitting type that no earlier role took.
struct ColumnRule<'a> {
    role: &'static str,
    /// An exact column name that must exist (from the hints): no other rule is tried.
    given: Option<&'a str>,
    /// The name of the reducer parameter carrying the same value, tried first.
    param: Option<&'a str>,
    names: &'static [&'static str],
    /// A part of the name, tried after the known names.
    part: Option<&'static str>,
    last_resort: LastResort,
    fits: fn(&AlgebraicType) -> bool,
}

fn table_role(table: &TableSchema, rules: &[ColumnRule<'_>]) -> Result<TableRole> {
    let mut columns: Vec<(&'static str, String)> = Vec::new();
    for rule in rules {
        let free = || {
            table.columns.iter().filter(|c| {
                (rule.fits)(&c.ty) && !columns.iter().any(|(_, taken)| *taken == c.name)
            })
        };
        let found = if let Some(given) = rule.given {
            let c = table
                .columns
                .iter()
                .find(|c| c.name == given)
                .ok_or_else(|| {
                    anyhow!(
                        "table {} has no column `{given}` (named as its {} column in the hints)",
                        table.describe(),
                        rule.role
                    )
                })?;
            Some(c)
        } else {
            rule.param
                .and_then(|p| free().find(|c| c.name == p))
                .or_else(|| {
                    rule.names
                        .iter()
                        .find_map(|n| free().find(|c| lower(&c.name) == *n))
                })
                .or_else(|| {
                    rule.part
                        .and_then(|part| free().find(|c| lower(&c.name).contains(part)))
                })
                .or_else(|| {
                    let mut it = free();
                    match (rule.last_resort, it.next(), it.next()) {
                        (LastResort::First, Some(c), _) => Some(c),
                        (LastResort::Only, Some(only), None) => Some(only),
                        _ => None,
                    }
                })
        };
        if let Some(c) = found {
            columns.push((rule.role, c.name.clone()));
        }
    }
    Ok(TableRole {
        table: table.name.clone(),
        columns,
    })
}

fn param_of<'a>(call: &'a ReducerCall, role: &str) -> Option<&'a str> {
    call.params
        .iter()
        .find(|(r, _)| *r == role)
        .map(|(_, p)| p.as_str())
}

impl ChatShape {
    /// Finds the chat roles in `schema`, honouring `hints`.
    pub fn discover(schema: &ModuleSchema, hints: &ChatHints) -> Result<ChatShape> {
        let missing = |role: &str, candidates: &[&str]| {
            anyhow!(
                "no {role} reducer found (tried {}); the module's callable reducers are: {}. \
                 Name it in the adapter file",
                candidates.join(", "),
                schema.describe_reducers()
            )
        };
        let set_name = pick_reducer(schema, "set-name", hints.set_name.as_deref(), SET_NAME)?
            .map(|r| build_call(r, &[("name", NAME_PARAMS, is_text)]))
            .transpose()?;
        let create_room = pick_reducer(
            schema,
            "create-room",
            hints.create_room.as_deref(),
            CREATE_ROOM,
        )?
        .ok_or_else(|| missing("create-room", CREATE_ROOM))?;
        let create_room = build_call(create_room, &[("name", ROOM_NAME_PARAMS, is_text)])?;
        let join_room = pick_reducer(schema, "join-room", hints.join_room.as_deref(), JOIN_ROOM)?
            .map(|r| build_call(r, &[("room", ROOM_PARAMS, is_room_key)]))
            .transpose()?;
        let send_message = pick_reducer(
            schema,
            "send-message",
            hints.send_message.as_deref(),
            SEND_MESSAGE,
        )?
        .ok_or_else(|| missing("send-message", SEND_MESSAGE))?;
        // Text first: a room parameter may be a String too, and `text`-like names are the surer signal.
        let send_message = build_call(
            send_message,
            &[
                ("text", TEXT_PARAMS, is_text),
                ("room", ROOM_PARAMS, is_room_key),
            ],
        )?;
        let (message_table, room_table) = tables(schema, hints, &send_message, &create_room)?;
        if hints.room_column.is_some() && message_table.is_none() {
            bail!(
                "the hints name the message table's room column, but no message table was found: \
                 name the table too"
            );
        }
        Ok(ChatShape {
            set_name,
            create_room,
            join_room,
            send_message,
            message_table,
            room_table,
        })
    }

    /// One line saying what was found, e.g.
    /// `set_name(name) · create_room(name) · join_room(room=room_id) · send_message(text, room=room_id) · messages: message(room_id, text) · rooms: room(id, name)`.
    pub fn describe(&self) -> String {
        fn call(c: &ReducerCall) -> String {
            let params: Vec<String> = c
                .params
                .iter()
                .map(|(role, p)| {
                    if role == p {
                        p.clone()
                    } else {
                        format!("{role}={p}")
                    }
                })
                .collect();
            format!("{}({})", c.reducer, params.join(", "))
        }
        fn table(t: &Option<TableRole>, roles: &[&str]) -> String {
            match t {
                Some(t) => {
                    let columns: Vec<String> = roles
                        .iter()
                        .map(|role| match t.column(role) {
                            Some(c) => c.to_string(),
                            None => format!("no {role} column"),
                        })
                        .collect();
                    format!("{}({})", t.table, columns.join(", "))
                }
                None => "(not found)".to_string(),
            }
        }
        [
            self.set_name
                .as_ref()
                .map_or("no set-name reducer".to_string(), call),
            call(&self.create_room),
            self.join_room
                .as_ref()
                .map_or("no join-room reducer".to_string(), call),
            call(&self.send_message),
            format!(
                "messages: {}",
                table(&self.message_table, &["room", "text"])
            ),
            format!("rooms: {}", table(&self.room_table, &["id", "name"])),
        ]
        .join(" · ")
    }

    fn args(
        schema: &ModuleSchema,
        call: &ReducerCall,
        values: &[(&str, Json)],
    ) -> Result<ReducerArgs> {
        let named: Vec<(&str, Json)> = call
            .params
            .iter()
            .map(|(role, param)| {
                let v = values
                    .iter()
                    .find(|(r, _)| r == role)
                    .map(|(_, v)| v.clone())
                    .unwrap_or(Json::Null);
                (param.as_str(), v)
            })
            .collect();
        schema.reducer_args(&call.reducer, &named)
    }

    /// Arguments of the set-name reducer (`None` when the app has none).
    pub fn set_name_args(&self, schema: &ModuleSchema, name: &str) -> Option<Result<ReducerArgs>> {
        self.set_name
            .as_ref()
            .map(|c| Self::args(schema, c, &[("name", json!(name))]))
    }

    pub fn create_room_args(&self, schema: &ModuleSchema, name: &str) -> Result<ReducerArgs> {
        Self::args(schema, &self.create_room, &[("name", json!(name))])
    }

    /// Arguments of the join-room reducer (`None` when the app has none). `room` is the room's key
    /// as JSON (a number, or a string for apps keyed by name).
    pub fn join_room_args(
        &self,
        schema: &ModuleSchema,
        room: &Json,
    ) -> Option<Result<ReducerArgs>> {
        self.join_room
            .as_ref()
            .map(|c| Self::args(schema, c, &[("room", room.clone())]))
    }

    pub fn send_message_args(
        &self,
        schema: &ModuleSchema,
        room: &Json,
        text: &str,
    ) -> Result<ReducerArgs> {
        Self::args(
            schema,
            &self.send_message,
            &[("room", room.clone()), ("text", json!(text))],
        )
    }

    /// `SELECT * FROM <messages> WHERE <room column> = <room>`, for a listener's subscription.
    pub fn room_messages_query(&self, room: &Json) -> Result<String> {
        let t = self
            .message_table
            .as_ref()
            .context("no message table was found: name it in the adapter file")?;
        let col = t.column("room").with_context(|| {
            format!(
                "cannot tell which column of the message table `{}` holds the room: name it \
                 (room_column) in the adapter file",
                t.table
            )
        })?;
        Ok(format!(
            "SELECT * FROM {} WHERE {col} = {}",
            t.table,
            sql_literal(room)?
        ))
    }

    /// The `WHERE` filter selecting a room's messages (for [`stdb_client::count_rows`]).
    pub fn room_filter(&self, room: &Json) -> Result<(String, String)> {
        let t = self
            .message_table
            .as_ref()
            .context("no message table was found: name it in the adapter file")?;
        let col = t.column("room").with_context(|| {
            format!(
                "cannot tell which column of the message table `{}` holds the room: name it \
                 (room_column) in the adapter file",
                t.table
            )
        })?;
        Ok((t.table.clone(), format!("{col} = {}", sql_literal(room)?)))
    }

    /// `SELECT <id> FROM <rooms> WHERE <name> = '<name>'`, to learn a created room's key.
    pub fn room_id_query(&self, room_name: &str) -> Result<String> {
        let t = self
            .room_table
            .as_ref()
            .context("no room table was found: name it in the adapter file")?;
        let id = t.column("id").with_context(|| {
            format!(
                "the room table `{}` has no id column (`id`, or a name ending in `_id`): name the \
                 right table (room_table) in the adapter file",
                t.table
            )
        })?;
        let name = t.column("name").with_context(|| {
            format!(
                "cannot tell which column of the room table `{}` holds the room name (the \
                 create-room parameter is `{}`): name the right table (room_table) in the adapter \
                 file, or give the column the parameter's name",
                t.table,
                param_of(&self.create_room, "name").unwrap_or("?")
            )
        })?;
        Ok(format!(
            "SELECT {id} FROM {} WHERE {name} = {}",
            t.table,
            sql_literal(&json!(room_name))?
        ))
    }
}

/// A JSON scalar as a SpacetimeDB SQL literal.
pub fn sql_literal(v: &Json) -> Result<String> {
    Ok(match v {
        Json::Number(n) => n.to_string(),
        Json::String(s) => format!("'{}'", s.replace('\'', "''")),
        Json::Bool(b) => b.to_string(),
        other => bail!("{other} cannot be written as a SQL literal"),
    })
}

/// The message table (room and text columns) and the room table (id and name columns).
fn tables(
    schema: &ModuleSchema,
    hints: &ChatHints,
    send_message: &ReducerCall,
    create_room: &ReducerCall,
) -> Result<(Option<TableRole>, Option<TableRole>)> {
    let message_table = pick_table(
        schema,
        hints.message_table.as_deref(),
        MESSAGE_TABLES,
        MESSAGE_TABLE_PART,
    )?
    .map(|t| {
        table_role(
            t,
            &[
                ColumnRule {
                    role: "room",
                    given: hints.room_column.as_deref(),
                    param: param_of(send_message, "room"),
                    names: ROOM_PARAMS,
                    part: Some("room"),
                    last_resort: LastResort::Nothing,
                    fits: is_room_key,
                },
                // Any text column will do for reading messages back: take the first.
                ColumnRule {
                    role: "text",
                    given: None,
                    param: param_of(send_message, "text"),
                    names: TEXT_PARAMS,
                    part: None,
                    last_resort: LastResort::First,
                    fits: is_text,
                },
            ],
        )
    })
    .transpose()?;
    let room_table = pick_table(
        schema,
        hints.room_table.as_deref(),
        ROOM_TABLES,
        ROOM_TABLE_PART,
    )?
    .map(|t| {
        table_role(
            t,
            &[
                ColumnRule {
                    role: "id",
                    given: None,
                    param: None,
                    names: ROOM_ID_COLUMNS,
                    part: Some("_id"),
                    last_resort: LastResort::Nothing,
                    fits: is_room_key,
                },
                ColumnRule {
                    role: "name",
                    given: None,
                    param: param_of(create_room, "name"),
                    names: ROOM_NAME_PARAMS,
                    part: None,
                    last_resort: LastResort::Only,
                    fits: is_text,
                },
            ],
        )
    })
    .transpose()?;
    Ok((message_table, room_table))
}

#[cfg(test)]
mod tests {
    use super::*;
    use spacetimedb_lib::db::raw_def::v9::RawModuleDefV9Builder;
    use spacetimedb_lib::{AlgebraicValue, ProductType, ProductTypeElement};

    fn product(cols: &[(&'static str, AlgebraicType)]) -> ProductType {
        ProductType::from(
            cols.iter()
                .map(|(n, t)| ProductTypeElement::new_named(t.clone(), *n))
                .collect::<Box<[_]>>(),
        )
    }

    /// A differently named app: register/create_channel/join_channel/post_message, u32 channel keys.
    fn other_app() -> ModuleSchema {
        let mut b = RawModuleDefV9Builder::new();
        b.build_table_with_new_type(
            "channels",
            product(&[("id", AlgebraicType::U32), ("title", AlgebraicType::String)]),
            true,
        )
        .finish();
        b.build_table_with_new_type(
            "messages",
            product(&[
                ("id", AlgebraicType::U64),
                ("channel_id", AlgebraicType::U32),
                ("content", AlgebraicType::String),
            ]),
            true,
        )
        .finish();
        b.add_reducer(
            "register",
            product(&[
                ("username", AlgebraicType::String),
                ("avatar", AlgebraicType::option(AlgebraicType::String)),
            ]),
            None,
        );
        b.add_reducer(
            "create_channel",
            product(&[("title", AlgebraicType::String)]),
            None,
        );
        b.add_reducer(
            "join_channel",
            product(&[("channel_id", AlgebraicType::U32)]),
            None,
        );
        b.add_reducer(
            "post_message",
            product(&[
                ("content", AlgebraicType::String),
                ("channel_id", AlgebraicType::U32),
            ]),
            None,
        );
        ModuleSchema::from_raw(b.finish()).unwrap()
    }

    #[test]
    fn the_test_servers_chat_module_is_recognised() {
        let schema = ModuleSchema::from_raw(stdb_client::test_server::chat_module_def()).unwrap();
        let shape = ChatShape::discover(&schema, &ChatHints::default()).unwrap();
        assert_eq!(
            shape.describe(),
            "set_name(name) · create_room(name) · join_room(room=room_id) · send_message(text, room=room_id) \
             · messages: message(room_id, text) · rooms: room(id, name)"
        );
        assert_eq!(
            shape.room_messages_query(&json!(7)).unwrap(),
            "SELECT * FROM message WHERE room_id = 7"
        );
        assert_eq!(
            shape.room_id_query("it's").unwrap(),
            "SELECT id FROM room WHERE name = 'it''s'"
        );
    }

    #[test]
    fn other_names_and_argument_orders_are_found_and_encoded() {
        let schema = other_app();
        let shape = ChatShape::discover(&schema, &ChatHints::default()).unwrap();
        assert_eq!(
            shape.describe(),
            "register(name=username) · create_channel(name=title) · join_channel(room=channel_id) \
             · post_message(text=content, room=channel_id) · messages: messages(channel_id, content) \
             · rooms: channels(id, title)"
        );
        // Parameters are encoded in the reducer's order (content, channel_id), whatever the roles' order.
        let args = shape.send_message_args(&schema, &json!(5), "hi").unwrap();
        let decoded = schema
            .reducer("post_message")
            .unwrap()
            .decode_args(&args.0)
            .unwrap();
        assert_eq!(decoded.elements[0], AlgebraicValue::String("hi".into()));
        assert_eq!(decoded.elements[1], AlgebraicValue::U32(5));
        // The optional avatar is sent as None.
        let args = shape.set_name_args(&schema, "ann").unwrap().unwrap();
        let decoded = schema
            .reducer("register")
            .unwrap()
            .decode_args(&args.0)
            .unwrap();
        assert_eq!(decoded.elements[1], AlgebraicValue::OptionNone());
        let err = format!(
            "{:#}",
            shape
                .send_message_args(&schema, &json!(1u64 << 40), "x")
                .unwrap_err()
        );
        assert!(err.contains("expected a u32"), "{err}");
        assert_eq!(
            shape.room_filter(&json!(5)).unwrap(),
            ("messages".to_string(), "channel_id = 5".to_string())
        );
    }

    type Cols = &'static [(&'static str, AlgebraicType)];

    fn module(tables: &[(&'static str, Cols)], reducers: &[(&'static str, Cols)]) -> ModuleSchema {
        let mut b = RawModuleDefV9Builder::new();
        for (name, cols) in tables {
            b.build_table_with_new_type(*name, product(cols), true)
                .finish();
        }
        for (name, params) in reducers {
            b.add_reducer(*name, product(params), None);
        }
        ModuleSchema::from_raw(b.finish()).unwrap()
    }

    /// The names and rules merged in from bench-stress's former discovery: `create_user`,
    /// `add_room`, `enter_room`, `send_msg`; parameters whose names contain the role; tables
    /// and columns found by a part of their name, the room-name column by the create-room
    /// parameter, the text column as the first text column, and a given room column.
    #[test]
    fn the_names_bench_stress_accepted_are_found() {
        const ROOMS: Cols = &[
            ("chatroom_id", AlgebraicType::U64),
            ("label", AlgebraicType::String),
            ("topic", AlgebraicType::String),
        ];
        const MESSAGES: Cols = &[
            ("id", AlgebraicType::U64),
            ("in_room", AlgebraicType::U64),
            ("body_md", AlgebraicType::String),
            ("author", AlgebraicType::String),
        ];
        let schema = module(
            &[("chatrooms", ROOMS), ("room_messages", MESSAGES)],
            &[
                ("create_user", &[("nickname_text", AlgebraicType::String)]),
                ("add_room", &[("label", AlgebraicType::String)]),
                ("enter_room", &[("target_room", AlgebraicType::U64)]),
                (
                    "send_msg",
                    &[
                        ("target_room", AlgebraicType::U64),
                        ("msg_text", AlgebraicType::String),
                    ],
                ),
                // A later candidate: `send_msg` comes first, as it did in bench-stress.
                ("add_message", &[("text", AlgebraicType::String)]),
            ],
        );
        let shape = ChatShape::discover(&schema, &ChatHints::default()).unwrap();
        assert_eq!(
            shape.describe(),
            "create_user(name=nickname_text) · add_room(name=label) · enter_room(room=target_room) \
             · send_msg(text=msg_text, room=target_room) · messages: room_messages(in_room, body_md) \
             · rooms: chatrooms(chatroom_id, label)"
        );
        assert_eq!(
            shape.room_id_query("bench-1").unwrap(),
            "SELECT chatroom_id FROM chatrooms WHERE label = 'bench-1'"
        );
        // A module keyed by name: string ids are SQL strings, quotes doubled.
        assert_eq!(
            shape.room_filter(&json!("it's")).unwrap(),
            ("room_messages".to_string(), "in_room = 'it''s'".to_string())
        );
        assert!(shape.room_filter(&json!({"id": 1})).is_err());

        // The adapter's room column wins over discovery, and must exist.
        let hints = ChatHints {
            room_column: Some("id".into()),
            ..ChatHints::default()
        };
        let shape = ChatShape::discover(&schema, &hints).unwrap();
        assert_eq!(
            shape.room_filter(&json!(3)).unwrap().1,
            "id = 3".to_string()
        );
        let hints = ChatHints {
            room_column: Some("room".into()),
            ..ChatHints::default()
        };
        let err = format!("{:#}", ChatShape::discover(&schema, &hints).unwrap_err());
        assert!(err.contains("no column `room`"), "{err}");
    }

    #[test]
    fn unclear_room_columns_are_reported_with_what_to_name() {
        const ROOMS: Cols = &[
            ("id", AlgebraicType::U64),
            ("title", AlgebraicType::String),
            ("topic", AlgebraicType::String),
        ];
        const MESSAGES: Cols = &[("id", AlgebraicType::U64), ("text", AlgebraicType::String)];
        let schema = module(
            &[("room", ROOMS), ("message", MESSAGES)],
            &[
                ("create_room", &[("caption", AlgebraicType::String)]),
                (
                    "send_message",
                    &[
                        ("room_id", AlgebraicType::U64),
                        ("text", AlgebraicType::String),
                    ],
                ),
            ],
        );
        let shape = ChatShape::discover(&schema, &ChatHints::default()).unwrap();
        assert_eq!(
            shape.describe(),
            "no set-name reducer · create_room(name=caption) · no join-room reducer \
             · send_message(text, room=room_id) · messages: message(no room column, text) \
             · rooms: room(id, title)"
        );
        let err = format!("{:#}", shape.room_filter(&json!(1)).unwrap_err());
        assert!(err.contains("room_column"), "{err}");
        // Two text columns and neither named like the parameter: `title` is a known name.
        assert_eq!(
            shape.room_id_query("r").unwrap(),
            "SELECT id FROM room WHERE title = 'r'"
        );
    }

    #[test]
    fn missing_roles_and_unexplained_parameters_are_reported() {
        let fixture =
            ModuleSchema::from_json(include_str!("../tests/fixtures/chat-schema-v9.json")).unwrap();
        let err = ChatShape::discover(&fixture, &ChatHints::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("no create-room reducer") && err.contains("register(username: String)"),
            "{err}"
        );

        let hints = ChatHints {
            create_room: Some("register".into()),
            ..ChatHints::default()
        };
        let err = format!("{:#}", ChatShape::discover(&fixture, &hints).unwrap_err());
        // `post` takes more than a room and a text: discovery refuses to guess the rest.
        assert!(
            err.contains("parameter `at`") && err.contains("adapter file"),
            "{err}"
        );

        let hints = ChatHints {
            send_message: Some("shout".into()),
            ..ChatHints::default()
        };
        let err = format!(
            "{:#}",
            ChatShape::discover(&other_app(), &hints).unwrap_err()
        );
        assert!(err.contains("no reducer `shout`"), "{err}");
    }
}
