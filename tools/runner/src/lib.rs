//! Agent sessions (generate, upgrade, fix) driven through the Claude Code CLI.

pub mod cli {
    //! Command-line options of `cargo xtask bench-run`.

    /// SKELETON: replaced by the crate's real options.
    #[derive(Debug, clap::Args)]
    pub struct Args {}

    pub fn run(_args: Args) -> anyhow::Result<()> {
        anyhow::bail!("bench-run is not built yet")
    }
}
