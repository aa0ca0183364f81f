//! Throughput and latency benchmark of the generated chat apps.

pub mod cli {
    //! Command-line options of `cargo xtask bench-stress`.

    /// SKELETON: replaced by the crate's real options.
    #[derive(Debug, clap::Args)]
    pub struct Args {}

    pub fn run(_args: Args) -> anyhow::Result<()> {
        anyhow::bail!("bench-stress is not built yet")
    }
}
