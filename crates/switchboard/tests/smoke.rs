use std::sync::Arc;

use serde_json::json;
use switchboard::testing::{ScriptedLlm, ScriptedReply};
use switchboard::tools::FunctionTool;
use switchboard::{Agent, AgentContext, AgentSession, Handoff, RunContext, RunEvent, async_trait};

struct Billing;

#[async_trait]
impl Agent for Billing {
    fn instructions(&self) -> String {
        "billing".into()
    }
    async fn on_enter(&self, ctx: AgentContext) -> switchboard::Result<()> {
        ctx.session().generate_reply("Greet the caller.").await?;
        Ok(())
    }
}

struct FrontDesk;

#[derive(serde::Deserialize, schemars::JsonSchema)]
struct NoArgs {}

impl Agent for FrontDesk {
    fn instructions(&self) -> String {
        "front desk".into()
    }
    fn tools(self: Arc<Self>) -> Vec<FunctionTool> {
        vec![
            FunctionTool::new(
                "get_hours",
                "Opening hours.",
                |_ctx: RunContext, _a: NoArgs| async { "9 to 5" },
            ),
            FunctionTool::new(
                "to_billing",
                "Transfer.",
                |_ctx: RunContext, _a: NoArgs| async { Handoff::to(Billing) },
            ),
        ]
    }
}

#[tokio::test(start_paused = true)]
async fn tool_turn_and_handoff() {
    let llm = Arc::new(
        ScriptedLlm::new()
            .on(
                "what are your hours",
                ScriptedReply::tool("get_hours", json!({})),
            )
            .on(
                "after:get_hours",
                ScriptedReply::text("We are open 9 to 5."),
            )
            .on(
                "billing please",
                ScriptedReply::tool("to_billing", json!({})),
            )
            .on("Greet the caller.", ScriptedReply::text("Billing here.")),
    );
    let session = AgentSession::builder().llm(llm.clone()).build();
    let start = session.start(FrontDesk).await.unwrap();
    assert!(
        start
            .events()
            .iter()
            .any(|e| matches!(e, RunEvent::AgentHandoff { .. }))
    );
    let result = session.run("what are your hours").await.unwrap();
    let kinds: Vec<_> = result.events().iter().map(|e| e.kind_name()).collect();
    assert_eq!(
        kinds,
        ["function_call", "function_call_output", "message"],
        "{}",
        result.describe(None)
    );
    assert_eq!(result.last_reply().as_deref(), Some("We are open 9 to 5."));
    let result = session.run("billing please").await.unwrap();
    println!("{}", result.describe(None));
    assert!(result.events()[2].is_handoff_to::<Billing>());
    assert_eq!(result.last_reply().as_deref(), Some("Billing here."));
    assert_eq!(session.current_agent_id().await.as_deref(), Some("billing"));
    session.close().await;
    assert!(session.run("hello").await.is_err());
}
