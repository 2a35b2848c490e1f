//! Test your agents the way we test ours: scripted models that answer deterministically in
//! virtual time, run results with expectations, LLM judges and scenario files.
//!
//! The guide is `docs/testing.md` ("Testing your agents"); its examples are compiled and run
//! as doctests of this module.

mod expect;
mod judge;
mod scenario;
mod scripted_llm;
mod scripted_voice;

/// The scripted VAD model lives with the VAD machinery; re-exported here with the other
/// scripted models.
pub use crate::voice::vad::ScriptedVadModel;
pub use expect::{
    AgentHandoffAssert, AgentMatch, EventAssert, EventMatcher, EventRange, ExpectationError,
    FunctionCallAssert, FunctionCallOutputAssert, MessageAssert, RunEventKind, RunExpect,
    json_subset,
};
pub use judge::{
    AsLlm, EvaluationReport, Judge, JudgeError, JudgeGroup, JudgeOutcome, JudgeVerdict, Verdict,
    VerdictCache, VerdictSource, judge_intent, render_conversation,
};
pub use scenario::{
    CheckReport, CheckStatus, ExpectSpec, MatchMode, Scenario, ScenarioError, ScenarioReport,
    ScenarioRunner, ScenarioSession, ScenarioStart, StepReport, StepSpec, junit_xml, write_junit,
};
pub use scripted_llm::{Responder, ScriptedLlm, ScriptedReply};
pub use scripted_voice::{ScriptedStt, ScriptedTranscript, ScriptedTts};

#[cfg(doctest)]
#[doc = include_str!("../../../../docs/testing.md")]
pub struct TestingGuide;
