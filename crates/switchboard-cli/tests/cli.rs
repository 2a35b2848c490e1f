//! The `switchboard` binary, run as a user would.

use std::io::Write;
use std::process::{Command, Stdio};

fn switchboard() -> Command {
    Command::new(env!("CARGO_BIN_EXE_switchboard"))
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("switchboard-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn text_demo_writes_a_well_formed_event_log_and_results() {
    let out = temp_dir("demo");
    let output = switchboard()
        .args(["demo", "--text", "--out"])
        .arg(&out)
        .env_remove("SWITCHBOARD_LLM")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("handoff front_desk → get_consent_task"),
        "{stdout}"
    );
    let events = std::fs::read_to_string(out.join("events.jsonl")).unwrap();
    let mut last = 0i64;
    let mut kinds = std::collections::BTreeSet::new();
    for line in events.lines() {
        let event: serde_json::Value = serde_json::from_str(line).unwrap();
        let at = event["created_at"].as_i64().unwrap();
        assert!(at > last, "events are in time order");
        last = at;
        kinds.insert(event["type"].as_str().unwrap().to_owned());
    }
    for kind in [
        "conversation_item_added",
        "function_tools_executed",
        "agent_state_changed",
        "speech_created",
        "close",
    ] {
        assert!(kinds.contains(kind), "no {kind} event in {kinds:?}");
    }
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    assert_eq!(
        results["results"]["email"]["email_address"],
        "jane.doe@example.com"
    );
    assert_eq!(
        results["results"]["date_of_birth"]["date_of_birth"],
        "1985-03-14"
    );
    assert_eq!(
        results["collected"],
        serde_json::json!({"done": 6, "of": 6, "missing": []})
    );
    assert!(
        stdout.contains("Workflow completed: 6 of 6 results collected."),
        "{stdout}"
    );
}

/// The main job, for real: the clinic call through Silero VAD, Whisper, the scripted model and
/// Piper, in real time (about two minutes). Needs the set-up cache (`scripts/setup.sh`).
#[test]
fn voice_demo_runs_the_clinic_call_and_writes_the_recording() {
    let out = temp_dir("voice");
    let output = switchboard()
        .args(["demo", "--seed", "11", "--out"])
        .arg(&out)
        .env_remove("SWITCHBOARD_LLM")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // Every event is one JSON object with a type and a timestamp; user-state changes are
    // back-dated to the VAD boundary, everything else is in time order.
    let events = std::fs::read_to_string(out.join("events.jsonl")).unwrap();
    let mut last = 0i64;
    let mut kinds = std::collections::BTreeMap::<String, usize>::new();
    for line in events.lines() {
        let event: serde_json::Value = serde_json::from_str(line).unwrap();
        let kind = event["type"].as_str().unwrap().to_owned();
        let at = event["created_at"].as_i64().unwrap();
        if kind != "user_state_changed" {
            assert!(at >= last, "{kind} out of order in {events}");
            last = at;
        }
        *kinds.entry(kind).or_default() += 1;
    }
    for kind in [
        "user_input_transcribed",
        "user_state_changed",
        "turn_metrics",
        "close",
    ] {
        assert!(kinds.contains_key(kind), "no {kind} event in {kinds:?}");
    }
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    assert_eq!(results["mode"], "voice");
    assert_eq!(
        results["user_turns"], 11,
        "every caller line became one turn:\n{stdout}"
    );
    assert!(results["agent_turns"].as_u64().unwrap() >= 11, "{stdout}");
    assert!(
        results["median_latency"]["end_of_speech_to_first_audio_s"].is_f64(),
        "{results}"
    );
    // The recording: caller left, agent right, both audible.
    let wav = std::fs::File::open(out.join("call.wav")).unwrap();
    let call = switchboard::voice::audio::decode_wav(
        std::io::BufReader::new(wav),
        "call.wav",
        switchboard::voice::audio::OnTruncated::Error,
    )
    .unwrap()
    .frame;
    assert_eq!((call.sample_rate(), call.channels()), (16_000, 2));
    assert!(call.duration().as_secs() > 30, "{:?}", call.duration());
    let loud = |channel: usize| {
        call.data()
            .iter()
            .skip(channel)
            .step_by(2)
            .filter(|s| s.unsigned_abs() > 1000)
            .count()
    };
    assert!(loud(0) > 16_000 && loud(1) > 16_000, "both sides speak");
}

#[test]
fn console_reads_turns_from_a_pipe_and_exits_at_end_of_input() {
    let mut child = switchboard()
        .args(["console", "--workflow", "frontdesk", "--json"])
        .env_remove("SWITCHBOARD_LLM")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"Hi, are you open on Saturday?\n")
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(lines.iter().any(|e| e["type"] == "function_tools_executed"));
    assert_eq!(lines.last().unwrap()["type"], "close");
}

#[test]
fn vad_prints_speech_segments_of_a_wav_file() {
    // 0.5 s of silence, 1 s of a loud tone, 1 s of silence, at 8 kHz: an odd rate on purpose.
    let dir = temp_dir("vad");
    let path = dir.join("tone.wav");
    let rate = 8000u32;
    let samples: Vec<i16> = (0..rate * 5 / 2)
        .map(|i| {
            let t = f64::from(i) / f64::from(rate);
            if (0.5..1.5).contains(&t) {
                ((t * 440.0 * std::f64::consts::TAU).sin() * 12_000.0) as i16
            } else {
                0
            }
        })
        .collect();
    let frame = switchboard::voice::audio::AudioFrame::new(samples, rate, 1).unwrap();
    switchboard::voice::audio::write_wav(&path, &frame).unwrap();
    let output = switchboard()
        .args(["vad", "--energy"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let segments: Vec<serde_json::Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(segments.len(), 1, "{segments:?}");
    let (start, end) = (
        segments[0]["start_s"].as_f64().unwrap(),
        segments[0]["end_s"].as_f64().unwrap(),
    );
    assert!(
        (start - 0.5).abs() < 0.1 && (end - 1.5).abs() < 0.1,
        "{start}..{end}"
    );
}

#[test]
fn bad_input_gets_clear_errors() {
    let missing = switchboard()
        .args(["vad", "/nonexistent/file.wav"])
        .output()
        .unwrap();
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/nonexistent/file.wav"));
    let unknown = switchboard()
        .args(["demo", "--workflow", "nope"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("built-in workflows: "));
    let no_key = switchboard()
        .args(["demo", "--llm", "groq/llama"])
        .env_remove("GROQ_API_KEY")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&no_key.stderr).contains("GROQ_API_KEY"));
    let no_model = switchboard()
        .args(["console", "--llm", "local//nowhere/model.gguf"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!no_model.status.success());
    assert!(
        String::from_utf8_lossy(&no_model.stderr).contains("no GGUF model at /nowhere/model.gguf"),
        "{}",
        String::from_utf8_lossy(&no_model.stderr)
    );
}

/// `--llm local/gemma`: the GGUF model runs in a `switchboard-llama-server` child process
/// (built by `cargo test --workspace` beside this binary; the model comes from the set-up
/// cache), answers over its OpenAI-compatible endpoint, and exits with the console.
#[test]
fn local_gguf_model_answers_from_a_helper_process_that_exits_with_us() {
    let exe = std::path::Path::new(env!("CARGO_BIN_EXE_switchboard"));
    let server = exe.with_file_name("switchboard-llama-server");
    assert!(
        server.is_file(),
        "{} is missing: run the workspace's tests (`cargo test --workspace`) or build it with \
         `cargo build -p switchboard-llama --bin switchboard-llama-server`",
        server.display()
    );
    let marker = format!("cli-test-{}", std::process::id());
    // stderr goes to a file: a leaked helper shares it, and must not keep this test waiting.
    let stderr_path = temp_dir("local-gguf").join("stderr.txt");
    let mut child = switchboard()
        .args([
            "console",
            "--workflow",
            "frontdesk",
            "--json",
            "--llm",
            "local/gemma",
        ])
        .env("SWITCHBOARD_LLAMA_SERVER", &server)
        .env("SWITCHBOARD_TEST_MARKER", &marker)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"Hi! Who are you?\n")
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        std::fs::read_to_string(&stderr_path).unwrap_or_default()
    );
    let events: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // The model's reply to the user's line: an assistant message after the user's message.
    let items: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| e["type"] == "conversation_item_added")
        .map(|e| &e["item"])
        .collect();
    let user = items
        .iter()
        .position(|i| i["role"] == "user")
        .expect("the user's line is in the conversation");
    let reply = items[user + 1..]
        .iter()
        .find(|i| i["role"] == "assistant")
        .unwrap_or_else(|| panic!("no reply from the local model in {stdout}"));
    let text = reply["content"][0].as_str().unwrap_or_default();
    assert!(!text.trim().is_empty(), "{reply}");
    // The helper went with the console (a leaked llama.cpp process holds ~400 MB): the CLI
    // kills and reaps it before exiting, so it is gone from /proc by now.
    let marker_var = format!("SWITCHBOARD_TEST_MARKER={marker}");
    let helper_alive = std::fs::read_dir("/proc").unwrap().flatten().any(|entry| {
        std::fs::read(entry.path().join("environ"))
            .is_ok_and(|env| env.split(|b| *b == 0).any(|v| v == marker_var.as_bytes()))
            && std::fs::read_to_string(entry.path().join("cmdline"))
                .is_ok_and(|cmd| cmd.contains("switchboard-llama-server"))
    });
    assert!(
        !helper_alive,
        "switchboard-llama-server outlived the console"
    );
}

/// A Chat Completions stream whose answer is one call of `tool` with `arguments`.
fn tool_call_stream(tool: &str, arguments: serde_json::Value) -> String {
    let call = serde_json::json!({
        "id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "judge",
        "choices": [{"index": 0, "delta": {"role": "assistant", "tool_calls": [{
            "index": 0, "id": "call_1", "type": "function",
            "function": {"name": tool, "arguments": arguments.to_string()}}]}, "finish_reason": null}]
    });
    let end = serde_json::json!({
        "id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "judge",
        "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]
    });
    format!("data: {call}\n\ndata: {end}\n\ndata: [DONE]\n\n")
}

#[test]
fn test_command_judges_through_a_real_provider_client() {
    use switchboard_replay::{ReplayServer, Reply};
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // Two message judges (turns 1 and 4), then four conversation judges, all answered by a
    // local server speaking the Chat Completions protocol.
    let mut replies: Vec<Reply> = (0..2)
        .map(|_| {
            Reply::sse(tool_call_stream(
                "check_intent",
                serde_json::json!({"success": true, "reason": "it does"}),
            ))
        })
        .collect();
    for _ in 0..4 {
        replies.push(Reply::sse(tool_call_stream(
            "submit_verdict",
            serde_json::json!({"verdict": "pass", "reasoning": "fine"}),
        )));
    }
    let server = runtime.block_on(ReplayServer::start(replies));
    let url = server.url().to_owned();
    let junit = temp_dir("judge").join("junit.xml");
    let scenario = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/scenarios/frontdesk.toml"
    );
    // The server runs on `runtime`; drive it from a thread while the CLI runs.
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = done.clone();
    let driver = std::thread::spawn(move || {
        runtime.block_on(async move {
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
            server.requests().len()
        })
    });
    let output = switchboard()
        .args(["test", scenario, "--junit"])
        .arg(&junit)
        .args([
            "--judge-model",
            &format!("openai-compatible:{url}/v1#judge"),
        ])
        .env("OPENAI_COMPATIBLE_API_KEY", "sk-local-test")
        .output()
        .unwrap();
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let requests = driver.join().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        requests, 6,
        "two message judges and four conversation judges: {stdout}"
    );
    assert!(!stdout.contains("skipped"), "{stdout}");
    assert!(!stdout.contains("sk-local-test"));
}
