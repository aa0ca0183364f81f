//! Benchmark content: feature levels, prompts, backend guides, grading formats.

pub mod cli {
    //! Command-line options of `cargo xtask bench-prompts`.

    /// SKELETON: replaced by the crate's real options.
    #[derive(Debug, clap::Args)]
    pub struct Args {}

    pub fn run(_args: Args) -> anyhow::Result<()> {
        anyhow::bail!("bench-prompts is not built yet")
    }
}
