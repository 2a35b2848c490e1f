//! Measures the model: load time, prompt and generation speed, time to first token for a
//! ~300-token prompt, tool-call latency and peak RSS.
//!
//! ```sh
//! bash scripts/setup.sh && cargo run --release -p switchboard-llama --example bench
//! ```

use std::time::Instant;

use serde_json::json;
use switchboard::chat::{ChatContext, Role};
use switchboard::llm::{ChatRequest, Llm, ToolChoice, ToolDefinition, collect};
use switchboard_llama::{GenerationStats, LlamaLlm, LlamaOptions, model_path_from_env};

fn rss_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn conversation() -> ChatContext {
    let mut ctx = ChatContext::new();
    ctx.add_message(
        Role::System,
        "You are Ada, the voice assistant of the Trattoria Luigi restaurant in Rome. You take \
         table bookings, answer questions about the menu, the opening hours (noon to 3 pm and \
         7 pm to 11 pm, closed on Mondays) and the address (Via Roma 12, near the Pantheon). \
         Be warm and brief: answer in one or two short sentences, as your answers are spoken.",
    );
    for (user, assistant) in [
        (
            "Hello, is this Trattoria Luigi?",
            "Yes, this is Trattoria Luigi. How can I help you today?",
        ),
        (
            "Are you open on Monday evening?",
            "I'm sorry, we are closed on Mondays. We are open from Tuesday to Sunday.",
        ),
        (
            "What kind of pasta do you have?",
            "We have carbonara, cacio e pepe, amatriciana and a daily fresh pasta special.",
        ),
        (
            "Do you have vegetarian options?",
            "Yes, the cacio e pepe and several of our starters are vegetarian.",
        ),
    ] {
        ctx.add_message(Role::User, user);
        ctx.add_message(Role::Assistant, assistant);
    }
    ctx.add_message(Role::User, "Great. Where exactly are you located?");
    ctx
}

fn tools() -> Vec<ToolDefinition> {
    vec![
        ToolDefinition {
            name: "get_weather".into(),
            description: "Gets the current weather in a city".into(),
            parameters: json!({"type": "object", "properties": {"city": {"type": "string"}},
                               "required": ["city"], "additionalProperties": false}),
            strict_parameters: None,
        },
        ToolDefinition {
            name: "book_table".into(),
            description: "Books a table".into(),
            parameters: json!({"type": "object", "properties": {
                "party_size": {"type": "integer", "minimum": 1},
                "time": {"type": "string"}}, "required": ["party_size", "time"],
                "additionalProperties": false}),
            strict_parameters: None,
        },
    ]
}

/// Prints one generation. `cpu` is the process CPU time the request took: on a busy machine
/// wall-clock rates understate the speed, so rates per CPU second are printed too (the worker
/// is the only busy thread, with 1 inference thread).
fn line(label: &str, s: &GenerationStats, cpu: f64) {
    let wall = s.prompt_time + s.generation_time;
    let share = (cpu / wall.as_secs_f64()).clamp(0.05, 1.0);
    println!(
        "{label:<28} prompt {:>3} tok ({:>3} cached) {:>6.1} tok/s wall, {:>6.1} /CPU-s | ttft {:>5.0} ms wall | gen {:>2} tok {:>5.1} tok/s wall, {:>5.1} /CPU-s | cpu {:.2} s | {:?}",
        s.prompt_tokens,
        s.cached_tokens,
        s.prompt_tokens_per_second(),
        s.prompt_tokens_per_second() / share,
        s.time_to_first_token
            .map_or(f64::NAN, |d| d.as_secs_f64() * 1e3),
        s.completion_tokens,
        s.generation_tokens_per_second(),
        s.generation_tokens_per_second() / share,
        cpu,
        s.outcome
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let threads: i32 = std::env::var("BENCH_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let path = model_path_from_env()?;
    let cpu0 = cpu_seconds();
    let t0 = Instant::now();
    let fresh = LlamaLlm::load(
        &path,
        LlamaOptions::default()
            .with_threads(threads)
            .with_max_tokens(64)
            .with_reuse_prefix(false),
    )?;
    println!(
        "load: {:.2} s wall, {:.2} s CPU ({} threads)",
        t0.elapsed().as_secs_f64(),
        cpu_seconds() - cpu0,
        threads
    );
    println!("rss after load: {} MiB", rss_kib("VmRSS:") / 1024);
    let mut stats = fresh.subscribe();

    // Warm-up (first context creation).
    let c = cpu_seconds();
    collect(fresh.chat(ChatRequest::new(conversation()))).await?;
    let warm = stats.recv().await?;
    line("warm-up (context creation)", &warm, cpu_seconds() - c);
    println!("rss with one context: {} MiB", rss_kib("VmRSS:") / 1024);

    for i in 0..3 {
        let (t, c) = (Instant::now(), cpu_seconds());
        let answer = collect(fresh.chat(ChatRequest::new(conversation()))).await?;
        let s = stats.recv().await?;
        line(
            &format!("text, ~300-token prompt #{i}"),
            &s,
            cpu_seconds() - c,
        );
        if i == 0 {
            println!(
                "  answer: {:?} ({:.0} ms end to end)",
                answer.text,
                t.elapsed().as_secs_f64() * 1e3
            );
        }
    }
    for i in 0..2 {
        let request = ChatRequest::new(conversation())
            .with_tools(tools())
            .with_tool_choice(ToolChoice::Required);
        let (t, c) = (Instant::now(), cpu_seconds());
        let answer = collect(fresh.chat(request)).await?;
        let s = stats.recv().await?;
        line(&format!("tool call (Required) #{i}"), &s, cpu_seconds() - c);
        if i == 0 {
            println!(
                "  call: {:?} ({:.0} ms end to end)",
                answer.tool_calls,
                t.elapsed().as_secs_f64() * 1e3
            );
        }
    }
    let mut ctx = conversation();
    ctx.add_message(Role::User, "Please write a long story about Rome.");
    let mut long_request = ChatRequest::new(ctx);
    long_request.response_format = Some(switchboard::llm::ResponseFormat::JsonSchema {
        name: "story".into(),
        schema: json!({"type": "array", "items": {"type": "string"}, "minItems": 40}),
        strict: true,
    });
    let c = cpu_seconds();
    collect(fresh.chat(long_request)).await?;
    line(
        "JSON grammar, 64 tokens",
        &stats.recv().await?,
        cpu_seconds() - c,
    );
    drop(fresh);

    // Prefix reuse: the next turn only evaluates the new tokens.
    let reuse = LlamaLlm::load(
        &path,
        LlamaOptions::default()
            .with_threads(threads)
            .with_max_tokens(64),
    )?;
    let mut stats = reuse.subscribe();
    let mut ctx = conversation();
    let c = cpu_seconds();
    let first = collect(reuse.chat(ChatRequest::new(ctx.clone()))).await?;
    line("reuse: first turn", &stats.recv().await?, cpu_seconds() - c);
    ctx.add_message(Role::Assistant, first.text);
    ctx.add_message(
        Role::User,
        "Thank you! Can I book a table for two at eight?",
    );
    let c = cpu_seconds();
    collect(reuse.chat(ChatRequest::new(ctx))).await?;
    line("reuse: next turn", &stats.recv().await?, cpu_seconds() - c);
    println!(
        "peak rss: {} MiB (two models loaded one after the other)",
        rss_kib("VmHWM:") / 1024
    );
    println!("total CPU: {:.1} s", cpu_seconds() - cpu0);
    Ok(())
}

fn cpu_seconds() -> f64 {
    // utime + stime of this process, from /proc/self/stat (clock ticks of 100 Hz).
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}
