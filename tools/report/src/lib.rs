//! Run reports: per-backend figures, N-run statistics, HTML charts, checks of published figures.

pub mod cli {
    //! Command-line options of `cargo xtask bench-report`.

    /// SKELETON: replaced by the crate's real options.
    #[derive(Debug, clap::Args)]
    pub struct Args {}

    pub fn run(_args: Args) -> anyhow::Result<()> {
        anyhow::bail!("bench-report is not built yet")
    }
}
