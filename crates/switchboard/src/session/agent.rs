//! [`Agent`]: what an agent is made of, and [`Handoff`]: how a tool passes the conversation on.

use std::any::{Any, TypeId};
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use serde::Serialize;
use serde_json::Value;

use super::context::AgentContext;
use super::events::ToolsExecuted;
use crate::chat::{ChatContext, ChatMessage};
use crate::llm::{ChatRequest, Llm, LlmStream, chat_with_retry};
use crate::tools::FunctionTool;

/// An agent: instructions, tools and lifecycle hooks. Implement it on your own type (usually
/// through the `#[agent]` attribute); every method but [`Agent::instructions`] has a default.
///
/// Hooks run in their own tasks, never inside the session's actor, so they may await anything,
/// including speech they queue themselves.
///
/// ```
/// use std::sync::Arc;
/// use switchboard::{Agent, AgentContext, async_trait};
///
/// struct Greeter;
///
/// #[async_trait]
/// impl Agent for Greeter {
///     fn instructions(&self) -> String {
///         "You greet callers warmly and briefly.".into()
///     }
///
///     async fn on_enter(&self, ctx: AgentContext) -> switchboard::Result<()> {
///         ctx.session().generate_reply("Greet the caller.").await?;
///         Ok(())
///     }
/// }
///
/// assert_eq!(Greeter.id(), "greeter");
/// ```
#[async_trait]
pub trait Agent<U: Send + 'static = ()>: Any + Send + Sync {
    /// The agent's id in handoff items. Defaults to the type name in snake case
    /// (`FrontDesk` → `front_desk`).
    fn id(&self) -> String {
        agent_id_from_type_name(std::any::type_name::<Self>())
    }

    /// The system instructions.
    fn instructions(&self) -> String;

    /// The agent's own tools (session-wide tools are added by the session).
    fn tools(self: Arc<Self>) -> Vec<FunctionTool<U>> {
        Vec::new()
    }

    /// The context the agent starts with when no handoff context is given. It is copied and
    /// filtered to the agent's tools.
    fn chat_ctx(&self) -> ChatContext {
        ChatContext::new()
    }

    /// A model for this agent instead of the session's.
    fn llm(&self) -> Option<Arc<dyn Llm>> {
        None
    }

    /// Whether the caller's speech may interrupt this agent (voice sessions). `None` (the
    /// default) follows the session's [`TurnHandling`](crate::TurnHandling); `Some(false)` keeps
    /// this agent talking over the caller, e.g. for a legal notice.
    fn allow_interruptions(&self) -> Option<bool> {
        None
    }

    /// Runs when the agent takes control. Not awaited by the code that started the agent; the
    /// active run waits for what it produces.
    async fn on_enter(&self, ctx: AgentContext<U>) -> crate::Result<()> {
        let _ = ctx;
        Ok(())
    }

    /// Runs when the agent hands control away or the session closes; speech it queues still
    /// plays before the switch.
    async fn on_exit(&self, ctx: AgentContext<U>) -> crate::Result<()> {
        let _ = ctx;
        Ok(())
    }

    /// Runs when the user finished a turn, before the reply. `turn_ctx` is this reply's copy of
    /// the context (edits apply to this reply only); edits to `message` are kept. Return
    /// `Err(Error::StopResponse)` (or `Err(StopResponse.into())`) to skip the reply; the user
    /// message is then not recorded.
    async fn on_user_turn_completed(
        &self,
        ctx: AgentContext<U>,
        turn_ctx: &mut ChatContext,
        message: &mut ChatMessage,
    ) -> crate::Result<()> {
        let _ = (ctx, turn_ctx, message);
        Ok(())
    }

    /// Called (in the session's actor, so keep it quick) after every step of tool calls, before
    /// the outputs are committed: it may cancel the follow-up reply or the handoff.
    fn on_tools_executed(&self, event: &mut ToolsExecuted) {
        let _ = event;
    }

    /// The LLM step of the pipeline. Override to change the request or post-process the stream;
    /// the default calls the model with the session's retry policy.
    fn llm_node(&self, llm: Arc<dyn Llm>, request: ChatRequest) -> LlmStream {
        chat_with_retry(llm, request)
    }

    /// Post-processes the reply text before it is shown and stored.
    fn transcription_node(&self, text: String) -> String {
        text
    }
}

/// `my_crate::FrontDesk` → `front_desk`; generic parameters are dropped.
pub fn agent_id_from_type_name(type_name: &str) -> String {
    let base = type_name.split('<').next().unwrap_or(type_name);
    let short = base.rsplit("::").next().unwrap_or(base);
    let mut id = String::with_capacity(short.len() + 4);
    let chars: Vec<char> = short.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if c.is_uppercase() {
            let prev_lower =
                i > 0 && (chars[i - 1].is_lowercase() || chars[i - 1].is_ascii_digit());
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
            let prev_upper = i > 0 && chars[i - 1].is_uppercase();
            if i > 0 && (prev_lower || (prev_upper && next_lower)) {
                id.push('_');
            }
            id.extend(c.to_lowercase());
        } else {
            id.push(c);
        }
    }
    id
}

/// A type-erased agent plus what the runtime needs to know about it.
pub(crate) struct AgentRef<U: Send + 'static> {
    pub agent: Arc<dyn Agent<U>>,
    pub type_id: TypeId,
    pub type_name: &'static str,
}

impl<U: Send + 'static> Clone for AgentRef<U> {
    fn clone(&self) -> Self {
        AgentRef {
            agent: self.agent.clone(),
            type_id: self.type_id,
            type_name: self.type_name,
        }
    }
}

impl<U: Send + 'static> AgentRef<U> {
    pub fn new<A: Agent<U>>(agent: A) -> Self {
        Self::from_arc(Arc::new(agent))
    }

    pub fn from_arc<A: Agent<U>>(agent: Arc<A>) -> Self {
        AgentRef {
            agent,
            type_id: TypeId::of::<A>(),
            type_name: std::any::type_name::<A>(),
        }
    }
}

/// Which conversation the next agent starts with.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum HandoffContext {
    /// The new agent's own [`Agent::chat_ctx`] (the default, as in the reference).
    #[default]
    Fresh,
    /// The caller's whole context.
    Full,
    /// The caller's last `n` user turns (a user message and everything after it).
    LastTurns(usize),
    /// One summary message of the caller's conversation, written by the session's model.
    Summary,
    /// This context.
    Custom(ChatContext),
}

/// Returned by a tool to hand the conversation to another agent.
///
/// The handoff happens after every other tool call of the same step has finished. The old
/// agent's `on_exit` runs, a handoff item is recorded, then the new agent's `on_enter` runs.
///
/// ```
/// use switchboard::{Agent, Handoff, HandoffContext};
/// struct Billing;
/// impl Agent for Billing {
///     fn instructions(&self) -> String { "You handle billing questions.".into() }
/// }
/// let handoff: Handoff = Handoff::to(Billing)
///     .with_context(HandoffContext::LastTurns(2))
///     .with_result("Transferring you to billing.");
/// assert_eq!(handoff.agent_id(), "billing");
/// ```
pub struct Handoff<U: Send + 'static = ()> {
    pub(crate) agent: AgentRef<U>,
    pub(crate) result: Option<Value>,
    pub(crate) context: HandoffContext,
}

impl<U: Send + 'static> Handoff<U> {
    /// Hands off to `agent`, with no spoken result (the old agent says nothing more).
    pub fn to<A: Agent<U>>(agent: A) -> Self {
        Handoff {
            agent: AgentRef::new(agent),
            result: None,
            context: HandoffContext::Fresh,
        }
    }

    /// Gives the tool an output; the old agent then speaks one last reply (with no tools)
    /// before the switch.
    pub fn with_result(mut self, result: impl Serialize) -> Self {
        self.result = serde_json::to_value(result).ok().filter(|v| !v.is_null());
        self
    }

    /// Chooses the conversation the new agent starts with.
    pub fn with_context(mut self, context: HandoffContext) -> Self {
        self.context = context;
        self
    }

    /// The new agent's id.
    pub fn agent_id(&self) -> String {
        self.agent.agent.id()
    }
}

impl<U: Send + 'static> fmt::Debug for Handoff<U> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handoff")
            .field("agent", &self.agent_id())
            .field("result", &self.result)
            .field("context", &self.context)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::agent_id_from_type_name as id;

    #[test]
    fn ids_from_type_names() {
        assert_eq!(id("my_crate::FrontDesk"), "front_desk");
        assert_eq!(id("GetEmailTask"), "get_email_task");
        assert_eq!(id("a::b::HTTPAgent"), "http_agent");
        assert_eq!(id("Agent2Go"), "agent2_go");
        assert_eq!(id("x::Wrapper<y::Inner>"), "wrapper");
        assert_eq!(id("lower"), "lower");
    }
}
