//! `bench-grade`: grades a chat app in a real browser with two users, by the levels'
//! scripted test plans and `grading/rubric.md`.
//!
//! The Rust side decides what to test and how to score it; the driver
//! (`tools/grade/driver/`, Node + `playwright-core`) carries the scripts out in Chromium
//! and reports what it saw, one JSON event per line (`driver/PROTOCOL.md`).

pub mod agent;
pub mod app;
pub mod bench;
pub mod browser;
pub mod cli;
pub mod driver;
pub mod events;
pub mod grade;
pub mod output;
pub mod program;
pub mod record;
pub mod render;
pub mod score;
pub mod selftest;
