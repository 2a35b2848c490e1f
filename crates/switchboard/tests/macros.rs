//! `#[tool]` and `#[agent]`: the schemas they derive (snapshots), and tools and agents they
//! generate running in a real session.

#![deny(warnings)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{Value, json};
use switchboard::chat::{ChatContext, ChatMessage};
use switchboard::llm::Llm;
use switchboard::testing::{ScriptedLlm, ScriptedReply};
use switchboard::tools::{FunctionTool, Json, ToolError, ToolFlags};
use switchboard::{
    Agent, AgentContext, AgentSession, Handoff, RunContext, RunEvent, RunResult, StopResponse,
    agent, tool,
};

// ---------------------------------------------------------------------------------------------
// Tool signatures
// ---------------------------------------------------------------------------------------------

/// Check that the line works.
#[tool]
async fn ping() -> &'static str {
    "pong"
}

/// Say hello to someone.
#[tool]
async fn greet(
    /// Who to greet.
    name: String,
) -> String {
    format!("Hello, {name}!")
}

/// Search the knowledge base.
#[tool]
async fn search(
    /// What to look for.
    query: String,
    /// The most results to return.
    limit: Option<u32>,
    /// Also search archived articles.
    archived: Option<bool>,
) -> Vec<String> {
    let n = limit.unwrap_or(2) as usize;
    let suffix = if archived == Some(true) {
        " (archived)"
    } else {
        ""
    };
    (0..n).map(|i| format!("{query} #{i}{suffix}")).collect()
}

/// Get the weather forecast.
#[tool]
async fn forecast(
    /// The city.
    city: String,
    /// Days ahead, 1 to 7.
    #[schemars(range(min = 1, max = 7))]
    days: u8,
    /// The lowest temperature of interest, in °C.
    #[schemars(range(min = -60, max = 60))]
    min_temp: Option<i32>,
) -> String {
    format!("{city}: sunny for {days} days (min {min_temp:?})")
}

/// Convert an amount of money.
#[tool]
async fn convert(
    /// The amount, in euros.
    #[schemars(range(min = 0.0))]
    amount: f64,
    /// The exchange rate.
    rate: f64,
) -> f64 {
    amount * rate
}

/// Turn notifications on or off.
#[tool]
async fn set_notifications(
    /// Whether notifications are sent.
    enabled: bool,
) -> bool {
    enabled
}

/// Tag the current ticket.
#[tool]
async fn tag_ticket(
    /// Tags to add, at most 5.
    #[schemars(length(max = 5))]
    tags: Vec<String>,
) -> u64 {
    tags.len() as u64
}

/// A postal address.
#[derive(Debug, serde::Deserialize, serde::Serialize, schemars::JsonSchema)]
struct Address {
    /// The street and number.
    street: String,
    /// The postal code.
    zip: String,
    /// Apartment or suite, if any.
    unit: Option<String>,
}

/// Ship the order to an address.
#[tool]
async fn ship(
    /// Where to ship.
    address: Address,
    /// Use express delivery.
    express: Option<bool>,
) -> Json<Address> {
    let _ = express;
    Json(address)
}

/// How urgent a ticket is.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
enum Priority {
    Low,
    Normal,
    Urgent,
}

/// File a support ticket.
#[tool]
async fn file_ticket(
    /// One line describing the problem.
    summary: String,
    /// How urgent it is.
    priority: Priority,
) -> String {
    format!("{summary} ({priority:?})")
}

/// Book an appointment.
///
/// Only weekdays can be booked; the caller must give
/// a date and a time.
#[tool]
async fn book_slot(
    /// The day, as an ISO date
    /// (for example 2025-03-14).
    date: String,
    /// The time, 24-hour `HH:MM`.
    time: String,
) -> Result<String, ToolError> {
    if date.is_empty() {
        return Err(ToolError::new("a date is needed"));
    }
    Ok(format!("booked {date} {time}"))
}

/// This doc comment is replaced by the description option.
#[tool(
    name = "lookup_customer",
    description = "Find a customer by phone number."
)]
async fn find(
    /// The phone number, in E.164 form.
    phone: String,
) -> Option<String> {
    (phone == "+15550100").then(|| "Ada Lovelace".to_owned())
}

/// End the call without a reply.
#[tool(ignore_on_enter)]
async fn end_call(ctx: RunContext<Intake>) -> StopResponse {
    ctx.userdata().ended = true;
    StopResponse
}

/// Parameters may be `mut`, use raw identifiers, and carry serde attributes.
#[tool]
async fn odd_names(
    /// A keyword as a name.
    r#type: String,
    /// Renamed for the model.
    #[serde(rename = "count")]
    mut n: u32,
) -> String {
    n += 1;
    format!("{type} {n}", type = r#type)
}

/// A type that happens to be named like the builder's usual type parameter.
#[derive(serde::Deserialize, schemars::JsonSchema)]
struct U {
    n: u32,
}

/// Read a `U`.
#[tool]
async fn read_u(
    /// The value.
    value: U,
) -> u32 {
    value.n
}

/// Who is answering.
#[tool]
async fn whoami(ctx: RunContext) -> String {
    ctx.agent_id().to_owned()
}

struct Configured;

#[agent(instructions = "configured")]
impl Configured {
    /// Compiled in.
    #[tool]
    #[cfg(test)]
    async fn present(&self) -> bool {
        true
    }

    /// Compiled out, with its tool.
    #[cfg(not(test))]
    #[tool]
    async fn absent(&self) -> bool {
        false
    }
}

#[test]
fn builders_types_and_cfg() {
    let read_u: FunctionTool<Intake> = read_u_tool();
    assert_eq!(read_u.definition().parameters["required"], json!(["value"]));
    let whoami: FunctionTool<()> = whoami_tool();
    assert_eq!(whoami.definition().parameters["properties"], json!({}));
    let names: Vec<String> = Arc::new(Configured)
        .tools()
        .iter()
        .map(|t| t.name().to_owned())
        .collect();
    assert_eq!(names, ["present"]);
}

fn snapshot(tool: &FunctionTool<impl Send + 'static>) -> Value {
    let definition = tool.definition();
    json!({
        "name": definition.name,
        "description": definition.description,
        "ignore_on_enter": tool.flags().ignore_on_enter,
        "parameters": definition.parameters,
    })
}

#[test]
fn schema_no_params() {
    insta::assert_json_snapshot!("no_params", snapshot(&ping_tool::<()>()));
}

#[test]
fn schema_one_string() {
    insta::assert_json_snapshot!("one_string", snapshot(&greet_tool::<()>()));
}

#[test]
fn schema_option_params() {
    insta::assert_json_snapshot!("option_params", snapshot(&search_tool::<()>()));
}

#[test]
fn schema_integer_ranges() {
    insta::assert_json_snapshot!("integer_ranges", snapshot(&forecast_tool::<()>()));
}

#[test]
fn schema_floats() {
    insta::assert_json_snapshot!("floats", snapshot(&convert_tool::<()>()));
}

#[test]
fn schema_bool() {
    insta::assert_json_snapshot!("bool", snapshot(&set_notifications_tool::<()>()));
}

#[test]
fn schema_vec_of_strings() {
    insta::assert_json_snapshot!("vec_of_strings", snapshot(&tag_ticket_tool::<()>()));
}

#[test]
fn schema_nested_struct() {
    insta::assert_json_snapshot!("nested_struct", snapshot(&ship_tool::<()>()));
}

#[test]
fn schema_unit_enum() {
    insta::assert_json_snapshot!("unit_enum", snapshot(&file_ticket_tool::<()>()));
}

#[test]
fn schema_doc_comments() {
    insta::assert_json_snapshot!("doc_comments", snapshot(&book_slot_tool::<()>()));
}

#[test]
fn schema_renamed_tool() {
    insta::assert_json_snapshot!("renamed", snapshot(&find_tool::<()>()));
}

#[test]
fn schema_ignore_on_enter_with_context() {
    let tool: FunctionTool<Intake> = end_call_tool();
    assert_eq!(tool.flags(), ToolFlags::IGNORE_ON_ENTER);
    assert_eq!(greet_tool::<()>().flags(), ToolFlags::NONE);
    insta::assert_json_snapshot!("ignore_on_enter", snapshot(&tool));
}

#[test]
fn schema_odd_parameter_names() {
    insta::assert_json_snapshot!("odd_names", snapshot(&odd_names_tool::<()>()));
}

#[test]
fn strict_schemas() {
    let strict = |tool: FunctionTool| tool.definition().strict_parameters.clone().unwrap();
    insta::assert_json_snapshot!("strict_option_params", strict(search_tool()));
    insta::assert_json_snapshot!("strict_nested_struct", strict(ship_tool()));
}

#[test]
fn agent_tool_schemas() {
    let desk = Arc::new(FrontDesk::new());
    let tools = desk.tools();
    let all: Vec<Value> = tools.iter().map(snapshot).collect();
    insta::assert_json_snapshot!("agent_tools", all);
}

#[tokio::test]
async fn tool_functions_stay_callable() {
    assert_eq!(ping().await, "pong");
    assert_eq!(greet("Ada".into()).await, "Hello, Ada!");
    assert_eq!(search("x".into(), Some(1), None).await, ["x #0"]);
    assert_eq!(convert(2.0, 1.5).await, 3.0);
    assert!(book_slot(String::new(), "10:00".into()).await.is_err());
    assert_eq!(odd_names("a".into(), 1).await, "a 2");
    assert_eq!(FrontDesk::new().price_of(2).await, "2 visits cost 160 EUR");
    assert_eq!(FrontDesk::opening_hours().await, "9:00 to 17:00");
}

// ---------------------------------------------------------------------------------------------
// Agents
// ---------------------------------------------------------------------------------------------

#[derive(Default)]
struct Intake {
    hours_lookups: u32,
    forecasts: u32,
    booked: Vec<String>,
    greeted: u32,
    turns: u32,
    ended: bool,
}

/// Look up the opening hours for a day.
#[tool]
async fn get_hours(
    ctx: RunContext<Intake>,
    /// The day to look up, e.g. "monday".
    day: String,
    /// Include holidays.
    holidays: Option<bool>,
) -> Result<String, ToolError> {
    ctx.userdata().hours_lookups += 1;
    match (day.as_str(), holidays) {
        ("sunday", _) => Err(ToolError::new("closed on Sundays")),
        (_, Some(true)) => Ok(format!("{day}: 9 to 5, holidays 10 to 2")),
        _ => Ok(format!("{day}: 9 to 5")),
    }
}

/// Get the weather forecast, counting calls.
#[tool(name = "forecast")]
async fn counted_forecast(
    ctx: RunContext<Intake>,
    /// Days ahead, 1 to 7.
    #[schemars(range(min = 1, max = 7))]
    days: u8,
) -> String {
    ctx.userdata().forecasts += 1;
    format!("sunny for {days} days")
}

/// An agent whose tools are free functions.
struct Receptionist;

#[agent(
    instructions = "You answer questions about opening hours.",
    userdata = Intake,
    tools = [get_hours_tool(), counted_forecast_tool()]
)]
impl Receptionist {}

/// The same, written by hand.
struct HandWritten;

impl Agent<Intake> for HandWritten {
    fn instructions(&self) -> String {
        "hand written".into()
    }
    fn tools(self: Arc<Self>) -> Vec<FunctionTool<Intake>> {
        vec![get_hours_tool(), end_call_tool()]
    }
}

struct Billing {
    greetings: Arc<AtomicUsize>,
}

#[agent(instructions = "You handle billing.", userdata = Intake)]
impl Billing {
    async fn on_enter(&self, ctx: AgentContext<Intake>) -> switchboard::Result<()> {
        self.greetings.fetch_add(1, Ordering::SeqCst);
        ctx.userdata().greeted += 1;
        ctx.session().generate_reply("Greet the caller.").await?;
        Ok(())
    }
}

const FRONT_DESK_ID: &str = "desk";

struct FrontDesk {
    clinic: String,
    price: u32,
    billing_greetings: Arc<AtomicUsize>,
}

impl FrontDesk {
    fn new() -> Self {
        FrontDesk {
            clinic: "Elm Street Clinic".into(),
            price: 80,
            billing_greetings: Arc::new(AtomicUsize::new(0)),
        }
    }
}

#[agent(instructions = prompt, id = FRONT_DESK_ID)]
impl FrontDesk {
    fn prompt(&self) -> String {
        format!("You are the front desk of {}. Be brief.", self.clinic)
    }

    async fn on_enter(&self, ctx: AgentContext<Intake>) -> switchboard::Result<()> {
        ctx.userdata().greeted += 1;
        ctx.session().generate_reply("Greet the caller.").await?;
        Ok(())
    }

    async fn on_user_turn_completed(
        &self,
        ctx: AgentContext<Intake>,
        _turn_ctx: &mut ChatContext,
        message: &mut ChatMessage,
    ) -> switchboard::Result<()> {
        ctx.userdata().turns += 1;
        if message.text() == "never mind" {
            return Err(StopResponse.into());
        }
        Ok(())
    }

    /// Book an appointment.
    #[tool]
    async fn book(
        &self,
        ctx: RunContext<Intake>,
        /// The day, as an ISO date.
        date: String,
        /// The time, 24-hour `HH:MM`.
        time: Option<String>,
    ) -> Result<String, ToolError> {
        let slot = format!("{date} {}", time.as_deref().unwrap_or("09:00"));
        ctx.userdata().booked.push(slot.clone());
        Ok(format!("Booked {slot} at {}.", self.clinic))
    }

    /// The price of some visits.
    #[switchboard::tool(name = "price")]
    async fn price_of(
        &self,
        /// How many visits, 1 to 10.
        #[schemars(range(min = 1, max = 10))]
        visits: u32,
    ) -> String {
        format!("{visits} visits cost {} EUR", visits * self.price)
    }

    /// Today's opening hours.
    #[tool]
    async fn opening_hours() -> &'static str {
        "9:00 to 17:00"
    }

    /// Transfer the caller to billing.
    #[tool(ignore_on_enter)]
    async fn to_billing(self: Arc<Self>, _ctx: RunContext<Intake>) -> Handoff<Intake> {
        Handoff::to(Billing {
            greetings: self.billing_greetings.clone(),
        })
        .with_result("Transferring you to billing.")
    }

    fn unrelated_helper(&self) -> usize {
        self.clinic.len()
    }
}

/// An agent with its own model and no tools; `instructions` is a method of the block.
struct Night {
    llm: Arc<ScriptedLlm>,
}

#[agent(llm = model)]
impl Night {
    fn instructions(&self) -> String {
        "Night line.".into()
    }

    fn model(&self) -> Option<Arc<dyn Llm>> {
        Some(self.llm.clone())
    }
}

fn outputs(result: &RunResult) -> Vec<(String, String, bool)> {
    result
        .events()
        .iter()
        .filter_map(|e| match e {
            RunEvent::FunctionCallOutput(o) => Some((o.name.clone(), o.output.clone(), o.is_error)),
            _ => None,
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn free_function_tools_on_an_agent() {
    let llm = Arc::new(
        ScriptedLlm::new()
            .on(
                "hours on monday?",
                ScriptedReply::tool("get_hours", json!({"day": "monday"})),
            )
            .on(
                "and with holidays?",
                ScriptedReply::tool("get_hours", json!({"day": "friday", "holidays": true})),
            )
            .on(
                "sunday?",
                ScriptedReply::tool("get_hours", json!({"day": "sunday"})),
            )
            .on("after:get_hours", ScriptedReply::text("Anything else?")),
    );
    let session = AgentSession::with_userdata(Intake::default())
        .llm(llm)
        .build();
    session.start(Receptionist).await.unwrap();
    assert_eq!(
        session.current_agent_id().await.as_deref(),
        Some("receptionist")
    );

    let result = session.run("hours on monday?").await.unwrap();
    let kinds: Vec<_> = result.events().iter().map(RunEvent::kind_name).collect();
    assert_eq!(
        kinds,
        ["function_call", "function_call_output", "message"],
        "{}",
        result.describe(None)
    );
    assert_eq!(
        outputs(&result),
        [("get_hours".into(), "monday: 9 to 5".into(), false)]
    );
    let result = session.run("and with holidays?").await.unwrap();
    assert_eq!(outputs(&result)[0].1, "friday: 9 to 5, holidays 10 to 2");
    let result = session.run("sunday?").await.unwrap();
    assert_eq!(
        outputs(&result),
        [("get_hours".into(), "closed on Sundays".into(), true)]
    );
    assert_eq!(session.userdata().hours_lookups, 3);
    session.close().await;
}

#[tokio::test(start_paused = true)]
async fn free_function_tools_on_a_hand_written_agent() {
    let llm = Arc::new(
        ScriptedLlm::new()
            .on(
                "hours?",
                ScriptedReply::tool("get_hours", json!({"day": "tuesday"})),
            )
            .on("after:get_hours", ScriptedReply::text("Open."))
            .on("bye", ScriptedReply::tool("end_call", json!({}))),
    );
    let session = AgentSession::with_userdata(Intake::default())
        .llm(llm.clone())
        .build();
    session.start(HandWritten).await.unwrap();
    let result = session.run("hours?").await.unwrap();
    assert_eq!(outputs(&result)[0].1, "tuesday: 9 to 5");
    assert_eq!(result.last_reply().as_deref(), Some("Open."));
    let result = session.run("bye").await.unwrap();
    let kinds: Vec<_> = result.events().iter().map(RunEvent::kind_name).collect();
    assert_eq!(
        kinds,
        ["function_call", "function_call_output"],
        "{}",
        result.describe(None)
    );
    assert!(session.userdata().ended);
    let offered: Vec<String> = llm.requests()[0]
        .tools
        .iter()
        .map(|t| t.name.clone())
        .collect();
    assert_eq!(offered, ["get_hours", "end_call"]);
    session.close().await;
}

#[tokio::test(start_paused = true)]
async fn agent_methods_hooks_and_handoff() {
    let llm = Arc::new(
        ScriptedLlm::new()
            .on("Greet the caller.", ScriptedReply::text("Hello!"))
            .on(
                "book me on friday",
                ScriptedReply::tool("book", json!({"date": "2025-03-14"})),
            )
            .on("after:book", ScriptedReply::text("Done."))
            .on(
                "how much?",
                ScriptedReply::tool("price", json!({"visits": 3})),
            )
            .on("after:price", ScriptedReply::text("240 euros."))
            .on("when?", ScriptedReply::tool("opening_hours", json!({})))
            .on("after:opening_hours", ScriptedReply::text("Nine to five."))
            .on(
                "billing please",
                ScriptedReply::tool("to_billing", json!({})),
            )
            .on("after:to_billing", ScriptedReply::text("One moment.")),
    );
    let desk = FrontDesk::new();
    let billing_greetings = desk.billing_greetings.clone();
    assert_eq!(desk.unrelated_helper(), 17);
    let session = AgentSession::with_userdata(Intake::default())
        .llm(llm.clone())
        .build();

    // on_enter ran and greeted; `id` and `instructions` come from the options.
    let start = session.start(desk).await.unwrap();
    assert_eq!(
        start.last_reply().as_deref(),
        Some("Hello!"),
        "{}",
        start.describe(None)
    );
    assert_eq!(session.current_agent_id().await.as_deref(), Some("desk"));
    assert_eq!(session.userdata().greeted, 1);
    let first = &llm.requests()[0];
    assert!(
        format!("{:?}", first.context).contains("You are the front desk of Elm Street Clinic."),
        "{:?}",
        first.context
    );
    // `to_billing` is hidden inside on_enter.
    let offered: Vec<String> = first.tools.iter().map(|t| t.name.clone()).collect();
    assert_eq!(offered, ["book", "price", "opening_hours"]);

    let result = session.run("book me on friday").await.unwrap();
    assert_eq!(
        outputs(&result),
        [(
            "book".into(),
            "Booked 2025-03-14 09:00 at Elm Street Clinic.".into(),
            false
        )]
    );
    assert_eq!(session.userdata().booked, ["2025-03-14 09:00"]);
    let result = session.run("how much?").await.unwrap();
    assert_eq!(outputs(&result)[0].1, "3 visits cost 240 EUR");
    let result = session.run("when?").await.unwrap();
    assert_eq!(outputs(&result)[0].1, "9:00 to 17:00");

    // on_user_turn_completed ran for every turn, and can stop the reply.
    let requests = llm.request_count();
    let result = session.run("never mind").await.unwrap();
    assert!(result.events().is_empty(), "{}", result.describe(None));
    assert_eq!(llm.request_count(), requests);
    assert_eq!(session.userdata().turns, 4);

    // The handoff: a `self: Arc<Self>` tool returning `Handoff`, then Billing's on_enter.
    let result = session.run("billing please").await.unwrap();
    let handoff = result
        .events()
        .iter()
        .position(|e| e.is_handoff_to::<Billing>())
        .unwrap_or_else(|| panic!("no handoff:\n{}", result.describe(None)));
    assert!(handoff > 0);
    assert_eq!(session.current_agent_id().await.as_deref(), Some("billing"));
    assert_eq!(billing_greetings.load(Ordering::SeqCst), 1);
    assert_eq!(session.userdata().greeted, 2);
    assert_eq!(result.last_reply().as_deref(), Some("Hello!"));
    session.close().await;
}

#[tokio::test(start_paused = true)]
async fn agent_with_its_own_model() {
    let own = Arc::new(ScriptedLlm::new().on("hi", ScriptedReply::text("Night line here.")));
    let session_llm = Arc::new(ScriptedLlm::new());
    let session = AgentSession::builder().llm(session_llm.clone()).build();
    session.start(Night { llm: own.clone() }).await.unwrap();
    let result = session.run("hi").await.unwrap();
    assert_eq!(result.last_reply().as_deref(), Some("Night line here."));
    assert_eq!(session_llm.request_count(), 0);
    assert_eq!(own.request_count(), 1);
    session.close().await;
}

#[tokio::test(start_paused = true)]
async fn invalid_arguments_are_reported_and_the_body_does_not_run() {
    let llm = Arc::new(
        ScriptedLlm::new()
            .on(
                "out of range",
                ScriptedReply::tool("forecast", json!({"days": 9})),
            )
            .on(
                "wrong type",
                ScriptedReply::tool("forecast", json!({"days": "three"})),
            )
            .on("missing", ScriptedReply::tool("forecast", json!({})))
            .on("fine", ScriptedReply::tool("forecast", json!({"days": 2})))
            .on(
                "hours as a number",
                ScriptedReply::tool("get_hours", json!({"day": 3})),
            )
            .on("after:forecast", ScriptedReply::text("ok"))
            .on("after:get_hours", ScriptedReply::text("ok")),
    );
    let session = AgentSession::with_userdata(Intake::default())
        .llm(llm)
        .build();
    session.start(Receptionist).await.unwrap();

    let error_of = |result: &RunResult| {
        let outputs = outputs(result);
        assert_eq!(outputs.len(), 1, "{}", result.describe(None));
        assert!(outputs[0].2, "not an error: {}", result.describe(None));
        outputs[0].1.clone()
    };
    let result = session.run("out of range").await.unwrap();
    let message = error_of(&result);
    assert!(
        message.contains("`days`") && message.contains("at most 7"),
        "{message}"
    );
    let result = session.run("wrong type").await.unwrap();
    let message = error_of(&result);
    assert!(
        message.contains("days") && message.contains("invalid type"),
        "{message}"
    );
    let result = session.run("missing").await.unwrap();
    let message = error_of(&result);
    assert!(message.contains("missing field `days`"), "{message}");
    let result = session.run("hours as a number").await.unwrap();
    let message = error_of(&result);
    assert!(
        message.contains("day") && message.contains("invalid type"),
        "{message}"
    );
    assert_eq!(session.userdata().forecasts, 0);
    assert_eq!(session.userdata().hours_lookups, 0);

    let result = session.run("fine").await.unwrap();
    assert_eq!(outputs(&result)[0].1, "sunny for 2 days");
    assert_eq!(session.userdata().forecasts, 1);
    session.close().await;
}
