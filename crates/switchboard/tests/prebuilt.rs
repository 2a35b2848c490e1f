//! Prebuilt collection tasks: every task through a real session with a scripted model (happy
//! path, validation failures, confirmation, decline), the credit-card group, keypad input in
//! virtual time, and table-driven tests of the normalisers and validators.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use serde_json::{Value, json};
use switchboard::chat::ChatItem;
use switchboard::llm::ChatRequest;
use switchboard::testing::{ScriptedLlm, ScriptedReply};
use switchboard::tools::{FunctionTool, ToolError};
use switchboard::workflows::credit_card::{
    CardIssuer, luhn_valid, mask_card_number, parse_card_number, parse_expiration_date,
    parse_security_code,
};
use switchboard::workflows::date::{CalendarDate, is_leap_year};
use switchboard::workflows::dob::{parse_date_of_birth, resolve_birth_year};
use switchboard::workflows::dtmf::parse_dtmf_inputs;
use switchboard::workflows::email::{normalize_email_address, validate_email_address};
use switchboard::workflows::name::{normalize_name_part, validate_name};
use switchboard::workflows::phone::{is_valid_phone_number, normalize_phone_number};
use switchboard::workflows::{
    GetAddressTask, GetConsentTask, GetCreditCardResult, GetCreditCardTask, GetDobTask,
    GetDtmfTask, GetEmailResult, GetEmailTask, GetNameTask, GetPhoneNumberTask, NameParts,
    WorkflowInstructions, address::format_address,
};
use switchboard::{
    Agent, AgentSession, AgentTask, RunContext, RunEvent, RunResult, TaskError, async_trait,
};

// ---------------------------------------------------------------------------------------------
// Harness: a caller agent whose `collect` tool awaits the task and records the typed outcome.

#[derive(serde::Deserialize, schemars::JsonSchema)]
struct NoArgs {}

type Outcomes<T> = Arc<Mutex<Vec<Result<<T as AgentTask>::Output, TaskError>>>>;
type Factory<T> = Arc<dyn Fn() -> T + Send + Sync>;

struct Caller<T: AgentTask> {
    make: Factory<T>,
    outcomes: Outcomes<T>,
}

#[async_trait]
impl<T> Agent for Caller<T>
where
    T: AgentTask,
    T::Output: Serialize + Clone + Sync,
{
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
            "Collect the details.",
            move |ctx: RunContext, _a: NoArgs| {
                let this = this.clone();
                async move {
                    let outcome = ctx.run_task((this.make)()).await;
                    this.outcomes.lock().unwrap().push(outcome.clone());
                    let value = outcome?;
                    Ok::<_, ToolError>(serde_json::to_string(&value).unwrap_or_default())
                }
            },
        )]
    }
}

struct Harness<T: AgentTask> {
    session: AgentSession,
    llm: Arc<ScriptedLlm>,
    outcomes: Outcomes<T>,
}

impl<T> Harness<T>
where
    T: AgentTask,
    T::Output: Serialize + Clone + Sync,
{
    /// Starts a caller whose `collect` tool runs `make()`; `script` gets the caller's lines.
    async fn start(make: impl Fn() -> T + Send + Sync + 'static, script: ScriptedLlm) -> Self {
        let llm = Arc::new(
            script
                .on("collect", ScriptedReply::tool("collect", json!({})))
                .on("after:collect", ScriptedReply::echo_tool_output()),
        );
        let outcomes: Outcomes<T> = Arc::default();
        let session = AgentSession::builder().llm(llm.clone()).build();
        session
            .start(Caller {
                make: Arc::new(make),
                outcomes: outcomes.clone(),
            })
            .await
            .unwrap();
        Harness {
            session,
            llm,
            outcomes,
        }
    }

    async fn say(&self, line: &str) -> RunResult {
        self.session.run(line).await.unwrap()
    }

    fn outcomes(&self) -> Vec<Result<T::Output, TaskError>> {
        self.outcomes.lock().unwrap().clone()
    }

    async fn agent(&self) -> String {
        self.session.current_agent_id().await.unwrap_or_default()
    }

    /// The first request whose key (see `ScriptedLlm::key_of`) is `key`.
    fn request(&self, key: &str) -> ChatRequest {
        self.llm
            .requests()
            .into_iter()
            .find(|r| ScriptedLlm::key_of(r) == key)
            .unwrap_or_else(|| panic!("no request keyed {key:?}"))
    }
}

/// The outputs of `tool` in a run: (text, is_error).
fn outputs(result: &RunResult, tool: &str) -> Vec<(String, bool)> {
    result
        .events()
        .iter()
        .filter_map(|e| match e {
            RunEvent::FunctionCallOutput(o) if o.name == tool => {
                Some((o.output.clone(), o.is_error))
            }
            _ => None,
        })
        .collect()
}

fn output(result: &RunResult, tool: &str) -> (String, bool) {
    outputs(result, tool)
        .pop()
        .unwrap_or_else(|| panic!("no output of {tool}:\n{}", result.describe(None)))
}

fn handoffs(result: &RunResult) -> Vec<String> {
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

fn tool_names(request: &ChatRequest) -> Vec<String> {
    request.tools.iter().map(|t| t.name.clone()).collect()
}

fn today() -> CalendarDate {
    CalendarDate::new(2026, 6, 15).unwrap()
}

// ---------------------------------------------------------------------------------------------
// One table for every simple task: happy path, validation failure, confirmation, decline.

struct Case<T> {
    name: &'static str,
    agent_id: &'static str,
    plain: fn() -> T,
    confirming: fn() -> T,
    prompt: String,
    update: &'static str,
    /// Bad arguments and a piece of the error the model gets.
    invalid: Vec<(Value, &'static str)>,
    good: Value,
    expected: Value,
    confirm: &'static str,
    decline: &'static str,
    declined: &'static str,
}

fn script<T>(case: &Case<T>) -> ScriptedLlm {
    let mut llm = ScriptedLlm::new()
        .on(case.prompt.clone(), ScriptedReply::text("ASK"))
        .on("good", ScriptedReply::tool(case.update, case.good.clone()))
        .on("confirm", ScriptedReply::tool(case.confirm, json!({})))
        .on(
            "decline",
            ScriptedReply::tool(case.decline, json!({"reason": "the caller refused"})),
        )
        .on(
            format!("after:{}", case.update),
            ScriptedReply::text("UPDATE REPLY"),
        )
        .on(
            format!("after:{}", case.confirm),
            ScriptedReply::text("CONFIRM REPLY"),
        );
    for (i, (args, _)) in case.invalid.iter().enumerate() {
        llm = llm.on(
            format!("bad {i}"),
            ScriptedReply::tool(case.update, args.clone()),
        );
    }
    llm
}

async fn run_case<T>(case: Case<T>)
where
    T: AgentTask + 'static,
    T::Output: Serialize + Clone + Sync + std::fmt::Debug,
{
    let name = case.name;
    // Happy path, after every validation failure.
    let h = Harness::start(case.plain, script(&case)).await;
    let asked = h.say("collect").await;
    assert_eq!(
        handoffs(&asked),
        [format!("caller>{}", case.agent_id)],
        "{name}"
    );
    assert_eq!(asked.last_reply().as_deref(), Some("ASK"), "{name}");
    let on_enter = tool_names(&h.request(&case.prompt));
    assert!(
        !on_enter.contains(&case.decline.to_owned()),
        "{name}: {on_enter:?}"
    );
    assert!(
        !on_enter.contains(&case.confirm.to_owned()),
        "{name}: {on_enter:?}"
    );
    for (i, (_, error)) in case.invalid.iter().enumerate() {
        let refused = h.say(&format!("bad {i}")).await;
        let (text, is_error) = output(&refused, case.update);
        assert!(is_error && text.contains(error), "{name} bad {i}: {text}");
        assert_eq!(refused.last_reply().as_deref(), Some("UPDATE REPLY"));
        assert_eq!(h.agent().await, case.agent_id, "{name}: still collecting");
    }
    assert!(h.outcomes().is_empty(), "{name}");
    let done = h.say("good").await;
    assert_eq!(output(&done, case.update), (String::new(), false), "{name}");
    assert_eq!(
        handoffs(&done),
        [format!("{}>caller", case.agent_id)],
        "{name}"
    );
    let outcome = h.outcomes().pop().unwrap().unwrap();
    assert_eq!(
        serde_json::to_value(&outcome).unwrap(),
        case.expected,
        "{name}"
    );
    let (text, is_error) = output(&done, "collect");
    assert!(!is_error, "{name}");
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap(),
        case.expected,
        "{name}"
    );
    // No confirmation tool without confirmation.
    assert!(
        h.llm
            .requests()
            .iter()
            .all(|r| !tool_names(r).contains(&case.confirm.to_owned())),
        "{name}"
    );

    // Confirmation: the update reads back, the confirm completes.
    let h = Harness::start(case.confirming, script(&case)).await;
    h.say("collect").await;
    let on_enter = tool_names(&h.request(&case.prompt));
    assert!(!on_enter.contains(&case.confirm.to_owned()), "{name}");
    let read_back = h.say("good").await;
    let (text, is_error) = output(&read_back, case.update);
    assert!(!is_error && !text.is_empty(), "{name}: {text}");
    assert!(text.contains(case.confirm), "{name}: {text}");
    assert_eq!(read_back.last_reply().as_deref(), Some("UPDATE REPLY"));
    assert!(
        h.outcomes().is_empty(),
        "{name}: not before the confirmation"
    );
    assert!(
        tool_names(h.llm.requests().last().unwrap()).contains(&case.confirm.to_owned()),
        "{name}"
    );
    let confirmed = h.say("confirm").await;
    assert_eq!(output(&confirmed, case.confirm), (String::new(), false));
    let outcome = h.outcomes().pop().unwrap().unwrap();
    assert_eq!(
        serde_json::to_value(&outcome).unwrap(),
        case.expected,
        "{name}"
    );
    assert_eq!(h.agent().await, "caller");

    // Decline: the task fails and the caller's tool gets the reason.
    let h = Harness::start(case.plain, script(&case)).await;
    h.say("collect").await;
    let declined = h.say("decline").await;
    assert_eq!(
        h.outcomes().pop().unwrap().unwrap_err(),
        TaskError::Failed(case.declined.to_owned()),
        "{name}"
    );
    assert_eq!(
        output(&declined, "collect"),
        (case.declined.to_owned(), true),
        "{name}"
    );
    assert_eq!(declined.last_reply().as_deref(), Some(case.declined));
}

#[tokio::test(start_paused = true)]
async fn email_task() {
    run_case(Case {
        name: "email",
        agent_id: "get_email_task",
        plain: GetEmailTask::default,
        confirming: || GetEmailTask::default().require_confirmation(true),
        prompt: GetEmailTask::default().prompt(),
        update: "update_email_address",
        invalid: vec![
            (
                json!({"email": "jane at example"}),
                "the domain needs a dot",
            ),
            (json!({"email": "jane.example.com"}), "it has no @"),
            (json!({"email": "jane@@example.com"}), "more than one @"),
            (json!({}), "Error parsing arguments"),
        ],
        good: json!({"email": "Jane dot Doe at Example dot com"}),
        expected: json!({"email_address": "jane.doe@example.com"}),
        confirm: "confirm_email_address",
        decline: "decline_email_capture",
        declined: "couldn't get the email address: the caller refused",
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn name_task() {
    run_case(Case {
        name: "name",
        agent_id: "get_name_task",
        plain: || GetNameTask::default().with_parts(NameParts::FIRST_LAST),
        confirming: || {
            GetNameTask::default()
                .with_parts(NameParts::FIRST_LAST)
                .require_confirmation(true)
        },
        prompt: GetNameTask::default()
            .with_parts(NameParts::FIRST_LAST)
            .prompt(),
        update: "update_name",
        invalid: vec![
            (
                json!({"first_name": "Jane"}),
                "Incomplete name: the last name is missing",
            ),
            (
                json!({"first_name": "Jane", "last_name": "unknown"}),
                "Incomplete name: the last name is missing",
            ),
            (
                json!({"first_name": "null", "last_name": "N/A"}),
                "the first and last names are missing",
            ),
            (
                json!({"first_name": "1234", "last_name": "Doe"}),
                "Invalid first name",
            ),
        ],
        good: json!({"first_name": " Jane ", "middle_name": "Quinn", "last_name": "Doe"}),
        expected: json!({"first_name": "Jane", "middle_name": "Quinn", "last_name": "Doe"}),
        confirm: "confirm_name",
        decline: "decline_name_capture",
        declined: "couldn't get the name: the caller refused",
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn phone_task() {
    run_case(Case {
        name: "phone",
        agent_id: "get_phone_number_task",
        plain: GetPhoneNumberTask::default,
        confirming: || GetPhoneNumberTask::default().require_confirmation(true),
        prompt: GetPhoneNumberTask::default().prompt(),
        update: "update_phone_number",
        invalid: vec![
            (
                json!({"phone_number": "555 12"}),
                "a phone number has 7 to 15",
            ),
            (
                json!({"phone_number": "020 7946 0958"}),
                "must not start with 0",
            ),
            (
                json!({"phone_number": "555 call me"}),
                "\"call\" is not a digit",
            ),
            (
                json!({"phone_number": "1 + 555 1234567"}),
                "a + can only come first",
            ),
        ],
        good: json!({"phone_number": "plus one (555) one two three - 45.67"}),
        expected: json!({"phone_number": "+15551234567"}),
        confirm: "confirm_phone_number",
        decline: "decline_phone_number_capture",
        declined: "couldn't get the phone number: the caller refused",
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn address_task() {
    run_case(Case {
        name: "address",
        agent_id: "get_address_task",
        plain: GetAddressTask::default,
        confirming: || GetAddressTask::default().require_confirmation(true),
        prompt: GetAddressTask::default().prompt(),
        update: "update_address",
        invalid: vec![
            (
                json!({"street_address": "12 Main St", "locality": ""}),
                "the city or town is missing",
            ),
            (
                json!({"street_address": "n/a", "locality": "none"}),
                "the street address and the city or town are missing",
            ),
        ],
        good: json!({
            "street_address": "12  Main Street",
            "unit_number": "Apt 4",
            "locality": "Springfield IL 62701",
            "country": ""
        }),
        expected: json!({"address": "12 Main Street, Apt 4, Springfield IL 62701"}),
        confirm: "confirm_address",
        decline: "decline_address_capture",
        declined: "couldn't get the address: the caller refused",
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn dob_task() {
    run_case(Case {
        name: "dob",
        agent_id: "get_dob_task",
        plain: || GetDobTask::default().with_today(today()),
        confirming: || {
            GetDobTask::default()
                .with_today(today())
                .require_confirmation(true)
        },
        prompt: GetDobTask::default().prompt(),
        update: "update_dob",
        invalid: vec![
            (
                json!({"year": 1990, "month": 2, "day": 30}),
                "it has 28 days",
            ),
            (
                json!({"year": 2023, "month": 2, "day": 29}),
                "2023 is not a leap year",
            ),
            (
                json!({"year": 2026, "month": 6, "day": 16}),
                "in the future",
            ),
            (json!({"year": 1985, "month": 13, "day": 1}), "not a month"),
            (
                json!({"year": 312, "month": 1, "day": 1}),
                "not a year of birth",
            ),
            (
                json!({"year": 1850, "month": 1, "day": 1}),
                "more than 130 years",
            ),
        ],
        good: json!({"year": 85, "month": 3, "day": 14}),
        expected: json!({"date_of_birth": "1985-03-14", "time_of_birth": null}),
        confirm: "confirm_dob",
        decline: "decline_dob_capture",
        declined: "couldn't get the date of birth: the caller refused",
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn consent_task() {
    run_case(Case {
        name: "consent",
        agent_id: "get_consent_task",
        plain: || GetConsentTask::new("May we record this call?"),
        confirming: || GetConsentTask::new("May we record this call?").require_confirmation(true),
        prompt: GetConsentTask::new("May we record this call?").prompt(),
        update: "record_consent",
        invalid: vec![(json!({"granted": "maybe"}), "Error parsing arguments")],
        good: json!({"granted": false}),
        expected: json!({"granted": false, "question": "May we record this call?"}),
        confirm: "confirm_consent",
        decline: "decline_consent_capture",
        declined: "couldn't get the answer: the caller refused",
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn dtmf_task_spoken_digits() {
    run_case(Case {
        name: "dtmf",
        agent_id: "get_dtmf_task",
        plain: || GetDtmfTask::new(4),
        confirming: || GetDtmfTask::new(4).require_confirmation(true),
        prompt: GetDtmfTask::new(4).prompt(),
        update: "record_inputs",
        invalid: vec![(json!({"inputs": "one two buckle"}), "not a keypad key")],
        good: json!({"inputs": "one 2 double three pound"}),
        expected: json!({"digits": "1233"}),
        confirm: "confirm_inputs",
        decline: "decline_dtmf_capture",
        declined: "couldn't get the digits: the caller refused",
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// Confirmation details, on the email task.

#[tokio::test(start_paused = true)]
async fn confirming_before_an_update_or_in_the_same_turn_is_refused() {
    let llm = ScriptedLlm::new()
        .on(
            GetEmailTask::default().prompt(),
            ScriptedReply::text("Your email?"),
        )
        .on(
            "yes",
            ScriptedReply::tool("confirm_email_address", json!({})),
        )
        .on(
            "a@example.com",
            ScriptedReply::ToolCalls {
                text: String::new(),
                calls: vec![
                    (
                        "update_email_address".into(),
                        json!({"email": "a@example.com"}).to_string(),
                    ),
                    ("confirm_email_address".into(), "{}".into()),
                ],
            },
        )
        .on(
            "actually b@example.com",
            ScriptedReply::tool("update_email_address", json!({"email": "b@example.com"})),
        )
        .on(
            "after:confirm_email_address",
            ScriptedReply::text("Let me read it back first."),
        )
        .on(
            "after:update_email_address",
            ScriptedReply::text("Is that right?"),
        );
    let h = Harness::start(|| GetEmailTask::default().require_confirmation(true), llm).await;
    h.say("collect").await;
    // Nothing captured yet.
    let early = h.say("yes").await;
    let (text, is_error) = output(&early, "confirm_email_address");
    assert!(
        is_error && text.contains("no email address to confirm yet"),
        "{text}"
    );
    // Update and confirm in one step: the caller has not heard the read-back.
    let same_turn = h.say("a@example.com").await;
    let (text, is_error) = output(&same_turn, "confirm_email_address");
    assert!(is_error, "{text}");
    assert!(
        text.contains("just changed to a@example.com") && text.contains("Read it back"),
        "{text}"
    );
    assert!(h.outcomes().is_empty());
    // A correction re-binds the confirmation to the new value.
    let corrected = h.say("actually b@example.com").await;
    assert!(
        output(&corrected, "update_email_address")
            .0
            .contains("b@example.com")
    );
    h.say("yes").await;
    assert_eq!(
        h.outcomes().pop().unwrap().unwrap(),
        GetEmailResult {
            email_address: "b@example.com".into()
        }
    );
}

#[tokio::test(start_paused = true)]
async fn explicit_ask_hides_the_update_tool_on_enter_and_instructions_are_customised() {
    let task = || {
        GetNameTask::default()
            .require_explicit_ask(true)
            .with_instructions(
                WorkflowInstructions::new()
                    .with_persona("You are Riley from Riverside Clinic.")
                    .with_extra("Address the caller formally."),
            )
    };
    let llm = ScriptedLlm::new()
        .on(task().prompt(), ScriptedReply::text("Your name?"))
        .on(
            "Ann",
            ScriptedReply::tool("update_name", json!({"first_name": "Ann"})),
        );
    let h = Harness::start(task, llm).await;
    h.say("collect").await;
    let on_enter = h.request(&task().prompt());
    assert!(!tool_names(&on_enter).contains(&"update_name".to_owned()));
    let system = on_enter
        .context
        .iter()
        .find_map(|i| match i {
            ChatItem::Message(m) if m.role.is_instructions() => Some(m.text()),
            _ => None,
        })
        .unwrap();
    assert!(
        system.starts_with("You are Riley from Riverside Clinic."),
        "{system}"
    );
    assert!(system.contains("`update_name`"), "{system}");
    assert!(system.ends_with("Address the caller formally."), "{system}");
    h.say("Ann").await;
    let name = h.outcomes().pop().unwrap().unwrap();
    assert_eq!(name.first_name.as_deref(), Some("Ann"));
    assert_eq!(name.last_name, None);
}

#[tokio::test(start_paused = true)]
async fn date_and_time_of_birth() {
    let task = || GetDobTask::default().with_today(today()).include_time(true);
    let llm = ScriptedLlm::new()
        .on(task().prompt(), ScriptedReply::text("When were you born?"))
        .on(
            "14 March 85",
            ScriptedReply::tool("update_dob", json!({"year": 85, "month": 3, "day": 14})),
        )
        .on(
            "half past eight at night",
            ScriptedReply::tool("update_time", json!({"hour": 20, "minute": 30})),
        )
        .on(
            "25 o'clock",
            ScriptedReply::tool("update_time", json!({"hour": 25, "minute": 0})),
        )
        .on("after:update_dob", ScriptedReply::text("And the time?"))
        .on("after:update_time", ScriptedReply::text("Hmm?"));
    let h = Harness::start(task, llm).await;
    h.say("collect").await;
    let date = h.say("14 March 85").await;
    let (text, _) = output(&date, "update_dob");
    assert!(
        text.contains("March 14, 1985") && text.contains("update_time"),
        "{text}"
    );
    assert!(h.outcomes().is_empty());
    let bad = h.say("25 o'clock").await;
    assert!(output(&bad, "update_time").1);
    h.say("half past eight at night").await;
    let dob = h.outcomes().pop().unwrap().unwrap();
    assert_eq!(
        serde_json::to_value(dob).unwrap(),
        json!({"date_of_birth": "1985-03-14", "time_of_birth": "20:30"})
    );
}

#[tokio::test(start_paused = true)]
async fn consent_is_never_recorded_before_the_question() {
    let llm = ScriptedLlm::new()
        .on(
            GetConsentTask::default().prompt(),
            ScriptedReply::text("May we record?"),
        )
        .on(
            "yes",
            ScriptedReply::tool("record_consent", json!({"granted": true})),
        );
    let h = Harness::start(GetConsentTask::default, llm).await;
    h.say("collect").await;
    let on_enter = tool_names(&h.request(&GetConsentTask::default().prompt()));
    assert!(
        !on_enter.contains(&"record_consent".to_owned()),
        "{on_enter:?}"
    );
    h.say("yes").await;
    let consent = h.outcomes().pop().unwrap().unwrap();
    assert!(consent.granted);
    assert_eq!(consent.question, GetConsentTask::default().question());
}

// ---------------------------------------------------------------------------------------------
// Credit card: a group of four steps with shared restart and decline tools.

const VISA: &str = "4111111111111111";
const AMEX: &str = "378282246310005";

fn card_task() -> GetCreditCardTask {
    GetCreditCardTask::default().with_today(today())
}

fn card_script() -> ScriptedLlm {
    ScriptedLlm::new()
        .on(
            "Ask the caller for their card number.",
            ScriptedReply::text("Card number?"),
        )
        .on(
            "Ask the caller for the card's expiration date.",
            ScriptedReply::text("Expiry?"),
        )
        .on(
            "Ask the caller for the card's 3-digit security code.",
            ScriptedReply::text("Three-digit code?"),
        )
        .on(
            "Ask the caller for the card's 4-digit security code.",
            ScriptedReply::text("Four-digit code?"),
        )
        .on(
            "Ask the caller for the cardholder's name as printed on the card.",
            ScriptedReply::text("Name on the card?"),
        )
        .on(
            "visa",
            ScriptedReply::tool(
                "update_card_number",
                json!({"card_number": "4111 1111 1111 1111"}),
            ),
        )
        .on(
            "amex",
            ScriptedReply::tool("update_card_number", json!({"card_number": AMEX})),
        )
        .on(
            "typo",
            ScriptedReply::tool(
                "update_card_number",
                json!({"card_number": "4111 1111 1111 1112"}),
            ),
        )
        .on(
            "12/30",
            ScriptedReply::tool("update_expiration_date", json!({"month": 12, "year": 30})),
        )
        .on(
            "05/26",
            ScriptedReply::tool("update_expiration_date", json!({"month": 5, "year": 26})),
        )
        .on(
            "123",
            ScriptedReply::tool("update_security_code", json!({"security_code": "123"})),
        )
        .on(
            "1234",
            ScriptedReply::tool("update_security_code", json!({"security_code": "1234"})),
        )
        .on(
            "Jane Doe",
            ScriptedReply::tool(
                "update_name",
                json!({"first_name": "Jane", "last_name": "Doe"}),
            ),
        )
        .on(
            "start over",
            ScriptedReply::tool("restart_card_collection", json!({"reason": "wrong card"})),
        )
        .on(
            "no card",
            ScriptedReply::tool("decline_card_capture", json!({"reason": "prefers cash"})),
        )
        .on(
            "wrong number",
            ScriptedReply::tool("out_of_scope", json!({"task_ids": ["card_number"]})),
        )
        .on("after:update_card_number", ScriptedReply::text("Again?"))
        .on(
            "after:update_expiration_date",
            ScriptedReply::text("Expiry again?"),
        )
        .on(
            "after:update_security_code",
            ScriptedReply::text("Code again?"),
        )
}

#[tokio::test(start_paused = true)]
async fn credit_card_happy_path_with_the_exact_handoffs() {
    let h = Harness::start(card_task, card_script()).await;
    let one = h.say("collect").await;
    assert_eq!(
        handoffs(&one),
        [
            "caller>get_credit_card_task",
            "get_credit_card_task>task_group",
            "task_group>get_card_number_task"
        ]
    );
    assert_eq!(one.last_reply().as_deref(), Some("Card number?"));
    // A misheard digit: the model is told, the number is not repeated beyond its last four.
    let typo = h.say("typo").await;
    let (text, is_error) = output(&typo, "update_card_number");
    assert!(is_error && text.contains("card ending in 1112"), "{text}");
    assert!(!text.contains("4111"), "{text}");
    let two = h.say("visa").await;
    assert_eq!(
        handoffs(&two),
        [
            "get_card_number_task>task_group",
            "task_group>get_expiration_date_task"
        ]
    );
    let expired = h.say("05/26").await;
    assert!(
        output(&expired, "update_expiration_date")
            .0
            .contains("has expired")
    );
    h.say("12/30").await;
    // A Visa card: the security code has three digits.
    assert_eq!(
        h.llm.requests().last().map(ScriptedLlm::key_of).as_deref(),
        Some("Ask the caller for the card's 3-digit security code.")
    );
    let four = h.say("1234").await;
    assert!(
        output(&four, "update_security_code")
            .0
            .contains("3 digits on a Visa card")
    );
    let name = h.say("123").await;
    assert_eq!(name.last_reply().as_deref(), Some("Name on the card?"));
    // The cardholder name is asked explicitly: no update tool in the greeting.
    let greeting = h.request("Ask the caller for the cardholder's name as printed on the card.");
    assert!(!tool_names(&greeting).contains(&"update_name".to_owned()));
    let last = h.say("Jane Doe").await;
    assert_eq!(
        handoffs(&last),
        [
            "get_name_task>task_group",
            "task_group>get_credit_card_task",
            "get_credit_card_task>caller"
        ]
    );
    let card = h.outcomes().pop().unwrap().unwrap();
    assert_eq!(
        card,
        GetCreditCardResult {
            cardholder_name: "Jane Doe".into(),
            issuer: CardIssuer::Visa,
            card_number: VISA.into(),
            security_code: "123".into(),
            expiration_date: "12/30".into(),
        }
    );
    let debug = format!("{card:?}");
    assert!(
        debug.contains("card ending in 1111") && !debug.contains(VISA),
        "{debug}"
    );
    assert!(!debug.contains("\"123\""), "{debug}");
    // Every step offers the shared tools (hidden on enter).
    let expiry_step = h.request("Ask the caller for the card's expiration date.");
    assert!(!tool_names(&expiry_step).contains(&"restart_card_collection".to_owned()));
    assert!(h.llm.requests().iter().any(|r| {
        let names = tool_names(r);
        names.contains(&"update_expiration_date".to_owned())
            && names.contains(&"restart_card_collection".to_owned())
            && names.contains(&"decline_card_capture".to_owned())
    }));
}

#[tokio::test(start_paused = true)]
async fn credit_card_restart_decline_and_going_back() {
    // Restart: the whole group starts over from the card number.
    let h = Harness::start(card_task, card_script()).await;
    h.say("collect").await;
    h.say("visa").await;
    let restarted = h.say("start over").await;
    assert_eq!(
        handoffs(&restarted),
        [
            "get_expiration_date_task>task_group",
            "task_group>get_credit_card_task",
            "get_credit_card_task>task_group",
            "task_group>get_card_number_task"
        ]
    );
    assert_eq!(restarted.last_reply().as_deref(), Some("Card number?"));
    assert!(h.outcomes().is_empty());
    // This time an American Express card: four-digit code.
    h.say("amex").await;
    h.say("12/30").await;
    assert_eq!(
        h.llm.requests().last().map(ScriptedLlm::key_of).as_deref(),
        Some("Ask the caller for the card's 4-digit security code.")
    );
    let three = h.say("123").await;
    assert!(
        output(&three, "update_security_code")
            .0
            .contains("4 digits on an American Express card")
    );
    h.say("1234").await;
    // Going back to the card number from the name step re-asks the dependent security code.
    let back = h.say("wrong number").await;
    assert_eq!(
        handoffs(&back),
        [
            "get_name_task>task_group",
            "task_group>get_card_number_task"
        ]
    );
    h.say("visa").await;
    let code = h.say("123").await;
    // Expiration was kept; after the code comes the interrupted name step again.
    assert_eq!(
        handoffs(&code),
        [
            "get_security_code_task>task_group",
            "task_group>get_name_task"
        ]
    );
    h.say("Jane Doe").await;
    let card = h.outcomes().pop().unwrap().unwrap();
    assert_eq!(card.issuer, CardIssuer::Visa);
    assert_eq!(card.security_code, "123");
    assert_eq!(card.expiration_date, "12/30");

    // Decline from any step fails the card task.
    let h = Harness::start(card_task, card_script()).await;
    h.say("collect").await;
    h.say("visa").await;
    let declined = h.say("no card").await;
    assert_eq!(
        output(&declined, "collect"),
        (
            "couldn't get the card details: prefers cash".to_owned(),
            true
        )
    );
    assert_eq!(h.agent().await, "caller");
    assert!(matches!(
        h.outcomes().pop(),
        Some(Err(TaskError::Failed(_)))
    ));
}

#[tokio::test(start_paused = true)]
async fn card_number_confirmation_requires_the_caller_to_repeat_it() {
    let llm = card_script()
        .on(
            "same",
            ScriptedReply::tool("confirm_card_number", json!({"card_number": VISA})),
        )
        .on(
            "different",
            ScriptedReply::tool(
                "confirm_card_number",
                json!({"card_number": "4012888888881881"}),
            ),
        )
        .on("after:confirm_card_number", ScriptedReply::text("Hmm."));
    let h = Harness::start(|| card_task().require_confirmation(true), llm).await;
    h.say("collect").await;
    let read_back = h.say("visa").await;
    let (text, is_error) = output(&read_back, "update_card_number");
    assert!(
        !is_error && text.contains("repeat the full number"),
        "{text}"
    );
    assert!(!text.contains(VISA), "{text}");
    let mismatch = h.say("different").await;
    let (text, is_error) = output(&mismatch, "confirm_card_number");
    assert!(
        is_error && text.contains("does not match the card ending in 1111"),
        "{text}"
    );
    // The refused value is forgotten: confirming again needs a new update.
    let again = h.say("same").await;
    assert!(
        output(&again, "confirm_card_number")
            .0
            .contains("no card number to confirm")
    );
    h.say("visa").await;
    let confirmed = h.say("same").await;
    assert_eq!(
        handoffs(&confirmed),
        [
            "get_card_number_task>task_group",
            "task_group>get_expiration_date_task"
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// Keypad input, in virtual time.

struct Keypad {
    harness: Harness<GetDtmfTask>,
    input: Arc<Mutex<Option<switchboard::workflows::DtmfInput>>>,
}

impl Keypad {
    async fn start(make: fn() -> GetDtmfTask, llm: ScriptedLlm) -> Self {
        let input: Arc<Mutex<Option<switchboard::workflows::DtmfInput>>> = Arc::default();
        let slot = input.clone();
        let harness = Harness::start(
            move || {
                let task = make();
                *slot.lock().unwrap() = Some(task.input());
                task
            },
            llm.on(
                "Ask the caller to enter their 4-digit code on the phone keypad, then press #.",
                ScriptedReply::text("Enter your code."),
            )
            .on(
                "Ask the caller to enter the digits on the phone keypad, then press #.",
                ScriptedReply::text("Enter the digits."),
            ),
        )
        .await;
        harness.say("collect").await;
        Keypad { harness, input }
    }

    fn press(&self, keys: &str) {
        self.input
            .lock()
            .unwrap()
            .as_ref()
            .unwrap()
            .press_all(keys)
            .unwrap();
    }

    async fn collect_output(&self) -> Option<(String, bool)> {
        self.harness
            .session
            .history()
            .await
            .iter()
            .find_map(|i| match i {
                ChatItem::FunctionCallOutput(o) if o.name == "collect" => {
                    Some((o.output.clone(), o.is_error))
                }
                _ => None,
            })
    }
}

async fn wait(ms: u64) {
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

#[tokio::test(start_paused = true)]
async fn keypad_entry_completes_at_the_expected_count() {
    let k = Keypad::start(|| GetDtmfTask::new(4), ScriptedLlm::new()).await;
    k.press("12");
    wait(3_000).await;
    k.press("x3"); // not a keypad key: ignored
    wait(10).await;
    assert!(
        k.harness.outcomes().is_empty(),
        "debounce restarted by each key"
    );
    k.press("4");
    wait(10).await;
    assert_eq!(
        k.harness.outcomes().pop().unwrap().unwrap().digits,
        "1234",
        "completes at once, without waiting for the timeout"
    );
    assert_eq!(
        k.collect_output().await,
        Some((r#"{"digits":"1234"}"#.into(), false))
    );
    assert_eq!(k.harness.agent().await, "caller");
}

#[tokio::test(start_paused = true)]
async fn keypad_timeout_and_stop_key_flush_short_entries() {
    // The debounce runs out after 4 s: two digits are not four.
    let k = Keypad::start(|| GetDtmfTask::new(4), ScriptedLlm::new()).await;
    k.press("12");
    wait(3_900).await;
    assert!(k.harness.outcomes().is_empty());
    wait(200).await;
    let message = "couldn't get the digits: expected 4 digits, got 2";
    assert_eq!(
        k.harness.outcomes().pop().unwrap().unwrap_err(),
        TaskError::Failed(message.into())
    );
    assert_eq!(k.collect_output().await, Some((message.into(), true)));

    // The stop key flushes at once; a stop key before any digit is ignored.
    let k = Keypad::start(GetDtmfTask::default, ScriptedLlm::new()).await;
    k.press("#");
    wait(5_000).await;
    assert!(k.harness.outcomes().is_empty());
    k.press("98*7#");
    wait(10).await;
    assert_eq!(k.harness.outcomes().pop().unwrap().unwrap().digits, "98*7");

    let k = Keypad::start(|| GetDtmfTask::new(4), ScriptedLlm::new()).await;
    k.press("123#");
    wait(10).await;
    assert_eq!(
        k.harness.outcomes().pop().unwrap().unwrap_err(),
        TaskError::Failed("couldn't get the digits: expected 4 digits, got 3".into())
    );
}

#[tokio::test(start_paused = true)]
async fn keypad_entry_with_confirmation_and_spoken_wrong_count() {
    let llm = ScriptedLlm::new()
        .on(
            "The caller entered 1 2 3 4 on the keypad. Read the digits back one by one and ask them to confirm.",
            ScriptedReply::text("You entered 1 2 3 4, right?"),
        )
        .on("yes", ScriptedReply::tool("confirm_inputs", json!({})));
    let k = Keypad::start(|| GetDtmfTask::new(4).require_confirmation(true), llm).await;
    k.press("1234");
    wait(10).await;
    assert!(k.harness.outcomes().is_empty());
    let history = k.harness.session.history().await;
    assert!(
        history.iter().any(
            |i| matches!(i, ChatItem::Message(m) if m.text() == "You entered 1 2 3 4, right?")
        )
    );
    k.harness.say("yes").await;
    assert_eq!(k.harness.outcomes().pop().unwrap().unwrap().digits, "1234");

    // Spoken digits with the wrong count fail the task.
    let llm = ScriptedLlm::new().on(
        "one two three",
        ScriptedReply::tool("record_inputs", json!({"inputs": "1 2 3"})),
    );
    let k = Keypad::start(|| GetDtmfTask::new(4), llm).await;
    let result = k.harness.say("one two three").await;
    assert_eq!(
        output(&result, "collect"),
        (
            "couldn't get the digits: expected 4 digits, got 3".to_owned(),
            true
        )
    );
    // Once the task is over, its keypad input is closed.
    wait(10).await;
    let input = k.input.lock().unwrap().clone().unwrap();
    assert_eq!(
        input.press('1'),
        Err(switchboard::workflows::dtmf::DtmfClosed)
    );
    assert_eq!(k.harness.outcomes().len(), 1);
}

// ---------------------------------------------------------------------------------------------
// Normalisers and validators.

#[test]
fn email_spoken_forms_table() {
    let cases: &[(&str, Option<&str>)] = &[
        ("jane.doe@example.com", Some("jane.doe@example.com")),
        ("  Jane.Doe@Example.COM. ", Some("jane.doe@example.com")),
        ("mailto:<a@b.io>", Some("a@b.io")),
        (
            "john dot smith at example dot com",
            Some("john.smith@example.com"),
        ),
        ("j o h n at gmail dot com", Some("john@gmail.com")),
        ("j o h n underscore d at x dot org", Some("john_d@x.org")),
        (
            "mary dash ann at my dash mail dot co dot uk",
            Some("mary-ann@my-mail.co.uk"),
        ),
        (
            "bob hyphen lee at example period com",
            Some("bob-lee@example.com"),
        ),
        (
            "tom plus news at example dot com",
            Some("tom+news@example.com"),
        ),
        ("sam at sign example full stop com", Some("sam@example.com")),
        (
            "ann under score b at example point net",
            Some("ann_b@example.net"),
        ),
        ("jane at the rate example dot in", Some("jane@example.in")),
        ("john at example", None),
        ("john dot smith example dot com", None),
        ("john at at example dot com", None),
        ("", None),
        ("@example.com", None),
        ("john@", None),
        ("jo..hn@example.com", None),
        (".john@example.com", None),
        ("john@-example.com", None),
        ("john@example.c", None),
        ("john@example.123", None),
        ("jo hn@exa mple.com", Some("john@example.com")),
        ("john@exa_mple.com", None),
        ("jöhn@example.com", None),
        (
            "john@xn--bcher-kva.xn--p1ai",
            Some("john@xn--bcher-kva.xn--p1ai"),
        ),
    ];
    for (input, expected) in cases {
        let got = normalize_email_address(input);
        assert_eq!(got.as_deref().ok(), *expected, "{input:?}: {got:?}");
    }
    let long_local = format!("{}@example.com", "a".repeat(65));
    assert!(validate_email_address(&long_local).is_err());
    let long_label = format!("a@{}.com", "b".repeat(64));
    assert!(validate_email_address(&long_label).is_err());
}

#[test]
fn phone_forms_table() {
    let cases: &[(&str, Option<&str>)] = &[
        ("5551234567", Some("5551234567")),
        ("555-123-4567", Some("5551234567")),
        ("(555) 123 4567", Some("5551234567")),
        ("555.123.4567", Some("5551234567")),
        ("+1 (555) 123-4567", Some("+15551234567")),
        ("plus four four 20 7946 0958", Some("+442079460958")),
        (
            "five five five one two three four five six seven",
            Some("5551234567"),
        ),
        (
            "five five five, one two three, four five six seven",
            Some("5551234567"),
        ),
        ("double five five triple one 22", Some("55511122")),
        (
            "nine oh one five five five oh one nine nine",
            Some("9015550199"),
        ),
        ("1234567", Some("1234567")),
        ("123456789012345", Some("123456789012345")),
        ("1234567890123456", None),
        ("123456", None),
        ("0123456789", None),
        ("+0123456789", None),
        ("555 123 456 seven x", None),
        ("555-CALL-NOW", None),
        ("", None),
        ("++15551234567", None),
    ];
    for (input, expected) in cases {
        let got = normalize_phone_number(input);
        assert_eq!(got.as_deref().ok(), *expected, "{input:?}: {got:?}");
        if let Ok(number) = got {
            assert!(is_valid_phone_number(&number));
        }
    }
    for (raw, valid) in [
        ("+15551234567", true),
        ("15551234567", true),
        ("+1555", false),
        ("+", false),
        ("", false),
        ("1555123456789012", false),
        ("+1555123a567", false),
    ] {
        assert_eq!(is_valid_phone_number(raw), valid, "{raw}");
    }
}

#[test]
fn luhn_and_issuer_table() {
    let cards: &[(&str, CardIssuer)] = &[
        ("4111111111111111", CardIssuer::Visa),
        ("4012888888881881", CardIssuer::Visa),
        ("4222222222222", CardIssuer::Visa),
        ("4000000000000000006", CardIssuer::Visa),
        ("5555555555554444", CardIssuer::Mastercard),
        ("5105105105105100", CardIssuer::Mastercard),
        ("5100000000000008", CardIssuer::Mastercard),
        ("2221000000000009", CardIssuer::Mastercard),
        ("2223003122003222", CardIssuer::Mastercard),
        ("2720000000000005", CardIssuer::Mastercard),
        ("378282246310005", CardIssuer::AmericanExpress),
        ("371449635398431", CardIssuer::AmericanExpress),
        ("6011111111111117", CardIssuer::Discover),
        ("6011000990139424", CardIssuer::Discover),
        ("6445000000000000", CardIssuer::Discover),
        ("6500000000000002", CardIssuer::Discover),
        ("30569309025904", CardIssuer::DinersClub),
        ("38520000023237", CardIssuer::DinersClub),
        ("36000000000008", CardIssuer::DinersClub),
        ("3530111333300000", CardIssuer::Jcb),
        ("3528000000000007", CardIssuer::Jcb),
        ("3589000000000003", CardIssuer::Jcb),
        ("6200000000000005", CardIssuer::UnionPay),
        ("6759649826438453", CardIssuer::Maestro),
        ("5018000000000009", CardIssuer::Maestro),
        ("2200000000000004", CardIssuer::Other),
        ("9000000000000001", CardIssuer::Other),
    ];
    for (number, issuer) in cards {
        assert!(luhn_valid(number), "{number}");
        assert_eq!(CardIssuer::from_number(number), *issuer, "{number}");
        assert_eq!(
            parse_card_number(number).map(|(_, i)| i),
            Ok(*issuer),
            "{number}"
        );
    }
    for bad in ["4111111111111112", "378282246310006", "0", "", "12a4"] {
        assert!(!luhn_valid(bad), "{bad}");
    }
    // Spoken and grouped forms.
    assert_eq!(
        parse_card_number("four one one one, 1111-1111 11 double one")
            .unwrap()
            .0,
        VISA
    );
    // Lengths: too short, too long, and wrong for the issuer (a 16-digit Amex prefix).
    for (input, error) in [
        ("4111 1111 1111", "has 12 digits"),
        ("4111 1111 1111 1111 1111", "has 20 digits"),
        ("3400000000000009", "American Express numbers never have"),
        ("5100000000000000008", "Mastercard numbers never have"),
        ("4111 1111 1111 111x", "not a digit"),
    ] {
        let message = parse_card_number(input).unwrap_err().to_string();
        assert!(message.contains(error), "{input}: {message}");
        assert!(!message.contains("4111111"), "{message}");
    }
    assert_eq!(mask_card_number(VISA), "card ending in 1111");
    assert_eq!(mask_card_number("12"), "card ending in 12");
    assert_eq!(CardIssuer::AmericanExpress.security_code_len(), 4);
    assert_eq!(
        serde_json::to_value(CardIssuer::AmericanExpress).unwrap(),
        "American Express"
    );
}

#[test]
fn expiration_and_security_code_tables() {
    let today = today(); // 2026-06-15
    for (month, year, expected) in [
        (6, 26, Some("06/26")),
        (7, 26, Some("07/26")),
        (12, 46, Some("12/46")),
        (1, 2030, Some("01/30")),
        (5, 26, None),
        (12, 25, None),
        (0, 30, None),
        (13, 30, None),
        (1, 47, None),
        (1, 1999, None),
        (1, -1, None),
    ] {
        assert_eq!(
            parse_expiration_date(month, year, today).ok().as_deref(),
            expected,
            "{month}/{year}"
        );
    }
    for (input, issuer, expected) in [
        ("123", Some(CardIssuer::Visa), Some("123")),
        ("one two three", Some(CardIssuer::Mastercard), Some("123")),
        ("1234", Some(CardIssuer::AmericanExpress), Some("1234")),
        ("123", Some(CardIssuer::AmericanExpress), None),
        ("1234", Some(CardIssuer::Visa), None),
        ("1234", Some(CardIssuer::Other), Some("1234")),
        ("123", None, Some("123")),
        ("12", None, None),
        ("12345", None, None),
        ("12a", None, None),
    ] {
        let got = parse_security_code(input, issuer);
        assert_eq!(got.as_deref().ok(), expected, "{input} {issuer:?}");
        if let Err(e) = got {
            assert!(!e.to_string().contains(input), "the code is not repeated");
        }
    }
}

#[test]
fn date_of_birth_tables() {
    let today = today(); // 2026-06-15
    // Two-digit years: up to the current two-digit year → 20xx, above → 19xx.
    for (year, expected) in [
        (0, Some(2000)),
        (5, Some(2005)),
        (26, Some(2026)),
        (27, Some(1927)),
        (85, Some(1985)),
        (99, Some(1999)),
        (1985, Some(1985)),
        (2026, Some(2026)),
        (100, None),
        (999, None),
        (-5, None),
        (10_000, None),
    ] {
        assert_eq!(resolve_birth_year(year, today).ok(), expected, "{year}");
    }
    // The century follows the clock: in 2101, 01 is 2101 and 02 is 2002.
    let later = CalendarDate::new(2101, 1, 1).unwrap();
    assert_eq!(resolve_birth_year(1, later).ok(), Some(2101));
    assert_eq!(resolve_birth_year(2, later).ok(), Some(2002));
    // Leap years and month lengths.
    for (year, leap) in [
        (2000, true),
        (2024, true),
        (1900, false),
        (2023, false),
        (2100, false),
    ] {
        assert_eq!(is_leap_year(year), leap, "{year}");
    }
    for (y, m, d, ok) in [
        (2000, 2, 29, true),
        (2024, 2, 29, true),
        (1900, 2, 29, false),
        (2023, 2, 29, false),
        (1990, 2, 30, false),
        (1990, 4, 31, false),
        (1990, 12, 31, true),
        (1990, 1, 0, false),
        (1990, 0, 1, false),
        (1990, 1, -3, false),
        (2026, 6, 15, true),
        (2026, 6, 16, false),
        (2027, 1, 1, false),
        (1896, 6, 16, true),
        (1895, 12, 31, false),
    ] {
        assert_eq!(
            parse_date_of_birth(y, m, d, today).is_ok(),
            ok,
            "{y}-{m}-{d}: {:?}",
            parse_date_of_birth(y, m, d, today)
        );
    }
    // The system clock gives a plausible today.
    assert!(CalendarDate::today().year() >= 2025);
}

#[test]
fn name_tables() {
    for (input, expected) in [
        ("Jane", Ok(Some("Jane"))),
        ("  Mary   Ann  ", Ok(Some("Mary Ann"))),
        ("O'Brien", Ok(Some("O'Brien"))),
        ("Jean-Luc", Ok(Some("Jean-Luc"))),
        ("Zoë", Ok(Some("Zoë"))),
        ("José", Ok(Some("José"))),
        ("J.", Ok(Some("J."))),
        ("null", Ok(None)),
        ("Unknown", Ok(None)),
        ("N/A", Ok(None)),
        ("", Ok(None)),
        ("1234", Err("no letters")),
        ("--", Err("no letters")),
        ("J0hn", Err("contains '0'")),
        ("Jane@Doe", Err("contains '@'")),
    ] {
        let got = normalize_name_part(input);
        match expected {
            Ok(value) => assert_eq!(got.unwrap().as_deref(), value, "{input}"),
            Err(piece) => {
                let message = got.unwrap_err().to_string();
                assert!(message.contains(piece), "{input}: {message}");
            }
        }
    }
    let full = validate_name(Some("Jane"), Some("Q"), Some("Doe"), NameParts::FULL).unwrap();
    assert_eq!(full.full_name(), "Jane Q Doe");
    assert_eq!(full.to_string(), "Jane Q Doe");
    assert!(validate_name(Some("Jane"), None, Some("Doe"), NameParts::FULL).is_err());
    // Default: first name only; other parts are kept when given.
    let first = validate_name(Some("Jane"), None, Some("Doe"), NameParts::default()).unwrap();
    assert_eq!(first.last_name.as_deref(), Some("Doe"));
    // No part required still requires the first name.
    let none = NameParts {
        first: false,
        middle: false,
        last: false,
    };
    let error = validate_name(None, None, Some("Doe"), none).unwrap_err();
    assert!(
        error.to_string().contains("first name is missing"),
        "{error}"
    );
    let last_only = NameParts {
        first: false,
        middle: false,
        last: true,
    };
    assert!(validate_name(None, None, Some("Doe"), last_only).is_ok());
    assert_eq!(last_only.describe(), "last name");
    assert_eq!(NameParts::FULL.describe(), "first, middle and last name");
}

#[test]
fn address_and_dtmf_tables() {
    for (parts, expected) in [
        (
            ["12 Main St", "Apt 4", "Springfield", "USA"],
            Some("12 Main St, Apt 4, Springfield, USA"),
        ),
        (
            ["12 Main St", "", "Springfield", ""],
            Some("12 Main St, Springfield"),
        ),
        (
            ["  1  Rue   de Rivoli ", "none", "Paris", "France"],
            Some("1 Rue de Rivoli, Paris, France"),
        ),
        (["", "Apt 4", "Springfield", "USA"], None),
        (["12 Main St", "", "-", "USA"], None),
        (["...", "", "Springfield", ""], None),
    ] {
        assert_eq!(
            format_address(parts[0], parts[1], parts[2], parts[3])
                .ok()
                .as_deref(),
            expected,
            "{parts:?}"
        );
    }
    for (input, expected) in [
        ("1234", Some("1234")),
        ("1 2 3 4", Some("1234")),
        ("one two three four", Some("1234")),
        ("star 6 9 pound", Some("*69#")),
        ("1-2-3", Some("123")),
        ("a b c d", Some("ABCD")),
        ("twelve", None),
        ("1 2 x", None),
    ] {
        assert_eq!(
            parse_dtmf_inputs(input).ok().as_deref(),
            expected,
            "{input}"
        );
    }
}
