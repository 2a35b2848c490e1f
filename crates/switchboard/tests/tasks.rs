//! Typed tasks: awaited from tools and hooks, nested, in parallel, closed mid-way.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use switchboard::chat::{ChatItem, Role};
use switchboard::testing::{ScriptedLlm, ScriptedReply};
use switchboard::tools::{FunctionTool, ToolError};
use switchboard::{
    Agent, AgentContext, AgentSession, AgentTask, RunContext, RunEvent, SessionError, TaskError,
    async_trait,
};

#[derive(serde::Deserialize, schemars::JsonSchema)]
struct NoArgs {}

#[derive(serde::Deserialize, schemars::JsonSchema)]
struct EmailArgs {
    /// The email address.
    email: String,
}

#[derive(Debug, Clone, PartialEq)]
struct Email(String);

/// Asks for an email; `depth` > 0 first awaits a nested task.
struct AskEmail {
    name: &'static str,
}

#[async_trait]
impl Agent for AskEmail {
    fn id(&self) -> String {
        self.name.to_owned()
    }
    fn instructions(&self) -> String {
        format!("{}: ask for the email", self.name)
    }
    fn tools(self: Arc<Self>) -> Vec<FunctionTool> {
        vec![
            FunctionTool::new(
                "record_email",
                "Record it.",
                |ctx: RunContext, a: EmailArgs| async move {
                    if !a.email.contains('@') {
                        return Err(ToolError::new("that is not an email address"));
                    }
                    ctx.complete(Email(a.email)).await?;
                    Ok(())
                },
            ),
            FunctionTool::new(
                "decline",
                "The caller declines.",
                |ctx: RunContext, _a: NoArgs| async move {
                    ctx.fail(TaskError::Failed("couldn't get the email: declined".into()))
                        .await?;
                    Ok::<(), ToolError>(())
                },
            ),
        ]
    }
    async fn on_enter(&self, ctx: AgentContext) -> switchboard::Result<()> {
        ctx.session()
            .generate_reply(format!("{}: ask", self.name))
            .await?;
        Ok(())
    }
}

impl AgentTask for AskEmail {
    type Output = Email;
}

/// Awaits an inner task from a hook's context.
type InnerFuture = futures::future::BoxFuture<'static, Result<Email, TaskError>>;
type InnerTask = Box<dyn FnOnce(AgentContext) -> InnerFuture + Send>;

/// A task that awaits another task from its `on_enter`, then completes with its result.
struct Wrapper {
    name: &'static str,
    inner: fn() -> InnerTask,
}

#[async_trait]
impl Agent for Wrapper {
    fn id(&self) -> String {
        self.name.to_owned()
    }
    fn instructions(&self) -> String {
        self.name.into()
    }
    async fn on_enter(&self, ctx: AgentContext) -> switchboard::Result<()> {
        let run_inner = (self.inner)();
        let email = run_inner(ctx.clone()).await?;
        ctx.complete(Email(format!("{} via {}", email.0, self.name)))
            .await?;
        Ok(())
    }
}

impl AgentTask for Wrapper {
    type Output = Email;
}

struct Desk;

#[async_trait]
impl Agent for Desk {
    fn instructions(&self) -> String {
        "desk".into()
    }
    fn tools(self: Arc<Self>) -> Vec<FunctionTool> {
        vec![
            FunctionTool::new(
                "collect_email",
                "Collect the email.",
                |ctx: RunContext, _a: NoArgs| async move {
                    let email = ctx.run_task(AskEmail { name: "email_task" }).await?;
                    Ok(format!("got {}", email.0))
                },
            ),
            FunctionTool::new(
                "collect_nested",
                "Collect through three tasks.",
                |ctx: RunContext, _a: NoArgs| async move {
                    let email = ctx
                        .run_task(Wrapper {
                            name: "outer",
                            inner: || {
                                Box::new(|ctx: AgentContext| {
                                    Box::pin(async move {
                                        ctx.run_task(Wrapper {
                                            name: "middle",
                                            inner: || {
                                                Box::new(|ctx: AgentContext| {
                                                    Box::pin(async move {
                                                        ctx.run_task(AskEmail { name: "innermost" })
                                                            .await
                                                    })
                                                })
                                            },
                                        })
                                        .await
                                    })
                                })
                            },
                        })
                        .await?;
                    Ok(format!("got {}", email.0))
                },
            ),
            FunctionTool::new(
                "first",
                "First task.",
                |ctx: RunContext, _a: NoArgs| async move {
                    Ok::<_, ToolError>(ctx.run_task(AskEmail { name: "first_task" }).await?.0)
                },
            ),
            FunctionTool::new(
                "second",
                "Second task.",
                |ctx: RunContext, _a: NoArgs| async move {
                    Ok::<_, ToolError>(
                        ctx.run_task(AskEmail {
                            name: "second_task",
                        })
                        .await?
                        .0,
                    )
                },
            ),
        ]
    }
}

fn kinds(result: &switchboard::RunResult) -> Vec<&'static str> {
    result.events().iter().map(|e| e.kind_name()).collect()
}

fn handoffs(result: &switchboard::RunResult) -> Vec<(String, String)> {
    result
        .events()
        .iter()
        .filter_map(|e| match e {
            RunEvent::AgentHandoff { item, .. } => Some((
                item.old_agent_id.clone().unwrap_or_default(),
                item.new_agent_id.clone(),
            )),
            _ => None,
        })
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

fn email_llm() -> ScriptedLlm {
    ScriptedLlm::new()
        .on(
            "collect my email",
            ScriptedReply::tool("collect_email", json!({})),
        )
        .on(
            "email_task: ask",
            ScriptedReply::text("What is your email?"),
        )
        .on(
            "jane@example.com",
            ScriptedReply::tool("record_email", json!({"email": "jane@example.com"})),
        )
        .on("no way", ScriptedReply::tool("decline", json!({})))
        .on("after:collect_email", ScriptedReply::echo_tool_output())
}

#[tokio::test(start_paused = true)]
async fn a_task_awaited_from_a_tool_returns_its_typed_result() {
    let llm = Arc::new(email_llm());
    let session = AgentSession::builder().llm(llm.clone()).build();
    session.start(Desk).await.unwrap();

    // The run returns while the task waits for the user.
    let first = session.run("collect my email").await.unwrap();
    assert_eq!(
        kinds(&first),
        ["agent_handoff", "message"],
        "{}",
        first.describe(None)
    );
    assert_eq!(handoffs(&first), pairs(&[("desk", "email_task")]));
    assert_eq!(first.last_reply().as_deref(), Some("What is your email?"));
    assert_eq!(
        session.current_agent_id().await.as_deref(),
        Some("email_task")
    );

    // The next run drives the task; it returns once the caller's follow-up reply is done.
    let second = session.run("jane@example.com").await.unwrap();
    assert_eq!(handoffs(&second), pairs(&[("email_task", "desk")]));
    assert_eq!(second.last_reply().as_deref(), Some("got jane@example.com"));
    assert_eq!(session.current_agent_id().await.as_deref(), Some("desk"));
    // The follow-up's context holds the task's conversation (messages, not its tool calls).
    let follow_up = llm.requests().last().cloned().unwrap();
    let texts: Vec<_> = follow_up
        .context
        .iter()
        .filter_map(|i| i.as_message().map(|m| m.text()))
        .collect();
    assert!(
        texts.contains(&"What is your email?".to_owned())
            && texts.contains(&"jane@example.com".to_owned())
    );
    assert!(
        !follow_up
            .context
            .iter()
            .any(|i| matches!(i, ChatItem::FunctionCall(c) if c.name == "record_email"))
    );
    assert!(
        matches!(follow_up.context.items()[0], ChatItem::Message(ref m) if m.role == Role::System && m.text() == "desk")
    );
    // The next run is accepted at once.
    llm.push_keyed("thanks".into(), ScriptedReply::text("bye"));
    assert_eq!(
        session.run("thanks").await.unwrap().last_reply().as_deref(),
        Some("bye")
    );
}

#[tokio::test(start_paused = true)]
async fn a_declined_task_gives_the_tool_an_error() {
    let llm = Arc::new(email_llm());
    let session = AgentSession::builder().llm(llm.clone()).build();
    session.start(Desk).await.unwrap();
    session.run("collect my email").await.unwrap();
    let result = session.run("no way").await.unwrap();
    let output = result
        .events()
        .iter()
        .find_map(|e| match e {
            RunEvent::FunctionCallOutput(o) if o.name == "collect_email" => Some(o.clone()),
            _ => None,
        })
        .unwrap();
    assert!(output.is_error);
    assert_eq!(output.output, "couldn't get the email: declined");
    assert_eq!(session.current_agent_id().await.as_deref(), Some("desk"));
}

struct Greeter;

#[async_trait]
impl Agent for Greeter {
    fn instructions(&self) -> String {
        "greeter".into()
    }
    async fn on_enter(&self, ctx: AgentContext) -> switchboard::Result<()> {
        let email = ctx.run_task(AskEmail { name: "email_task" }).await?;
        ctx.session().say(format!("Thanks, {}.", email.0)).await?;
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn a_task_awaited_from_on_enter() {
    let llm = Arc::new(email_llm());
    let session = AgentSession::builder().llm(llm).build();
    let start = session.start(Greeter).await.unwrap();
    assert_eq!(
        handoffs(&start),
        pairs(&[("", "greeter"), ("greeter", "email_task")])
    );
    assert_eq!(start.last_reply().as_deref(), Some("What is your email?"));
    let done = session.run("jane@example.com").await.unwrap();
    assert_eq!(handoffs(&done), pairs(&[("email_task", "greeter")]));
    assert_eq!(
        done.last_reply().as_deref(),
        Some("Thanks, jane@example.com.")
    );
}

#[tokio::test(start_paused = true)]
async fn tasks_nest_three_deep() {
    let llm = Arc::new(
        email_llm()
            .on(
                "nested please",
                ScriptedReply::tool("collect_nested", json!({})),
            )
            .on("innermost: ask", ScriptedReply::text("Innermost asks."))
            .on("after:collect_nested", ScriptedReply::echo_tool_output()),
    );
    let session = AgentSession::builder().llm(llm).build();
    session.start(Desk).await.unwrap();
    let first = session.run("nested please").await.unwrap();
    assert_eq!(
        handoffs(&first),
        pairs(&[
            ("desk", "outer"),
            ("outer", "middle"),
            ("middle", "innermost")
        ])
    );
    assert_eq!(first.last_reply().as_deref(), Some("Innermost asks."));
    let second = session.run("jane@example.com").await.unwrap();
    assert_eq!(
        handoffs(&second),
        pairs(&[
            ("innermost", "middle"),
            ("middle", "outer"),
            ("outer", "desk")
        ])
    );
    assert_eq!(
        second.last_reply().as_deref(),
        Some("got jane@example.com via middle via outer")
    );
}

#[tokio::test(start_paused = true)]
async fn parallel_tasks_run_one_after_another() {
    let llm = Arc::new(
        ScriptedLlm::new()
            .on(
                "both",
                ScriptedReply::ToolCalls {
                    text: String::new(),
                    calls: vec![
                        ("first".into(), "{}".into()),
                        ("second".into(), "{}".into()),
                    ],
                },
            )
            .on("first_task: ask", ScriptedReply::text("First?"))
            .on("second_task: ask", ScriptedReply::text("Second?"))
            .on(
                "a@x.io",
                ScriptedReply::tool("record_email", json!({"email": "a@x.io"})),
            )
            .on(
                "b@x.io",
                ScriptedReply::tool("record_email", json!({"email": "b@x.io"})),
            )
            .on("after:second", ScriptedReply::text("Both done.")),
    );
    let session = AgentSession::builder().llm(llm).build();
    session.start(Desk).await.unwrap();
    let one = session.run("both").await.unwrap();
    assert_eq!(one.last_reply().as_deref(), Some("First?"));
    let two = session.run("a@x.io").await.unwrap();
    assert_eq!(
        handoffs(&two),
        pairs(&[("first_task", "desk"), ("desk", "second_task")])
    );
    assert_eq!(two.last_reply().as_deref(), Some("Second?"));
    let three = session.run("b@x.io").await.unwrap();
    assert_eq!(handoffs(&three), pairs(&[("second_task", "desk")]));
    let outputs: Vec<_> = three
        .events()
        .iter()
        .filter_map(|e| match e {
            RunEvent::FunctionCallOutput(o) if o.name == "first" || o.name == "second" => {
                Some(o.output.clone())
            }
            _ => None,
        })
        .collect();
    assert_eq!(outputs, ["a@x.io", "b@x.io"]);
    assert_eq!(three.last_reply().as_deref(), Some("Both done."));
}

#[tokio::test(start_paused = true)]
async fn closing_mid_task_fails_every_await_without_hanging() {
    let llm = Arc::new(
        email_llm()
            .on(
                "nested please",
                ScriptedReply::tool("collect_nested", json!({})),
            )
            .on("innermost: ask", ScriptedReply::text("Innermost asks.")),
    );
    let session = AgentSession::builder().llm(llm).build();
    session.start(Desk).await.unwrap();
    session.run("nested please").await.unwrap();
    tokio::time::timeout(Duration::from_secs(1), session.close())
        .await
        .expect("close hangs");
    assert!(matches!(
        session.run("hello").await,
        Err(SessionError::Closed)
    ));
    let history = session.history().await;
    assert!(
        history
            .iter()
            .any(|i| matches!(i, ChatItem::AgentHandoff(h) if h.new_agent_id == "innermost"))
    );
}

#[tokio::test(start_paused = true)]
async fn completing_outside_a_task_is_an_error() {
    struct Plain;
    impl Agent for Plain {
        fn instructions(&self) -> String {
            "plain".into()
        }
        fn tools(self: Arc<Self>) -> Vec<FunctionTool> {
            vec![FunctionTool::new(
                "finish",
                "Complete.",
                |ctx: RunContext, _a: NoArgs| async move {
                    match ctx.complete(1u8).await {
                        Err(e) => e.to_string(),
                        Ok(()) => "completed?".into(),
                    }
                },
            )]
        }
    }
    let llm = Arc::new(
        ScriptedLlm::new()
            .on("finish", ScriptedReply::tool("finish", json!({})))
            .otherwise(ScriptedReply::text("ok")),
    );
    let session = AgentSession::builder().llm(llm).build();
    session.start(Plain).await.unwrap();
    let result = session.run("finish").await.unwrap();
    assert!(result.events().iter().any(|e| matches!(e, RunEvent::FunctionCallOutput(o) if o.output == "there is no running task to complete here")));
}

/// Completes twice in one tool; records what the second attempt said.
struct Twice(Arc<std::sync::Mutex<Option<String>>>);

#[async_trait]
impl Agent for Twice {
    fn instructions(&self) -> String {
        "twice".into()
    }
    fn tools(self: Arc<Self>) -> Vec<FunctionTool> {
        let seen = self.0.clone();
        vec![FunctionTool::new(
            "done",
            "Complete.",
            move |ctx: RunContext, _a: NoArgs| {
                let seen = seen.clone();
                async move {
                    ctx.complete(Email("first".into())).await?;
                    let second = ctx.complete(Email("second".into())).await;
                    *seen.lock().unwrap() = second.err().map(|e| e.to_string());
                    Ok::<(), ToolError>(())
                }
            },
        )]
    }
    async fn on_enter(&self, ctx: AgentContext) -> switchboard::Result<()> {
        ctx.session().generate_reply("twice: ask").await?;
        Ok(())
    }
}

impl AgentTask for Twice {
    type Output = Email;
}

#[tokio::test(start_paused = true)]
async fn completing_a_task_twice_is_an_error_and_the_first_value_wins() {
    let seen = Arc::new(std::sync::Mutex::new(None));
    let task_seen = seen.clone();
    struct Caller(Arc<std::sync::Mutex<Option<String>>>);
    #[async_trait]
    impl Agent for Caller {
        fn instructions(&self) -> String {
            "caller".into()
        }
        fn tools(self: Arc<Self>) -> Vec<FunctionTool> {
            let seen = self.0.clone();
            vec![FunctionTool::new(
                "go",
                "Run the task.",
                move |ctx: RunContext, _a: NoArgs| {
                    let seen = seen.clone();
                    async move { Ok::<_, ToolError>(ctx.run_task(Twice(seen)).await?.0) }
                },
            )]
        }
    }
    let llm = Arc::new(
        ScriptedLlm::new()
            .on("go", ScriptedReply::tool("go", json!({})))
            .on("twice: ask", ScriptedReply::text("Ready?"))
            .on("yes", ScriptedReply::tool("done", json!({})))
            .on("after:go", ScriptedReply::echo_tool_output()),
    );
    let session = AgentSession::builder().llm(llm).build();
    session.start(Caller(task_seen)).await.unwrap();
    session.run("go").await.unwrap();
    let result = session.run("yes").await.unwrap();
    assert_eq!(result.last_reply().as_deref(), Some("first"));
    assert_eq!(
        seen.lock().unwrap().as_deref(),
        Some("the task `twice` is already done")
    );
}

struct AwaitsInTurnHook(Arc<std::sync::Mutex<Option<String>>>);

#[async_trait]
impl Agent for AwaitsInTurnHook {
    fn instructions(&self) -> String {
        "hook".into()
    }
    async fn on_user_turn_completed(
        &self,
        ctx: AgentContext,
        _turn: &mut switchboard::chat::ChatContext,
        _message: &mut switchboard::chat::ChatMessage,
    ) -> switchboard::Result<()> {
        let outcome = ctx.run_task(AskEmail { name: "email_task" }).await;
        *self.0.lock().unwrap() = outcome.err().map(|e| e.to_string());
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn awaiting_a_task_from_on_user_turn_completed_is_a_clear_error() {
    let seen = Arc::new(std::sync::Mutex::new(None));
    let llm = Arc::new(ScriptedLlm::new().otherwise(ScriptedReply::text("ok")));
    let session = AgentSession::builder().llm(llm).build();
    session.start(AwaitsInTurnHook(seen.clone())).await.unwrap();
    let result = session.run("hello").await.unwrap();
    assert_eq!(result.last_reply().as_deref(), Some("ok"));
    assert_eq!(
        seen.lock().unwrap().as_deref(),
        Some("a task can be awaited only from a tool, on_enter or on_exit")
    );
    assert_eq!(
        session.current_agent_id().await.as_deref(),
        Some("awaits_in_turn_hook")
    );
}
