//! The agent example of the README, compiled and run so the README stays true.
//! Keep the code between the markers identical to the README's "Writing an agent" section.

// README:BEGIN
use std::sync::Arc;

use serde_json::json;
use switchboard::testing::{ScriptedLlm, ScriptedReply};
use switchboard::{AgentContext, AgentSession, Handoff, RunContext, ToolError, agent};

#[derive(Default)]
struct Caller {
    day: Option<String>,
}

struct FrontDesk;

#[agent(instructions = "You are the front desk of a clinic. Be brief.")]
impl FrontDesk {
    async fn on_enter(&self, ctx: AgentContext<Caller>) -> switchboard::Result<()> {
        ctx.session().say("Front desk, how can I help?").await?;
        Ok(())
    }

    /// Look up the clinic's opening hours for one day.
    #[tool]
    async fn get_opening_hours(
        &self,
        ctx: RunContext<Caller>,
        /// The day of the week, e.g. "saturday".
        day: String,
    ) -> Result<String, ToolError> {
        ctx.userdata().day = Some(day.clone());
        match day.as_str() {
            "sunday" => Ok("Closed on Sunday.".into()),
            "saturday" => Ok("Open 9:00 to 13:00 on Saturday.".into()),
            other => Err(ToolError::new(format!("no hours known for {other}"))),
        }
    }

    /// Transfer the caller to billing.
    #[tool]
    async fn transfer_to_billing(&self, _ctx: RunContext<Caller>) -> Handoff<Caller> {
        Handoff::to(Billing)
    }
}

struct Billing;

#[agent(instructions = "You answer billing questions.", userdata = Caller)]
impl Billing {}

#[tokio::test(start_paused = true)]
async fn answers_opening_hours() {
    let llm = Arc::new(
        ScriptedLlm::new()
            .on(
                "Are you open on Saturday?",
                ScriptedReply::tool("get_opening_hours", json!({"day": "saturday"})),
            )
            .on("after:get_opening_hours", ScriptedReply::echo_tool_output()),
    );
    let session = AgentSession::with_userdata(Caller::default())
        .llm(llm.clone())
        .build();
    session.start(FrontDesk).await.unwrap();
    let result = session.run("Are you open on Saturday?").await.unwrap();
    assert_eq!(
        result.last_reply().as_deref(),
        Some("Open 9:00 to 13:00 on Saturday.")
    );
    assert_eq!(session.userdata().day.as_deref(), Some("saturday"));
    assert_eq!(llm.request_count(), 2);
}
// README:END

#[tokio::test(start_paused = true)]
async fn transfers_to_billing() {
    let llm = Arc::new(ScriptedLlm::new().on(
        "billing please",
        ScriptedReply::tool("transfer_to_billing", json!({})),
    ));
    let session = AgentSession::with_userdata(Caller::default())
        .llm(llm)
        .build();
    session.start(FrontDesk).await.unwrap();
    let result = session.run("billing please").await.unwrap();
    assert!(result.events().iter().any(|e| e.is_handoff_to::<Billing>()));
    assert_eq!(session.current_agent_id().await.as_deref(), Some("billing"));
}
