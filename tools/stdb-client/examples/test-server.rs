//! Runs the in-process SpacetimeDB protocol test server on its own, to point a client (e.g.
//! `cargo xtask bench-stress --backend spacetimedb`) at it by hand:
//!
//! ```text
//! cargo run -p stdb-client --features test-server --example test-server -- [--port 3000] [--database chat]
//! ```
//!
//! Prints its URL and a summary of its work every 5 seconds; Ctrl-C stops it.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use stdb_client::test_server::{TestServer, TestServerConfig};

#[tokio::main]
async fn main() -> Result<()> {
    let mut config = TestServerConfig::default();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--port" => {
                let port: u16 = args
                    .next()
                    .context("--port needs a value")?
                    .parse()
                    .context("--port must be a number from 0 to 65535")?;
                config.bind = SocketAddr::from(([127, 0, 0, 1], port));
            }
            "--database" => config.database = args.next().context("--database needs a value")?,
            "-h" | "--help" => {
                println!("usage: test-server [--port N] [--database NAME]");
                return Ok(());
            }
            other => bail!("unknown argument `{other}` (try --help)"),
        }
    }
    let server = TestServer::start_with(config).await?;
    println!(
        "SpacetimeDB protocol test server: {} database `{}`",
        server.base_url(),
        server.database()
    );
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    tick.tick().await;
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = tick.tick() => {
                let s = server.stats();
                println!(
                    "connections {} · reducer calls {} (committed {}, failed {}) · transaction updates {} · messages {}",
                    s.connections, s.reducer_calls, s.committed, s.failed, s.transaction_updates_sent,
                    server.row_count("message")
                );
            }
        }
    }
    Ok(())
}
