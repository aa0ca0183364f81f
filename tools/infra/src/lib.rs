//! Benchmark infrastructure: embedded OTLP receiver, native PostgreSQL, or docker compose.

pub mod cli {
    //! Command-line options of `cargo xtask bench-infra`.

    /// SKELETON: replaced by the crate's real options.
    #[derive(Debug, clap::Args)]
    pub struct Args {}

    pub fn run(_args: Args) -> anyhow::Result<()> {
        anyhow::bail!("bench-infra is not built yet")
    }
}
