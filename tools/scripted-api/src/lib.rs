//! A scripted Anthropic Messages API: plays back rehearsal scripts to a real agent CLI.
//!
//! Point the Claude Code CLI at it (`ANTHROPIC_BASE_URL=<handle.url>`, any API key) and it
//! receives, turn by turn, the tool calls and final text of a [`Script`], each with the token
//! usage the script gives. The CLI runs the tools for real, prices the tokens itself and
//! exports its telemetry as it would against the real API, at no cost.
//!
//! - `POST /v1/messages`: streaming (Server-Sent Events) and plain JSON answers.
//! - `POST /v1/messages/count_tokens`: an estimate from the request size.
//! - `HEAD /` and `GET /` (the CLI checks the server is reachable at start-up): `200`.
//! - anything else: `404` with an Anthropic-style JSON error.
//!
//! Turns are served in order per conversation, the conversation being the agent's session id
//! (the `X-Claude-Code-Session-Id` header, else the `session_id` inside `metadata.user_id`), so
//! several CLIs can share one server. Requests that offer the model no tools (title
//! generation, quota checks) get the script's short side answer and consume no turn. A request
//! repeating the previous one (a retry: same number of messages) gets the same turn again.

mod script;
mod server;

pub use script::{CONTENT_FILE, Script, SideAnswer, ToolCall, Turn, Usage};
pub use server::{ConversationStats, RequestKind, RequestRecord, ScriptedApi, ScriptedApiHandle};
