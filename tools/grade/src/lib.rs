//! `bench-grade`: grades a chat app in a real browser with two users, by the levels'
//! scripted test plans and `grading/rubric.md`.
