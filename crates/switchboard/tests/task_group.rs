//! Task groups: ordered steps, going back, typed results, summaries.

use std::sync::{Arc, Mutex};

use serde_json::json;
use switchboard::chat::{ChatItem, Role};
use switchboard::testing::{ScriptedLlm, ScriptedReply};
use switchboard::tools::FunctionTool;
use switchboard::workflows::{StepKey, TaskGroup, TaskGroupResults};
use switchboard::{
    Agent, AgentContext, AgentSession, AgentTask, RunContext, RunEvent, TaskError, async_trait,
};

#[derive(serde::Deserialize, schemars::JsonSchema)]
struct Value {
    /// The value.
    value: String,
}

#[derive(serde::Deserialize, schemars::JsonSchema)]
struct NoArgs {}

/// Collects one string; its id names it (`name`, `city`, ...).
#[derive(Clone)]
struct Ask(&'static str);

#[async_trait]
impl Agent for Ask {
    fn id(&self) -> String {
        format!("ask_{}", self.0)
    }
    fn instructions(&self) -> String {
        format!("ask for the {}", self.0)
    }
    fn tools(self: Arc<Self>) -> Vec<FunctionTool> {
        let field = self.0;
        vec![
            FunctionTool::new(
                format!("record_{field}"),
                "Record it.",
                |ctx: RunContext, a: Value| async move {
                    ctx.complete(a.value).await?;
                    Ok::<(), switchboard::ToolError>(())
                },
            ),
            FunctionTool::new(
                format!("refuse_{field}"),
                "Refuse.",
                move |ctx: RunContext, _a: NoArgs| async move {
                    ctx.fail(TaskError::Failed(format!("no {field}"))).await?;
                    Ok::<(), switchboard::ToolError>(())
                },
            ),
        ]
    }
    async fn on_enter(&self, ctx: AgentContext) -> switchboard::Result<()> {
        ctx.session()
            .generate_reply(format!("Ask for the {}.", self.0))
            .await?;
        Ok(())
    }
}

impl AgentTask for Ask {
    type Output = String;
}

type Keys = (StepKey<String>, StepKey<String>, Option<StepKey<String>>);

/// Builds a group for one test.
type GroupSpec = fn() -> (TaskGroup, Keys);

struct Caller {
    spec: GroupSpec,
    seen: Arc<Mutex<Vec<String>>>,
}

#[async_trait]
impl Agent for Caller {
    fn id(&self) -> String {
        "caller".into()
    }
    fn instructions(&self) -> String {
        "caller".into()
    }
    fn tools(self: Arc<Self>) -> Vec<FunctionTool> {
        let this = self.clone();
        vec![FunctionTool::new(
            "collect",
            "Collect details.",
            move |ctx: RunContext, _a: NoArgs| {
                let this = this.clone();
                async move {
                    let (group, (first, second, third)) = (this.spec)();
                    let results: TaskGroupResults = ctx.run_task(group).await?;
                    let mut parts = vec![
                        results
                            .get(&first)
                            .cloned()
                            .unwrap_or_else(|| format!("error: {:?}", results.error(&first))),
                        results
                            .get(&second)
                            .cloned()
                            .unwrap_or_else(|| format!("error: {:?}", results.error(&second))),
                    ];
                    if let Some(third) = third {
                        parts.push(if results.was_skipped(&third) {
                            "skipped".into()
                        } else {
                            results.get(&third).cloned().unwrap_or_default()
                        });
                    }
                    this.seen.lock().unwrap().push(parts.join(","));
                    Ok::<_, switchboard::ToolError>(parts.join(","))
                }
            },
        )]
    }
}

fn two_steps() -> (TaskGroup, Keys) {
    let mut group = TaskGroup::new().with_summary(false);
    let name = group.add("name", "the caller's name", || Ask("name"));
    let city = group.add("city", "the caller's city", || Ask("city"));
    (group, (name, city, None))
}

fn script() -> ScriptedLlm {
    ScriptedLlm::new()
        .on("collect", ScriptedReply::tool("collect", json!({})))
        .on("Ask for the name.", ScriptedReply::text("Your name?"))
        .on("Ask for the city.", ScriptedReply::text("Your city?"))
        .on("Ask for the zip.", ScriptedReply::text("Your zip?"))
        .on(
            "Jane",
            ScriptedReply::tool("record_name", json!({"value": "Jane"})),
        )
        .on(
            "Joan",
            ScriptedReply::tool("record_name", json!({"value": "Joan"})),
        )
        .on(
            "Paris",
            ScriptedReply::tool("record_city", json!({"value": "Paris"})),
        )
        .on(
            "Lyon",
            ScriptedReply::tool("record_city", json!({"value": "Lyon"})),
        )
        .on(
            "75001",
            ScriptedReply::tool("record_zip", json!({"value": "75001"})),
        )
        .on(
            "wrong name",
            ScriptedReply::tool("out_of_scope", json!({"task_ids": ["name"]})),
        )
        .on(
            "bogus",
            ScriptedReply::tool("out_of_scope", json!({"task_ids": ["nope"]})),
        )
        .on("after:out_of_scope", ScriptedReply::text("Which step?"))
        .on("refuse", ScriptedReply::tool("refuse_name", json!({})))
        .on("after:collect", ScriptedReply::echo_tool_output())
        .otherwise(ScriptedReply::text("Summary of the details."))
}

async fn start(spec: GroupSpec, llm: &Arc<ScriptedLlm>) -> (AgentSession, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let session = AgentSession::builder().llm(llm.clone()).build();
    session
        .start(Caller {
            spec,
            seen: seen.clone(),
        })
        .await
        .unwrap();
    (session, seen)
}

fn handoffs(result: &switchboard::RunResult) -> Vec<String> {
    result
        .events()
        .iter()
        .filter_map(|e| match e {
            RunEvent::AgentHandoff { item, .. } => Some(format!(
                "{}>{}",
                item.old_agent_id.as_deref().unwrap_or(""),
                item.new_agent_id
            )),
            _ => None,
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn two_steps_with_the_exact_handoff_sequence() {
    let llm = Arc::new(script());
    let (session, seen) = start(two_steps, &llm).await;
    let one = session.run("collect").await.unwrap();
    assert_eq!(handoffs(&one), ["caller>task_group", "task_group>ask_name"]);
    assert_eq!(one.last_reply().as_deref(), Some("Your name?"));
    // The first step has no way back; the second has one.
    assert!(
        !llm.requests()
            .last()
            .unwrap()
            .tools
            .iter()
            .any(|t| t.name == "out_of_scope")
    );
    let two = session.run("Jane").await.unwrap();
    assert_eq!(
        handoffs(&two),
        ["ask_name>task_group", "task_group>ask_city"]
    );
    let three = session.run("Paris").await.unwrap();
    assert_eq!(
        handoffs(&three),
        ["ask_city>task_group", "task_group>caller"]
    );
    assert_eq!(three.last_reply().as_deref(), Some("Jane,Paris"));
    assert_eq!(*seen.lock().unwrap(), ["Jane,Paris"]);
    // The second step saw the first step's conversation.
    let city_request = llm
        .requests()
        .iter()
        .find(|r| {
            r.context
                .iter()
                .any(|i| matches!(i, ChatItem::Message(m) if m.text() == "Ask for the city."))
        })
        .cloned()
        .unwrap();
    assert!(
        city_request
            .context
            .iter()
            .any(|i| matches!(i, ChatItem::Message(m) if m.text() == "Jane"))
    );
    assert!(
        city_request.tools.iter().any(|t| t.name == "out_of_scope")
            || llm
                .requests()
                .iter()
                .any(|r| r.tools.iter().any(|t| t.name == "out_of_scope"))
    );
    let history = session.history().await;
    let all: Vec<_> = history
        .iter()
        .filter_map(|i| match i {
            ChatItem::AgentHandoff(h) => Some(format!(
                "{}>{}",
                h.old_agent_id.as_deref().unwrap_or(""),
                h.new_agent_id
            )),
            _ => None,
        })
        .collect();
    assert_eq!(
        all,
        [
            ">caller",
            "caller>task_group",
            "task_group>ask_name",
            "ask_name>task_group",
            "task_group>ask_city",
            "ask_city>task_group",
            "task_group>caller"
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn going_back_reruns_the_earlier_step_then_the_current_one() {
    let llm = Arc::new(script());
    let (session, seen) = start(two_steps, &llm).await;
    session.run("collect").await.unwrap();
    session.run("Jane").await.unwrap();
    let back = session.run("wrong name").await.unwrap();
    assert_eq!(
        handoffs(&back),
        ["ask_city>task_group", "task_group>ask_name"]
    );
    assert_eq!(back.last_reply().as_deref(), Some("Your name?"));
    let renamed = session.run("Joan").await.unwrap();
    assert_eq!(
        handoffs(&renamed),
        ["ask_name>task_group", "task_group>ask_city"]
    );
    let done = session.run("Paris").await.unwrap();
    assert_eq!(done.last_reply().as_deref(), Some("Joan,Paris"));
    assert_eq!(*seen.lock().unwrap(), ["Joan,Paris"]);
}

#[tokio::test(start_paused = true)]
async fn an_invalid_go_back_id_is_an_error_output() {
    let llm = Arc::new(script());
    let (session, _) = start(two_steps, &llm).await;
    session.run("collect").await.unwrap();
    session.run("Jane").await.unwrap();
    let result = session.run("bogus").await.unwrap();
    let output = result.events().iter().find_map(|e| match e {
        RunEvent::FunctionCallOutput(o) => Some(o.clone()),
        _ => None,
    });
    let output = output.unwrap();
    assert!(output.is_error);
    assert!(output.output.contains("invalid"), "{}", output.output);
    assert_eq!(
        session.current_agent_id().await.as_deref(),
        Some("ask_city")
    );
}

#[tokio::test(start_paused = true)]
async fn a_failing_step_fails_the_group_or_is_kept_with_return_exceptions() {
    let llm = Arc::new(script());
    let (session, seen) = start(two_steps, &llm).await;
    session.run("collect").await.unwrap();
    let failed = session.run("refuse").await.unwrap();
    let output = failed.events().iter().find_map(|e| match e {
        RunEvent::FunctionCallOutput(o) if o.name == "collect" => Some(o.clone()),
        _ => None,
    });
    assert_eq!(
        output.map(|o| (o.output, o.is_error)),
        Some(("no name".to_owned(), true))
    );
    assert!(seen.lock().unwrap().is_empty());

    fn keep_errors() -> (TaskGroup, Keys) {
        let mut group = TaskGroup::new()
            .with_summary(false)
            .with_return_exceptions(true);
        let name = group.add("name", "the caller's name", || Ask("name"));
        let city = group.add("city", "the caller's city", || Ask("city"));
        (group, (name, city, None))
    }
    let llm = Arc::new(script());
    let (session, seen) = start(keep_errors, &llm).await;
    session.run("collect").await.unwrap();
    session.run("refuse").await.unwrap();
    session.run("Paris").await.unwrap();
    assert_eq!(
        *seen.lock().unwrap(),
        [r#"error: Some(Failed("no name")),Paris"#]
    );
}

#[tokio::test(start_paused = true)]
async fn summarising_leaves_the_caller_one_summary_message() {
    fn summarised() -> (TaskGroup, Keys) {
        let mut group = TaskGroup::new();
        let name = group.add("name", "the caller's name", || Ask("name"));
        let city = group.add("city", "the caller's city", || Ask("city"));
        (group, (name, city, None))
    }
    let llm = Arc::new(script());
    let (session, _) = start(summarised, &llm).await;
    session.run("collect").await.unwrap();
    session.run("Jane").await.unwrap();
    let done = session.run("Paris").await.unwrap();
    assert_eq!(done.last_reply().as_deref(), Some("Jane,Paris"));
    let follow_up = llm.requests().last().cloned().unwrap();
    let summaries: Vec<_> = follow_up
        .context
        .iter()
        .filter(|i| matches!(i, ChatItem::Message(m) if m.is_summary()))
        .collect();
    assert_eq!(summaries.len(), 1);
    // The steps' own messages are not in the caller's context any more.
    assert!(
        !follow_up.context.iter().any(
            |i| matches!(i, ChatItem::Message(m) if m.role == Role::User && m.text() == "Jane")
        )
    );
}

#[tokio::test(start_paused = true)]
async fn skip_predicates_and_dependency_invalidation() {
    fn with_zip() -> (TaskGroup, Keys) {
        let mut group = TaskGroup::new().with_summary(false);
        let name = group.add("name", "the caller's name", || Ask("name"));
        let city = group.add("city", "the caller's city", || Ask("city"));
        let zip = group.add("zip", "the zip code", || Ask("zip"));
        let city_key = city.clone();
        group.skip_if(&zip, move |r: &TaskGroupResults| {
            r.get(&city_key).is_some_and(|c| c == "Lyon")
        });
        group.depends_on(&city, &name);
        (group, (name, city, Some(zip)))
    }
    let llm = Arc::new(script());
    let (session, seen) = start(with_zip, &llm).await;
    session.run("collect").await.unwrap();
    session.run("Jane").await.unwrap();
    session.run("Lyon").await.unwrap();
    assert_eq!(*seen.lock().unwrap(), ["Jane,Lyon,skipped"]);

    let llm = Arc::new(script());
    let (session, seen) = start(with_zip, &llm).await;
    session.run("collect").await.unwrap();
    session.run("Jane").await.unwrap();
    session.run("Paris").await.unwrap();
    // At the zip step, going back to the name also re-asks the city, which depends on it.
    let back = session.run("wrong name").await.unwrap();
    assert_eq!(
        handoffs(&back),
        ["ask_zip>task_group", "task_group>ask_name"]
    );
    let renamed = session.run("Joan").await.unwrap();
    assert_eq!(
        handoffs(&renamed),
        ["ask_name>task_group", "task_group>ask_city"]
    );
    let recity = session.run("Lyon").await.unwrap();
    // Lyon means no zip: the group completes.
    assert_eq!(
        handoffs(&recity),
        ["ask_city>task_group", "task_group>caller"]
    );
    assert_eq!(*seen.lock().unwrap(), ["Joan,Lyon,skipped"]);
}
