//! How well Needle routes the clinic intake (examples/src/clinic.rs): for realistic caller
//! utterances at each step, Needle is offered the exact tools of that step (built through the
//! core API from the same tasks and agents the clinic uses) and must pick the right tool with
//! the right arguments, or no tool for small talk.
//!
//! ```sh
//! bash scripts/setup.sh && . ~/.cache/switchboard/env.sh
//! cargo run --release --example clinic_tools             # the default options
//! cargo run --release --example clinic_tools -- --all    # every text mode, with and without the date fact
//! cargo run --release --example clinic_tools -- -v       # one line per utterance
//! ```
//!
//! Arguments are judged the way the tools judge them: through the workflows' own normalisers
//! (`normalize_email_address`, `normalize_phone_number`, `parse_date_of_birth`, …).

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use switchboard::Agent;
use switchboard::chat::{ChatContext, Role};
use switchboard::llm::{ChatRequest, ToolDefinition};
use switchboard::tools::FunctionTool;
use switchboard::workflows::date::CalendarDate;
use switchboard::workflows::dob::parse_date_of_birth;
use switchboard::workflows::email::normalize_email_address;
use switchboard::workflows::name::normalize_name_part;
use switchboard::workflows::phone::normalize_phone_number;
use switchboard::workflows::{
    GetConsentTask, GetDobTask, GetEmailTask, GetNameTask, GetPhoneNumberTask, NameParts,
    WorkflowInstructions,
};
use switchboard_examples::clinic::{
    Billing, CONSENT_QUESTION, ClinicIntake, FrontDesk, INTAKE_PERSONA, next_tuesday,
};
use switchboard_needle::{DateFact, NeedleLlm, NeedleOptions, TextMode};

/// The day the evaluation pretends it is (a Saturday), for dates and ages.
fn today() -> CalendarDate {
    CalendarDate::new(2026, 12, 5).expect("a date")
}

type Check = Box<dyn Fn(&Value) -> bool>;

/// One caller utterance and what should happen.
struct Case {
    text: &'static str,
    /// The tool to call, or `None` for no call.
    tool: Option<&'static str>,
    /// Whether the arguments are right (not consulted when `tool` is `None`).
    check: Check,
    /// True for the clear cases, false for the borderline ones.
    clear: bool,
}

fn case(text: &'static str, tool: &'static str, check: Check) -> Case {
    Case {
        text,
        tool: Some(tool),
        check,
        clear: true,
    }
}

fn none(text: &'static str) -> Case {
    Case {
        text,
        tool: None,
        check: Box::new(|_| true),
        clear: true,
    }
}

fn borderline(mut c: Case) -> Case {
    c.clear = false;
    c
}

fn any() -> Check {
    Box::new(|_| true)
}

fn str_arg<'a>(args: &'a Value, key: &str) -> Option<&'a str> {
    args.get(key).and_then(Value::as_str)
}

fn consent(granted: bool) -> Check {
    Box::new(move |a| a.get("granted").and_then(Value::as_bool) == Some(granted))
}

fn name(first: &'static str, last: &'static str) -> Check {
    Box::new(move |a| {
        let part = |k| {
            str_arg(a, k)
                .and_then(|v| normalize_name_part(v).ok().flatten())
                .map(|v| v.to_lowercase())
        };
        part("first_name").as_deref() == Some(&first.to_lowercase())
            && part("last_name").as_deref() == Some(&last.to_lowercase())
    })
}

fn dob(expected: &'static str) -> Check {
    Box::new(move |a| {
        let n = |k| a.get(k).and_then(Value::as_i64);
        match (n("year"), n("month"), n("day")) {
            (Some(y), Some(m), Some(d)) => parse_date_of_birth(y, m, d, today())
                .map(|date| date.to_string() == expected)
                .unwrap_or(false),
            _ => false,
        }
    })
}

fn phone(expected: &'static str) -> Check {
    Box::new(move |a| {
        let want = normalize_phone_number(expected).ok();
        str_arg(a, "phone_number").and_then(|p| normalize_phone_number(p).ok()) == want
    })
}

fn email(expected: &'static str) -> Check {
    Box::new(move |a| {
        str_arg(a, "email")
            .and_then(|e| normalize_email_address(e).ok())
            .as_deref()
            == Some(expected)
    })
}

fn back_to(steps: &'static [&'static str]) -> Check {
    Box::new(move |a| {
        let ids: Vec<&str> = a
            .get("task_ids")
            .and_then(Value::as_array)
            .map(|v| v.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        ids == steps
    })
}

fn date(expected: String) -> Check {
    Box::new(move |a| str_arg(a, "date") == Some(expected.as_str()))
}

/// One step of the clinic: the agent's instructions and last words, its tools, the utterances.
struct Step {
    name: &'static str,
    instructions: String,
    question: &'static str,
    tools: Vec<Arc<ToolDefinition>>,
    cases: Vec<Case>,
}

fn definitions<U: Send + 'static>(tools: Vec<FunctionTool<U>>) -> Vec<Arc<ToolDefinition>> {
    tools.iter().map(FunctionTool::shared_definition).collect()
}

/// The `out_of_scope` tool the task group adds from the second step on, with the same schema
/// (the group builds it privately, so it is rebuilt here through `FunctionTool::raw`).
fn go_back(earlier: &[(&str, &str)]) -> Arc<ToolDefinition> {
    let listing = earlier
        .iter()
        .map(|(id, description)| format!("{id}: {description}"))
        .collect::<Vec<_>>()
        .join("; ");
    let ids: Vec<&str> = earlier.iter().map(|(id, _)| *id).collect();
    let schema = json!({
        "type": "object",
        "properties": {
            "task_ids": {
                "type": "array",
                "description": "The steps to go back to, in the order to redo them.",
                "items": {"type": "string", "enum": ids},
                "minItems": 1
            }
        },
        "required": ["task_ids"],
        "additionalProperties": false
    });
    FunctionTool::<()>::raw(
        "out_of_scope",
        format!(
            "Call when the user wants to change something collected in an earlier step. Earlier steps: {listing}."
        ),
        schema,
        |_ctx, _args| async {},
    )
    .expect("a valid tool")
    .shared_definition()
}

const NAME: (&str, &str) = ("name", "the patient's first and last name");
const DOB: (&str, &str) = ("date_of_birth", "the patient's date of birth");
const PHONE: (&str, &str) = ("phone", "a phone number to reach the patient");

fn steps() -> Vec<Step> {
    let persona = || WorkflowInstructions::new().with_persona(INTAKE_PERSONA);
    let consent_task = Arc::new(GetConsentTask::new(CONSENT_QUESTION));
    let name_task = Arc::new(
        GetNameTask::default()
            .with_parts(NameParts::FIRST_LAST)
            .with_instructions(persona()),
    );
    let dob_task = Arc::new(
        GetDobTask::default()
            .with_today(today())
            .with_instructions(persona()),
    );
    let phone_task = Arc::new(GetPhoneNumberTask::default().with_instructions(persona()));
    let email_task = Arc::new(GetEmailTask::default().with_instructions(persona()));
    let billing = Arc::new(Billing {
        patient: Some("Jane Doe".into()),
        appointment: None,
    });
    let tuesday = next_tuesday(today()).to_string();

    let with_go_back = |mut tools: Vec<Arc<ToolDefinition>>, earlier: &[(&str, &str)]| {
        tools.push(go_back(earlier));
        tools
    };
    vec![
        Step {
            name: "front desk",
            instructions: Agent::<ClinicIntake>::instructions(&FrontDesk),
            question: "Riverside Clinic, good morning! How can I help you today?",
            tools: definitions(Agent::<ClinicIntake>::tools(Arc::new(FrontDesk))),
            cases: vec![
                case(
                    "Hi, I'd like to book an appointment, please.",
                    "start_intake",
                    any(),
                ),
                case(
                    "I'm a new patient and I need to see a doctor.",
                    "start_intake",
                    any(),
                ),
                case("How much does a visit cost?", "transfer_to_billing", any()),
                case(
                    "I have a question about my bill.",
                    "transfer_to_billing",
                    any(),
                ),
                borderline(case(
                    "Can you book me in for next Tuesday?",
                    "book_appointment",
                    date(tuesday.clone()),
                )),
                none("Tell me a joke."),
                none("What's the weather like today?"),
            ],
        },
        Step {
            name: "consent",
            instructions: Agent::<()>::instructions(consent_task.as_ref()),
            question: CONSENT_QUESTION,
            tools: definitions(Agent::<()>::tools(consent_task.clone())),
            cases: vec![
                case("Yes, that's fine.", "record_consent", consent(true)),
                case("yes I consent", "record_consent", consent(true)),
                case("Sure, go ahead.", "record_consent", consent(true)),
                case("No, I'd rather not.", "record_consent", consent(false)),
                case(
                    "No, I don't agree to that.",
                    "record_consent",
                    consent(false),
                ),
                none("What do you mean by patient file?"),
                borderline(case(
                    "I'm not going to answer that.",
                    "decline_consent_capture",
                    any(),
                )),
            ],
        },
        Step {
            name: "name",
            instructions: Agent::<()>::instructions(name_task.as_ref()),
            question: "Thank you. Could I have your first and last name, please?",
            tools: definitions(Agent::<()>::tools(name_task.clone())),
            cases: vec![
                case("Jane Doe.", "update_name", name("Jane", "Doe")),
                case("my name is Jane Doe", "update_name", name("Jane", "Doe")),
                case("It's John Smith.", "update_name", name("John", "Smith")),
                case(
                    "Sure, I'm Maria Garcia.",
                    "update_name",
                    name("Maria", "Garcia"),
                ),
                borderline(case(
                    "I'd rather not give my name.",
                    "decline_name_capture",
                    any(),
                )),
                none("Sorry, can you repeat that?"),
            ],
        },
        Step {
            name: "date of birth",
            instructions: Agent::<()>::instructions(dob_task.as_ref()),
            question: "Thanks, Jane. And what is your date of birth?",
            tools: with_go_back(definitions(Agent::<()>::tools(dob_task.clone())), &[NAME]),
            cases: vec![
                case("it's March 3rd 1990", "update_dob", dob("1990-03-03")),
                case(
                    "March fourteenth, nineteen eighty-five.",
                    "update_dob",
                    dob("1985-03-14"),
                ),
                case(
                    "The fourth of March, eighty-five.",
                    "update_dob",
                    dob("1985-03-04"),
                ),
                case(
                    "I was born on July 4, 1976.",
                    "update_dob",
                    dob("1976-07-04"),
                ),
                case(
                    "Sorry, I gave you the wrong name.",
                    "out_of_scope",
                    back_to(&["name"]),
                ),
            ],
        },
        Step {
            name: "phone",
            instructions: Agent::<()>::instructions(phone_task.as_ref()),
            question: "Got it. What's the best phone number to reach you?",
            tools: with_go_back(
                definitions(Agent::<()>::tools(phone_task.clone())),
                &[NAME, DOB],
            ),
            cases: vec![
                case(
                    "Five five five, one two three, four five six seven.",
                    "update_phone_number",
                    phone("5551234567"),
                ),
                case(
                    "my number is 555-123-4567",
                    "update_phone_number",
                    phone("5551234567"),
                ),
                case(
                    "You can call me on 020 7946 0958.",
                    "update_phone_number",
                    phone("02079460958"),
                ),
                case(
                    "I need to fix my date of birth.",
                    "out_of_scope",
                    back_to(&["date_of_birth"]),
                ),
                borderline(case(
                    "I don't want to give my phone number.",
                    "decline_phone_number_capture",
                    any(),
                )),
            ],
        },
        Step {
            name: "email",
            instructions: Agent::<()>::instructions(email_task.as_ref()),
            question: "Thanks. And finally, what's your email address?",
            tools: with_go_back(
                definitions(Agent::<()>::tools(email_task.clone())),
                &[NAME, DOB, PHONE],
            ),
            cases: vec![
                case(
                    "jane at example dot com",
                    "update_email_address",
                    email("jane@example.com"),
                ),
                case(
                    "jane dot doe at example dot com",
                    "update_email_address",
                    email("jane.doe@example.com"),
                ),
                case(
                    "It's john.smith@gmail.com",
                    "update_email_address",
                    email("john.smith@gmail.com"),
                ),
                borderline(case(
                    "I don't have an email address.",
                    "decline_email_capture",
                    any(),
                )),
            ],
        },
        Step {
            name: "billing",
            instructions: Agent::<ClinicIntake>::instructions(billing.as_ref()),
            question: "Hello, this is the billing desk. How can I help?",
            tools: definitions(Agent::<ClinicIntake>::tools(billing.clone())),
            cases: vec![
                case("How much will the visit cost?", "get_visit_cost", any()),
                case(
                    "What does a standard consultation cost?",
                    "get_visit_cost",
                    any(),
                ),
                none("No, that's all. Thanks!"),
            ],
        },
    ]
}

fn request(step: &Step, text: &str) -> ChatRequest {
    let mut ctx = ChatContext::new();
    ctx.add_message(Role::System, step.instructions.clone());
    ctx.add_message(Role::Assistant, step.question);
    ctx.add_message(Role::User, text);
    ChatRequest::new(ctx).with_tools(step.tools.iter().cloned())
}

#[derive(Default)]
struct Tally {
    cases: usize,
    right_tool: usize,
    right_args: usize,
    clear: usize,
    clear_right: usize,
    none_cases: usize,
    none_right: usize,
    latencies: Vec<Duration>,
    cpu: Vec<Duration>,
    /// Confidence of answers judged right and wrong.
    conf_right: Vec<f32>,
    conf_wrong: Vec<f32>,
    /// Step name, right answers, utterances.
    per_step: Vec<(&'static str, usize, usize)>,
    /// Per utterance: no call expected, the answer was right, the confidence.
    outcomes: Vec<(bool, bool, Option<f32>)>,
}

fn rss() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<u64>().ok())
            .unwrap_or(0)
            / 1024
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// CPU time of the whole process (all threads), from /proc/self/stat (10 ms ticks).
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which is in parentheses): utime is the 12th, stime the 13th.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<u64> = rest
        .split_whitespace()
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    let ticks = fields.get(11).copied().unwrap_or(0) + fields.get(12).copied().unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

async fn evaluate(llm: &NeedleLlm, steps: &[Step], verbose: bool) -> Tally {
    let mut tally = Tally::default();
    for step in steps {
        tally.per_step.push((step.name, 0, step.cases.len()));
        for case in &step.cases {
            let cpu_before = cpu_time();
            let routing = llm
                .route(&request(step, case.text))
                .await
                .unwrap_or_else(|e| panic!("routing {:?} failed: {e}", case.text));
            let cpu = cpu_time().saturating_sub(cpu_before);
            tally.cpu.push(cpu);
            let first = routing.calls.first();
            let tool_ok = match (case.tool, first) {
                (None, None) => true,
                (Some(want), Some(call)) => call.name == want && routing.calls.len() == 1,
                _ => false,
            };
            let args_ok = tool_ok && first.is_none_or(|call| (case.check)(&call.arguments));
            tally.cases += 1;
            if let Some(last) = tally.per_step.last_mut() {
                last.1 += usize::from(args_ok);
            }
            tally.right_tool += usize::from(tool_ok);
            tally.right_args += usize::from(args_ok);
            if case.clear {
                tally.clear += 1;
                tally.clear_right += usize::from(args_ok);
            }
            if case.tool.is_none() {
                tally.none_cases += 1;
                tally.none_right += usize::from(tool_ok);
            }
            if let Some(c) = &routing.completion {
                tally.latencies.push(c.elapsed);
            }
            let confidence = routing.output.as_ref().and_then(|o| o.confidence);
            tally
                .outcomes
                .push((case.tool.is_none(), args_ok, confidence));
            if let Some(conf) = confidence {
                if args_ok {
                    tally.conf_right.push(conf);
                } else {
                    tally.conf_wrong.push(conf);
                }
            }
            if verbose {
                let calls: Vec<String> = routing
                    .calls
                    .iter()
                    .map(|c| format!("{}({})", c.name, c.arguments))
                    .collect();
                let suppressed: Vec<String> = routing
                    .output
                    .as_ref()
                    .map(|o| {
                        o.suppressed
                            .iter()
                            .map(|c| format!("{}({})", c.name, c.arguments))
                            .collect()
                    })
                    .unwrap_or_default();
                println!(
                    "  {} {:<14} {:<55} → {} conf={} {:.2}s ({:.2}s CPU){}",
                    if args_ok {
                        "ok "
                    } else if tool_ok {
                        "ARG"
                    } else {
                        "BAD"
                    },
                    step.name,
                    format!("{:?}", case.text),
                    if calls.is_empty() {
                        "(none)".to_owned()
                    } else {
                        calls.join(", ")
                    },
                    confidence
                        .map(|c| format!("{c:.2}"))
                        .unwrap_or_else(|| "-".into()),
                    routing
                        .completion
                        .as_ref()
                        .map(|c| c.elapsed.as_secs_f64())
                        .unwrap_or(0.0),
                    cpu.as_secs_f64(),
                    if suppressed.is_empty() {
                        String::new()
                    } else {
                        format!(" suppressed={}", suppressed.join(", "))
                    },
                );
            }
        }
    }
    tally
}

fn report(label: &str, mut t: Tally) {
    t.latencies.sort();
    t.cpu.sort();
    let mean = |v: &[f32]| {
        if v.is_empty() {
            f32::NAN
        } else {
            v.iter().sum::<f32>() / v.len() as f32
        }
    };
    let min = |v: &[f32]| v.iter().copied().fold(f32::NAN, f32::min);
    let max = |v: &[f32]| v.iter().copied().fold(f32::NAN, f32::max);
    println!(
        "{label}: right tool {}/{} ({:.0}%), right tool and arguments {}/{} ({:.0}%), clear cases {}/{}, no-call cases {}/{}; latency p50 {:.2}s p90 {:.2}s max {:.2}s (CPU p50 {:.2}s p90 {:.2}s); confidence right {:.2} (min {:.2}), wrong {:.2} (max {:.2})",
        t.right_tool,
        t.cases,
        100.0 * t.right_tool as f64 / t.cases as f64,
        t.right_args,
        t.cases,
        100.0 * t.right_args as f64 / t.cases as f64,
        t.clear_right,
        t.clear,
        t.none_right,
        t.none_cases,
        percentile(&t.latencies, 0.5).as_secs_f64(),
        percentile(&t.latencies, 0.9).as_secs_f64(),
        t.latencies
            .last()
            .copied()
            .unwrap_or_default()
            .as_secs_f64(),
        percentile(&t.cpu, 0.5).as_secs_f64(),
        percentile(&t.cpu, 0.9).as_secs_f64(),
        mean(&t.conf_right),
        min(&t.conf_right),
        mean(&t.conf_wrong),
        max(&t.conf_wrong),
    );
    let steps: Vec<String> = t
        .per_step
        .iter()
        .map(|(name, right, total)| format!("{name} {right}/{total}"))
        .collect();
    println!("    per step: {}", steps.join(", "));
    // What a confidence threshold would do: answers below it become "no call".
    let sweep: Vec<String> = [0.0f32, 0.1, 0.2, 0.3, 0.4, 0.5]
        .iter()
        .map(|&threshold| {
            let right = t
                .outcomes
                .iter()
                .filter(|(expect_none, right, confidence)| {
                    if confidence.is_some_and(|c| c < threshold) {
                        *expect_none
                    } else {
                        *right
                    }
                })
                .count();
            format!("{threshold:.1} → {right}/{}", t.outcomes.len())
        })
        .collect();
    println!("    min_confidence: {}", sweep.join(", "));
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let verbose = args.iter().any(|a| a == "-v" || a == "--verbose");
    let all = args.iter().any(|a| a == "--all");
    let only: Option<String> = args
        .iter()
        .position(|a| a == "--step")
        .and_then(|i| args.get(i + 1).cloned());

    let (rss_before, _) = rss();
    let started = Instant::now();
    let needle = NeedleLlm::from_env()?;
    let load = started.elapsed();
    let (rss_loaded, _) = rss();
    println!(
        "loaded Needle in {:.2}s (checksums included); RSS {rss_before} MB before, {rss_loaded} MB after",
        load.as_secs_f64()
    );

    let mut steps = steps();
    if let Some(only) = &only {
        steps.retain(|s| s.name == only);
    }
    let total: usize = steps.iter().map(|s| s.cases.len()).sum();
    println!("{} steps, {total} utterances", steps.len());
    if verbose {
        for step in &steps {
            println!(
                "{}: {}",
                step.name,
                switchboard_needle::tools_json(step.tools.iter().map(|t| &**t))
            );
        }
    }

    let base = NeedleOptions {
        date: DateFact::Fixed(today()),
        ..NeedleOptions::default()
    };
    let mut configs: Vec<(String, NeedleOptions)> = vec![("default options".into(), base.clone())];
    if all {
        configs.clear();
        for (mode_label, mode) in [
            ("latest user message", TextMode::LatestUser),
            ("question + answer", TextMode::WithQuestion),
            ("transcript of 2", TextMode::Transcript { turns: 2 }),
        ] {
            for (date_label, date) in [
                ("date fact", DateFact::Fixed(today())),
                ("no date fact", DateFact::Off),
            ] {
                configs.push((
                    format!("{mode_label}, {date_label}"),
                    NeedleOptions {
                        text_mode: mode,
                        date,
                        ..base.clone()
                    },
                ));
            }
        }
    }
    for (label, options) in configs {
        if verbose {
            println!("== {label}");
        }
        let llm = needle.with_options(options);
        let tally = evaluate(&llm, &steps, verbose).await;
        report(&label, tally);
    }
    let (rss_now, rss_peak) = rss();
    println!("RSS now {rss_now} MB, peak {rss_peak} MB");
    Ok(())
}
