//! A crate that depends on `switchboard` only (no serde, no schemars) and denies warnings.
#![deny(warnings, missing_docs)]

use switchboard::tools::ToolError;
use switchboard::{AgentContext, Handoff, RunContext, agent, tool};

/// The session's user data.
#[derive(Default)]
pub struct Intake {
    /// Lookups so far.
    pub lookups: u32,
}

/// Look up the opening hours for a day.
#[tool]
pub async fn get_hours(
    ctx: RunContext<Intake>,
    /// The day to look up.
    day: String,
    /// Include holidays.
    #[allow(unused_mut)]
    mut holidays: Option<bool>,
    /// Weeks ahead, 0 to 4.
    #[schemars(range(max = 4))]
    #[serde(rename = "weeks")]
    weeks_ahead: Option<u8>,
) -> Result<String, ToolError> {
    ctx.userdata().lookups += 1;
    Ok(format!("{day}: 9 to 5 ({holidays:?}, {weeks_ahead:?})"))
}

/// No parameters, any user data.
#[tool(name = "ping_line", description = "Check the line.", ignore_on_enter)]
pub(crate) async fn ping() -> &'static str {
    "pong"
}

/// Billing.
pub struct Billing;

#[agent(instructions = "billing", userdata = Intake)]
impl Billing {}

/// The front desk.
pub struct FrontDesk {
    clinic: String,
}

#[agent(instructions = prompt, id = "desk", tools = [get_hours_tool(), ping_tool()])]
impl FrontDesk {
    fn prompt(&self) -> String {
        format!("front desk of {}", self.clinic)
    }

    async fn on_enter(&self, ctx: AgentContext<Intake>) -> switchboard::Result<()> {
        ctx.session().generate_reply("Greet the caller.").await?;
        Ok(())
    }

    async fn on_exit(&self, _ctx: AgentContext<Intake>) -> switchboard::Result<()> {
        Ok(())
    }

    /// Book an appointment.
    #[tool]
    async fn book(
        &self,
        ctx: RunContext<Intake>,
        /// The day, as an ISO date.
        date: String,
        /// How many people.
        count: u32,
    ) -> Result<String, ToolError> {
        ctx.userdata().lookups += count;
        Ok(format!("{} booked {date}", self.clinic))
    }

    /// Transfer.
    #[tool]
    async fn to_billing(&self) -> Handoff<Intake> {
        Handoff::to(Billing)
    }
}

fn main() {
    use std::sync::Arc;
    use switchboard::Agent;
    let desk = Arc::new(FrontDesk { clinic: "x".into() });
    assert_eq!(desk.id(), "desk");
    assert_eq!(desk.instructions(), "front desk of x");
    let names: Vec<String> = desk.tools().iter().map(|t| t.name().to_owned()).collect();
    assert_eq!(names, ["book", "to_billing", "get_hours", "ping_line"]);
    let tool: switchboard::FunctionTool<Intake> = get_hours_tool();
    let p = &tool.definition().parameters;
    assert_eq!(p["required"], serde_json::json!(["day"]));
    assert_eq!(p["properties"]["weeks"]["maximum"], 4);
}
