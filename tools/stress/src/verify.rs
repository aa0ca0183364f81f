//! Verification in PostgreSQL: how many of the run's messages were committed.
//!
//! Apps name their tables and columns differently, so instead of assuming `messages.content`
//! the run's marker is looked for in every text column of every table whose name mentions
//! messages (all text columns of all tables when none does); the column holding the most
//! marked rows is the message text. Only rows of this run carry its marker.

use anyhow::{Context, Result};
use serde_json::Value;
use tokio_postgres::{Client, NoTls};

use crate::adapter::VerifySpec;

use crate::backend::{Committed, Marker};

/// Opens a connection; the URL must point at this machine.
pub async fn connect(db_url: &str) -> Result<Client> {
    let config: tokio_postgres::Config = db_url
        .parse()
        .with_context(|| format!("{} is not a PostgreSQL URL", redact(db_url)))?;
    for host in config.get_hosts() {
        if let tokio_postgres::config::Host::Tcp(name) = host {
            crate::http::check_loopback(name)?;
        }
    }
    // `hostaddr` overrides the host name when connecting, so it must be local too.
    for addr in config.get_hostaddrs() {
        crate::http::check_loopback(&addr.to_string())
            .context("the PostgreSQL URL's hostaddr is not on this machine")?;
    }
    let (client, connection) = config.connect(NoTls).await.with_context(|| {
        format!(
            "cannot connect to {} (is PostgreSQL running?)",
            redact(db_url)
        )
    })?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

/// Counts the rows carrying the run's marker.
pub async fn count_marked(client: &Client, marker: &Marker) -> Result<Committed> {
    let columns = client
        .query(
            "SELECT table_schema, table_name, column_name FROM information_schema.columns
             WHERE table_schema NOT IN ('pg_catalog', 'information_schema')
               AND data_type IN ('text', 'character varying', 'character', 'jsonb', 'json')
             ORDER BY (table_name ILIKE '%message%') DESC, table_name, ordinal_position",
            &[],
        )
        .await
        .context("cannot list the database's text columns")?;
    let mut candidates: Vec<(String, String, String)> = columns
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    if candidates
        .iter()
        .any(|(_, t, _)| t.to_ascii_lowercase().contains("message"))
    {
        candidates.retain(|(_, t, _)| t.to_ascii_lowercase().contains("message"));
    }
    let pattern = format!("{}%", marker.prefix());
    let mut best: Option<(i64, String)> = None;
    for (schema, table, column) in candidates {
        let sql = format!(
            "SELECT count(*) FROM {}.{} WHERE {}::text LIKE $1",
            quote(&schema),
            quote(&table),
            quote(&column)
        );
        let n: i64 = client
            .query_one(&sql, &[&pattern])
            .await
            .with_context(|| format!("cannot count messages in {schema}.{table}.{column}"))?
            .get(0);
        if best.as_ref().is_none_or(|(b, _)| n > *b) {
            best = Some((n, format!("{schema}.{table}.{column}")));
        }
    }
    let (count, place) = best.unwrap_or((0, "no text column found".to_string()));
    Ok(Committed {
        method: "postgres-sql".into(),
        count: count.max(0) as u64,
        detail: format!("rows of {place} starting with {}", marker.prefix()),
    })
}

/// Counts the run's messages in the table the app's schema names, in the bench room only.
pub async fn count_in(
    client: &Client,
    spec: &VerifySpec,
    marker: &Marker,
    room_id: &Value,
) -> Result<Committed> {
    let table = match spec.table.split_once('.') {
        Some((schema, table)) => format!("{}.{}", quote(schema), quote(table)),
        None => quote(&spec.table),
    };
    let pattern = format!("{}%", marker.prefix());
    let room = match room_id {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let (sql, place) = match &spec.room_column {
        Some(col) => (
            format!(
                "SELECT count(*) FROM {table} WHERE {}::text LIKE $1 AND {}::text = $2",
                quote(&spec.text_column),
                quote(col)
            ),
            format!("{}.{} where {col} = {room}", spec.table, spec.text_column),
        ),
        None => (
            format!(
                "SELECT count(*) FROM {table} WHERE {}::text LIKE $1 AND $2::text IS NOT NULL",
                quote(&spec.text_column)
            ),
            format!("{}.{}", spec.table, spec.text_column),
        ),
    };
    let n: i64 = client
        .query_one(&sql, &[&pattern, &room])
        .await
        .with_context(|| {
            format!(
                "cannot count messages in {place} (the table and columns come from the app's schema or the adapter's [verify]; is the database URL the app's?)"
            )
        })?
        .get(0);
    Ok(Committed {
        method: "postgres-sql".into(),
        count: n.max(0) as u64,
        detail: format!("rows of {place} starting with {}", marker.prefix()),
    })
}

fn quote(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

/// A URL or connection string with its password replaced by `***`, for files and messages:
/// the one in `user:password@` and any `password=` parameter (`?password=` in a URL,
/// `password=...` in a `key=value` connection string).
pub fn redact(url: &str) -> String {
    let url = redact_userinfo(url);
    let lower = url.to_ascii_lowercase();
    let mut out = String::with_capacity(url.len());
    let mut copied = 0;
    let mut from = 0;
    while let Some(found) = lower[from..].find("password") {
        let key = from + found;
        from = key + "password".len();
        // Only a whole key: not part of a longer word, followed by `=` (spaces allowed).
        let starts_key = key == 0 || !lower.as_bytes()[key - 1].is_ascii_alphanumeric();
        let after = lower[from..].trim_start();
        if !starts_key || !after.starts_with('=') {
            continue;
        }
        let value_start = url.len() - after.len() + 1;
        let value_start =
            value_start + (url[value_start..].len() - url[value_start..].trim_start().len());
        let rest = &url[value_start..];
        let value_len = if let Some(quoted) = rest.strip_prefix('\'') {
            quoted.find('\'').map_or(rest.len(), |end| end + 2)
        } else {
            rest.find(|c: char| c == '&' || c.is_whitespace())
                .unwrap_or(rest.len())
        };
        if value_len == 0 {
            continue;
        }
        out.push_str(&url[copied..value_start]);
        out.push_str("***");
        copied = value_start + value_len;
        from = copied;
    }
    out.push_str(&url[copied..]);
    out
}

fn redact_userinfo(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_string();
    };
    let rest = &url[scheme_end + 3..];
    let Some(at) = rest.find('@') else {
        return url.to_string();
    };
    match rest[..at].find(':') {
        Some(colon) => format!(
            "{}{}:***{}",
            &url[..scheme_end + 3],
            &rest[..colon],
            &rest[at..]
        ),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn only_local_databases_are_connected_to() {
        // Documentation-only addresses (TEST-NET): nothing is ever sent to them.
        for url in [
            "postgres://u:p@192.0.2.1:5432/db",
            "postgres://u:p@127.0.0.1:5432/db?hostaddr=198.51.100.2",
            "host=127.0.0.1 hostaddr=203.0.113.3 user=u dbname=db",
        ] {
            let err = connect(url).await.err().map(|e| format!("{e:#}"));
            assert!(
                err.as_deref()
                    .is_some_and(|e| e.contains("only loads 127.0.0.1")),
                "{url}: {err:?}"
            );
        }
    }

    #[test]
    fn redacts_passwords_only() {
        assert_eq!(
            redact("postgres://u:secret@127.0.0.1:5432/db"),
            "postgres://u:***@127.0.0.1:5432/db"
        );
        assert_eq!(
            redact("postgres://u@127.0.0.1/db"),
            "postgres://u@127.0.0.1/db"
        );
        assert_eq!(redact("http://127.0.0.1:3000"), "http://127.0.0.1:3000");
        assert_eq!(
            redact("postgres://u@127.0.0.1/db?sslmode=disable&password=s3cret&x=1"),
            "postgres://u@127.0.0.1/db?sslmode=disable&password=***&x=1"
        );
        assert_eq!(
            redact("host=127.0.0.1 user=u password = 's3 cret' dbname=db"),
            "host=127.0.0.1 user=u password = *** dbname=db"
        );
        assert_eq!(
            redact("--db-url=host=127.0.0.1 PASSWORD=x"),
            "--db-url=host=127.0.0.1 PASSWORD=***"
        );
        assert_eq!(
            redact("--label=no-password-here"),
            "--label=no-password-here",
            "only key=value parameters are secrets"
        );
        assert_eq!(quote("we\"ird"), "\"we\"\"ird\"");
    }
}
