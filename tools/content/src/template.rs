//! `{{name}}` placeholders in content files: the benchmark's one template syntax, which
//! lives in [`bench_formats::template`] (rehearsal scripts and stress adapters use it too).

pub use bench_formats::template::{fill, placeholders};
