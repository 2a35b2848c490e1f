//! `switchboard-llama-server`, the binary: the model behind an OpenAI-compatible endpoint,
//! driven by Switchboard's own OpenAI client.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::json;
use switchboard::chat::{ChatContext, Role};
use switchboard::llm::{ChatRequest, FinishReason, Llm, ToolChoice, ToolDefinition, collect};
use switchboard_openai::{OpenAiConfig, OpenAiLlm};

/// Guard against a hung generation (not a sleep: the awaited answer ends the wait).
const GUARD: Duration = Duration::from_secs(120);

fn server() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_switchboard-llama-server"));
    command.env_remove(switchboard_llama::MODEL_ENV);
    command
}

/// Kills the server when the test ends, however it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the server on `model` with `args`; returns it and its first stdout line.
fn start(model: &std::path::Path, args: &[&str]) -> (Running, String) {
    let mut child = server()
        .args(args)
        .arg("--model")
        .arg(model)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    (Running(child), first)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_text_and_forced_tool_calls_over_the_openai_protocol() {
    let (_running, first) = start(&common::ensure_setup(), &["--max-tokens", "32"]);
    let url = first
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("no address line: {first:?}"));
    let llm = OpenAiLlm::new(OpenAiConfig::new(url), "gemma");

    let mut ctx = ChatContext::new();
    ctx.add_message(Role::User, "Hi! How are you?");
    let answer = tokio::time::timeout(GUARD, collect(llm.chat(ChatRequest::new(ctx))))
        .await
        .expect("no hang")
        .expect("an answer");
    assert!(!answer.text.trim().is_empty(), "{answer:?}");
    assert!(
        answer.usage.is_some_and(|u| u.completion_tokens > 0),
        "{answer:?}"
    );

    let tool = ToolDefinition {
        name: "book_table".into(),
        description: "Book a table.".into(),
        parameters: json!({
            "type": "object",
            "properties": {"people": {"type": "integer"}, "time": {"type": "string"}},
            "required": ["people", "time"],
        }),
        strict_parameters: None,
    };
    let mut ctx = ChatContext::new();
    ctx.add_message(Role::User, "A table for four at 8 pm, please.");
    let request = ChatRequest::new(ctx)
        .with_tools([tool])
        .with_tool_choice(ToolChoice::Required);
    let answer = tokio::time::timeout(GUARD, collect(llm.chat(request)))
        .await
        .expect("no hang")
        .expect("an answer");
    assert_eq!(answer.tool_calls.len(), 1, "{answer:?}");
    assert_eq!(answer.tool_calls[0].name, "book_table");
    let arguments: serde_json::Value =
        serde_json::from_str(&answer.tool_calls[0].arguments).expect("the grammar's JSON");
    assert!(arguments["people"].is_i64(), "{arguments}");
    assert!(arguments["time"].is_string(), "{arguments}");
    assert_eq!(answer.finish_reason, Some(FinishReason::ToolCalls));
}

#[test]
fn a_missing_model_stops_the_server_with_the_reason() {
    let output = server()
        .args(["--model", "/nowhere/model.gguf"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(
        output.stdout.is_empty(),
        "no address line for a failed start"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("/nowhere/model.gguf"), "{stderr}");
}

#[test]
fn it_exits_when_its_standard_input_closes() {
    let (mut running, first) = start(&common::ensure_setup(), &["--exit-with-stdin"]);
    assert!(
        first.starts_with("listening on http://127.0.0.1:"),
        "{first:?}"
    );
    drop(running.0.stdin.take()); // what a parent's death does
    let status = running.0.wait().unwrap();
    assert!(status.success(), "{status}");
}
