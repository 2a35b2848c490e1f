//! Tool mocks: replace a tool's implementation for one agent type, keeping its schema.

use std::sync::Arc;

use serde_json::json;
use switchboard::testing::{ScriptedLlm, ScriptedReply};
use switchboard::tools::FunctionTool;
use switchboard::{Agent, AgentSession, RunContext, RunEvent};

#[derive(serde::Deserialize, schemars::JsonSchema)]
struct DayArgs {
    /// The day.
    day: String,
}

fn hours_tool() -> FunctionTool {
    FunctionTool::new(
        "get_hours",
        "Opening hours.",
        |_ctx: RunContext, a: DayArgs| async move { format!("real hours for {}", a.day) },
    )
}

struct Desk;
impl Agent for Desk {
    fn instructions(&self) -> String {
        "desk".into()
    }
    fn tools(self: Arc<Self>) -> Vec<FunctionTool> {
        vec![hours_tool()]
    }
}

struct Other;
impl Agent for Other {
    fn instructions(&self) -> String {
        "other".into()
    }
    fn tools(self: Arc<Self>) -> Vec<FunctionTool> {
        vec![hours_tool()]
    }
}

fn llm() -> Arc<ScriptedLlm> {
    Arc::new(
        ScriptedLlm::new()
            .on(
                "hours",
                ScriptedReply::tool("get_hours", json!({"day": "monday"})),
            )
            .on("after:get_hours", ScriptedReply::echo_tool_output()),
    )
}

fn output(result: &switchboard::RunResult) -> String {
    result
        .events()
        .iter()
        .find_map(|e| match e {
            RunEvent::FunctionCallOutput(o) => Some(o.output.clone()),
            _ => None,
        })
        .unwrap_or_default()
}

#[tokio::test(start_paused = true)]
async fn a_scoped_mock_replaces_the_tool_until_dropped() {
    let llm = llm();
    let session = AgentSession::builder().llm(llm.clone()).build();
    session.start(Desk).await.unwrap();
    {
        let _mock =
            session.mock_tool::<Desk, _, _, _>("get_hours", |_ctx: RunContext, args| async move {
                format!("mocked for {}", args["day"].as_str().unwrap_or("?"))
            });
        assert_eq!(
            output(&session.run("hours").await.unwrap()),
            "mocked for monday"
        );
        // The model still sees the real schema.
        let request = llm.requests().last().cloned().unwrap();
        let tool = request
            .tools
            .iter()
            .find(|t| t.name == "get_hours")
            .unwrap();
        assert_eq!(tool.parameters["required"], json!(["day"]));
    }
    assert_eq!(
        output(&session.run("hours").await.unwrap()),
        "real hours for monday"
    );
}

#[tokio::test(start_paused = true)]
async fn a_kept_mock_applies_only_to_its_agent_type() {
    let session = AgentSession::builder().llm(llm()).build();
    session.start(Other).await.unwrap();
    session
        .mock_tool::<Desk, _, _, _>("get_hours", |_ctx: RunContext, _args| async { "mocked" })
        .keep();
    assert_eq!(
        output(&session.run("hours").await.unwrap()),
        "real hours for monday"
    );
    session.update_agent(Desk).unwrap();
    assert_eq!(output(&session.run("hours").await.unwrap()), "mocked");
}
