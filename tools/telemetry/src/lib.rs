//! Per-session cost accounting from Claude Code's OpenTelemetry export.

pub mod cli {
    //! Command-line options of `cargo xtask bench-telemetry`.

    /// SKELETON: replaced by the crate's real options.
    #[derive(Debug, clap::Args)]
    pub struct Args {}

    pub fn run(_args: Args) -> anyhow::Result<()> {
        anyhow::bail!("bench-telemetry is not built yet")
    }
}
