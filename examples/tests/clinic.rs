//! The `clinic` workflow: the whole scripted conversation, typed results in the user data, going
//! back mid-group, declining consent, and the registry entry the CLI uses.

use std::sync::Arc;

use switchboard::chat::ChatItem;
use switchboard::testing::ScriptedLlm;
use switchboard::workflows::date::CalendarDate;
use switchboard::{AgentSession, RunEvent, RunResult};
use switchboard_examples::clinic::{
    self, ClinicIntake, DECLINE_CONSENT_LINE, DECLINED_REPLY, DEMO_CALLER_LINES, next_tuesday,
};
use switchboard_examples::{workflow, workflows};

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

fn output(result: &RunResult, tool: &str) -> Option<(String, bool)> {
    result.events().iter().find_map(|e| match e {
        RunEvent::FunctionCallOutput(o) if o.name == tool => Some((o.output.clone(), o.is_error)),
        _ => None,
    })
}

async fn start() -> (AgentSession<ClinicIntake>, Arc<ScriptedLlm>, RunResult) {
    let llm = Arc::new(clinic::scripted_llm());
    let (session, greeting) = clinic::start(llm.clone()).await.unwrap();
    (session, llm, greeting)
}

#[tokio::test(start_paused = true)]
async fn the_whole_demo_conversation() {
    let (session, llm, greeting) = start().await;
    assert_eq!(handoffs(&greeting), [">front_desk"]);
    assert_eq!(
        greeting.last_reply().as_deref(),
        Some("Riverside Clinic, good morning! How can I help you today?")
    );
    let mut runs = Vec::new();
    for line in DEMO_CALLER_LINES {
        runs.push(session.run(*line).await.unwrap());
    }
    let per_turn: Vec<Vec<String>> = runs.iter().map(handoffs).collect();
    let expected: Vec<Vec<&str>> = vec![
        vec!["front_desk>get_consent_task"],
        vec![
            "get_consent_task>front_desk",
            "front_desk>task_group",
            "task_group>get_name_task",
        ],
        vec!["get_name_task>task_group", "task_group>get_dob_task"],
        vec![
            "get_dob_task>task_group",
            "task_group>get_phone_number_task",
        ],
        // Going back: the date of birth is asked again, then the interrupted phone step.
        vec![
            "get_phone_number_task>task_group",
            "task_group>get_dob_task",
        ],
        vec![
            "get_dob_task>task_group",
            "task_group>get_phone_number_task",
        ],
        vec![
            "get_phone_number_task>task_group",
            "task_group>get_email_task",
        ],
        vec!["get_email_task>task_group", "task_group>front_desk"],
        vec![],
        vec!["front_desk>billing"],
        vec![],
    ];
    assert_eq!(per_turn, expected);

    // The replies of the key turns.
    let replies: Vec<Option<String>> = runs.iter().map(RunResult::last_reply).collect();
    assert_eq!(
        replies[4].as_deref(),
        Some("No problem. What is your correct date of birth?")
    );
    assert_eq!(
        replies[7].as_deref(),
        Some("Thank you, you're all registered. Which day would you like to come in?")
    );
    let (intake_output, is_error) = output(&runs[7], "start_intake").unwrap();
    assert!(!is_error);
    assert_eq!(
        intake_output,
        "Intake complete for Jane Doe, born 1985-03-14, phone 5551234567, email \
         jane.doe@example.com. Ask which day they would like to come in."
    );
    let day = next_tuesday(CalendarDate::today());
    assert_eq!(
        replies[8],
        Some(format!(
            "Booked Jane Doe for {}. A confirmation will go to jane.doe@example.com.",
            day.spoken()
        ))
    );
    assert!(
        replies[9]
            .as_deref()
            .unwrap()
            .starts_with("Billing desk here.")
    );
    assert_eq!(session.current_agent_id().await.as_deref(), Some("billing"));

    // Typed results in the user data, the corrected date of birth included.
    let intake = session.userdata().clone();
    assert!(intake.is_complete());
    let consent = intake.consent.unwrap();
    assert!(consent.granted);
    assert_eq!(consent.question, clinic::CONSENT_QUESTION);
    let name = intake.name.unwrap();
    assert_eq!(
        (name.first_name.as_deref(), name.last_name.as_deref()),
        (Some("Jane"), Some("Doe"))
    );
    let dob = intake.date_of_birth.unwrap();
    assert_eq!(dob.date_of_birth, CalendarDate::new(1985, 3, 14).unwrap());
    assert_eq!(dob.time_of_birth, None);
    assert_eq!(intake.phone.unwrap().phone_number, "5551234567");
    assert_eq!(intake.email.unwrap().email_address, "jane.doe@example.com");
    assert_eq!(intake.appointment, Some(day));

    // The whole history, in order.
    let history = session.history().await;
    let all: Vec<String> = history
        .iter()
        .filter_map(|i| match i {
            ChatItem::AgentHandoff(h) => Some(format!(
                "{}>{}",
                h.old_agent_id.as_deref().unwrap_or(""),
                h.new_agent_id
            )),
            _ => None,
        })
        .collect();
    let mut flat = vec![">front_desk".to_owned()];
    flat.extend(expected.into_iter().flatten().map(str::to_owned));
    assert_eq!(all, flat);

    // The group left the front desk one summary of the intake conversation.
    let follow_up = llm
        .requests()
        .into_iter()
        .find(|r| ScriptedLlm::key_of(r) == "after:start_intake")
        .unwrap();
    let summaries = follow_up
        .context
        .iter()
        .filter(|i| matches!(i, ChatItem::Message(m) if m.is_summary()))
        .count();
    assert_eq!(summaries, 1);
    assert!(
        !follow_up
            .context
            .iter()
            .any(|i| matches!(i, ChatItem::Message(m) if m.text() == "March 4th, 85."))
    );
}

#[tokio::test(start_paused = true)]
async fn declining_consent_ends_politely_and_records_nothing() {
    let (session, _llm, _) = start().await;
    session.run(DEMO_CALLER_LINES[0]).await.unwrap();
    let declined = session.run(DECLINE_CONSENT_LINE).await.unwrap();
    assert_eq!(
        handoffs(&declined),
        ["get_consent_task>front_desk"],
        "no intake group"
    );
    assert_eq!(declined.last_reply().as_deref(), Some(DECLINED_REPLY));
    assert_eq!(
        session.current_agent_id().await.as_deref(),
        Some("front_desk")
    );
    {
        let intake = session.userdata();
        assert_eq!(intake.consent.as_ref().map(|c| c.granted), Some(false));
        assert_eq!(
            (
                &intake.name,
                &intake.date_of_birth,
                &intake.phone,
                &intake.email
            ),
            (&None, &None, &None, &None)
        );
    }
    // Booking is refused without an intake.
    let booking = session.run("Next Tuesday, please.").await.unwrap();
    let (text, is_error) = output(&booking, "book_appointment").unwrap();
    assert!(is_error);
    assert!(text.contains("call start_intake first"), "{text}");
    assert_eq!(session.userdata().appointment, None);
}

#[test]
fn next_tuesday_is_strictly_after_today() {
    let day = |y, m, d| CalendarDate::new(y, m, d).unwrap();
    assert_eq!(next_tuesday(day(2026, 11, 23)), day(2026, 11, 24)); // a Monday
    assert_eq!(next_tuesday(day(2026, 11, 24)), day(2026, 12, 1)); // a Tuesday
    assert_eq!(next_tuesday(day(2026, 12, 27)), day(2026, 12, 29)); // a Sunday
    assert_eq!(next_tuesday(day(2028, 2, 28)), day(2028, 2, 29)); // leap day
}

#[tokio::test(start_paused = true)]
async fn the_registry_runs_the_clinic_next_to_the_front_desk() {
    let names: Vec<&str> = workflows().iter().map(|w| w.name).collect();
    assert_eq!(names, ["frontdesk", "clinic"]);
    let clinic = workflow("clinic").unwrap();
    assert_eq!(clinic.caller_lines, DEMO_CALLER_LINES);
    let started = (clinic.start)((clinic.scripted_llm)(), switchboard_examples::Voice::none())
        .await
        .unwrap();
    for line in clinic.caller_lines {
        started.session.run(line).await.unwrap();
    }
    let results = started.session.results();
    assert_eq!(results["consent"]["granted"], true);
    assert_eq!(results["name"]["first_name"], "Jane");
    assert_eq!(results["date_of_birth"]["date_of_birth"], "1985-03-14");
    assert_eq!(results["phone"]["phone_number"], "5551234567");
    assert_eq!(results["email"]["email_address"], "jane.doe@example.com");
    assert_eq!(
        results["appointment"],
        next_tuesday(CalendarDate::today()).to_string()
    );
    assert_eq!(
        started.session.current_agent_id().await.as_deref(),
        Some("billing")
    );
    started.session.close().await;
}
