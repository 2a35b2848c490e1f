//! Tests with the real model (Gemma 3 270M from the setup cache; `ensure_setup` installs it).

mod common;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use futures::StreamExt;
use serde_json::{Value, json};
use switchboard::chat::{ChatContext, Role};
use switchboard::llm::{
    ChatChunk, ChatRequest, FinishReason, Llm, ResponseFormat, ToolChoice, ToolDefinition, collect,
};
use switchboard_llama::gbnf::{ToolSchema, schema_grammar, tool_call_grammar};
use switchboard_llama::{GenerationOutcome, LlamaError, LlamaLlm, LlamaOptions};

/// Guard against a hung generation (not a sleep: the awaited event ends the wait).
const GUARD: Duration = Duration::from_secs(120);

fn options() -> LlamaOptions {
    LlamaOptions::default().with_max_tokens(48)
}

/// One model for the tests that do not watch generation statistics.
fn shared_llm() -> Arc<LlamaLlm> {
    static LLM: OnceLock<Arc<LlamaLlm>> = OnceLock::new();
    LLM.get_or_init(|| {
        let path = common::ensure_setup();
        LlamaLlm::load(path, options()).expect("load the model")
    })
    .clone()
}

fn weather_params() -> Value {
    json!({
        "type": "object",
        "properties": {
            "city": {"type": "string", "description": "The city"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}
        },
        "required": ["city"],
        "additionalProperties": false
    })
}

fn booking_params() -> Value {
    json!({
        "type": "object",
        "properties": {
            "restaurant": {"type": "string"},
            "party_size": {"type": "integer", "minimum": 1},
            "time": {"type": "string", "description": "24-hour time, e.g. 19:30"}
        },
        "required": ["restaurant", "party_size", "time"],
        "additionalProperties": false
    })
}

fn tools() -> Vec<ToolDefinition> {
    vec![
        ToolDefinition {
            name: "get_weather".into(),
            description: "Gets the current weather in a city".into(),
            parameters: weather_params(),
            strict_parameters: None,
        },
        ToolDefinition {
            name: "book_table".into(),
            description: "Books a table at a restaurant".into(),
            parameters: booking_params(),
            strict_parameters: None,
        },
    ]
}

fn conversation(user: &str) -> ChatContext {
    let mut ctx = ChatContext::new();
    ctx.add_message(
        Role::System,
        "You are a helpful voice assistant for a city guide.",
    );
    ctx.add_message(Role::User, user);
    ctx
}

fn assert_valid_call(call: &switchboard::llm::AssembledToolCall) {
    assert!(!call.call_id.is_empty());
    let schema = match call.name.as_str() {
        "get_weather" => weather_params(),
        "book_table" => booking_params(),
        other => panic!("called a tool that was not offered: {other:?}"),
    };
    let args: Value = serde_json::from_str(&call.arguments)
        .unwrap_or_else(|e| panic!("arguments {:?} are not JSON: {e}", call.arguments));
    common::validate(&schema, &args, "#").unwrap_or_else(|e| {
        panic!(
            "arguments {} do not follow the {} schema: {e}",
            call.arguments, call.name
        )
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_a_text_answer_with_usage() {
    let llm = shared_llm();
    let mut stream = llm.chat(ChatRequest::new(conversation(
        "Hi! Can you help me plan a day in Rome?",
    )));
    let (mut text, mut deltas, mut usage, mut finish) = (String::new(), 0, None, None);
    while let Some(chunk) = tokio::time::timeout(GUARD, stream.next())
        .await
        .expect("no hang")
    {
        match chunk.expect("no error") {
            ChatChunk::Text(t) => {
                assert!(usage.is_none() && finish.is_none(), "text after the end");
                deltas += 1;
                text.push_str(&t);
            }
            ChatChunk::Usage(u) => usage = Some(u),
            ChatChunk::Finish(f) => finish = Some(f),
            other => panic!("unexpected chunk {other:?}"),
        }
    }
    eprintln!("answer ({deltas} deltas): {text:?}; {usage:?}; {finish:?}");
    assert!(!text.trim().is_empty(), "an empty answer");
    assert!(deltas >= 1);
    let usage = usage.expect("usage reported");
    assert!(usage.prompt_tokens > 50, "{usage:?}");
    assert!(
        usage.completion_tokens >= 1 && usage.completion_tokens <= 48,
        "{usage:?}"
    );
    assert!(
        matches!(finish, Some(FinishReason::Stop | FinishReason::Length)),
        "{finish:?}"
    );
    assert!(
        !text.contains('\n'),
        "the transcript format answers on one line: {text:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn required_tool_choice_yields_a_valid_call_to_an_offered_tool() {
    let llm = shared_llm();
    for question in [
        "What's the weather like in Paris today?",
        "Please book a table for four people at Luigi's tonight at 8 pm.",
    ] {
        let request = ChatRequest::new(conversation(question))
            .with_tools(tools())
            .with_tool_choice(ToolChoice::Required);
        let answer = tokio::time::timeout(GUARD, collect(llm.chat(request)))
            .await
            .expect("no hang")
            .expect("no error");
        eprintln!("{question} -> {:?}", answer.tool_calls);
        assert_eq!(answer.tool_calls.len(), 1, "{answer:?}");
        assert_valid_call(&answer.tool_calls[0]);
        assert_eq!(answer.finish_reason, Some(FinishReason::ToolCalls));
        assert!(answer.text.is_empty(), "{answer:?}");
        assert!(answer.usage.is_some_and(|u| u.completion_tokens > 0));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn named_tool_choice_calls_that_tool() {
    let llm = shared_llm();
    let request = ChatRequest::new(conversation("What's the weather like in Paris today?"))
        .with_tools(tools())
        .with_tool_choice(ToolChoice::Named("book_table".into()));
    let answer = tokio::time::timeout(GUARD, collect(llm.chat(request)))
        .await
        .expect("no hang")
        .expect("no error");
    eprintln!("named -> {:?}", answer.tool_calls);
    assert_eq!(answer.tool_calls.len(), 1);
    assert_eq!(answer.tool_calls[0].name, "book_table");
    assert_valid_call(&answer.tool_calls[0]);

    let unknown = ChatRequest::new(conversation("hi"))
        .with_tools(tools())
        .with_tool_choice(ToolChoice::Named("send_email".into()));
    let error = collect(llm.chat(unknown)).await.unwrap_err();
    assert!(error.to_string().contains("send_email"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_tool_choice_lets_the_model_choose_between_text_and_a_call() {
    let llm = shared_llm();
    let ask = |question: &str| {
        let request = ChatRequest::new(conversation(question)).with_tools(tools());
        tokio::time::timeout(GUARD, collect(llm.chat(request)))
    };
    // Greedy decoding is deterministic: with the default model, a booking request starts with
    // the marker (the answer is then rewound to the marker and follows the call grammar) and
    // a goodbye is answered in words.
    let call = ask("Book a table for two at Luigi's at 7 pm.")
        .await
        .expect("no hang")
        .expect("ok");
    eprintln!(
        "auto call: text {:?}, calls {:?}",
        call.text, call.tool_calls
    );
    assert_eq!(call.tool_calls.len(), 1, "{call:?}");
    assert_eq!(call.tool_calls[0].name, "book_table");
    assert_valid_call(&call.tool_calls[0]);
    assert!(call.text.is_empty());
    assert_eq!(call.finish_reason, Some(FinishReason::ToolCalls));

    let text = ask("Thanks, that's all. Goodbye!")
        .await
        .expect("no hang")
        .expect("ok");
    eprintln!("auto text: {:?}", text.text);
    assert!(text.tool_calls.is_empty(), "{text:?}");
    assert!(!text.text.trim().is_empty());
    assert_eq!(text.finish_reason, Some(FinishReason::Stop));

    // Tools offered but ToolChoice::None: a text answer, and the tools are not in the prompt.
    let none = ChatRequest::new(conversation("What's the weather like in Paris today?"))
        .with_tools(tools())
        .with_tool_choice(ToolChoice::None);
    assert!(!llm.render_prompt(&none).unwrap().contains("get_weather"));
    let answer = collect(llm.chat(none)).await.expect("no error");
    assert!(answer.tool_calls.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_stream_stops_the_generation() {
    let path = common::ensure_setup();
    let llm = LlamaLlm::load(path, LlamaOptions::default().with_max_tokens(400)).expect("load");
    let mut stats = llm.subscribe();
    // A JSON answer of at least 60 strings: far longer than the few tokens read below.
    let mut request = ChatRequest::new(conversation("List many famous places in Rome."));
    request.response_format = Some(ResponseFormat::JsonSchema {
        name: "places".into(),
        schema: json!({"type": "array", "items": {"type": "string"}, "minItems": 60}),
        strict: true,
    });
    let mut stream = llm.chat(request);
    let mut received = String::new();
    while received.len() < 8 {
        match tokio::time::timeout(GUARD, stream.next())
            .await
            .expect("no hang")
        {
            Some(Ok(ChatChunk::Text(t))) => received.push_str(&t),
            other => panic!("expected text, got {other:?}"),
        }
    }
    drop(stream);
    let finished = tokio::time::timeout(GUARD, stats.recv())
        .await
        .expect("the generation ended")
        .expect("stats");
    eprintln!("received {received:?}; then {finished:?}");
    assert_eq!(finished.outcome, GenerationOutcome::Cancelled);
    assert!(finished.completion_tokens < 100, "{finished:?}");

    // The worker is free again: the next request is served.
    let answer = tokio::time::timeout(
        GUARD,
        collect(llm.chat(ChatRequest::new(conversation("Hello!")))),
    )
    .await
    .expect("no hang")
    .expect("no error");
    assert!(answer.usage.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_next_turn_reuses_the_cached_prompt_prefix() {
    let path = common::ensure_setup();
    let llm = LlamaLlm::load(path, options()).expect("load");
    let mut ctx = conversation("Hi there!");
    let first = collect(llm.chat(ChatRequest::new(ctx.clone())))
        .await
        .expect("first");
    let first_usage = first.usage.expect("usage");
    ctx.add_message(Role::Assistant, first.text.clone());
    ctx.add_message(Role::User, "What should I see first in Rome?");
    let second = collect(llm.chat(ChatRequest::new(ctx)))
        .await
        .expect("second");
    let usage = second.usage.expect("usage");
    eprintln!("first {first_usage:?}, second {usage:?}");
    assert!(usage.prompt_tokens > first_usage.prompt_tokens);
    assert!(
        usage.cached_tokens >= first_usage.prompt_tokens - 1,
        "the whole first prompt should be reused: {usage:?}"
    );
}

#[test]
fn generated_grammars_are_accepted_by_llama_cpp() {
    let llm = shared_llm();
    let (weather, booking) = (weather_params(), booking_params());
    let nested = json!({
        "type": "object",
        "properties": {
            "items": {"type": "array", "items": {"type": "object", "properties": {
                "sku": {"type": "string", "maxLength": 8}, "qty": {"type": ["integer", "null"]}
            }, "required": ["sku"]}, "minItems": 1, "maxItems": 5},
            "note": {"anyOf": [{"type": "string"}, {"type": "null"}]},
            "tree": {"$ref": "#/$defs/Node"},
            "extra": {"type": "object", "additionalProperties": {"type": "number"}}
        },
        "$defs": {"Node": {"type": "object", "properties": {
            "children": {"type": "array", "items": {"$ref": "#/$defs/Node"}}
        }}}
    });
    let grammars = [
        tool_call_grammar(&[
            ToolSchema {
                name: "get_weather",
                parameters: &weather,
            },
            ToolSchema {
                name: "book_table",
                parameters: &booking,
            },
            ToolSchema {
                name: "order",
                parameters: &nested,
            },
        ])
        .unwrap(),
        schema_grammar(&nested).unwrap(),
        schema_grammar(&json!({})).unwrap(),
    ];
    for gbnf in grammars {
        llm.check_grammar(&gbnf)
            .unwrap_or_else(|e| panic!("{e}\n{gbnf}"));
    }
    assert!(llm.check_grammar("root ::= undefined-rule").is_err());
}

#[test]
fn a_missing_model_file_is_an_error_naming_the_file_and_the_fix() {
    let error = LlamaLlm::load("/nonexistent/dir/gemma.gguf", LlamaOptions::default()).unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, LlamaError::MissingFile { .. }), "{error:?}");
    assert!(message.contains("/nonexistent/dir/gemma.gguf"), "{message}");
    assert!(message.contains("scripts/setup.sh"), "{message}");
}

#[test]
fn a_truncated_model_file_is_an_error_not_an_abort() {
    let path = common::ensure_setup();
    let dir = std::env::temp_dir().join(format!("switchboard-llama-trunc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let truncated = dir.join("truncated.gguf");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&truncated, &bytes[..4 << 20]).unwrap();
    let error = LlamaLlm::load(&truncated, LlamaOptions::default()).unwrap_err();
    eprintln!("{error}");
    assert!(matches!(error, LlamaError::Load { .. }), "{error:?}");
    assert!(error.to_string().contains("truncated.gguf"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_prompt_is_too_long_for_a_small_context() {
    let path = common::ensure_setup();
    let llm = LlamaLlm::load(
        path,
        LlamaOptions::default().with_n_ctx(256).with_max_tokens(32),
    )
    .expect("load");
    let long = "Tell me about Rome. ".repeat(100);
    let error = collect(llm.chat(ChatRequest::new(conversation(&long))))
        .await
        .unwrap_err();
    assert!(
        matches!(error, switchboard::llm::LlmError::ContextTooLong { .. }),
        "{error}"
    );
    assert_eq!(llm.provider(), "llama.cpp");
    assert_eq!(llm.model(), "gemma-3-270m-q4_k_m");
}
