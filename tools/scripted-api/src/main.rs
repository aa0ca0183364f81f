//! `scripted-api`: serve a rehearsal script on a local port, to drive an agent CLI by hand.
//!
//! `cargo run -p scripted-api -- rehearsal/generate-l1.toml --port 8123 --var app_dir=/tmp/app`
//! then `ANTHROPIC_BASE_URL=http://127.0.0.1:8123 ANTHROPIC_API_KEY=x claude -p …`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Parser;
use scripted_api::{Script, ScriptedApi};

#[derive(Parser)]
#[command(about = "Serve a rehearsal script as an Anthropic Messages API on 127.0.0.1.")]
struct Args {
    /// The rehearsal script (TOML).
    script: PathBuf,
    /// Port to listen on (0: any free port).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Placeholder values, `name=value` (repeatable).
    #[arg(long = "var", value_parser = parse_var)]
    vars: Vec<(String, String)>,
    /// Append every request as a JSON line to this file.
    #[arg(long)]
    log: Option<PathBuf>,
}

fn parse_var(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("`{s}` is not name=value"))
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let vars: BTreeMap<String, String> = args.vars.into_iter().collect();
    let script = Script::load(&args.script)?
        .render(&vars)
        .context("give every placeholder a value with --var NAME=VALUE")?;
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], args.port));
    let handle = ScriptedApi::start(Some(script), addr).await?;
    if let Some(log) = &args.log {
        handle.log_requests_to(log)?;
    }
    println!("scripted API listening on {}", handle.url);
    tokio::signal::ctrl_c()
        .await
        .context("cannot wait for Ctrl-C")?;
    handle.shutdown().await;
    Ok(())
}
