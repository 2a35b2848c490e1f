//! The clinic intake on the embedded models only, as typed text: Needle 3 routes tool calls,
//! Gemma 3 270M speaks (or Gemma alone with `--gemma-only`). Prints the conversation and
//! whether the workflow completed (consent, name, date of birth, phone, email, booking).
//!
//! ```sh
//! bash scripts/setup.sh
//! cargo run --release -p switchboard-llama --example clinic_local [-- --gemma-only]
//! ```
//!
//! (This lives here, not in the `switchboard` binary: llama.cpp and whisper.cpp each vendor
//! ggml and cannot be linked into one program.)

use std::sync::Arc;

use switchboard::llm::Llm;
use switchboard::{RunEvent, chat::Role};
use switchboard_examples::{Voice, workflow};
use switchboard_llama::LlamaLlm;
use switchboard_needle::{NeedleLlm, RouterLlm};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), String> {
    let gemma_only = std::env::args().any(|a| a == "--gemma-only");
    let gemma: Arc<dyn Llm> = LlamaLlm::from_env().map_err(|e| e.to_string())?;
    let llm: Arc<dyn Llm> = if gemma_only {
        gemma
    } else {
        let needle: Arc<dyn Llm> = NeedleLlm::from_env().map_err(|e| e.to_string())?;
        Arc::new(RouterLlm::new(needle, gemma))
    };
    println!("model: {}/{}", llm.provider(), llm.model());
    let clinic = workflow("clinic").ok_or("no clinic workflow")?;
    let started = (clinic.start)(llm, Voice::none())
        .await
        .map_err(|e| e.to_string())?;
    let session = started.session;
    let print = |events: &[RunEvent]| {
        for event in events {
            match event {
                RunEvent::Message(m) if m.role == Role::Assistant => {
                    println!("  agent: {}", m.text())
                }
                RunEvent::FunctionCall(c) => println!("    · tool {}({})", c.name, c.arguments),
                RunEvent::FunctionCallOutput(o) => println!("    · → {}", o.output),
                RunEvent::AgentHandoff { item, .. } => {
                    println!("    · handoff → {}", item.new_agent_id)
                }
                _ => {}
            }
        }
    };
    print(started.greeting.events());
    for line in clinic.caller_lines {
        println!("caller: {line}");
        match session.run(line).await {
            Ok(result) => print(result.events()),
            Err(e) => println!("    ! {e}"),
        }
    }
    let results = session.results();
    session.close().await;
    let done = |path: &[&str]| {
        let mut value = &results;
        for key in path {
            value = &value[*key];
        }
        !value.is_null()
    };
    let steps = [
        ("consent", done(&["consent", "granted"])),
        ("name", done(&["name", "last_name"])),
        ("date of birth", done(&["date_of_birth", "date_of_birth"])),
        ("phone", done(&["phone", "phone_number"])),
        ("email", done(&["email", "email_address"])),
        ("booking", done(&["appointment"])),
    ];
    let completed = steps.iter().filter(|(_, ok)| *ok).count();
    println!("\ncollected: {results}");
    for (step, ok) in steps {
        println!("  {step}: {}", if ok { "done" } else { "missing" });
    }
    println!(
        "workflow {}: {completed} of {} steps",
        if completed == steps.len() {
            "completed"
        } else {
            "not completed"
        },
        steps.len()
    );
    Ok(())
}
