//! A task tested on its own: `start_task` + `run_with_output` give its typed result.

use std::sync::Arc;

use serde_json::json;
use switchboard::testing::{ScriptedLlm, ScriptedReply};
use switchboard::workflows::{GetEmailResult, GetEmailTask};
use switchboard::{AgentSession, SessionError};

#[tokio::test(start_paused = true)]
async fn the_typed_result_of_a_root_task() {
    let task: GetEmailTask = GetEmailTask::default();
    let llm = Arc::new(
        ScriptedLlm::new()
            .on(
                task.prompt(),
                ScriptedReply::text("What is your email address?"),
            )
            .on(
                "it is jane at example dot com",
                ScriptedReply::tool(
                    "update_email_address",
                    json!({"email": "jane at example dot com"}),
                ),
            ),
    );
    let session = AgentSession::builder().llm(llm).build();
    session.start_task(task).await.unwrap();
    let (result, email) = session
        .run_with_output::<GetEmailResult>("it is jane at example dot com", 2)
        .await
        .unwrap();
    assert_eq!(email.email_address, "jane@example.com");
    assert!(
        result
            .events()
            .iter()
            .any(|e| e.kind_name() == "function_call")
    );
}

#[tokio::test(start_paused = true)]
async fn a_model_that_never_completes_is_reminded_then_reported() {
    let task: GetEmailTask = GetEmailTask::default();
    let llm = Arc::new(
        ScriptedLlm::new()
            .on(
                task.prompt(),
                ScriptedReply::text("What is your email address?"),
            )
            .otherwise(ScriptedReply::text("Hmm, let me think.")),
    );
    let session = AgentSession::builder().llm(llm.clone()).build();
    session.start_task(task).await.unwrap();
    match session.run_with_output::<GetEmailResult>("hello", 2).await {
        Err(SessionError::NoFinalOutput { attempts, result }) => {
            assert_eq!(attempts, 3);
            assert_eq!(
                result
                    .events()
                    .iter()
                    .filter(|e| e.kind_name() == "message")
                    .count(),
                3
            );
        }
        other => panic!("expected NoFinalOutput, got {other:?}"),
    }
    // Two reminders were sent as one-off instructions.
    let reminders = llm
        .requests()
        .iter()
        .filter(|r| {
            switchboard::testing::ScriptedLlm::key_of(r)
                .starts_with("You have not provided the final output yet")
        })
        .count();
    assert_eq!(reminders, 2);
}

#[tokio::test(start_paused = true)]
async fn a_wrong_output_type_is_reported_at_once() {
    let task: GetEmailTask = GetEmailTask::default();
    let llm = Arc::new(
        ScriptedLlm::new()
            .on(task.prompt(), ScriptedReply::text("Email?"))
            .on(
                "a@b.io",
                ScriptedReply::tool("update_email_address", json!({"email": "a@b.io"})),
            ),
    );
    let session = AgentSession::builder().llm(llm).build();
    session.start_task(task).await.unwrap();
    assert!(matches!(
        session.run_with_output::<String>("a@b.io", 2).await,
        Err(SessionError::Task(
            switchboard::TaskError::WrongOutputType { .. }
        ))
    ));
}
