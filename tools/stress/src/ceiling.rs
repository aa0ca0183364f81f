//! The ceiling: the same scenario as direct INSERTs into PostgreSQL, one connection per
//! writer with its requests pipelined. No app can commit messages faster than this.

use std::pin::Pin;
use std::sync::Arc;

use anyhow::{Context, Result};
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use tokio_postgres::{Client, Statement};

use crate::backend::{Backend, Committed, Listener, Marker, Outcome, Writer};

/// The table the ceiling writes to, shaped like a generated app's messages table.
pub const TABLE: &str = "bench_ceiling_messages";

pub struct CeilingBackend {
    db_url: String,
    room_id: i32,
}

impl CeilingBackend {
    /// Creates the table (if missing) in the target database.
    pub async fn prepare(db_url: &str, room_id: i32) -> Result<CeilingBackend> {
        let client = crate::verify::connect(db_url).await?;
        client
            .batch_execute(&format!(
                "CREATE TABLE IF NOT EXISTS {TABLE} (
                   id BIGSERIAL PRIMARY KEY,
                   room_id INTEGER NOT NULL,
                   user_id INTEGER NOT NULL,
                   content TEXT NOT NULL,
                   created_at TIMESTAMPTZ NOT NULL DEFAULT now()
                 );
                 CREATE INDEX IF NOT EXISTS {TABLE}_room ON {TABLE} (room_id);"
            ))
            .await
            .with_context(|| {
                format!("cannot create table {TABLE} (does the user may create tables?)")
            })?;
        Ok(CeilingBackend {
            db_url: db_url.to_string(),
            room_id,
        })
    }
}

/// Deletes a finished run's rows (they were counted already), so that runs do not pile up
/// in the table and slow the next ones down. Returns how many were deleted.
pub async fn delete_rows(db_url: &str, room_id: i32) -> Result<u64> {
    let client = crate::verify::connect(db_url).await?;
    client
        .execute(
            &format!("DELETE FROM {TABLE} WHERE room_id = $1"),
            &[&room_id],
        )
        .await
        .with_context(|| format!("cannot delete the run's rows from {TABLE}"))
}

type Pending = Pin<Box<dyn Future<Output = Outcome> + Send>>;

pub struct InsertWriter {
    client: Arc<Client>,
    statement: Statement,
    room_id: i32,
    user_id: i32,
    running: FuturesUnordered<Pending>,
}

impl Writer for InsertWriter {
    fn send(&mut self, tag: u64, content: &str) -> Result<()> {
        let client = self.client.clone();
        let statement = self.statement.clone();
        let (room, user, content) = (self.room_id, self.user_id, content.to_string());
        self.running.push(Box::pin(async move {
            match client.execute(&statement, &[&room, &user, &content]).await {
                Ok(1) => Outcome::Acked(tag),
                Ok(_) => Outcome::Failed(tag, "not_inserted".into()),
                Err(err) if err.is_closed() => Outcome::Failed(tag, "disconnected".into()),
                Err(err) => Outcome::Failed(
                    tag,
                    err.code()
                        .map_or("db_error".into(), |c| format!("sqlstate_{}", c.code())),
                ),
            }
        }));
        Ok(())
    }

    async fn next_outcome(&mut self) -> Result<Outcome> {
        match self.running.next().await {
            Some(o) => Ok(o),
            // Nothing in flight: wait until the scenario sends (it cancels this future).
            None => std::future::pending().await,
        }
    }
}

/// The ceiling has no broadcast.
pub struct NoListener;

impl Listener for NoListener {
    async fn next_text(&mut self) -> Result<(String, std::time::Instant)> {
        std::future::pending().await
    }
}

impl Backend for CeilingBackend {
    type W = InsertWriter;
    type L = NoListener;

    fn client_name(&self) -> &'static str {
        "postgres-insert"
    }

    async fn writer(&self, index: usize) -> Result<InsertWriter> {
        let client = crate::verify::connect(&self.db_url).await?;
        let statement = client
            .prepare(&format!(
                "INSERT INTO {TABLE} (room_id, user_id, content) VALUES ($1, $2, $3)"
            ))
            .await
            .context("cannot prepare the ceiling INSERT")?;
        Ok(InsertWriter {
            client: Arc::new(client),
            statement,
            room_id: self.room_id,
            user_id: index as i32 + 1,
            running: FuturesUnordered::new(),
        })
    }

    async fn listener(&self, _index: usize) -> Result<Option<NoListener>> {
        Ok(None)
    }

    async fn committed(&self, marker: &Marker) -> Result<Option<Committed>> {
        let client = crate::verify::connect(&self.db_url).await?;
        let n: i64 = client
            .query_one(
                &format!("SELECT count(*) FROM {TABLE} WHERE room_id = $1 AND content LIKE $2"),
                &[&self.room_id, &format!("{}%", marker.prefix())],
            )
            .await
            .context("cannot count the ceiling's rows")?
            .get(0);
        Ok(Some(Committed {
            method: "postgres-sql".into(),
            count: n.max(0) as u64,
            detail: format!(
                "rows of {TABLE} with room_id {} and this run's marker",
                self.room_id
            ),
        }))
    }
}
