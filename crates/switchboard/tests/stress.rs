//! Thousands of random conversations in virtual time: tools that take random time, fail or
//! panic, handoffs inside tools, tasks, interruptions and closes at random moments.
//!
//! Every run must return (or fail cleanly) within a virtual deadline, nothing may panic, and
//! the history must stay consistent: every function call has exactly one output, items are in
//! time order, and handoff items chain from agent to agent.
//!
//! CI runs a fixed seed. Locally: `SWITCHBOARD_STRESS_SEED=<n|random>
//! SWITCHBOARD_STRESS_CONVERSATIONS=<n> cargo test -p switchboard --test stress -- --nocapture`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use switchboard::chat::{ChatContext, ChatItem};
use switchboard::llm::LlmError;
use switchboard::testing::{ScriptedLlm, ScriptedReply};
use switchboard::tools::{FunctionTool, ToolError};
use switchboard::{
    Agent, AgentContext, AgentSession, AgentTask, Handoff, RunContext, SessionError, async_trait,
};

/// A small deterministic generator (xorshift64*), so a seed reproduces a failure exactly.
#[derive(Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

#[derive(serde::Deserialize, schemars::JsonSchema)]
struct Work {
    /// Virtual milliseconds to work.
    ms: u64,
}

#[derive(serde::Deserialize, schemars::JsonSchema)]
struct NoArgs {}

fn common_tools(name: &'static str) -> Vec<FunctionTool> {
    vec![
        FunctionTool::new(
            "work",
            "Works for a while.",
            |_ctx: RunContext, w: Work| async move {
                tokio::time::sleep(Duration::from_millis(w.ms)).await;
                format!("worked {} ms", w.ms)
            },
        ),
        FunctionTool::new("fail", "Fails.", |_ctx: RunContext, _a: NoArgs| async {
            Err::<String, _>(ToolError::new("failed"))
        }),
        FunctionTool::new("panic", "Panics.", |_ctx: RunContext, _a: NoArgs| async {
            if true {
                panic!("tool panic");
            }
        }),
        FunctionTool::new(
            "say_inside",
            "Speaks from inside.",
            |ctx: RunContext, _a: NoArgs| async move {
                let _ = ctx.session().say("a word from inside").await;
                "spoke"
            },
        ),
        FunctionTool::new(
            "handoff",
            "Hands off.",
            move |_ctx: RunContext, _a: NoArgs| async move {
                if name == "alpha" {
                    Handoff::to(Beta)
                } else {
                    Handoff::to(Alpha).with_result("back to alpha")
                }
            },
        ),
        FunctionTool::new(
            "ask",
            "Runs a task.",
            |ctx: RunContext, _a: NoArgs| async move {
                match ctx.run_task(Mini).await {
                    Ok(v) => Ok(format!("task gave {v}")),
                    Err(e) => Err(ToolError::new(e.to_string())),
                }
            },
        ),
    ]
}

struct Alpha;
struct Beta;
struct Mini;

#[async_trait]
impl Agent for Alpha {
    fn instructions(&self) -> String {
        "alpha".into()
    }
    fn tools(self: Arc<Self>) -> Vec<FunctionTool> {
        common_tools("alpha")
    }
}

#[async_trait]
impl Agent for Beta {
    fn instructions(&self) -> String {
        "beta".into()
    }
    fn tools(self: Arc<Self>) -> Vec<FunctionTool> {
        common_tools("beta")
    }
    async fn on_enter(&self, ctx: AgentContext) -> switchboard::Result<()> {
        let _ = ctx.session().generate_reply("greet as beta").await;
        Ok(())
    }
}

#[async_trait]
impl Agent for Mini {
    fn instructions(&self) -> String {
        "mini".into()
    }
    fn tools(self: Arc<Self>) -> Vec<FunctionTool> {
        let mut tools = common_tools("mini");
        tools.retain(|t| t.name() != "handoff" && t.name() != "ask");
        tools.push(FunctionTool::new(
            "finish",
            "Completes the task.",
            |ctx: RunContext, _a: NoArgs| async move {
                let _ = ctx.complete(7u32).await;
            },
        ));
        tools
    }
    async fn on_enter(&self, ctx: AgentContext) -> switchboard::Result<()> {
        let _ = ctx.session().generate_reply("mini asks").await;
        Ok(())
    }
}

impl AgentTask for Mini {
    type Output = u32;
}

/// A model that answers at random: text, one to three tool calls, or an error.
fn random_llm(rng: Rng) -> Arc<ScriptedLlm> {
    let rng = Arc::new(Mutex::new(rng));
    let reply = ScriptedReply::dynamic(move |request| {
        let mut rng = rng.lock().unwrap();
        let offered: Vec<String> = request.tools.iter().map(|t| t.name.clone()).collect();
        let roll = rng.below(100);
        if roll < 3 {
            return ScriptedReply::Error(LlmError::Status {
                provider: "random".into(),
                status: 400,
                message: "bad".into(),
            });
        }
        if roll < 40
            || offered.is_empty()
            || request.tool_choice == switchboard::llm::ToolChoice::None
        {
            return ScriptedReply::text(format!("reply {}", rng.below(1000)));
        }
        let calls = (0..1 + rng.below(3))
            .map(|_| {
                let name = offered[rng.below(offered.len() as u64) as usize].clone();
                let args = if name == "work" {
                    json!({"ms": rng.below(3000)}).to_string()
                } else {
                    "{}".to_owned()
                };
                (name, args)
            })
            .collect();
        ScriptedReply::ToolCalls {
            text: if rng.chance(50) {
                "ok, ".into()
            } else {
                String::new()
            },
            calls,
        }
    });
    Arc::new(
        ScriptedLlm::new()
            .otherwise(reply)
            .with_time_to_first_token(Duration::from_millis(20))
            .with_chunk_interval(Duration::from_millis(5)),
    )
}

/// Checks the invariants of a finished conversation's history.
fn check_history(history: &ChatContext, seed: u64) -> Result<(), String> {
    let items = history.items();
    if !items
        .windows(2)
        .all(|w| w[0].created_at() <= w[1].created_at())
    {
        return Err(format!("seed {seed}: history out of time order"));
    }
    let mut outputs: HashMap<&str, usize> = HashMap::new();
    for item in items {
        if let ChatItem::FunctionCallOutput(o) = item {
            *outputs.entry(o.call_id.as_str()).or_default() += 1;
        }
    }
    for item in items {
        if let ChatItem::FunctionCall(c) = item {
            let n = outputs.remove(c.call_id.as_str()).unwrap_or(0);
            if n != 1 {
                return Err(format!(
                    "seed {seed}: call {} ({}) has {n} outputs",
                    c.call_id, c.name
                ));
            }
        }
    }
    if let Some(orphan) = outputs.keys().next() {
        return Err(format!("seed {seed}: output {orphan} has no call"));
    }
    let mut agent: Option<String> = None;
    for item in items {
        if let ChatItem::AgentHandoff(h) = item {
            if h.old_agent_id != agent {
                return Err(format!(
                    "seed {seed}: handoff {:?} -> {} while {:?} had control",
                    h.old_agent_id, h.new_agent_id, agent
                ));
            }
            agent = Some(h.new_agent_id.clone());
        }
    }
    Ok(())
}

async fn conversation(seed: u64) -> Result<(), String> {
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let llm = random_llm(rng.clone());
    let session = AgentSession::builder()
        .llm(llm)
        .max_unrecoverable_errors(50)
        .build();
    // SWITCHBOARD_STRESS_TRACE=1 prints every event of the conversation (use with one seed).
    if std::env::var_os("SWITCHBOARD_STRESS_TRACE").is_some() {
        let mut events = session.subscribe();
        tokio::spawn(async move {
            while let Some(e) = events.recv().await {
                println!("{seed} {:?}", e.kind);
            }
        });
    }
    let deadline = Duration::from_secs(3600);
    tokio::time::timeout(deadline, session.start(Alpha))
        .await
        .map_err(|_| format!("seed {seed}: start hung"))?
        .map_err(|e| format!("seed {seed}: start failed: {e}"))?;
    let turns = 2 + rng.below(8);
    let close_at_turn = if rng.chance(20) {
        Some(rng.below(turns))
    } else {
        None
    };
    for turn in 0..turns {
        let runner = session.clone();
        let text = match rng.below(4) {
            0 => "finish".to_owned(),
            _ => format!("turn {turn}"),
        };
        let run = tokio::spawn(async move { runner.run(text).await });
        let disturb = rng.below(100);
        if disturb < 15 {
            tokio::time::sleep(Duration::from_millis(rng.below(2000))).await;
            let _ = session.interrupt(rng.chance(50)).await;
        }
        if close_at_turn == Some(turn) {
            tokio::time::sleep(Duration::from_millis(rng.below(2000))).await;
            tokio::time::timeout(deadline, session.close())
                .await
                .map_err(|_| format!("seed {seed}: close hung"))?;
        }
        let outcome = tokio::time::timeout(deadline, run)
            .await
            .map_err(|_| format!("seed {seed}: run {turn} hung"))?
            .map_err(|e| format!("seed {seed}: run {turn} panicked: {e}"))?;
        match outcome {
            Ok(_) | Err(SessionError::TurnFailed { .. }) => {}
            Err(SessionError::Closed) if session.is_closed() => break,
            Err(e) => return Err(format!("seed {seed}: run {turn} failed: {e}")),
        }
    }
    tokio::time::timeout(deadline, session.close())
        .await
        .map_err(|_| format!("seed {seed}: final close hung"))?;
    check_history(&session.history().await, seed)
}

#[tokio::test(start_paused = true)]
async fn thousands_of_random_conversations() {
    let base: u64 = match std::env::var("SWITCHBOARD_STRESS_SEED").as_deref() {
        Ok("random") => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1),
        Ok(n) => n
            .parse()
            .expect("SWITCHBOARD_STRESS_SEED must be a number or `random`"),
        Err(_) => 20_261_123,
    };
    let count: u64 = std::env::var("SWITCHBOARD_STRESS_CONVERSATIONS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(2000);
    println!("stress: {count} conversations from seed {base}");
    // The tools panic on purpose; keep their (caught) panics from flooding the output.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !info.to_string().contains("tool panic") {
            default_hook(info);
        }
    }));
    // Conversations run 100 at a time in one runtime: sessions share the process as in production.
    let mut failures = Vec::new();
    for batch in (0..count).collect::<Vec<_>>().chunks(100) {
        let handles: Vec<_> = batch
            .iter()
            .map(|i| tokio::spawn(conversation(base.wrapping_add(*i))))
            .collect();
        for handle in handles {
            match handle.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => failures.push(e),
                Err(e) => failures.push(format!("a conversation panicked: {e}")),
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {count} conversations failed:\n{}",
        failures.len(),
        failures
            .iter()
            .take(10)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}
