//! Example workflows for Switchboard. Each is a module with its agents, a scripted model that
//! plays it without any real LLM, and tests; the CLI's console reaches them by name.

pub mod clinic;
pub mod frontdesk;

use std::sync::Arc;

use switchboard::chat::ChatContext;
use switchboard::llm::Llm;
use switchboard::voice::audio::AudioFrame;
use switchboard::voice::output::AudioOutput;
use switchboard::voice::stt::Stt;
use switchboard::voice::tts::Tts;
use switchboard::voice::vad::Vad;
use switchboard::{
    AgentSession, RunResult, SessionBuilder, SessionError, SessionEvent, TurnHandling,
};
use tokio::sync::mpsc::UnboundedReceiver;

/// A started session of some workflow, whatever its user data type.
#[switchboard::async_trait]
pub trait WorkflowSession: Send + Sync {
    /// One user turn.
    async fn run(&self, text: &str) -> Result<RunResult, SessionError>;
    /// The whole conversation.
    async fn history(&self) -> ChatContext;
    /// The id of the agent in control.
    async fn current_agent_id(&self) -> Option<String>;
    /// What the workflow collected, as JSON.
    fn results(&self) -> serde_json::Value;
    /// Closes the session.
    async fn close(&self);
    /// Feeds the caller's audio (voice sessions).
    fn push_audio(&self, frame: AudioFrame) -> Result<(), SessionError>;
    /// The caller's audio ended.
    fn end_audio_input(&self) -> Result<(), SessionError>;
}

#[switchboard::async_trait]
impl<U: Send + serde::Serialize + 'static> WorkflowSession for AgentSession<U> {
    async fn run(&self, text: &str) -> Result<RunResult, SessionError> {
        AgentSession::run(self, text).await
    }
    async fn history(&self) -> ChatContext {
        AgentSession::history(self).await
    }
    async fn current_agent_id(&self) -> Option<String> {
        AgentSession::current_agent_id(self).await
    }
    fn results(&self) -> serde_json::Value {
        serde_json::to_value(&*self.userdata()).unwrap_or(serde_json::Value::Null)
    }
    async fn close(&self) {
        AgentSession::close(self).await
    }
    fn push_audio(&self, frame: AudioFrame) -> Result<(), SessionError> {
        AgentSession::push_audio(self, frame)
    }
    fn end_audio_input(&self) -> Result<(), SessionError> {
        AgentSession::end_audio_input(self)
    }
}

/// Voice components for a workflow's session; empty for a text session.
#[derive(Clone, Default)]
pub struct Voice {
    /// Cuts the caller's audio into utterances.
    pub vad: Option<Arc<dyn Vad>>,
    /// Transcribes them.
    pub stt: Option<Arc<dyn Stt>>,
    /// Speaks the agent's replies.
    pub tts: Option<Arc<dyn Tts>>,
    /// Where the agent's audio goes.
    pub output: Option<Arc<dyn AudioOutput>>,
    /// Turn-taking options (defaults when `None`).
    pub turn: Option<TurnHandling>,
}

impl Voice {
    /// A text session.
    pub fn none() -> Self {
        Voice::default()
    }

    /// Adds the components to a session builder.
    pub fn apply<U: Send + 'static>(self, mut builder: SessionBuilder<U>) -> SessionBuilder<U> {
        if let Some(vad) = self.vad {
            builder = builder.vad(vad);
        }
        if let Some(stt) = self.stt {
            builder = builder.stt(stt);
        }
        if let Some(tts) = self.tts {
            builder = builder.tts(tts);
        }
        if let Some(output) = self.output {
            builder = builder.audio_output(output);
        }
        if let Some(turn) = self.turn {
            builder = builder.turn_handling(turn);
        }
        builder
    }
}

/// A started workflow: its session, its event stream and what `start` produced.
pub struct Started {
    /// The session.
    pub session: Box<dyn WorkflowSession>,
    /// Every session event, from before the first agent started.
    pub events: UnboundedReceiver<SessionEvent>,
    /// What the first agent's `on_enter` produced.
    pub greeting: RunResult,
}

/// Starts a session of a workflow on a model, with voice components for a voice session.
pub type StartFn =
    fn(Arc<dyn Llm>, Voice) -> futures::future::BoxFuture<'static, Result<Started, SessionError>>;

/// A built-in workflow.
pub struct Workflow {
    /// Its name, as given to the console.
    pub name: &'static str,
    /// One line on what it does.
    pub description: &'static str,
    /// Lines a scripted caller says in the demo.
    pub caller_lines: &'static [&'static str],
    /// A model that plays the workflow without any real LLM.
    pub scripted_llm: fn() -> Arc<dyn Llm>,
    /// Starts a session of the workflow on `llm`.
    pub start: StartFn,
}

/// The built-in workflows.
pub fn workflows() -> Vec<Workflow> {
    vec![
        Workflow {
            name: "frontdesk",
            description: "a clinic front desk that answers opening hours and hands billing questions to billing",
            caller_lines: frontdesk::DEMO_CALLER_LINES,
            scripted_llm: || Arc::new(frontdesk::scripted_llm()),
            start: |llm, voice| {
                Box::pin(async move {
                    let session = voice
                        .apply(AgentSession::with_userdata(frontdesk::Caller::default()).llm(llm))
                        .build();
                    let events = session.subscribe();
                    let greeting = session.start(frontdesk::FrontDesk).await?;
                    Ok(Started {
                        session: Box::new(session),
                        events,
                        greeting,
                    })
                })
            },
        },
        Workflow {
            name: "clinic",
            description: "a clinic intake: consent, name, date of birth, phone and email through prebuilt tasks, then booking and billing",
            caller_lines: clinic::DEMO_CALLER_LINES,
            scripted_llm: || Arc::new(clinic::scripted_llm()),
            start: |llm, voice| {
                Box::pin(async move {
                    let session = voice
                        .apply(
                            AgentSession::with_userdata(clinic::ClinicIntake::default()).llm(llm),
                        )
                        .build();
                    let events = session.subscribe();
                    let greeting = session.start(clinic::FrontDesk).await?;
                    Ok(Started {
                        session: Box::new(session),
                        events,
                        greeting,
                    })
                })
            },
        },
    ]
}

/// The workflow with this name.
pub fn workflow(name: &str) -> Option<Workflow> {
    workflows().into_iter().find(|w| w.name == name)
}
