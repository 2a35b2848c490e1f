//! Test your agents the way we test ours: scripted models that answer deterministically in
//! virtual time, and run results with expectations.

mod scripted_llm;

pub use scripted_llm::{Responder, ScriptedLlm, ScriptedReply};
