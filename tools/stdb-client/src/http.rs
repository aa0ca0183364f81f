//! SpacetimeDB's HTTP endpoints: the module schema and SQL.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::Value as Json;
use spacetimedb_client_api_messages::http::SqlStmtResult;
use spacetimedb_lib::AlgebraicType;

use crate::protocol::{check_database_name, http_base};
use crate::schema::ModuleSchema;

const HTTP_TIMEOUT: Duration = Duration::from_secs(30);

fn http_client() -> Result<reqwest::Client> {
    // No proxy: the targets are local servers, and a proxy from the environment would distort timings.
    reqwest::Client::builder()
        .no_proxy()
        .timeout(HTTP_TIMEOUT)
        .build()
        .context("building the HTTP client")
}

async fn read_body(resp: reqwest::Response, what: &str, url: &str) -> Result<String> {
    let status = resp.status();
    let body = resp
        .text()
        .await
        .with_context(|| format!("reading the {what} response from {url}"))?;
    if status.is_success() {
        return Ok(body);
    }
    let hint = match status.as_u16() {
        404 => " (is the database published under this name? `spacetime list` shows the names)",
        400 => " (the server rejected the request; its message is above)",
        401 | 403 => " (the token was refused; omit it to act as a fresh identity)",
        _ => "",
    };
    bail!(
        "{what} failed: {url} answered HTTP {status}: {}{hint}",
        body.trim()
    )
}

/// Fetches and resolves a database's module schema (`GET /v1/database/<db>/schema?version=9`).
pub async fn fetch_schema(base_url: &str, database: &str) -> Result<ModuleSchema> {
    check_database_name(database)?;
    let url = format!(
        "{}/v1/database/{database}/schema?version=9",
        http_base(base_url)?
    );
    let resp = http_client()?.get(&url).send().await.with_context(|| {
        format!("fetching the module schema from {url}: is the SpacetimeDB server running?")
    })?;
    let body = read_body(resp, "fetching the module schema", &url).await?;
    ModuleSchema::from_json(&body).with_context(|| format!("reading the module schema from {url}"))
}

/// The result of `POST /v1/database/<db>/sql`: one entry per statement.
#[derive(Debug, Clone)]
pub struct SqlResult {
    pub statements: Vec<SqlStatement>,
}

/// One statement's result. Rows are kept as the server's JSON (one array per row, in column order).
#[derive(Debug, Clone)]
pub struct SqlStatement {
    pub columns: Vec<String>,
    pub column_types: Vec<AlgebraicType>,
    pub rows: Vec<Vec<Json>>,
    pub total_duration_micros: u64,
}

impl SqlResult {
    /// The single integer of a `SELECT COUNT(*) AS n FROM …` result.
    pub fn count(&self) -> Result<u64> {
        let [stmt] = self.statements.as_slice() else {
            bail!(
                "expected one SQL statement's result, got {}",
                self.statements.len()
            );
        };
        let [row] = stmt.rows.as_slice() else {
            bail!(
                "expected one row from a COUNT query, got {}",
                stmt.rows.len()
            );
        };
        let [cell] = row.as_slice() else {
            bail!("expected one column from a COUNT query, got {}", row.len());
        };
        match cell {
            Json::Number(n) => n
                .as_u64()
                .with_context(|| format!("COUNT returned {n}, not a non-negative integer")),
            Json::String(s) => s
                .parse()
                .with_context(|| format!("COUNT returned `{s}`, not an integer")),
            other => bail!("COUNT returned {other}, not an integer"),
        }
    }
}

/// Runs SQL through `POST /v1/database/<db>/sql`. Without a token the server mints a fresh identity.
pub async fn sql(
    base_url: &str,
    database: &str,
    token: Option<&str>,
    query: &str,
) -> Result<SqlResult> {
    check_database_name(database)?;
    let url = format!("{}/v1/database/{database}/sql", http_base(base_url)?);
    let mut req = http_client()?.post(&url).body(query.to_string());
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    let resp = req
        .send()
        .await
        .with_context(|| format!("running SQL at {url}: is the SpacetimeDB server running?"))?;
    let body = read_body(resp, &format!("SQL `{query}`"), &url).await?;
    let stmts: Vec<SqlStmtResult<Json>> = serde_json::from_str(&body)
        .with_context(|| format!("parsing the SQL result from {url}"))?;
    let statements = stmts
        .into_iter()
        .map(|s| {
            let rows = s
                .rows
                .into_iter()
                .map(|row| match row {
                    Json::Array(cells) => Ok(cells),
                    other => bail!("SQL row is not a JSON array: {other}"),
                })
                .collect::<Result<Vec<_>>>()?;
            Ok(SqlStatement {
                columns: s
                    .schema
                    .elements
                    .iter()
                    .enumerate()
                    .map(|(i, e)| {
                        e.name
                            .as_deref()
                            .map(str::to_string)
                            .unwrap_or_else(|| format!("col{i}"))
                    })
                    .collect(),
                column_types: s
                    .schema
                    .elements
                    .iter()
                    .map(|e| e.algebraic_type.clone())
                    .collect(),
                rows,
                total_duration_micros: s.total_duration_micros,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(SqlResult { statements })
}

/// Counts rows with `SELECT COUNT(*) AS n FROM <table> [WHERE <filter>]`, e.g.
/// `count_rows(url, "chat", None, "message", Some("room_id = 7"))`.
pub async fn count_rows(
    base_url: &str,
    database: &str,
    token: Option<&str>,
    table: &str,
    filter: Option<&str>,
) -> Result<u64> {
    let query = match filter {
        Some(f) => format!("SELECT COUNT(*) AS n FROM {table} WHERE {f}"),
        None => format!("SELECT COUNT(*) AS n FROM {table}"),
    };
    sql(base_url, database, token, &query)
        .await?
        .count()
        .with_context(|| format!("reading the result of `{query}`"))
}
