//! `frontdesk`: a clinic's front desk that answers from a tool and hands billing questions to a
//! billing agent.
//!
//! ```text
//! caller ──► FrontDesk ──get_opening_hours──► answers
//!                │
//!                └──transfer_to_billing──► Billing ──look_up_balance──► answers
//! ```

use std::sync::Arc;

use switchboard::chat::ChatContext;
use switchboard::testing::{ScriptedLlm, ScriptedReply};
use switchboard::tools::{FunctionTool, ToolError};
use switchboard::{Agent, AgentContext, Handoff, HandoffContext, RunContext, async_trait};

/// What the front desk learns about the caller.
#[derive(Debug, Default, Clone, PartialEq, serde::Serialize)]
pub struct Caller {
    /// The account number the caller gave billing, if any.
    pub account: Option<String>,
}

/// Arguments of `get_opening_hours`.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
pub struct HoursArgs {
    /// The day of the week, in lower case, e.g. "saturday".
    pub day: String,
}

/// Arguments of tools that take none.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
pub struct NoArgs {}

/// Arguments of `look_up_balance`.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
pub struct BalanceArgs {
    /// The caller's account number: six digits.
    #[schemars(length(min = 6, max = 6))]
    pub account: String,
}

/// The clinic's opening hours for a day, or `None` when it is closed.
pub fn opening_hours(day: &str) -> Option<&'static str> {
    match day.trim().to_lowercase().as_str() {
        "monday" | "tuesday" | "wednesday" | "thursday" | "friday" => Some("8:00 to 18:00"),
        "saturday" => Some("9:00 to 13:00"),
        _ => None,
    }
}

/// The front desk: answers opening-hour questions and transfers billing questions.
pub struct FrontDesk;

#[async_trait]
impl Agent<Caller> for FrontDesk {
    fn instructions(&self) -> String {
        "You are the front desk of Riverside Clinic. Answer questions about opening hours with \
         the get_opening_hours tool. Transfer any billing or payment question to billing. Be \
         brief and friendly."
            .into()
    }

    fn tools(self: Arc<Self>) -> Vec<FunctionTool<Caller>> {
        vec![
            FunctionTool::new(
                "get_opening_hours",
                "Look up the clinic's opening hours for one day of the week.",
                |_ctx: RunContext<Caller>, args: HoursArgs| async move {
                    match opening_hours(&args.day) {
                        Some(hours) => Ok(format!("Open {hours} on {}.", args.day)),
                        None if is_weekday_name(&args.day) => {
                            Ok(format!("Closed on {}.", args.day))
                        }
                        None => Err(ToolError::new(format!(
                            "`{}` is not a day of the week; ask the caller which day they mean",
                            args.day
                        ))),
                    }
                },
            ),
            FunctionTool::new(
                "transfer_to_billing",
                "Transfer the caller to the billing department.",
                |_ctx: RunContext<Caller>, _args: NoArgs| async move {
                    Handoff::to(Billing)
                        .with_context(HandoffContext::LastTurns(2))
                        .with_result("Transferring you to billing now.")
                },
            ),
        ]
    }

    async fn on_enter(&self, ctx: AgentContext<Caller>) -> switchboard::Result<()> {
        ctx.session()
            .say("Riverside Clinic, front desk. How can I help?")
            .await?;
        Ok(())
    }
}

fn is_weekday_name(day: &str) -> bool {
    matches!(
        day.trim().to_lowercase().as_str(),
        "monday" | "tuesday" | "wednesday" | "thursday" | "friday" | "saturday" | "sunday"
    )
}

/// Billing: looks up balances.
pub struct Billing;

#[async_trait]
impl Agent<Caller> for Billing {
    fn instructions(&self) -> String {
        "You are the billing desk of Riverside Clinic. Ask for the six-digit account number, \
         then look up the balance with look_up_balance."
            .into()
    }

    fn tools(self: Arc<Self>) -> Vec<FunctionTool<Caller>> {
        vec![FunctionTool::new(
            "look_up_balance",
            "Look up the balance of an account.",
            |ctx: RunContext<Caller>, args: BalanceArgs| async move {
                if !args.account.chars().all(|c| c.is_ascii_digit()) {
                    return Err(ToolError::new("an account number has only digits"));
                }
                ctx.userdata().account = Some(args.account.clone());
                // A real deployment would ask the billing system here.
                let cents: u32 = args.account.bytes().map(u32::from).sum::<u32>() * 7 % 20_000;
                Ok(format!(
                    "The balance of account {} is ${}.{:02}.",
                    args.account,
                    cents / 100,
                    cents % 100
                ))
            },
        )]
    }

    async fn on_enter(&self, ctx: AgentContext<Caller>) -> switchboard::Result<()> {
        ctx.session()
            .generate_reply(
                "Greet the caller as the billing desk and ask for their account number.",
            )
            .await?;
        Ok(())
    }

    fn chat_ctx(&self) -> ChatContext {
        ChatContext::new()
    }
}

/// The caller's lines of the scripted demo conversation.
pub const DEMO_CALLER_LINES: &[&str] = &[
    "Hi, are you open on Saturday?",
    "And on Sunday?",
    "I have a question about my bill.",
    "My account number is 482913.",
    "Thanks, that's all.",
];

/// A scripted model that plays the front desk and billing for the demo conversation, so the
/// workflow runs with no model at all. Lines it does not know get a polite fallback.
pub fn scripted_llm() -> ScriptedLlm {
    use serde_json::json;
    ScriptedLlm::new()
        // Matches transcripts of the lines too (voice demo: punctuation, digits).
        .with_fuzzy_keys(0.5)
        .on(
            DEMO_CALLER_LINES[0],
            ScriptedReply::tool("get_opening_hours", json!({"day": "saturday"})),
        )
        .on(
            DEMO_CALLER_LINES[1],
            ScriptedReply::tool("get_opening_hours", json!({"day": "sunday"})),
        )
        .on(
            DEMO_CALLER_LINES[2],
            ScriptedReply::tool("transfer_to_billing", json!({})),
        )
        .on(
            "after:transfer_to_billing",
            ScriptedReply::text("Of course, let me transfer you to billing."),
        )
        .on(
            "Greet the caller as the billing desk and ask for their account number.",
            ScriptedReply::text("Billing desk here. Could I have your six-digit account number?"),
        )
        .on(
            DEMO_CALLER_LINES[3],
            ScriptedReply::tool("look_up_balance", json!({"account": "482913"})),
        )
        .on(
            DEMO_CALLER_LINES[4],
            ScriptedReply::text("You're welcome. Goodbye!"),
        )
        .on("after:look_up_balance", ScriptedReply::echo_tool_output())
        .on("after:get_opening_hours", ScriptedReply::echo_tool_output())
        .otherwise(ScriptedReply::text(
            "Sorry, I can only help with opening hours and billing.",
        ))
}
