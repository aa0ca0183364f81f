//! The client for SpacetimeDB apps, over the `stdb-client` crate (official protocol types):
//! one identity per connection, reducer calls by name, a subscription for listeners, and
//! verification through the `/v1/database/<db>/sql` endpoint.
//!
//! Generated modules differ in names (`set_name` or `register`, `text` or `content`). The
//! shape is found in the module schema by [`crate::stdb_shape::ChatShape::discover`]; an
//! adapter file (TOML, every key optional) can name the reducers, the message table and its
//! room column, and the room table explicitly.

use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;

use crate::stdb_shape::{ChatHints, ChatShape, ReducerCall};
use anyhow::{Context, Result, bail};
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use serde::Serialize;
use serde_json::{Value, json};
use stdb_client::{ConnectOptions, ModuleSchema, ReducerStatus, StdbClient};
use tokio::sync::mpsc;

use crate::backend::{Backend, Committed, Listener, Marker, Outcome, Writer};

/// Reads a SpacetimeDB adapter file: the names of the chat module's parts (reducers, the
/// message table and its room column, the room table); unset ones are found in the schema.
pub fn load_adapter(path: &Path) -> Result<ChatHints> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read adapter file {}", path.display()))?;
    toml::from_str(&text).with_context(|| {
        format!(
            "{} is not a valid SpacetimeDB adapter (keys: set_name, create_room, join_room, send_message, message_table, room_column, room_table)",
            path.display()
        )
    })
}

/// What was found in the module, as recorded in the result file's `adapter` field.
#[derive(Debug, Clone, Serialize)]
pub struct FoundShape {
    /// [`ChatShape::describe`]'s one-line account.
    pub found: String,
    pub shape: ChatShape,
}

/// Discovers the chat shape, requiring what the stress run needs: the message table and its
/// room column (subscriptions, verification), and the room table (the bench room's id).
pub fn resolve(schema: &ModuleSchema, adapter: &ChatHints) -> Result<ChatShape> {
    let shape = ChatShape::discover(schema, adapter)?;
    let tables = || {
        schema
            .tables
            .iter()
            .map(|t| t.describe())
            .collect::<Vec<_>>()
            .join("; ")
    };
    if shape.message_table.is_none() {
        bail!(
            "the module has no message table (tried `message`, `messages`, … and names containing \
             `message`); its tables are: {}. Name it (message_table) in the adapter file",
            tables()
        );
    }
    if shape.room_table.is_none() {
        bail!(
            "the module has no room table (tried `room`, `rooms`, `channel`, … and names \
             containing `room`); its tables are: {}. Name it (room_table) in the adapter file",
            tables()
        );
    }
    // Fails now, not after the room is created, when a needed column is unknown.
    shape.room_filter(&json!(0))?;
    shape.room_id_query("bench")?;
    Ok(shape)
}

/// `reducer(p1, p2)` with the parameters in the given roles' order, for the notes.
fn call_line(call: Option<&ReducerCall>, roles: &[&str]) -> String {
    match call {
        None => "(none)".to_string(),
        Some(c) => {
            let params: Vec<&str> = roles
                .iter()
                .filter_map(|role| c.params.iter().find(|(r, _)| r == role))
                .map(|(_, p)| p.as_str())
                .collect();
            format!("{}({})", c.reducer, params.join(", "))
        }
    }
}

pub struct StdbBackend {
    url: String,
    database: String,
    schema: Arc<ModuleSchema>,
    shape: FoundShape,
    room_id: Value,
    message_table: String,
    /// `<room column> = <room id as a SQL literal>` (string ids in single quotes).
    room_filter: String,
    room: String,
    run: String,
}

/// Options of [`prepare`].
pub struct StdbSetup<'a> {
    pub url: &'a str,
    pub database: &'a str,
    pub adapter: ChatHints,
    pub marker: &'a Marker,
}

impl StdbBackend {
    /// What was found in the module (recorded in the result).
    pub fn shape(&self) -> &FoundShape {
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
        let shape = &self.shape.shape;
        if let (Some(call), Some(args)) = (&shape.set_name, shape.set_name_args(&self.schema, name))
        {
            client
                .call_reducer(&call.reducer, &args?)
                .await?
                .into_committed()?;
        }
        if let (Some(call), Some(args)) = (
            &shape.join_room,
            shape.join_room_args(&self.schema, &self.room_id),
        ) {
            client
                .call_reducer(&call.reducer, &args?)
                .await?
                .into_committed()?;
        }
        Ok(client)
    }

    fn room_query(&self) -> String {
        format!(
            "SELECT * FROM {} WHERE {}",
            self.message_table, self.room_filter
        )
    }
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
    let messages = shape
        .message_table
        .as_ref()
        .map_or("?", |t| t.table.as_str());
    let room_column = shape
        .message_table
        .as_ref()
        .and_then(|t| t.column("room"))
        .unwrap_or("?");
    let mut notes = vec![
        format!(
            "module shape: name with {}, room {}, join {}, send {}, messages in {messages}.{room_column}",
            call_line(shape.set_name.as_ref(), &["name"]),
            call_line(Some(&shape.create_room), &["name"]),
            call_line(shape.join_room.as_ref(), &["room"]),
            call_line(Some(&shape.send_message), &["room", "text"]),
        ),
        format!("found: {}", shape.describe()),
    ];
    let room = format!("bench-{}", marker.run());
    let opts = ConnectOptions {
        schema: Some(schema.clone()),
        ..ConnectOptions::default()
    };
    let creator = StdbClient::connect_with(url, database, opts).await?;
    if let (Some(call), Some(args)) = (
        &shape.set_name,
        shape.set_name_args(&schema, &format!("bench{}c", marker.run())),
    ) {
        creator
            .call_reducer(&call.reducer, &args?)
            .await?
            .into_committed()?;
    }
    let args = shape.create_room_args(&schema, &room)?;
    creator
        .call_reducer(&shape.create_room.reducer, &args)
        .await?
        .into_committed()
        .context("creating the bench room")?;
    let query = shape.room_id_query(&room)?;
    let result = stdb_client::sql(url, database, None, &query).await?;
    let stmt = result
        .statements
        .first()
        .with_context(|| format!("no result for the room query `{query}`"))?;
    let room_id = match stmt.rows.as_slice() {
        [row] => row.first().cloned().context("empty room row")?,
        rows => bail!(
            "expected one room named {room}, found {} (query `{query}`)",
            rows.len()
        ),
    };
    notes.push(format!("created room {room:?} (id {room_id})"));
    let (message_table, room_filter) = shape
        .room_filter(&room_id)
        .with_context(|| format!("the bench room's id {room_id} cannot be used in SQL"))?;
    creator.close();
    Ok((
        StdbBackend {
            url: url.to_string(),
            database: database.to_string(),
            schema,
            shape: FoundShape {
                found: shape.describe(),
                shape,
            },
            room_id,
            message_table,
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
    shape: Arc<ChatShape>,
    room_id: Value,
    running: FuturesUnordered<Pending>,
}

impl Writer for StdbWriter {
    fn send(&mut self, tag: u64, content: &str) -> Result<()> {
        let args = self
            .shape
            .send_message_args(&self.schema, &self.room_id, content)?;
        let pending = self
            .client
            .send_reducer(&self.shape.send_message.reducer, &args)?;
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
        Ok(StdbWriter {
            client,
            schema: self.schema.clone(),
            shape: Arc::new(self.shape.shape.clone()),
            room_id: self.room_id.clone(),
            running: FuturesUnordered::new(),
        })
    }

    async fn listener(&self, index: usize) -> Result<Option<StdbListener>> {
        let client = self.connect(&format!("bench{}l{index}", self.run)).await?;
        let events = client.row_events();
        client.subscribe(&[self.room_query().as_str()]).await?;
        let table = self.schema.table(&self.message_table)?;
        let text = self
            .shape
            .shape
            .message_table
            .as_ref()
            .and_then(|t| t.column("text"));
        let text_column = text.and_then(|name| table.columns.iter().position(|c| c.name == name));
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
            &self.message_table,
            Some(filter),
        )
        .await?;
        Ok(Some(Committed {
            method: "spacetimedb-sql".into(),
            count: n,
            detail: format!("SELECT COUNT(*) FROM {} WHERE {filter}", self.message_table),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stress_run_requires_the_message_tables_room_column_up_front() {
        let schema = ModuleSchema::from_raw(stdb_client::test_server::chat_module_def()).unwrap();
        let shape = resolve(&schema, &ChatHints::default()).unwrap();
        assert_eq!(
            call_line(Some(&shape.send_message), &["room", "text"]),
            "send_message(room_id, text)"
        );
        assert_eq!(call_line(None, &["name"]), "(none)");

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("adapter.toml");
        std::fs::write(&path, "message_table = \"user\"\n").unwrap();
        let adapter = load_adapter(&path).unwrap();
        let err = format!("{:#}", resolve(&schema, &adapter).unwrap_err());
        assert!(
            err.contains("`user`") && err.contains("room_column"),
            "{err}"
        );

        std::fs::write(
            &path,
            "message_table = \"message\"\nroom_column = \"nope\"\n",
        )
        .unwrap();
        let adapter = load_adapter(&path).unwrap();
        let err = format!("{:#}", resolve(&schema, &adapter).unwrap_err());
        assert!(err.contains("no column `nope`"), "{err}");
    }
}
