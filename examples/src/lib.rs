//! Example workflows for Switchboard. Each is a module with its agents, a scripted model that
//! plays it without any real LLM, and tests; the CLI's console reaches them by name.

pub mod clinic;
pub mod frontdesk;

use std::sync::Arc;

use switchboard::chat::ChatContext;
use switchboard::llm::Llm;
use switchboard::{AgentSession, RunResult, SessionError, SessionEvent};
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

/// Starts a session of a workflow on a model.
pub type StartFn =
    fn(Arc<dyn Llm>) -> futures::future::BoxFuture<'static, Result<Started, SessionError>>;

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
            start: |llm| {
                Box::pin(async move {
                    let session = AgentSession::with_userdata(frontdesk::Caller::default())
                        .llm(llm)
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
            start: |llm| {
                Box::pin(async move {
                    let session = AgentSession::with_userdata(clinic::ClinicIntake::default())
                        .llm(llm)
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
