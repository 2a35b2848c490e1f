//! The benchmark workload: the same 11-turn restaurant cycle as the Python side (see
//! bench/README.md), with an instant scripted model.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use switchboard::chat::{ChatItem, Role};
use switchboard::llm::{
    ChatChunk, ChatRequest, FinishReason, Llm, LlmStream, ToolCallDelta, Usage,
};
use switchboard::tools::FunctionTool;
use switchboard::workflows::{TaskGroup, TaskGroupResults};
use switchboard::{
    Agent, AgentContext, AgentSession, AgentTask, Handoff, HandoffContext, RunContext, async_trait,
};

/// The session's user data.
#[derive(Debug, Default, Clone, PartialEq, serde::Serialize)]
pub struct Booking {
    pub day: Option<String>,
    pub email: Option<String>,
    pub name: Option<String>,
    pub guests: Option<u32>,
    pub transfers: u32,
}

/// One turn of the cycle.
pub struct Turn {
    pub kind: &'static str,
    pub user: &'static str,
    pub agent_after: &'static str,
    pub labels: &'static [&'static str],
}

/// The 11-turn cycle, with the requests the reference makes per turn.
pub const CYCLE: &[Turn] = &[
    Turn {
        kind: "plain",
        user: "hi there",
        agent_after: "greeter",
        labels: &["hi there"],
    },
    Turn {
        kind: "tool",
        user: "what are your opening hours",
        agent_after: "greeter",
        labels: &["what are your opening hours", "result:get_hours"],
    },
    Turn {
        kind: "handoff",
        user: "I would like to book a table",
        agent_after: "booking_agent",
        labels: &[
            "I would like to book a table",
            "result:transfer_to_booking",
            "enter:booking",
        ],
    },
    Turn {
        kind: "tool",
        user: "is friday evening available",
        agent_after: "booking_agent",
        labels: &["is friday evening available", "result:check_availability"],
    },
    Turn {
        kind: "task_start",
        user: "please take my contact details",
        agent_after: "contact_task",
        labels: &["please take my contact details", "enter:contact"],
    },
    Turn {
        kind: "task_complete",
        user: "my email is jane@example.com",
        agent_after: "booking_agent",
        labels: &["my email is jane@example.com", "result:collect_contact"],
    },
    Turn {
        kind: "group_start",
        user: "add the party details",
        agent_after: "name_task",
        labels: &["add the party details", "enter:name"],
    },
    Turn {
        kind: "group_step",
        user: "the name is Jane Doe",
        agent_after: "party_size_task",
        labels: &["the name is Jane Doe", "enter:party"],
    },
    Turn {
        kind: "group_complete",
        user: "four people",
        agent_after: "booking_agent",
        labels: &["four people", "summary", "result:collect_party_details"],
    },
    Turn {
        kind: "plain",
        user: "thanks that is all",
        agent_after: "booking_agent",
        labels: &["thanks that is all"],
    },
    Turn {
        kind: "handoff",
        user: "take me back to the front desk",
        agent_after: "greeter",
        labels: &[
            "take me back to the front desk",
            "result:back_to_greeter",
            "enter:greeter",
        ],
    },
];

fn answer(label: &str) -> Option<Result<&'static str, (&'static str, &'static str)>> {
    Some(match label {
        "enter:greeter" => Ok("Welcome to Bistro Rust, what can I do for you?"),
        "enter:booking" => Ok("This is reservations, which day are you thinking of?"),
        "enter:contact" => Ok("Please tell me an email address for the booking."),
        "enter:name" => Ok("Under which name should I put the table?"),
        "enter:party" => Ok("How many guests will there be in total?"),
        "hi there" => Ok("Hello! Ask me about our hours or I can book you a table."),
        "thanks that is all" => Ok("Glad to help, anything else before you go?"),
        "result:get_hours" => Ok("We open Tuesday to Sunday, from noon to eleven at night."),
        "result:transfer_to_booking" => Ok("Let me put you through to our reservations desk now."),
        "result:check_availability" => {
            Ok("Friday evening we still have seven and half past eight.")
        }
        "result:collect_contact" => Ok("Got it, the confirmation will go to jane@example.com."),
        "result:collect_party_details" => Ok("All set, a table for four in the name of Jane Doe."),
        "result:back_to_greeter" => Ok("Of course, sending you back to the front desk."),
        "summary" => Ok("Caller booked under Jane Doe for a party of four."),
        "what are your opening hours" => Err(("get_hours", "{}")),
        "I would like to book a table" => Err(("transfer_to_booking", "{}")),
        "is friday evening available" => Err(("check_availability", r#"{"day":"friday"}"#)),
        "please take my contact details" => Err(("collect_contact", "{}")),
        "my email is jane@example.com" => Err(("record_email", r#"{"email":"jane@example.com"}"#)),
        "add the party details" => Err(("collect_party_details", "{}")),
        "the name is Jane Doe" => Err(("record_name", r#"{"name":"Jane Doe"}"#)),
        "four people" => Err(("record_party_size", r#"{"size":4}"#)),
        "take me back to the front desk" => Err(("back_to_greeter", "{}")),
        _ => return None,
    })
}

/// The instant model: answers by the label of the request's newest item, streamed one word per
/// chunk (a tool call is one chunk), then usage.
#[derive(Default)]
pub struct BenchLlm {
    requests: AtomicUsize,
    /// Labels seen, when recording (verify mode).
    pub labels: Option<Mutex<Vec<String>>>,
}

impl BenchLlm {
    pub fn recording() -> Self {
        BenchLlm {
            requests: AtomicUsize::new(0),
            labels: Some(Mutex::new(Vec::new())),
        }
    }

    pub fn request_count(&self) -> usize {
        self.requests.load(Ordering::Relaxed)
    }

    fn label(request: &ChatRequest) -> String {
        let summarising = matches!(request.context.items().first(), Some(ChatItem::Message(m)) if m.role == Role::System && m.text().starts_with("Summarize the conversation"));
        if summarising {
            return "summary".into();
        }
        match request.context.last() {
            Some(ChatItem::Message(m)) => m.text(),
            Some(ChatItem::FunctionCallOutput(o)) => format!("result:{}", o.name),
            _ => String::new(),
        }
    }
}

impl Llm for BenchLlm {
    fn provider(&self) -> &str {
        "bench"
    }
    fn model(&self) -> &str {
        "instant"
    }
    fn chat(&self, request: ChatRequest) -> LlmStream {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let label = Self::label(&request);
        let mut chunks: Vec<Result<ChatChunk, switchboard::llm::LlmError>> = Vec::new();
        match answer(&label) {
            Some(Ok(text)) => {
                let mut words = text.split(' ').peekable();
                while let Some(word) = words.next() {
                    let piece = if words.peek().is_some() {
                        format!("{word} ")
                    } else {
                        word.to_owned()
                    };
                    chunks.push(Ok(ChatChunk::Text(piece)));
                }
                chunks.push(Ok(ChatChunk::Finish(FinishReason::Stop)));
            }
            Some(Err((name, arguments))) => {
                chunks.push(Ok(ChatChunk::ToolCall(ToolCallDelta {
                    index: 0,
                    id: Some(format!("call_{}", self.request_count())),
                    name: Some(name.to_owned()),
                    arguments: arguments.to_owned(),
                })));
                chunks.push(Ok(ChatChunk::Finish(FinishReason::ToolCalls)));
            }
            None => chunks.push(Ok(ChatChunk::Text("I did not catch that.".into()))),
        }
        chunks.push(Ok(ChatChunk::Usage(Usage {
            prompt_tokens: request.context.len() as u64,
            cached_tokens: 0,
            completion_tokens: 8,
        })));
        if let Some(labels) = &self.labels {
            labels.lock().unwrap_or_else(|p| p.into_inner()).push(label);
        }
        futures::stream::iter(chunks).boxed()
    }
}

#[derive(serde::Deserialize, schemars::JsonSchema)]
struct NoArgs {}

#[derive(serde::Deserialize, schemars::JsonSchema)]
struct Day {
    /// The day.
    day: String,
}

#[derive(serde::Deserialize, schemars::JsonSchema)]
struct Email {
    /// The email address.
    email: String,
}

#[derive(serde::Deserialize, schemars::JsonSchema)]
struct Name {
    /// The name.
    name: String,
}

#[derive(serde::Deserialize, schemars::JsonSchema)]
struct Size {
    /// The number of guests.
    size: u32,
}

/// The front desk.
pub struct Greeter;

#[async_trait]
impl Agent<Booking> for Greeter {
    fn instructions(&self) -> String {
        "You greet guests of Bistro Rust and answer questions about opening hours.".into()
    }
    fn tools(self: Arc<Self>) -> Vec<FunctionTool<Booking>> {
        vec![
            FunctionTool::new(
                "get_hours",
                "Opening hours.",
                |_ctx: RunContext<Booking>, _a: NoArgs| async { "Tuesday to Sunday, 12:00-23:00" },
            ),
            FunctionTool::new(
                "transfer_to_booking",
                "Transfer to reservations.",
                |ctx: RunContext<Booking>, _a: NoArgs| async move {
                    ctx.userdata().transfers += 1;
                    Handoff::to(BookingAgent)
                        .with_context(HandoffContext::Full)
                        .with_result("Transferring you to reservations.")
                },
            ),
        ]
    }
    async fn on_enter(&self, ctx: AgentContext<Booking>) -> switchboard::Result<()> {
        ctx.session().generate_reply("enter:greeter").await?;
        Ok(())
    }
}

/// Reservations.
pub struct BookingAgent;

#[async_trait]
impl Agent<Booking> for BookingAgent {
    fn instructions(&self) -> String {
        "You take table reservations for Bistro Rust.".into()
    }
    fn tools(self: Arc<Self>) -> Vec<FunctionTool<Booking>> {
        vec![
            FunctionTool::new(
                "check_availability",
                "Check a day.",
                |ctx: RunContext<Booking>, a: Day| async move {
                    ctx.userdata().day = Some(a.day.clone());
                    format!("{} evening: 19:00 and 20:30 free", a.day)
                },
            ),
            FunctionTool::new(
                "collect_contact",
                "Collect contact details.",
                |ctx: RunContext<Booking>, _a: NoArgs| async move {
                    let contact = ctx.run_task(ContactTask).await?;
                    ctx.userdata().email = Some(contact.email.clone());
                    Ok::<_, switchboard::ToolError>(format!("contact: {}", contact.email))
                },
            ),
            FunctionTool::new(
                "collect_party_details",
                "Collect the party details.",
                |ctx: RunContext<Booking>, _a: NoArgs| async move {
                    let mut group = TaskGroup::new();
                    let name = group.add("name", "the name of the booking", || NameTask);
                    let size = group.add("party_size", "the number of guests", || PartySizeTask);
                    let results: TaskGroupResults = ctx.run_task(group).await?;
                    let (name, size) = (
                        results.get(&name).cloned().unwrap_or_default(),
                        results.get(&size).copied().unwrap_or_default(),
                    );
                    {
                        let mut booking = ctx.userdata();
                        booking.name = Some(name.clone());
                        booking.guests = Some(size);
                    }
                    Ok::<_, switchboard::ToolError>(format!("{name}, {size} guests"))
                },
            ),
            FunctionTool::new(
                "back_to_greeter",
                "Back to the front desk.",
                |ctx: RunContext<Booking>, _a: NoArgs| async move {
                    ctx.userdata().transfers += 1;
                    Handoff::to(Greeter)
                        .with_context(HandoffContext::Full)
                        .with_result("Sending you back to the front desk.")
                },
            ),
        ]
    }
    async fn on_enter(&self, ctx: AgentContext<Booking>) -> switchboard::Result<()> {
        ctx.session().generate_reply("enter:booking").await?;
        Ok(())
    }
}

/// A typed contact.
#[derive(Debug, Clone)]
pub struct Contact {
    pub email: String,
}

pub struct ContactTask;

#[async_trait]
impl Agent<Booking> for ContactTask {
    fn instructions(&self) -> String {
        "Collect an email address.".into()
    }
    fn tools(self: Arc<Self>) -> Vec<FunctionTool<Booking>> {
        vec![FunctionTool::new(
            "record_email",
            "Record the email.",
            |ctx: RunContext<Booking>, a: Email| async move {
                ctx.complete(Contact { email: a.email }).await?;
                Ok::<(), switchboard::ToolError>(())
            },
        )]
    }
    async fn on_enter(&self, ctx: AgentContext<Booking>) -> switchboard::Result<()> {
        ctx.session().generate_reply("enter:contact").await?;
        Ok(())
    }
}

impl AgentTask<Booking> for ContactTask {
    type Output = Contact;
}

pub struct NameTask;

#[async_trait]
impl Agent<Booking> for NameTask {
    fn instructions(&self) -> String {
        "Collect the name of the booking.".into()
    }
    fn tools(self: Arc<Self>) -> Vec<FunctionTool<Booking>> {
        vec![FunctionTool::new(
            "record_name",
            "Record the name.",
            |ctx: RunContext<Booking>, a: Name| async move {
                ctx.complete(a.name).await?;
                Ok::<(), switchboard::ToolError>(())
            },
        )]
    }
    async fn on_enter(&self, ctx: AgentContext<Booking>) -> switchboard::Result<()> {
        ctx.session().generate_reply("enter:name").await?;
        Ok(())
    }
}

impl AgentTask<Booking> for NameTask {
    type Output = String;
}

pub struct PartySizeTask;

#[async_trait]
impl Agent<Booking> for PartySizeTask {
    fn instructions(&self) -> String {
        "Collect the party size.".into()
    }
    fn tools(self: Arc<Self>) -> Vec<FunctionTool<Booking>> {
        vec![FunctionTool::new(
            "record_party_size",
            "Record the size.",
            |ctx: RunContext<Booking>, a: Size| async move {
                ctx.complete(a.size).await?;
                Ok::<(), switchboard::ToolError>(())
            },
        )]
    }
    async fn on_enter(&self, ctx: AgentContext<Booking>) -> switchboard::Result<()> {
        ctx.session().generate_reply("enter:party").await?;
        Ok(())
    }
}

impl AgentTask<Booking> for PartySizeTask {
    type Output = u32;
}

/// A new session on `llm`, started (greeting done).
pub async fn start_session(llm: Arc<dyn Llm>) -> AgentSession<Booking> {
    let session = AgentSession::with_userdata(Booking::default())
        .llm(llm)
        .build();
    if let Err(e) = session.start(Greeter).await {
        eprintln!("session start failed: {e}");
    }
    session
}
