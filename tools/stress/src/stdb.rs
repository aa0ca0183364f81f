//! The client for SpacetimeDB apps, over the `stdb-client` crate (official protocol types):
//! one identity per connection, reducer calls by name, a subscription for listeners, and
//! verification through the `/v1/database/<db>/sql` endpoint.
//!
//! Generated modules differ in names (`set_name` or `register`, `text` or `content`). The
//! shape is read from the module schema; an adapter file (TOML, every key optional) can
//! name the reducers, the message table and its room column explicitly.

use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use stdb_client::{
    ConnectOptions, ModuleSchema, ReducerSchema, ReducerStatus, StdbClient, TableSchema,
};
use tokio::sync::mpsc;

use crate::backend::{Backend, Committed, Listener, Marker, Outcome, Writer};

/// Names of a SpacetimeDB chat module's parts; unset ones are found in the schema.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StdbAdapter {
    /// Reducer that names the caller (`set_name`, `register`); none when the module has none.
    pub set_name: Option<String>,
    pub create_room: Option<String>,
    pub join_room: Option<String>,
    pub send_message: Option<String>,
    /// Table holding the messages, and its room column.
    pub message_table: Option<String>,
    pub room_column: Option<String>,
    /// Table holding the rooms (to find the bench room's id by name).
    pub room_table: Option<String>,
}

impl StdbAdapter {
    pub fn load(path: &Path) -> Result<StdbAdapter> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read adapter file {}", path.display()))?;
        toml::from_str(&text).with_context(|| {
            format!(
                "{} is not a valid SpacetimeDB adapter (keys: set_name, create_room, join_room, send_message, message_table, room_column, room_table)",
                path.display()
            )
        })
    }
}

/// The resolved shape.
#[derive(Debug, Clone, Serialize)]
pub struct Shape {
    pub set_name: Option<(String, String)>,
    pub create_room: (String, String),
    pub join_room: Option<(String, String)>,
    /// Reducer, room parameter, text parameter.
    pub send_message: (String, String, String),
    pub message_table: String,
    pub room_column: String,
    pub room_table: String,
}

fn param(r: &ReducerSchema, want_text: bool, hint: &str) -> Result<String> {
    let is_text = |c: &stdb_client::Column| matches!(c.ty, stdb_client::AlgebraicType::String);
    r.params
        .iter()
        .find(|p| is_text(p) == want_text && p.name.to_ascii_lowercase().contains(hint))
        .or_else(|| r.params.iter().find(|p| is_text(p) == want_text))
        .map(|p| p.name.clone())
        .with_context(|| {
            format!(
                "reducer {} has no {} parameter",
                r.describe(),
                if want_text { "text" } else { "room id" }
            )
        })
}

fn pick<'a>(
    schema: &'a ModuleSchema,
    given: &Option<String>,
    candidates: &[&str],
) -> Result<Option<&'a ReducerSchema>> {
    match given {
        Some(name) => Ok(Some(schema.reducer(name)?)),
        None => Ok(schema.pick_reducer(candidates).ok()),
    }
}

fn table<'a>(
    schema: &'a ModuleSchema,
    given: &Option<String>,
    hint: &str,
) -> Result<&'a Arc<TableSchema>> {
    if let Some(name) = given {
        return schema.table(name);
    }
    schema
        .tables
        .iter()
        .find(|t| t.name == hint)
        .or_else(|| {
            schema
                .tables
                .iter()
                .find(|t| t.name.to_ascii_lowercase().contains(hint))
        })
        .with_context(|| format!("the module has no `{hint}` table: name it in the adapter"))
}

/// Resolves the shape from the schema and the adapter.
pub fn resolve(schema: &ModuleSchema, a: &StdbAdapter) -> Result<Shape> {
    let set_name = pick(
        schema,
        &a.set_name,
        &["set_name", "register", "set_username", "create_user"],
    )?
    .map(|r| Ok::<_, anyhow::Error>((r.name.clone(), param(r, true, "name")?)))
    .transpose()?;
    let create = pick(
        schema,
        &a.create_room,
        &["create_room", "add_room", "new_room"],
    )?
    .with_context(|| {
        format!(
            "no create_room reducer; the module has: {}",
            schema.describe_reducers()
        )
    })?;
    let join = pick(schema, &a.join_room, &["join_room", "enter_room"])?
        .map(|r| Ok::<_, anyhow::Error>((r.name.clone(), param(r, false, "room")?)))
        .transpose()?;
    let send = pick(
        schema,
        &a.send_message,
        &["send_message", "post_message", "send_msg", "send"],
    )?
    .with_context(|| {
        format!(
            "no send_message reducer; the module has: {}",
            schema.describe_reducers()
        )
    })?;
    let messages = table(schema, &a.message_table, "message")?;
    let room_column = match &a.room_column {
        Some(c) => c.clone(),
        None => messages
            .columns
            .iter()
            .find(|c| c.name.to_ascii_lowercase().contains("room"))
            .map(|c| c.name.clone())
            .with_context(|| {
                format!(
                    "no room column in {}: name it in the adapter",
                    messages.describe()
                )
            })?,
    };
    let rooms = table(schema, &a.room_table, "room")?;
    Ok(Shape {
        set_name,
        create_room: (create.name.clone(), param(create, true, "name")?),
        join_room: join,
        send_message: (
            send.name.clone(),
            param(send, false, "room")?,
            param(send, true, "text")?,
        ),
        message_table: messages.name.clone(),
        room_column,
        room_table: rooms.name.clone(),
    })
}

pub struct StdbBackend {
    url: String,
    database: String,
    schema: Arc<ModuleSchema>,
    shape: Shape,
    room_id: Value,
    /// `<room column> = <room id as a SQL literal>` (string ids in single quotes).
    room_filter: String,
    room: String,
    run: String,
}

/// Options of [`prepare`].
pub struct StdbSetup<'a> {
    pub url: &'a str,
    pub database: &'a str,
    pub adapter: StdbAdapter,
    pub marker: &'a Marker,
}

impl StdbBackend {
    pub fn shape(&self) -> &Shape {
        &self.shape
    }

    pub fn room(&self) -> (&str, &Value) {
        (&self.room, &self.room_id)
    }

    async fn connect(&self, name: &str) -> Result<StdbClient> {
        let opts = ConnectOptions {
            schema: Some(self.schema.clone()),
            ..ConnectOptions::default()
        };
        let client = StdbClient::connect_with(&self.url, &self.database, opts).await?;
        if let Some((reducer, param)) = &self.shape.set_name {
            let args = self
                .schema
                .reducer_args(reducer, &[(param.as_str(), json!(name))])?;
            client
                .call_reducer(reducer, &args)
                .await?
                .into_committed()?;
        }
        if let Some((reducer, param)) = &self.shape.join_room {
            let args = self
                .schema
                .reducer_args(reducer, &[(param.as_str(), self.room_id.clone())])?;
            client
                .call_reducer(reducer, &args)
                .await?
                .into_committed()?;
        }
        Ok(client)
    }

    fn room_query(&self) -> String {
        format!(
            "SELECT * FROM {} WHERE {}",
            self.shape.message_table, self.room_filter
        )
    }
}

/// The room table's column holding the name given to the create-room reducer: the column
/// named like the reducer's parameter, else the table's only text column.
fn room_name_column(table: &TableSchema, param: &str) -> Result<String> {
    if table.columns.iter().any(|c| c.name == param) {
        return Ok(param.to_string());
    }
    let mut text = table
        .columns
        .iter()
        .filter(|c| matches!(c.ty, stdb_client::AlgebraicType::String));
    match (text.next(), text.next()) {
        (Some(only), None) => Ok(only.name.clone()),
        _ => bail!(
            "cannot tell which column of {} holds the room name (the create-room parameter is \
             `{param}`): name the table in the adapter's room_table, or give its columns the \
             parameter's name",
            table.describe()
        ),
    }
}

/// The SQL condition selecting the bench room's messages. The id is written as a SQL literal:
/// a module keyed by name has string ids, which JSON would put in double quotes (an
/// identifier in SQL).
fn room_filter(room_column: &str, room_id: &Value) -> Result<String> {
    let literal = stdb_client::chat::sql_literal(room_id)
        .with_context(|| format!("the bench room's id {room_id} cannot be used in SQL"))?;
    Ok(format!("{room_column} = {literal}"))
}

/// Reads the schema, creates the bench room and finds its id.
pub async fn prepare(setup: StdbSetup<'_>) -> Result<(StdbBackend, Vec<String>)> {
    let StdbSetup {
        url,
        database,
        adapter,
        marker,
    } = setup;
    crate::http::BaseUrl::parse(url)?;
    let schema = Arc::new(stdb_client::fetch_schema(url, database).await?);
    let shape = resolve(&schema, &adapter)?;
    let mut notes = vec![format!(
        "module shape: name with {}, room {}({}), join {}, send {}({}, {}), messages in {}.{}",
        shape
            .set_name
            .as_ref()
            .map_or("(none)".to_string(), |(r, p)| format!("{r}({p})")),
        shape.create_room.0,
        shape.create_room.1,
        shape
            .join_room
            .as_ref()
            .map_or("(none)".to_string(), |(r, p)| format!("{r}({p})")),
        shape.send_message.0,
        shape.send_message.1,
        shape.send_message.2,
        shape.message_table,
        shape.room_column,
    )];
    let room = format!("bench-{}", marker.run());
    let opts = ConnectOptions {
        schema: Some(schema.clone()),
        ..ConnectOptions::default()
    };
    let creator = StdbClient::connect_with(url, database, opts).await?;
    if let Some((reducer, param)) = &shape.set_name {
        let args = schema.reducer_args(
            reducer,
            &[(param.as_str(), json!(format!("bench{}c", marker.run())))],
        )?;
        creator
            .call_reducer(reducer, &args)
            .await?
            .into_committed()?;
    }
    let (reducer, param) = &shape.create_room;
    let args = schema.reducer_args(reducer, &[(param.as_str(), json!(room))])?;
    creator
        .call_reducer(reducer, &args)
        .await?
        .into_committed()
        .context("creating the bench room")?;
    let name_column = room_name_column(schema.table(&shape.room_table)?, &shape.create_room.1)?;
    let query = format!(
        "SELECT * FROM {} WHERE {name_column} = '{room}'",
        shape.room_table
    );
    let result = stdb_client::sql(url, database, None, &query).await?;
    let stmt = result
        .statements
        .first()
        .context("no result for the room query")?;
    let id_col = stmt
        .columns
        .iter()
        .position(|c| c == "id" || c.ends_with("_id"))
        .with_context(|| format!("the room table has no id column: {:?}", stmt.columns))?;
    let room_id = match stmt.rows.as_slice() {
        [row] => row.get(id_col).cloned().context("short room row")?,
        rows => bail!("expected one room named {room}, found {}", rows.len()),
    };
    notes.push(format!("created room {room:?} (id {room_id})"));
    let room_filter = room_filter(&shape.room_column, &room_id)?;
    creator.close();
    Ok((
        StdbBackend {
            url: url.to_string(),
            database: database.to_string(),
            schema,
            shape,
            room_id,
            room_filter,
            room,
            run: marker.run().to_string(),
        },
        notes,
    ))
}

type Pending = Pin<Box<dyn Future<Output = Outcome> + Send>>;

pub struct StdbWriter {
    client: StdbClient,
    schema: Arc<ModuleSchema>,
    reducer: String,
    room_param: String,
    text_param: String,
    room_id: Value,
    running: FuturesUnordered<Pending>,
}

impl Writer for StdbWriter {
    fn send(&mut self, tag: u64, content: &str) -> Result<()> {
        let args = self.schema.reducer_args(
            &self.reducer,
            &[
                (self.room_param.as_str(), self.room_id.clone()),
                (self.text_param.as_str(), json!(content)),
            ],
        )?;
        let pending = self.client.send_reducer(&self.reducer, &args)?;
        self.running.push(Box::pin(async move {
            match pending.await {
                Ok(o) => match o.status {
                    ReducerStatus::Committed => Outcome::Acked(tag),
                    ReducerStatus::Failed(why) => Outcome::Failed(tag, Outcome::refusal_kind(&why)),
                    ReducerStatus::InternalError(_) => {
                        Outcome::Failed(tag, "internal_error".into())
                    }
                },
                Err(_) => Outcome::Failed(tag, "disconnected".into()),
            }
        }));
        Ok(())
    }

    async fn next_outcome(&mut self) -> Result<Outcome> {
        match self.running.next().await {
            Some(o) => Ok(o),
            None => std::future::pending().await,
        }
    }
}

pub struct StdbListener {
    _client: StdbClient,
    events: mpsc::UnboundedReceiver<Arc<stdb_client::RowEvent>>,
    table: String,
    text_column: Option<usize>,
}

impl Listener for StdbListener {
    async fn next_text(&mut self) -> Result<(String, std::time::Instant)> {
        loop {
            match self.events.recv().await {
                Some(event) => {
                    if &*event.table != self.table.as_str() || event.inserts.is_empty() {
                        continue;
                    }
                    let mut out = String::new();
                    for row in &event.inserts {
                        match self.text_column.and_then(|i| row.elements.get(i)) {
                            Some(stdb_client::AlgebraicValue::String(s)) => out.push_str(s),
                            _ => out.push_str(&format!("{row:?}")),
                        }
                        out.push('\n');
                    }
                    return Ok((out, event.received_at));
                }
                None => bail!("the SpacetimeDB connection closed"),
            }
        }
    }
}

impl Backend for StdbBackend {
    type W = StdbWriter;
    type L = StdbListener;

    fn client_name(&self) -> &'static str {
        "spacetimedb"
    }

    async fn writer(&self, index: usize) -> Result<StdbWriter> {
        let client = self.connect(&format!("bench{}w{index}", self.run)).await?;
        // Writers are room members like any chat user: they receive the room's messages too.
        client.subscribe(&[self.room_query().as_str()]).await?;
        let (reducer, room_param, text_param) = self.shape.send_message.clone();
        Ok(StdbWriter {
            client,
            schema: self.schema.clone(),
            reducer,
            room_param,
            text_param,
            room_id: self.room_id.clone(),
            running: FuturesUnordered::new(),
        })
    }

    async fn listener(&self, index: usize) -> Result<Option<StdbListener>> {
        let client = self.connect(&format!("bench{}l{index}", self.run)).await?;
        let events = client.row_events();
        client.subscribe(&[self.room_query().as_str()]).await?;
        let table = self.schema.table(&self.shape.message_table)?;
        let text_column = table
            .columns
            .iter()
            .position(|c| c.name == self.shape.send_message.2)
            .or_else(|| {
                table
                    .columns
                    .iter()
                    .position(|c| matches!(c.ty, stdb_client::AlgebraicType::String))
            });
        Ok(Some(StdbListener {
            _client: client,
            events,
            table: table.name.clone(),
            text_column,
        }))
    }

    async fn committed(&self, _marker: &Marker) -> Result<Option<Committed>> {
        // The room is new and only this run writes to it: its message count is the run's.
        let filter = &self.room_filter;
        let n = stdb_client::count_rows(
            &self.url,
            &self.database,
            None,
            &self.shape.message_table,
            Some(filter),
        )
        .await?;
        Ok(Some(Committed {
            method: "spacetimedb-sql".into(),
            count: n,
            detail: format!(
                "SELECT COUNT(*) FROM {} WHERE {filter}",
                self.shape.message_table
            ),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_room_name_column_follows_the_table_not_only_the_parameter() {
        let schema = ModuleSchema::from_raw(stdb_client::test_server::chat_module_def()).unwrap();
        let room = schema.table("room").unwrap();
        assert_eq!(room_name_column(room, "name").unwrap(), "name");
        assert_eq!(room_name_column(room, "room_name").unwrap(), "name");
        let user = schema.table("user").unwrap();
        let err = format!("{:#}", room_name_column(user, "title").unwrap_err());
        assert!(
            err.contains("room name") && err.contains("`title`"),
            "{err}"
        );
    }

    #[test]
    fn room_filters_quote_string_ids_as_sql_strings() {
        assert_eq!(room_filter("room_id", &json!(7)).unwrap(), "room_id = 7");
        assert_eq!(
            room_filter("room", &json!("bench-1f'x")).unwrap(),
            "room = 'bench-1f''x'"
        );
        assert!(room_filter("room_id", &json!({"id": 1})).is_err());
    }
}
