//! `clinic`: a clinic's intake over the phone, built from the prebuilt tasks.
//!
//! ```text
//! caller ──► FrontDesk ──start_intake──► GetConsentTask ──no──► ends politely
//!                │                            │ yes
//!                │                            ▼
//!                │            TaskGroup: name → date_of_birth → phone → email
//!                │            (the caller can go back to any earlier step)
//!                │                            │
//!                │◄───────── ClinicIntake (session user data) ◄──┘
//!                ├──book_appointment(date)
//!                └──transfer_to_billing──► Billing ──get_visit_cost──► answers
//! ```
//!
//! Everything the intake collects lands, typed, in the session's [`ClinicIntake`].

use std::sync::Arc;

use switchboard::llm::{ChatRequest, Llm};
use switchboard::testing::{ScriptedLlm, ScriptedReply};
use switchboard::tools::{FunctionTool, ToolError};
use switchboard::workflows::date::CalendarDate;
use switchboard::workflows::{
    GetConsentResult, GetConsentTask, GetDobResult, GetDobTask, GetEmailResult, GetEmailTask,
    GetNameResult, GetNameTask, GetPhoneNumberResult, GetPhoneNumberTask, NameParts, StepKey,
    TaskGroup, WorkflowInstructions,
};
use switchboard::{
    Agent, AgentContext, AgentSession, Handoff, HandoffContext, RunContext, RunResult,
    SessionError, async_trait,
};

/// What the intake collects; the session's user data.
#[derive(Debug, Default, Clone, PartialEq, serde::Serialize)]
pub struct ClinicIntake {
    /// The caller's answer to [`CONSENT_QUESTION`].
    pub consent: Option<GetConsentResult>,
    /// The patient's name.
    pub name: Option<GetNameResult>,
    /// The patient's date of birth.
    pub date_of_birth: Option<GetDobResult>,
    /// A phone number to reach the patient.
    pub phone: Option<GetPhoneNumberResult>,
    /// The patient's email address, for the booking confirmation.
    pub email: Option<GetEmailResult>,
    /// The booked appointment's day.
    pub appointment: Option<CalendarDate>,
}

impl ClinicIntake {
    /// The patient's full name, once the intake has it.
    pub fn patient_name(&self) -> Option<String> {
        self.name.as_ref().map(GetNameResult::full_name)
    }

    /// True once every detail was collected.
    pub fn is_complete(&self) -> bool {
        self.consent.as_ref().is_some_and(|c| c.granted)
            && self.name.is_some()
            && self.date_of_birth.is_some()
            && self.phone.is_some()
            && self.email.is_some()
    }
}

/// The consent question put before anything is recorded.
pub const CONSENT_QUESTION: &str =
    "May we record this call and keep the details you give us in your patient file?";

/// The persona every intake step speaks with.
pub const INTAKE_PERSONA: &str = "You are the intake assistant of Riverside Clinic, on the \
phone with a caller. Speak warmly and briefly, one question at a time, without lists or \
markdown.";

/// The typed keys of the intake group's steps.
pub struct IntakeSteps {
    /// `name`: first and last name.
    pub name: StepKey<GetNameResult>,
    /// `date_of_birth`.
    pub date_of_birth: StepKey<GetDobResult>,
    /// `phone`.
    pub phone: StepKey<GetPhoneNumberResult>,
    /// `email`; asked again when the caller goes back to the name (addresses often contain it).
    pub email: StepKey<GetEmailResult>,
}

/// The intake group: name, date of birth, phone number and email address.
pub fn intake_group() -> (TaskGroup<ClinicIntake>, IntakeSteps) {
    let persona = || WorkflowInstructions::new().with_persona(INTAKE_PERSONA);
    let mut group = TaskGroup::new();
    let name = group.add("name", "the patient's first and last name", move || {
        GetNameTask::default()
            .with_parts(NameParts::FIRST_LAST)
            .with_instructions(persona())
    });
    let date_of_birth = group.add("date_of_birth", "the patient's date of birth", move || {
        GetDobTask::default().with_instructions(persona())
    });
    let phone = group.add("phone", "a phone number to reach the patient", move || {
        GetPhoneNumberTask::default().with_instructions(persona())
    });
    let email = group.add("email", "the patient's email address", move || {
        GetEmailTask::default().with_instructions(persona())
    });
    group.depends_on(&email, &name);
    (
        group,
        IntakeSteps {
            name,
            date_of_birth,
            phone,
            email,
        },
    )
}

/// Arguments of tools that take none.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
pub struct NoArgs {}

/// Arguments of `book_appointment`.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
pub struct BookArgs {
    /// The day of the appointment, as an ISO date: YYYY-MM-DD.
    pub date: String,
}

/// Monday = 0 … Sunday = 6.
fn weekday(date: CalendarDate) -> i64 {
    // 1970-01-01 was a Thursday.
    (date.days_since_epoch() + 3).rem_euclid(7)
}

/// The first Tuesday after `today`: the day the demo caller asks for ("next Tuesday").
pub fn next_tuesday(today: CalendarDate) -> CalendarDate {
    let ahead = (1 - weekday(today) - 1).rem_euclid(7) + 1;
    CalendarDate::from_days_since_epoch(today.days_since_epoch() + ahead)
}

/// The front desk: greets, runs the intake, books, and transfers cost questions to billing.
pub struct FrontDesk;

#[async_trait]
impl Agent<ClinicIntake> for FrontDesk {
    fn instructions(&self) -> String {
        "You are the front desk of Riverside Clinic. When a caller wants an appointment, call \
         start_intake, which asks for their consent and then their details. Once the intake is \
         complete, ask which day they would like and call book_appointment with that day as \
         YYYY-MM-DD; the clinic is open Monday to Friday. Transfer questions about costs or \
         payment with transfer_to_billing. Be brief and friendly."
            .into()
    }

    fn tools(self: Arc<Self>) -> Vec<FunctionTool<ClinicIntake>> {
        vec![
            FunctionTool::new(
                "start_intake",
                "Register the caller as a patient: asks for consent, then name, date of birth, \
                 phone number and email address.",
                |ctx: RunContext<ClinicIntake>, _args: NoArgs| async move {
                    if ctx.userdata().is_complete() {
                        return Ok(
                            "The intake is already complete. Ask which day they would like."
                                .to_owned(),
                        );
                    }
                    let consent = ctx.run_task(GetConsentTask::new(CONSENT_QUESTION)).await?;
                    ctx.userdata().consent = Some(consent.clone());
                    if !consent.granted {
                        return Ok(
                            "The caller declined consent, so nothing was recorded and no \
                                   appointment can be booked. Thank them, explain this kindly, \
                                   and offer help with anything else."
                                .to_owned(),
                        );
                    }
                    let (group, steps) = intake_group();
                    let results = ctx.run_task(group).await?;
                    let summary = {
                        let mut intake = ctx.userdata();
                        intake.name = results.get(&steps.name).cloned();
                        intake.date_of_birth = results.get(&steps.date_of_birth).cloned();
                        intake.phone = results.get(&steps.phone).cloned();
                        intake.email = results.get(&steps.email).cloned();
                        match (
                            &intake.name,
                            &intake.date_of_birth,
                            &intake.phone,
                            &intake.email,
                        ) {
                            (Some(name), Some(dob), Some(phone), Some(email)) => format!(
                                "Intake complete for {name}, born {}, phone {}, email {}. Ask \
                                 which day they would like to come in.",
                                dob.date_of_birth, phone.phone_number, email.email_address
                            ),
                            _ => return Err(ToolError::new("the intake did not complete")),
                        }
                    };
                    Ok(summary)
                },
            ),
            FunctionTool::new(
                "book_appointment",
                "Book an appointment for the registered patient on a weekday.",
                |ctx: RunContext<ClinicIntake>, args: BookArgs| async move {
                    let date: CalendarDate = args.date.parse().map_err(|_| {
                        ToolError::new(format!(
                            "`{}` is not a date; pass the day as YYYY-MM-DD",
                            args.date
                        ))
                    })?;
                    if date <= CalendarDate::today() {
                        return Err(ToolError::new(format!(
                            "{} is not in the future; ask for a later day",
                            date.spoken()
                        )));
                    }
                    if weekday(date) >= 5 {
                        return Err(ToolError::new(format!(
                            "the clinic is closed on {}, a weekend day; offer a weekday",
                            date.spoken()
                        )));
                    }
                    let mut intake = ctx.userdata();
                    if !intake.is_complete() {
                        return Err(ToolError::new(
                            "the patient is not registered yet: call start_intake first",
                        ));
                    }
                    intake.appointment = Some(date);
                    let name = intake.patient_name().unwrap_or_default();
                    let email = intake
                        .email
                        .as_ref()
                        .map(|e| e.email_address.clone())
                        .unwrap_or_default();
                    Ok(format!(
                        "Booked {name} for {}. A confirmation will go to {email}.",
                        date.spoken()
                    ))
                },
            ),
            FunctionTool::new(
                "transfer_to_billing",
                "Transfer the caller to billing, for questions about costs or payment.",
                |ctx: RunContext<ClinicIntake>, _args: NoArgs| async move {
                    let (patient, appointment) = {
                        let intake = ctx.userdata();
                        (intake.patient_name(), intake.appointment)
                    };
                    Handoff::to(Billing {
                        patient,
                        appointment,
                    })
                    .with_context(HandoffContext::LastTurns(2))
                    .with_result("Transferring you to billing now.")
                },
            ),
        ]
    }

    async fn on_enter(&self, ctx: AgentContext<ClinicIntake>) -> switchboard::Result<()> {
        ctx.session()
            .say("Riverside Clinic, good morning! How can I help you today?")
            .await?;
        Ok(())
    }
}

/// The instruction Billing greets with.
pub const BILLING_GREETING: &str =
    "Greet the caller as the billing desk and answer their question about the cost of the visit.";

/// Billing: answers questions about the cost of a visit.
pub struct Billing {
    /// The patient's name, when the intake has it.
    pub patient: Option<String>,
    /// The booked day, if any.
    pub appointment: Option<CalendarDate>,
}

#[async_trait]
impl Agent<ClinicIntake> for Billing {
    fn instructions(&self) -> String {
        let mut text = String::from(
            "You are the billing desk of Riverside Clinic. Answer questions about costs with \
             get_visit_cost. Be brief.",
        );
        if let Some(patient) = &self.patient {
            text.push_str(&format!(" The caller is {patient}."));
        }
        if let Some(day) = self.appointment {
            text.push_str(&format!(" Their appointment is on {}.", day.spoken()));
        }
        text
    }

    fn tools(self: Arc<Self>) -> Vec<FunctionTool<ClinicIntake>> {
        vec![FunctionTool::new(
            "get_visit_cost",
            "Look up what a standard visit costs.",
            |_ctx: RunContext<ClinicIntake>, _args: NoArgs| async move {
                "A standard consultation costs $120, payable at the visit; insured patients pay \
                 their co-payment only."
            },
        )]
    }

    async fn on_enter(&self, ctx: AgentContext<ClinicIntake>) -> switchboard::Result<()> {
        ctx.session().generate_reply(BILLING_GREETING).await?;
        Ok(())
    }
}

/// Starts a clinic session on `llm`: returns the session and what the greeting produced.
pub async fn start(
    llm: Arc<dyn Llm>,
) -> Result<(AgentSession<ClinicIntake>, RunResult), SessionError> {
    let session = AgentSession::with_userdata(ClinicIntake::default())
        .llm(llm)
        .build();
    let greeting = session.start(FrontDesk).await?;
    Ok((session, greeting))
}

/// The caller's lines of the scripted demo: consent, the four details (going back once to
/// correct the date of birth), a booking and a billing question.
pub const DEMO_CALLER_LINES: &[&str] = &[
    "Hi, I'd like to book an appointment, please.",
    "Yes, that's fine.",
    "My name is Jane Doe.",
    "March 4th, 85.",
    "Sorry, I gave you the wrong date of birth.",
    "It's March 14th, 1985.",
    "555-123-4567.",
    "jane dot doe at example dot com",
    "Next Tuesday, please.",
    "How much will the visit cost?",
    "No, that's all. Thanks!",
];

/// The line with which a caller declines consent in the scripted model.
pub const DECLINE_CONSENT_LINE: &str = "No, I'd rather not.";

/// What the scripted front desk says when consent is declined.
pub const DECLINED_REPLY: &str = "No problem. Without your consent I can't open a patient file, \
so I can't book an appointment over the phone. Is there anything else I can help you with?";

fn is_summary_request(request: &ChatRequest) -> bool {
    request.tools.is_empty()
        && request
            .context
            .items()
            .first()
            .and_then(|i| i.as_message())
            .is_some_and(|m| m.text().starts_with("Summarize the conversation"))
}

/// A scripted model that plays the front desk, the intake steps and billing through the demo
/// conversation (and [`DECLINE_CONSENT_LINE`]), so the workflow runs with no model at all.
/// Lines it does not know get a polite fallback.
pub fn scripted_llm() -> ScriptedLlm {
    use serde_json::json;
    let l = DEMO_CALLER_LINES;
    ScriptedLlm::new()
        // Matches transcripts of the lines too (voice demo: punctuation, digits).
        .with_fuzzy_keys(0.5)
        .on(l[0], ScriptedReply::tool("start_intake", json!({})))
        .on(
            GetConsentTask::new(CONSENT_QUESTION).prompt(),
            ScriptedReply::text(
                "Happy to help. Before we start: may we record this call and keep the details \
                 you give us in your patient file?",
            ),
        )
        .on(
            l[1],
            ScriptedReply::tool("record_consent", json!({"granted": true})),
        )
        .on(
            DECLINE_CONSENT_LINE,
            ScriptedReply::tool("record_consent", json!({"granted": false})),
        )
        .on(
            GetNameTask::default()
                .with_parts(NameParts::FIRST_LAST)
                .prompt(),
            ScriptedReply::text("Thank you. What is your first and last name?"),
        )
        .on(
            l[2],
            ScriptedReply::tool(
                "update_name",
                json!({"first_name": "Jane", "last_name": "Doe"}),
            ),
        )
        .on(
            GetDobTask::default().prompt(),
            ScriptedReply::text("And your date of birth?"),
        )
        .on(
            GetDobTask::default().prompt(),
            ScriptedReply::text("No problem. What is your correct date of birth?"),
        )
        .on(
            l[3],
            ScriptedReply::tool("update_dob", json!({"year": 85, "month": 3, "day": 4})),
        )
        .on(
            l[4],
            ScriptedReply::tool("out_of_scope", json!({"task_ids": ["date_of_birth"]})),
        )
        .on(
            l[5],
            ScriptedReply::tool("update_dob", json!({"year": 1985, "month": 3, "day": 14})),
        )
        .on(
            GetPhoneNumberTask::default().prompt(),
            ScriptedReply::text("What's the best phone number to reach you?"),
        )
        .on(
            GetPhoneNumberTask::default().prompt(),
            ScriptedReply::text("Thanks, corrected. And the best phone number to reach you?"),
        )
        .on(
            l[6],
            ScriptedReply::tool(
                "update_phone_number",
                json!({"phone_number": "five five five one two three four five six seven"}),
            ),
        )
        .on(
            GetEmailTask::default().prompt(),
            ScriptedReply::text("Last one: what is your email address?"),
        )
        .on(
            l[7],
            ScriptedReply::tool(
                "update_email_address",
                json!({"email": "jane dot doe at example dot com"}),
            ),
        )
        .on(
            "after:start_intake",
            ScriptedReply::dynamic(|request| {
                let output = match request.context.last() {
                    Some(switchboard::chat::ChatItem::FunctionCallOutput(o)) => o.clone(),
                    _ => return ScriptedReply::text("Sorry, could you say that again?"),
                };
                if output.is_error {
                    ScriptedReply::text(format!(
                        "I'm sorry, I couldn't complete your registration ({}). Is there \
                         anything else I can do for you?",
                        output.output
                    ))
                } else if output.output.starts_with("The caller declined consent") {
                    ScriptedReply::text(DECLINED_REPLY)
                } else {
                    ScriptedReply::text(
                        "Thank you, you're all registered. Which day would you like to come in?",
                    )
                }
            }),
        )
        .on(
            l[8],
            ScriptedReply::dynamic(|_| {
                let day = next_tuesday(CalendarDate::today());
                ScriptedReply::tool("book_appointment", json!({"date": day.to_string()}))
            }),
        )
        .on("after:book_appointment", ScriptedReply::echo_tool_output())
        .on(l[9], ScriptedReply::tool("transfer_to_billing", json!({})))
        .on(
            "after:transfer_to_billing",
            ScriptedReply::text("Of course, let me put you through to billing."),
        )
        .on(
            BILLING_GREETING,
            ScriptedReply::text(
                "Billing desk here. A standard consultation costs $120, payable at the visit; \
                 with insurance you only pay your co-payment.",
            ),
        )
        .on(
            l[10],
            ScriptedReply::text("You're welcome. See you on Tuesday. Goodbye!"),
        )
        .otherwise(ScriptedReply::dynamic(|request| {
            if is_summary_request(request) {
                ScriptedReply::text(
                    "The caller agreed to be recorded and gave their name, date of birth (after \
                     one correction), phone number and email address.",
                )
            } else {
                ScriptedReply::text(
                    "Sorry, in this demo I can only help with booking an appointment and \
                     questions about its cost.",
                )
            }
        }))
}
