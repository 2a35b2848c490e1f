//! `switchboard-bench`: the Rust side of bench/compare.sh. Modes and JSON keys follow the
//! contract in bench/README.md; progress goes to stderr, one JSON object to stdout.

mod voice;
mod workload;

use std::io::{BufRead, BufReader};
use std::process::{Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use switchboard::AgentSession;
use switchboard::llm::Llm;
use workload::{BenchLlm, Booking, CYCLE, start_session};

fn usage() -> &'static str {
    "usage: switchboard-bench <verify|latency|session|memory|throughput|cold|voice-latency> --json \
     [--samples N] [--sessions 1,10,...] [--turns 5] [--min-turns N] [--runs N]"
}

struct Args {
    mode: String,
    samples: usize,
    sessions: Vec<usize>,
    turns: usize,
    min_turns: usize,
    runs: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut argv = std::env::args().skip(1);
    let mode = argv.next().ok_or_else(|| usage().to_owned())?;
    let mut args = Args {
        mode,
        samples: 500,
        sessions: vec![1, 10, 100, 1000],
        turns: 5,
        min_turns: 2000,
        runs: 5,
    };
    while let Some(flag) = argv.next() {
        let mut value = || argv.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--json" => {}
            "--samples" => {
                args.samples = value()?.parse().map_err(|e| format!("--samples: {e}"))?
            }
            "--turns" => args.turns = value()?.parse().map_err(|e| format!("--turns: {e}"))?,
            "--min-turns" => {
                args.min_turns = value()?.parse().map_err(|e| format!("--min-turns: {e}"))?
            }
            "--runs" => args.runs = value()?.parse().map_err(|e| format!("--runs: {e}"))?,
            "--sessions" => {
                args.sessions = value()?
                    .split(',')
                    .map(|n| {
                        n.trim()
                            .parse::<usize>()
                            .map_err(|e| format!("--sessions: {e}"))
                    })
                    .collect::<Result<_, _>>()?
            }
            other => return Err(format!("unknown flag {other}\n{}", usage())),
        }
    }
    Ok(args)
}

fn runtime() -> tokio::runtime::Runtime {
    // One thread, like the reference's single event loop.
    match tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot build a runtime: {e}");
            std::process::exit(2);
        }
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = p / 100.0 * (sorted.len() - 1) as f64;
    let (lo, hi) = (rank.floor() as usize, rank.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - lo as f64)
}

fn summary(values: &mut [f64]) -> Value {
    values.sort_by(f64::total_cmp);
    json!({
        "p50": percentile(values, 50.0), "p99": percentile(values, 99.0),
        "min": values.first().copied().unwrap_or(0.0), "max": values.last().copied().unwrap_or(0.0),
        "n": values.len(),
    })
}

fn rss_kib() -> f64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|p| p.parse::<f64>().ok())
        })
        .map(|pages| pages * 4.0)
        .unwrap_or(0.0)
}

fn cpu_seconds() -> f64 {
    // utime + stime of this process, in clock ticks (100 per second on Linux).
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let after = s.rsplit_once(')')?.1;
            let fields: Vec<&str> = after.split_whitespace().collect();
            let utime: f64 = fields.get(11)?.parse().ok()?;
            let stime: f64 = fields.get(12)?.parse().ok()?;
            Some((utime + stime) / 100.0)
        })
        .unwrap_or(0.0)
}

async fn drive_turn(session: &AgentSession<Booking>, index: usize) -> Duration {
    let turn = &CYCLE[index % CYCLE.len()];
    let started = Instant::now();
    if let Err(e) = session.run(turn.user).await {
        eprintln!("turn {} failed: {e}", index + 1);
    }
    started.elapsed()
}

async fn warm_up() {
    let llm: Arc<dyn Llm> = Arc::new(BenchLlm::default());
    let session = start_session(llm).await;
    for i in 0..CYCLE.len() {
        drive_turn(&session, i).await;
    }
    session.close().await;
}

async fn verify() -> Value {
    let llm = Arc::new(BenchLlm::recording());
    let session = start_session(llm.clone()).await;
    let mut problems = Vec::new();
    let mut turns = Vec::new();
    let take_labels = |llm: &BenchLlm| -> Vec<String> {
        llm.labels
            .as_ref()
            .map(|l| std::mem::take(&mut *l.lock().unwrap_or_else(|p| p.into_inner())))
            .unwrap_or_default()
    };
    let greeting = take_labels(&llm);
    if greeting != ["enter:greeter"] {
        problems.push(format!("start: expected [enter:greeter], got {greeting:?}"));
    }
    for i in 0..2 * CYCLE.len() {
        let turn = &CYCLE[i % CYCLE.len()];
        drive_turn(&session, i).await;
        let labels = take_labels(&llm);
        let agent = session.current_agent_id().await.unwrap_or_default();
        if labels != turn.labels {
            problems.push(format!(
                "turn {}: expected requests {:?}, got {labels:?}",
                i + 1,
                turn.labels
            ));
        }
        if agent != turn.agent_after {
            problems.push(format!(
                "turn {}: expected agent {}, got {agent}",
                i + 1,
                turn.agent_after
            ));
        }
        eprintln!(
            "{:>2} {:<15} {:<34} -> {:<16} {} requests",
            i + 1,
            turn.kind,
            turn.user,
            agent,
            labels.len()
        );
        turns.push(
            json!({"turn": i + 1, "kind": turn.kind, "agent_after": agent, "requests": labels}),
        );
    }
    let booking = session.userdata().clone();
    let expected = Booking {
        day: Some("friday".into()),
        email: Some("jane@example.com".into()),
        name: Some("Jane Doe".into()),
        guests: Some(4),
        transfers: 4,
    };
    if booking != expected {
        problems.push(format!("userdata: expected {expected:?}, got {booking:?}"));
    }
    let history = session.history().await.len();
    session.close().await;
    json!({"ok": problems.is_empty(), "problems": problems, "turns": turns, "history_items_after_two_cycles": history, "userdata": booking})
}

async fn latency(samples: usize) -> Value {
    warm_up().await;
    let mut by_kind: std::collections::BTreeMap<&str, Vec<f64>> = Default::default();
    let cpu_start = cpu_seconds();
    let wall_start = Instant::now();
    let mut sessions = 0;
    let mut turns = 0;
    while ["plain", "tool", "handoff"]
        .iter()
        .any(|k| by_kind.get(k).map_or(0, Vec::len) < samples)
    {
        let llm: Arc<dyn Llm> = Arc::new(BenchLlm::default());
        let session = start_session(llm).await;
        for i in 0..2 * CYCLE.len() {
            let took = drive_turn(&session, i).await;
            by_kind
                .entry(CYCLE[i % CYCLE.len()].kind)
                .or_default()
                .push(took.as_secs_f64() * 1e6);
            turns += 1;
        }
        session.close().await;
        sessions += 1;
    }
    let cpu_per_turn_us = (cpu_seconds() - cpu_start) / turns as f64 * 1e6;
    let mut detail = serde_json::Map::new();
    let mut out = serde_json::Map::new();
    for (kind, values) in by_kind.iter_mut() {
        let s = summary(values);
        if ["plain", "tool", "handoff"].contains(kind) {
            out.insert(
                (*kind).to_owned(),
                json!({"p50": s["p50"], "p99": s["p99"]}),
            );
        }
        detail.insert((*kind).to_owned(), s);
    }
    json!({"turn_us": out, "detail": {"by_kind": detail, "sessions": sessions, "turns": turns,
        "cpu_us_per_turn": cpu_per_turn_us, "wall_s": wall_start.elapsed().as_secs_f64(),
        "note": "settled time: run() returns only when the turn, its tools, handoffs and greetings are done"}})
}

async fn session_times(samples: usize) -> Value {
    warm_up().await;
    let (mut starts, mut closes) = (Vec::new(), Vec::new());
    for _ in 0..samples {
        let started = Instant::now();
        let llm: Arc<dyn Llm> = Arc::new(BenchLlm::default());
        let session = start_session(llm).await;
        starts.push(started.elapsed().as_secs_f64() * 1e6);
        let closing = Instant::now();
        session.close().await;
        closes.push(closing.elapsed().as_secs_f64() * 1e6);
    }
    let (s, c) = (summary(&mut starts), summary(&mut closes));
    json!({"session_start_us": s["p50"], "session_close_us": c["p50"], "detail": {"start": s, "close": c}})
}

/// One memory measurement in this process (the parent runs one process per count).
async fn memory_child(n: usize, turns: usize) -> Value {
    warm_up().await;
    let baseline = rss_kib();
    let llm: Arc<dyn Llm> = Arc::new(BenchLlm::default());
    let mut sessions = Vec::with_capacity(n);
    for _ in 0..n {
        sessions.push(start_session(llm.clone()).await);
    }
    let idle = (rss_kib() - baseline) / n as f64;
    for batch in sessions.chunks(100) {
        let drives = batch.iter().map(|s| async move {
            for i in 0..turns {
                drive_turn(s, i).await;
            }
        });
        futures::future::join_all(drives).await;
    }
    let after = (rss_kib() - baseline) / n as f64;
    json!({"idle": idle, "after_turns": after, "baseline_kib": baseline})
}

async fn throughput_child(n: usize, min_turns: usize) -> Value {
    warm_up().await;
    let llm: Arc<dyn Llm> = Arc::new(BenchLlm::default());
    let (mut turns, mut busy) = (0usize, Duration::ZERO);
    let mut worst = Duration::ZERO;
    while turns < min_turns {
        let sessions = futures::future::join_all((0..n).map(|_| start_session(llm.clone()))).await;
        let started = Instant::now();
        let results = futures::future::join_all(sessions.iter().map(|s| async move {
            let mut worst = Duration::ZERO;
            for i in 0..CYCLE.len() {
                worst = worst.max(drive_turn(s, i).await);
            }
            worst
        }))
        .await;
        busy += started.elapsed();
        worst = results.into_iter().fold(worst, Duration::max);
        turns += n * CYCLE.len();
        futures::future::join_all(sessions.iter().map(|s| s.close())).await;
    }
    json!({"turns": turns, "seconds": busy.as_secs_f64(), "turns_per_s": turns as f64 / busy.as_secs_f64(),
        "worst_turn_us": worst.as_secs_f64() * 1e6})
}

fn child(mode: &str, args: &[String]) -> Result<Value, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let output = Command::new(exe)
        .arg(mode)
        .args(args)
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&output.stdout);
    let last = text.lines().last().unwrap_or_default();
    serde_json::from_str(last).map_err(|e| format!("{mode} child printed no JSON ({e}): {text}"))
}

fn memory(sessions: &[usize], turns: usize) -> Result<Value, String> {
    let mut by = serde_json::Map::new();
    for &n in sessions {
        eprintln!("memory: {n} sessions");
        by.insert(
            n.to_string(),
            child("memory-child", &[n.to_string(), turns.to_string()])?,
        );
    }
    let headline = if by.contains_key("1000") {
        1000
    } else {
        sessions.iter().copied().max().unwrap_or(0)
    };
    let top = by
        .get(&headline.to_string())
        .cloned()
        .unwrap_or(Value::Null);
    Ok(
        json!({"memory_kib_per_session": {"idle": top["idle"], "after_turns": top["after_turns"]},
        "detail": {"headline_sessions": headline, "by_sessions": by}}),
    )
}

fn throughput(sessions: &[usize], min_turns: usize) -> Result<Value, String> {
    let mut figures = serde_json::Map::new();
    let mut runs = serde_json::Map::new();
    for &n in sessions {
        eprintln!("throughput: {n} concurrent sessions");
        let run = child("throughput-child", &[n.to_string(), min_turns.to_string()])?;
        figures.insert(n.to_string(), run["turns_per_s"].clone());
        runs.insert(n.to_string(), run);
    }
    Ok(json!({"turns_per_s": figures, "detail": {"runs": runs}}))
}

fn cold(runs: usize) -> Result<Value, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut times = Vec::new();
    for _ in 0..runs {
        let started = Instant::now();
        let mut process = Command::new(&exe)
            .arg("cold-child")
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| e.to_string())?;
        let stdout = process.stdout.take().ok_or("no stdout")?;
        let mut seen = false;
        for line in BufReader::new(stdout).lines() {
            if line.map_err(|e| e.to_string())?.trim() == "FIRST_TURN_DONE" {
                times.push(started.elapsed().as_secs_f64() * 1e3);
                seen = true;
                break;
            }
        }
        let _ = process.wait();
        if !seen {
            return Err("the cold-start child never finished its first turn".into());
        }
    }
    let s = summary(&mut times);
    Ok(json!({"cold_start_ms": s["p50"], "detail": s}))
}

fn main() -> ExitCode {
    // Child processes of the memory and throughput modes take positional arguments.
    let raw: Vec<String> = std::env::args().skip(1).collect();
    if let Some(mode @ ("memory-child" | "throughput-child")) = raw.first().map(String::as_str) {
        let n: usize = raw.get(1).and_then(|v| v.parse().ok()).unwrap_or(1);
        let m: usize = raw.get(2).and_then(|v| v.parse().ok()).unwrap_or(5);
        let value = if mode == "memory-child" {
            runtime().block_on(memory_child(n, m))
        } else {
            runtime().block_on(throughput_child(n, m))
        };
        println!("{value}");
        return ExitCode::SUCCESS;
    }
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let outcome: Result<Value, String> = match args.mode.as_str() {
        "verify" => Ok(runtime().block_on(verify())),
        "latency" => Ok(runtime().block_on(latency(args.samples))),
        "session" => Ok(runtime().block_on(session_times(args.samples))),
        "memory" => memory(&args.sessions, args.turns),
        "throughput" => throughput(&args.sessions, args.min_turns),
        "cold" => cold(args.runs),
        "voice-latency" => runtime().block_on(voice::voice_latency(args.samples.min(1000))),
        "cold-child" => {
            runtime().block_on(async {
                let llm: Arc<dyn Llm> = Arc::new(BenchLlm::default());
                let session = start_session(llm).await;
                drive_turn(&session, 0).await;
                println!("FIRST_TURN_DONE");
                session.close().await;
            });
            return ExitCode::SUCCESS;
        }
        other => Err(format!("unknown mode {other}\n{}", usage())),
    };
    match outcome {
        Ok(value) => {
            let ok = args.mode != "verify" || value["ok"] == Value::Bool(true);
            println!("{value}");
            if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
