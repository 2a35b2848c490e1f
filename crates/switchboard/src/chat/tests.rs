//! Tests of the chat context: ordering, copies, merges, truncation, instructions, summaries,
//! provider formatting and the JSON wire format.

use serde_json::{Map, json};

use super::*;
use crate::llm::{LlmError, ToolChoice};
use crate::testing::{ScriptedLlm, ScriptedReply};

/// A fixed origin for hand-built timestamps, well before any `Timestamp::now()`.
const T0: i64 = 1_700_000_000_000_000_000;

fn at(offset: i64) -> Timestamp {
    Timestamp::from_nanos(T0 + offset)
}

fn msg(id: &str, role: Role, text: &str, t: i64) -> ChatMessage {
    ChatMessage {
        id: id.into(),
        role,
        content: vec![ChatContent::Text(text.into())],
        interrupted: false,
        extra: Map::new(),
        created_at: at(t),
    }
}

fn user(id: &str, text: &str, t: i64) -> ChatMessage {
    msg(id, Role::User, text, t)
}

fn assistant(id: &str, text: &str, t: i64) -> ChatMessage {
    msg(id, Role::Assistant, text, t)
}

fn system(id: &str, text: &str, t: i64) -> ChatMessage {
    msg(id, Role::System, text, t)
}

fn call(id: &str, call_id: &str, name: &str, t: i64) -> FunctionCall {
    FunctionCall {
        id: id.into(),
        call_id: call_id.into(),
        name: name.into(),
        arguments: "{}".into(),
        group_id: None,
        created_at: at(t),
    }
}

fn grouped(mut c: FunctionCall, group: &str) -> FunctionCall {
    c.group_id = Some(group.into());
    c
}

fn output(id: &str, call_id: &str, name: &str, text: &str, t: i64) -> FunctionCallOutput {
    FunctionCallOutput {
        id: id.into(),
        call_id: call_id.into(),
        name: name.into(),
        output: text.into(),
        is_error: false,
        created_at: at(t),
    }
}

fn handoff(id: &str, t: i64) -> AgentHandoff {
    AgentHandoff {
        id: id.into(),
        old_agent_id: Some("greeter".into()),
        new_agent_id: "booker".into(),
        created_at: at(t),
    }
}

fn config(id: &str, t: i64) -> AgentConfigUpdate {
    AgentConfigUpdate {
        id: id.into(),
        agent_id: Some("booker".into()),
        instructions: Some("Book tables.".into()),
        tools_added: vec!["book".into()],
        tools_removed: vec![],
        created_at: at(t),
    }
}

fn ids(ctx: &ChatContext) -> Vec<&str> {
    ctx.iter().map(ChatItem::id).collect()
}

fn message<'a>(ctx: &'a ChatContext, id: &str) -> &'a ChatMessage {
    ctx.get(id)
        .and_then(ChatItem::as_message)
        .unwrap_or_else(|| panic!("no message {id}"))
}

fn function_call<'a>(ctx: &'a ChatContext, id: &str) -> &'a FunctionCall {
    match ctx.get(id) {
        Some(ChatItem::FunctionCall(c)) => c,
        other => panic!("no function call {id}: {other:?}"),
    }
}

fn function_output<'a>(ctx: &'a ChatContext, id: &str) -> &'a FunctionCallOutput {
    match ctx.get(id) {
        Some(ChatItem::FunctionCallOutput(o)) => o,
        other => panic!("no function output {id}: {other:?}"),
    }
}

fn is_sorted(ctx: &ChatContext) -> bool {
    ctx.items()
        .windows(2)
        .all(|w| w[0].created_at() <= w[1].created_at())
}

// ----- ordering -----

#[test]
fn insert_keeps_time_order_and_is_stable_for_equal_timestamps() {
    let mut ctx = ChatContext::new();
    assert!(ctx.is_empty());
    // Fast path: each item is the newest.
    assert_eq!(ctx.insert(user("a", "", 10)), 0);
    assert_eq!(ctx.insert(assistant("b", "", 20)), 1);
    assert_eq!(ctx.insert(user("c", "", 30)), 2);
    // Middle insertion goes after the items with the same timestamp.
    assert_eq!(ctx.insert(call("d", "c1", "t", 20)), 2);
    // Before everything.
    assert_eq!(ctx.insert(handoff("e", 5)), 0);
    // Equal to the newest: fast path, at the end.
    assert_eq!(ctx.insert(config("f", 30)), 5);
    // A third item at 20 goes after the two others.
    assert_eq!(ctx.insert(output("g", "c1", "t", "x", 20)), 4);
    assert_eq!(ids(&ctx), ["e", "a", "b", "d", "g", "c", "f"]);
    assert_eq!(ctx.len(), 7);
    assert!(is_sorted(&ctx));
    assert_eq!(ctx.last().map(ChatItem::id), Some("f"));
}

#[test]
fn add_message_appends_a_new_message_now() {
    let mut ctx = ChatContext::from_items([ChatItem::from(user("old", "", 0))]);
    let added = ctx.add_message(Role::Assistant, "hello").clone();
    assert_eq!(added.role, Role::Assistant);
    assert_eq!(added.text(), "hello");
    assert!(added.id.starts_with("msg_"));
    assert!(added.created_at > at(0));
    assert_eq!(ids(&ctx), ["old", added.id.as_str()]);
}

#[test]
fn from_items_sorts_stably() {
    let ctx = ChatContext::from_items([
        ChatItem::from(user("x", "", 20)),
        assistant("y", "", 10).into(),
        call("z", "c", "t", 20).into(),
        handoff("w", 10).into(),
        config("v", 15).into(),
    ]);
    assert_eq!(ids(&ctx), ["y", "w", "v", "x", "z"]);
    assert_eq!(
        ctx.clone()
            .into_items()
            .iter()
            .map(ChatItem::id)
            .collect::<Vec<_>>(),
        ["y", "w", "v", "x", "z"]
    );
    assert_eq!((&ctx).into_iter().count(), 5);
}

// ----- copy -----

fn copy_fixture() -> ChatContext {
    let mut empty = assistant("empty", "", 4);
    empty.content = vec![ChatContent::Text(String::new())];
    let mut image = user("image", "", 12);
    image.content = vec![ChatContent::Image(ImageContent {
        url: "https://example.invalid/a.png".into(),
        mime_type: None,
    })];
    let mut silent = user("silent", "", 13);
    silent.content = vec![ChatContent::Audio(AudioContent {
        transcript: None,
        duration_s: Some(0.5),
    })];
    ChatContext::from_items([
        ChatItem::from(system("sys", "Be brief.", 1)),
        msg("dev", Role::Developer, "Use metric units.", 2).into(),
        user("u1", "Hi", 3).into(),
        empty.into(),
        assistant("a1", "Hello", 5).into(),
        call("call_lookup", "c1", "lookup", 6).into(),
        output("out_lookup", "c1", "lookup", "found", 7).into(),
        call("call_book", "c2", "book", 8).into(),
        output("out_book", "c2", "book", "booked", 9).into(),
        handoff("handoff", 10).into(),
        config("config", 11).into(),
        image.into(),
        silent.into(),
    ])
}

const ALL: [&str; 13] = [
    "sys",
    "dev",
    "u1",
    "empty",
    "a1",
    "call_lookup",
    "out_lookup",
    "call_book",
    "out_book",
    "handoff",
    "config",
    "image",
    "silent",
];

fn all_but(excluded: &[&str]) -> Vec<&'static str> {
    ALL.into_iter()
        .filter(|id| !excluded.contains(id))
        .collect()
}

#[test]
fn copy_with_each_option() {
    let ctx = copy_fixture();
    let copy = |options: CopyOptions| ctx.copy(&options);

    let everything = copy(CopyOptions::default());
    assert_eq!(everything, ctx);
    assert_eq!(ids(&everything), ALL);

    let cases: Vec<(CopyOptions, Vec<&str>)> = vec![
        (
            CopyOptions {
                exclude_instructions: true,
                ..Default::default()
            },
            all_but(&["sys", "dev"]),
        ),
        (
            CopyOptions {
                exclude_function_calls: true,
                ..Default::default()
            },
            all_but(&["call_lookup", "out_lookup", "call_book", "out_book"]),
        ),
        (
            CopyOptions {
                exclude_handoffs: true,
                ..Default::default()
            },
            all_but(&["handoff"]),
        ),
        (
            CopyOptions {
                exclude_config_updates: true,
                ..Default::default()
            },
            all_but(&["config"]),
        ),
        (
            // An image counts as content; audio without transcript does not.
            CopyOptions {
                exclude_empty_messages: true,
                ..Default::default()
            },
            all_but(&["empty", "silent"]),
        ),
        (
            CopyOptions {
                tools: Some(vec!["book".into()]),
                ..Default::default()
            },
            all_but(&["call_lookup", "out_lookup"]),
        ),
        (
            CopyOptions {
                tools: Some(vec![]),
                ..Default::default()
            },
            all_but(&["call_lookup", "out_lookup", "call_book", "out_book"]),
        ),
        (
            CopyOptions {
                tools: Some(vec!["book".into(), "unknown".into(), "lookup".into()]),
                ..Default::default()
            },
            ALL.to_vec(),
        ),
        (
            CopyOptions {
                exclude_instructions: true,
                exclude_empty_messages: true,
                tools: Some(vec!["book".into()]),
                ..Default::default()
            },
            vec![
                "u1",
                "a1",
                "call_book",
                "out_book",
                "handoff",
                "config",
                "image",
            ],
        ),
        (
            CopyOptions {
                exclude_instructions: true,
                exclude_function_calls: true,
                exclude_handoffs: true,
                exclude_config_updates: true,
                exclude_empty_messages: true,
                tools: Some(vec!["book".into()]),
            },
            vec!["u1", "a1", "image"],
        ),
    ];
    for (options, expected) in cases {
        let copied = ctx.copy(&options);
        assert_eq!(ids(&copied), expected, "{options:?}");
        // Kept items are unchanged clones.
        for item in &copied {
            assert_eq!(Some(item), ctx.get(item.id()));
        }
    }
    // The original is untouched.
    assert_eq!(ids(&ctx), ALL);
}

// ----- merge -----

fn merge_fixture() -> (ChatContext, ChatContext) {
    let mine = ChatContext::from_items([
        ChatItem::from(system("s1", "Mine.", 1)),
        user("u1", "hi", 10).into(),
        assistant("a1", "hello", 20).into(),
    ]);
    let theirs = ChatContext::from_items([
        ChatItem::from(system("s2", "Theirs.", 5)),
        user("u1", "changed in the other context", 10).into(),
        handoff("h", 12).into(),
        call("c", "c1", "lookup", 15).into(),
        output("o", "c1", "lookup", "found", 16).into(),
        assistant("a2", "later", 25).into(),
        // Same timestamp as `a1`: goes after it.
        msg("dev", Role::Developer, "Theirs too.", 20).into(),
    ]);
    (mine, theirs)
}

#[test]
fn merge_defaults_skip_instructions_and_deduplicate_by_id() {
    let (mut mine, theirs) = merge_fixture();
    assert_eq!(
        MergeOptions::default(),
        MergeOptions {
            exclude_instructions: true,
            exclude_function_calls: false,
        }
    );
    mine.merge(&theirs, &MergeOptions::default());
    assert_eq!(ids(&mine), ["s1", "u1", "h", "c", "o", "a1", "a2"]);
    // The existing item with the same id wins.
    assert_eq!(message(&mine, "u1").text(), "hi");
    assert!(is_sorted(&mine));
    // Merging again changes nothing.
    let once = mine.clone();
    mine.merge(&theirs, &MergeOptions::default());
    assert_eq!(mine, once);
}

#[test]
fn merge_with_instructions_and_without_function_calls() {
    let (mine, theirs) = merge_fixture();

    let mut with_instructions = mine.clone();
    with_instructions.merge(
        &theirs,
        &MergeOptions {
            exclude_instructions: false,
            exclude_function_calls: false,
        },
    );
    assert_eq!(
        ids(&with_instructions),
        ["s1", "s2", "u1", "h", "c", "o", "a1", "dev", "a2"]
    );

    let mut without_calls = mine.clone();
    without_calls.merge(
        &theirs,
        &MergeOptions {
            exclude_instructions: true,
            exclude_function_calls: true,
        },
    );
    assert_eq!(ids(&without_calls), ["s1", "u1", "h", "a1", "a2"]);

    let mut into_empty = ChatContext::new();
    into_empty.merge(&theirs, &MergeOptions::default());
    assert_eq!(ids(&into_empty), ["u1", "h", "c", "o", "a2"]);
}

// ----- truncate -----

fn truncate_fixture() -> ChatContext {
    ChatContext::from_items([
        ChatItem::from(system("sys", "Be brief.", 1)),
        user("u1", "a", 2).into(),
        assistant("a1", "b", 3).into(),
        call("c1", "k1", "t", 4).into(),
        output("o1", "k1", "t", "x", 5).into(),
        user("u2", "c", 6).into(),
        call("c2", "k2", "t", 7).into(),
        output("o2", "k2", "t", "y", 8).into(),
        assistant("a2", "d", 9).into(),
        user("u3", "e", 10).into(),
    ])
}

#[test]
fn truncate_keeps_the_last_items_and_the_instructions() {
    let mut ctx = truncate_fixture();
    ctx.truncate(5);
    assert_eq!(ids(&ctx), ["sys", "u2", "c2", "o2", "a2", "u3"]);
}

#[test]
fn truncate_never_starts_with_a_tool_item() {
    let mut ctx = truncate_fixture();
    // The last four start with c2, o2: both dropped.
    ctx.truncate(4);
    assert_eq!(ids(&ctx), ["sys", "a2", "u3"]);

    let mut ctx = truncate_fixture();
    // Starts with o2 alone.
    ctx.truncate(3);
    assert_eq!(ids(&ctx), ["sys", "a2", "u3"]);
}

#[test]
fn truncate_drops_outputs_whose_call_fell_out() {
    // The user spoke while the tool ran, so the output comes after a user message.
    let mut ctx = ChatContext::from_items([
        ChatItem::from(user("u1", "a", 1)),
        call("c1", "k1", "t", 2).into(),
        user("u2", "b", 3).into(),
        output("o1", "k1", "t", "x", 4).into(),
        assistant("a1", "c", 5).into(),
    ]);
    ctx.truncate(3);
    assert_eq!(ids(&ctx), ["u2", "a1"]);
}

#[test]
fn truncate_reinserts_only_the_first_instructions() {
    let mut ctx = ChatContext::from_items([
        ChatItem::from(msg("dev", Role::Developer, "first", 1)),
        system("sys", "second", 2).into(),
        user("u1", "a", 3).into(),
        assistant("a1", "b", 4).into(),
        user("u2", "c", 5).into(),
    ]);
    ctx.truncate(2);
    assert_eq!(ids(&ctx), ["dev", "a1", "u2"]);

    // Instructions still inside the kept window are not duplicated.
    let mut ctx = ChatContext::from_items([
        ChatItem::from(user("u0", "a", 1)),
        system("sys", "b", 2).into(),
        user("u1", "c", 3).into(),
        assistant("a1", "d", 4).into(),
    ]);
    ctx.truncate(3);
    assert_eq!(ids(&ctx), ["sys", "u1", "a1"]);

    // Dropping only the first item brings it straight back when it is the instructions.
    let mut ctx = truncate_fixture();
    ctx.truncate(9);
    assert_eq!(ctx, truncate_fixture());
}

#[test]
fn truncate_is_a_no_op_when_short_enough() {
    let mut ctx = truncate_fixture();
    ctx.truncate(10);
    assert_eq!(ctx, truncate_fixture());
    ctx.truncate(100);
    assert_eq!(ctx, truncate_fixture());
    let mut empty = ChatContext::new();
    empty.truncate(0);
    assert!(empty.is_empty());
}

#[test]
fn truncate_to_zero_keeps_only_the_instructions() {
    let mut ctx = truncate_fixture();
    ctx.truncate(0);
    assert_eq!(ids(&ctx), ["sys"]);

    let mut without_instructions = ChatContext::from_items([
        ChatItem::from(user("u1", "a", 1)),
        assistant("a1", "b", 2).into(),
    ]);
    without_instructions.truncate(0);
    assert!(without_instructions.is_empty());
}

// ----- instructions and lookups -----

#[test]
fn set_instructions_inserts_first_then_replaces_in_place() {
    let mut ctx = ChatContext::from_items([
        ChatItem::from(handoff("h", 10)),
        user("u1", "hi", 20).into(),
    ]);
    ctx.set_instructions("Be brief.");
    assert_eq!(ids(&ctx), [INSTRUCTIONS_ID, "h", "u1"]);
    let inserted = message(&ctx, INSTRUCTIONS_ID).clone();
    assert_eq!(inserted.role, Role::System);
    assert_eq!(
        inserted.content,
        vec![ChatContent::Text("Be brief.".into())]
    );
    // Just before the first item, so the context stays sorted.
    assert_eq!(inserted.created_at, at(9));
    assert!(is_sorted(&ctx));

    ctx.set_instructions("Be thorough.");
    assert_eq!(ids(&ctx), [INSTRUCTIONS_ID, "h", "u1"]);
    let replaced = message(&ctx, INSTRUCTIONS_ID);
    assert_eq!(replaced.text(), "Be thorough.");
    assert_eq!(replaced.created_at, inserted.created_at);
}

#[test]
fn set_instructions_replaces_an_inherited_message_where_it_is() {
    let mut inherited = system(INSTRUCTIONS_ID, "Old agent.", 15);
    inherited.extra.insert("from".into(), json!("greeter"));
    let mut ctx = ChatContext::from_items([
        ChatItem::from(handoff("h", 10)),
        inherited.into(),
        user("u1", "hi", 20).into(),
    ]);
    ctx.set_instructions("New agent.");
    assert_eq!(ids(&ctx), ["h", INSTRUCTIONS_ID, "u1"]);
    let replaced = message(&ctx, INSTRUCTIONS_ID);
    assert_eq!(
        replaced.content,
        vec![ChatContent::Text("New agent.".into())]
    );
    assert_eq!(replaced.created_at, at(15));
    assert_eq!(replaced.extra.get("from"), Some(&json!("greeter")));
}

#[test]
fn set_instructions_on_an_empty_context() {
    let mut ctx = ChatContext::new();
    ctx.set_instructions("Hello.");
    assert_eq!(ids(&ctx), [INSTRUCTIONS_ID]);
    assert_eq!(message(&ctx, INSTRUCTIONS_ID).text(), "Hello.");
}

#[test]
fn get_index_of_remove_and_function_call() {
    let mut ctx = truncate_fixture();
    assert_eq!(ctx.index_of("o1"), Some(4));
    assert_eq!(ctx.index_of("nope"), None);
    assert_eq!(ctx.get("u2").map(ChatItem::kind), Some(ItemKind::Message));
    assert_eq!(
        ctx.get("c1").map(ChatItem::kind),
        Some(ItemKind::FunctionCall)
    );
    assert_eq!(ctx.get("nope"), None);
    assert_eq!(ctx.function_call("k2").map(|c| c.id.as_str()), Some("c2"));
    assert_eq!(
        ctx.function_call("c2"),
        None,
        "looked up by call id, not item id"
    );

    let removed = ctx.remove("o1");
    assert_eq!(removed.as_ref().map(ChatItem::id), Some("o1"));
    assert_eq!(ctx.len(), 9);
    assert_eq!(ctx.index_of("u2"), Some(4));
    assert_eq!(ctx.remove("o1"), None);

    ctx.retain(|i| i.kind() == ItemKind::Message);
    assert_eq!(ids(&ctx), ["sys", "u1", "a1", "u2", "a2", "u3"]);
}

#[test]
fn upsert_replaces_in_place_or_inserts_in_time_order() {
    let mut ctx = truncate_fixture();
    ctx.upsert(assistant("a1", "edited", 3));
    assert_eq!(ctx.index_of("a1"), Some(2));
    assert_eq!(message(&ctx, "a1").text(), "edited");
    assert_eq!(ctx.len(), 10);

    ctx.upsert(handoff("h", 6));
    assert_eq!(
        ctx.index_of("h"),
        Some(6),
        "after u2, which has the same timestamp"
    );
    assert_eq!(ctx.len(), 11);
    assert!(is_sorted(&ctx));
}

// ----- summarize -----

fn summary_fixture() -> ChatContext {
    let mut lookup = call("c1", "k1", "lookup", 12);
    lookup.arguments = r#"{"name":"Ada"}"#.into();
    ChatContext::from_items([
        ChatItem::from(system("sys", "You are helpful.", 1)),
        handoff("h1", 2).into(),
        config("cfg1", 3).into(),
        user("u1", "My name is Ada.", 10).into(),
        assistant("a1", "Hi Ada.", 11).into(),
        lookup.into(),
        output("o1", "k1", "lookup", "one booking", 13).into(),
        assistant("a2", "You have a booking.", 14).into(),
        handoff("h2", 15).into(),
        user("u2", "Move it to Friday.", 20).into(),
        assistant("a3", "Done.", 21).into(),
        user("u3", "Thanks.", 30).into(),
        assistant("a4", "You're welcome.", 31).into(),
        config("cfg2", 40).into(),
    ])
}

const SUMMARY_TEXT: &str = "<chat_history_summary>Ada moved her booking.</chat_history_summary>";

fn summarizer() -> ScriptedLlm {
    ScriptedLlm::new().reply_text("  Ada moved her booking.  ")
}

fn keep(turns: usize) -> SummarizeOptions {
    SummarizeOptions {
        keep_last_turns: turns,
        prompt: None,
    }
}

/// Ids with the summary shown as `SUMMARY`; checks there is exactly one summary and returns it.
fn summarized_ids(ctx: &ChatContext) -> (Vec<String>, ChatMessage) {
    let summaries: Vec<&ChatMessage> = ctx
        .iter()
        .filter_map(ChatItem::as_message)
        .filter(|m| m.is_summary())
        .collect();
    assert_eq!(summaries.len(), 1, "exactly one summary in {ctx:#?}");
    let summary = summaries[0].clone();
    let ids = ctx
        .iter()
        .map(|i| {
            if i.id() == summary.id {
                "SUMMARY".to_owned()
            } else {
                i.id().to_owned()
            }
        })
        .collect();
    (ids, summary)
}

fn assert_summary_message(summary: &ChatMessage, created_at: Timestamp) {
    assert_eq!(summary.role, Role::Assistant);
    assert_eq!(
        summary.content,
        vec![ChatContent::Text(SUMMARY_TEXT.into())]
    );
    assert_eq!(summary.text(), SUMMARY_TEXT);
    assert!(summary.text().starts_with(SUMMARY_OPEN));
    assert!(summary.text().ends_with(SUMMARY_CLOSE));
    assert_eq!(
        summary.extra,
        Map::from_iter([("is_summary".into(), json!(true))])
    );
    assert!(!summary.interrupted);
    assert_eq!(summary.created_at, created_at);
}

/// The transcript the summariser was asked to summarise.
fn transcript(llm: &ScriptedLlm) -> String {
    let requests = llm.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.tool_choice, ToolChoice::None);
    assert!(request.tools.is_empty());
    let items = request.context.items();
    assert_eq!(items.len(), 2);
    let prompt = items[0].as_message().expect("a system prompt");
    assert_eq!(prompt.role, Role::System);
    let user = items[1].as_message().expect("the transcript");
    assert_eq!(user.role, Role::User);
    user.text()
}

#[tokio::test(start_paused = true)]
async fn summarize_everything_with_keep_last_turns_zero() {
    let llm = summarizer();
    let mut ctx = summary_fixture();
    let replaced = ctx.summarize(&llm, &keep(0)).await;
    assert_eq!(replaced, Ok(9));
    let (ids, summary) = summarized_ids(&ctx);
    // Instructions, handoffs and config updates stay; the summary sits in time order, after
    // the last summarised item and before the later config update.
    assert_eq!(ids, ["sys", "h1", "cfg1", "h2", "SUMMARY", "cfg2"]);
    assert_summary_message(&summary, at(31));
    assert_eq!(
        transcript(&llm),
        "user: My name is Ada.\n\
         assistant: Hi Ada.\n\
         tool call lookup({\"name\":\"Ada\"})\n\
         tool result lookup: one booking\n\
         assistant: You have a booking.\n\
         user: Move it to Friday.\n\
         assistant: Done.\n\
         user: Thanks.\n\
         assistant: You're welcome.\n"
    );
    assert!(
        llm.requests()[0].context.items()[0]
            .as_message()
            .is_some_and(|m| m.text().starts_with("Summarize the conversation"))
    );
}

#[tokio::test(start_paused = true)]
async fn summarize_keeping_the_last_turn() {
    let llm = summarizer();
    let mut ctx = summary_fixture();
    assert_eq!(ctx.summarize(&llm, &keep(1)).await, Ok(7));
    let (ids, summary) = summarized_ids(&ctx);
    assert_eq!(
        ids,
        ["sys", "h1", "cfg1", "h2", "SUMMARY", "u3", "a4", "cfg2"]
    );
    assert_summary_message(&summary, at(21));
    assert_eq!(
        transcript(&llm),
        "user: My name is Ada.\n\
         assistant: Hi Ada.\n\
         tool call lookup({\"name\":\"Ada\"})\n\
         tool result lookup: one booking\n\
         assistant: You have a booking.\n\
         user: Move it to Friday.\n\
         assistant: Done.\n"
    );
    // Kept items are untouched.
    assert_eq!(message(&ctx, "u3"), message(&summary_fixture(), "u3"));
}

#[tokio::test(start_paused = true)]
async fn summarize_keeping_the_last_two_turns() {
    let llm = summarizer();
    let mut ctx = summary_fixture();
    assert_eq!(ctx.summarize(&llm, &keep(2)).await, Ok(5));
    let (ids, summary) = summarized_ids(&ctx);
    assert_eq!(
        ids,
        [
            "sys", "h1", "cfg1", "SUMMARY", "h2", "u2", "a3", "u3", "a4", "cfg2"
        ]
    );
    assert_summary_message(&summary, at(14));
    assert!(is_sorted(&ctx));
}

#[tokio::test(start_paused = true)]
async fn summarize_with_nothing_before_the_kept_turns_sends_no_request() {
    for turns in [3, 4, 100] {
        let llm = ScriptedLlm::new();
        let mut ctx = summary_fixture();
        assert_eq!(
            ctx.summarize(&llm, &keep(turns)).await,
            Ok(0),
            "keep {turns}"
        );
        assert_eq!(ctx, summary_fixture());
        assert_eq!(llm.request_count(), 0);
    }
    // Only instructions, handoffs and config updates: nothing to summarise either.
    let llm = ScriptedLlm::new();
    let mut ctx = ChatContext::from_items([
        ChatItem::from(system("sys", "x", 1)),
        handoff("h", 2).into(),
        config("c", 3).into(),
    ]);
    let before = ctx.clone();
    assert_eq!(ctx.summarize(&llm, &keep(0)).await, Ok(0));
    assert_eq!(ctx, before);
    let mut empty = ChatContext::new();
    assert_eq!(empty.summarize(&llm, &keep(0)).await, Ok(0));
    assert_eq!(llm.request_count(), 0);
}

#[tokio::test(start_paused = true)]
async fn earlier_summaries_are_not_summarised_again() {
    let mut old = assistant(
        "s0",
        "<chat_history_summary>Old news.</chat_history_summary>",
        5,
    );
    old.extra.insert("is_summary".into(), json!(true));
    let mut ctx = ChatContext::from_items([
        ChatItem::from(old.clone()),
        user("u1", "one", 10).into(),
        assistant("a1", "two", 11).into(),
        user("u2", "three", 20).into(),
        assistant("a2", "four", 21).into(),
    ]);
    let llm = ScriptedLlm::new()
        .reply_text("First.")
        .reply_text("Second.");
    assert_eq!(ctx.summarize(&llm, &keep(1)).await, Ok(2));
    assert_eq!(transcript(&llm), "user: one\nassistant: two\n");
    assert_eq!(ctx.len(), 4);
    assert_eq!(ctx.items()[0], ChatItem::from(old.clone()));
    let first = ctx.items()[1].as_message().cloned().expect("the summary");
    assert!(first.is_summary());
    assert_eq!(
        first.text(),
        "<chat_history_summary>First.</chat_history_summary>"
    );
    assert_eq!(first.created_at, at(11));
    assert_eq!(ids(&ctx)[2..], ["u2", "a2"]);

    // Summarising everything now leaves both earlier summaries alone.
    assert_eq!(ctx.summarize(&llm, &keep(0)).await, Ok(2));
    assert_eq!(
        llm.requests()[1].context.items()[1]
            .as_message()
            .map(ChatMessage::text),
        Some("user: three\nassistant: four\n".to_owned())
    );
    let texts: Vec<String> = ctx
        .iter()
        .filter_map(ChatItem::as_message)
        .map(ChatMessage::text)
        .collect();
    assert_eq!(
        texts,
        [
            "<chat_history_summary>Old news.</chat_history_summary>",
            "<chat_history_summary>First.</chat_history_summary>",
            "<chat_history_summary>Second.</chat_history_summary>",
        ]
    );
    assert!(
        ctx.iter()
            .filter_map(ChatItem::as_message)
            .all(ChatMessage::is_summary)
    );
}

#[tokio::test(start_paused = true)]
async fn summarize_uses_a_custom_prompt_and_marks_tool_errors() {
    let mut failed = output("o1", "k1", "lookup", "not found", 3);
    failed.is_error = true;
    let mut ctx = ChatContext::from_items([
        ChatItem::from(user("u1", "Find Bob.", 1)),
        call("c1", "k1", "lookup", 2).into(),
        failed.into(),
        assistant("a1", "No Bob.", 4).into(),
        user("u2", "Ok.", 5).into(),
    ]);
    let llm = ScriptedLlm::new().reply_text("Bob is unknown.");
    let options = SummarizeOptions {
        keep_last_turns: 1,
        prompt: Some("Summarise in French.".into()),
    };
    assert_eq!(ctx.summarize(&llm, &options).await, Ok(4));
    let request = &llm.requests()[0];
    assert_eq!(
        request.context.items()[0]
            .as_message()
            .map(ChatMessage::text),
        Some("Summarise in French.".to_owned())
    );
    assert_eq!(
        transcript(&llm),
        "user: Find Bob.\ntool call lookup({})\ntool error lookup: not found\nassistant: No Bob.\n"
    );
}

#[tokio::test(start_paused = true)]
async fn summarize_error_leaves_the_context_unchanged() {
    let down = LlmError::Connection {
        provider: "scripted".into(),
        message: "down".into(),
    };
    let llm = ScriptedLlm::new().reply(ScriptedReply::Error(down.clone()));
    let mut ctx = summary_fixture();
    let before = ctx.clone();
    let result = ctx.summarize(&llm, &keep(1)).await;
    assert_eq!(result, Err(SummaryError::Llm(down)));
    assert_eq!(ctx, before);
    assert_eq!(llm.request_count(), 1, "summaries are not retried here");
    assert_eq!(
        result.map_err(|e| e.to_string()),
        Err("the summary request failed: could not reach scripted: down".to_owned())
    );

    // A stream cut mid-answer is an error too, even though some text arrived.
    let cut = LlmError::Protocol {
        provider: "scripted".into(),
        message: "cut".into(),
    };
    let llm = ScriptedLlm::new().reply(ScriptedReply::ChunksThenError(
        vec![crate::llm::ChatChunk::Text("Ada ".into())],
        cut.clone(),
    ));
    assert_eq!(
        ctx.summarize(&llm, &keep(0)).await,
        Err(SummaryError::Llm(cut))
    );
    assert_eq!(ctx, before);
}

#[tokio::test(start_paused = true)]
async fn empty_summary_is_an_error_and_leaves_the_context_unchanged() {
    for reply in [
        ScriptedReply::text("   "),
        ScriptedReply::text(""),
        ScriptedReply::tool("lookup", json!({})),
    ] {
        let llm = ScriptedLlm::new().reply(reply.clone());
        let mut ctx = summary_fixture();
        assert_eq!(
            ctx.summarize(&llm, &keep(0)).await,
            Err(SummaryError::Empty),
            "{reply:?}"
        );
        assert_eq!(ctx, summary_fixture());
    }
    assert_eq!(
        SummaryError::Empty.to_string(),
        "the model returned an empty summary"
    );
}

// ----- last_user_turns -----

#[test]
fn last_user_turns_keeps_whole_turns_without_instructions() {
    let ctx = ChatContext::from_items([
        ChatItem::from(system("sys", "x", 1)),
        assistant("greet", "Hello!", 2).into(),
        user("u1", "a", 3).into(),
        assistant("a1", "b", 4).into(),
        call("c1", "k1", "t", 5).into(),
        output("o1", "k1", "t", "x", 6).into(),
        user("u2", "c", 7).into(),
        system("late", "one-off", 8).into(),
        assistant("a2", "d", 9).into(),
        handoff("h", 10).into(),
        user("u3", "e", 11).into(),
        assistant("a3", "f", 12).into(),
    ]);
    assert!(ctx.last_user_turns(0).is_empty());
    assert_eq!(ids(&ctx.last_user_turns(1)), ["u3", "a3"]);
    assert_eq!(ids(&ctx.last_user_turns(2)), ["u2", "a2", "h", "u3", "a3"]);
    assert_eq!(
        ids(&ctx.last_user_turns(3)),
        ["u1", "a1", "c1", "o1", "u2", "a2", "h", "u3", "a3"]
    );
    // More turns than there are: everything but the instructions.
    let all = ["greet", "u1", "a1", "c1", "o1", "u2", "a2", "h", "u3", "a3"];
    assert_eq!(ids(&ctx.last_user_turns(4)), all);
    assert_eq!(ids(&ctx.last_user_turns(100)), all);

    let no_user = ChatContext::from_items([
        ChatItem::from(system("sys", "x", 1)),
        assistant("greet", "Hello!", 2).into(),
    ]);
    assert_eq!(ids(&no_user.last_user_turns(1)), ["greet"]);
}

// ----- provider_messages -----

#[test]
fn provider_messages_group_and_filter() {
    let ctx = ChatContext::from_items([
        ChatItem::from(system("sys", "Be brief.", 1)),
        msg("dev", Role::Developer, "Use metric units.", 2).into(),
        handoff("h", 3).into(),
        config("cfg", 4).into(),
        user("u1", "Book Friday.", 5).into(),
        // An assistant message and the calls of its generation.
        assistant("gen1", "Let me check.", 6).into(),
        grouped(call("c1", "k1", "lookup", 7), "gen1").into(),
        grouped(call("c2", "k2", "book", 8), "gen1").into(),
        output("o1", "k1", "lookup", "free", 9).into(),
        output("o2", "k2", "book", "booked", 10).into(),
        assistant("gen2", "Booked.", 11).into(),
        // Calls of another generation that said nothing.
        grouped(call("c3", "k3", "notify", 12), "gen3").into(),
        output("o3", "k3", "notify", "sent", 13).into(),
        // Still running: no output, dropped.
        grouped(call("c4", "k4", "slow", 14), "gen4").into(),
        // An output without a call, dropped.
        output("orphan", "ghost", "lookup", "?", 15).into(),
        user("u2", "And Saturday?", 16).into(),
        grouped(call("c5", "k5", "lookup", 17), "gen5").into(),
        grouped(call("c6", "k6", "book", 18), "gen5").into(),
        output("o5", "k5", "lookup", "free", 19).into(),
        output("o6", "k6", "book", "booked", 20).into(),
        // No group id, after an output: a new assistant turn.
        call("c7", "k7", "notify", 21).into(),
        output("o7", "k7", "notify", "sent", 22).into(),
        // No group id right after an assistant message: joins it.
        assistant("gen6", "Also booked.", 23).into(),
        call("c8", "k8", "notify", 24).into(),
        output("o8", "k8", "notify", "sent", 25).into(),
        // A call of the same generation after an output starts a new assistant turn.
        grouped(call("c9", "k9", "a", 26), "gen9").into(),
        output("o9", "k9", "a", "1", 27).into(),
        grouped(call("c10", "k10", "b", 28), "gen9").into(),
        output("o10", "k10", "b", "2", 29).into(),
    ]);
    let c = |id| function_call(&ctx, id);
    let o = |id| ProviderMessage::ToolOutput(function_output(&ctx, id));
    let assistant_turn = |text: &str, calls: Vec<&'static str>| ProviderMessage::Assistant {
        text: text.into(),
        tool_calls: calls.into_iter().map(c).collect(),
    };
    let expected = vec![
        ProviderMessage::Instructions {
            role: Role::System,
            text: "Be brief.".into(),
        },
        ProviderMessage::Instructions {
            role: Role::Developer,
            text: "Use metric units.".into(),
        },
        ProviderMessage::User(message(&ctx, "u1")),
        assistant_turn("Let me check.", vec!["c1", "c2"]),
        o("o1"),
        o("o2"),
        assistant_turn("Booked.", vec![]),
        assistant_turn("", vec!["c3"]),
        o("o3"),
        ProviderMessage::User(message(&ctx, "u2")),
        assistant_turn("", vec!["c5", "c6"]),
        o("o5"),
        o("o6"),
        assistant_turn("", vec!["c7"]),
        o("o7"),
        assistant_turn("Also booked.", vec!["c8"]),
        o("o8"),
        assistant_turn("", vec!["c9"]),
        o("o9"),
        assistant_turn("", vec!["c10"]),
        o("o10"),
    ];
    assert_eq!(provider_messages(&ctx), expected);
}

#[test]
fn provider_messages_split_calls_of_different_generations() {
    let ctx = ChatContext::from_items([
        ChatItem::from(user("u1", "x", 1)),
        grouped(call("c1", "k1", "a", 2), "g1").into(),
        grouped(call("c2", "k2", "b", 3), "g2").into(),
        output("o1", "k1", "a", "1", 4).into(),
        output("o2", "k2", "b", "2", 5).into(),
    ]);
    let c = |id| function_call(&ctx, id);
    assert_eq!(
        provider_messages(&ctx),
        vec![
            ProviderMessage::User(message(&ctx, "u1")),
            ProviderMessage::Assistant {
                text: String::new(),
                tool_calls: vec![c("c1")],
            },
            ProviderMessage::Assistant {
                text: String::new(),
                tool_calls: vec![c("c2")],
            },
            ProviderMessage::ToolOutput(function_output(&ctx, "o1")),
            ProviderMessage::ToolOutput(function_output(&ctx, "o2")),
        ]
    );
    assert_eq!(provider_messages(&ChatContext::new()), vec![]);
}

// ----- serde -----

fn every_item_type() -> ChatContext {
    let mut rich = assistant("m1", "", 1);
    rich.content = vec![
        ChatContent::Text("Here is the menu.".into()),
        ChatContent::Image(ImageContent {
            url: "data:image/png;base64,iVBORw0KGgo=".into(),
            mime_type: Some("image/png".into()),
        }),
        ChatContent::Image(ImageContent {
            url: "https://example.invalid/menu.jpg".into(),
            mime_type: None,
        }),
        ChatContent::Audio(AudioContent {
            transcript: Some("Here is the menu.".into()),
            duration_s: Some(1.25),
        }),
        ChatContent::Audio(AudioContent {
            transcript: None,
            duration_s: None,
        }),
    ];
    rich.interrupted = true;
    rich.extra = Map::from_iter([
        ("is_summary".to_owned(), json!(false)),
        ("lang".to_owned(), json!("en")),
        ("meta".to_owned(), json!({"n": [1, 2.5, null], "ok": true})),
    ]);
    let mut failed = output("o2", "call_2", "book", "no table", 6);
    failed.is_error = true;
    let first_handoff = AgentHandoff {
        id: "h1".into(),
        old_agent_id: None,
        new_agent_id: "greeter".into(),
        created_at: at(0),
    };
    let minimal_config = AgentConfigUpdate {
        id: "cfg2".into(),
        agent_id: None,
        instructions: None,
        tools_added: vec![],
        tools_removed: vec![],
        created_at: at(9),
    };
    let mut removed = config("cfg1", 8);
    removed.tools_removed = vec!["lookup".into()];
    ChatContext::from_items([
        ChatItem::from(first_handoff),
        rich.into(),
        msg("m2", Role::Developer, "dev", 2).into(),
        grouped(call("c1", "call_1", "lookup", 3), "m1").into(),
        output("o1", "call_1", "lookup", "{\"free\":true}", 4).into(),
        call("c2", "call_2", "book", 5).into(),
        failed.into(),
        handoff("h2", 7).into(),
        removed.into(),
        minimal_config.into(),
    ])
}

#[test]
fn json_round_trip_is_lossless() {
    let ctx = every_item_type();
    let text = serde_json::to_string(&ctx).expect("serialises");
    let back: ChatContext = serde_json::from_str(&text).expect("deserialises");
    assert_eq!(back, ctx);
    let value = serde_json::to_value(&ctx).expect("serialises");
    assert_eq!(
        serde_json::from_value::<ChatContext>(value.clone()).ok(),
        Some(ctx.clone())
    );
    // Pretty and compact forms read back the same.
    let pretty = serde_json::to_string_pretty(&ctx).expect("serialises");
    assert_eq!(serde_json::from_str::<ChatContext>(&pretty).ok(), Some(ctx));
    // A context is an object with its items.
    assert_eq!(value["items"].as_array().map(Vec::len), Some(10));
}

#[test]
fn json_defaults_for_optional_fields() {
    let item: ChatItem = serde_json::from_value(json!({
        "type": "message",
        "id": "m",
        "role": "user",
        "content": ["hi", {"url": "https://example.invalid/x.png"}, {}],
        "created_at": 5
    }))
    .expect("a minimal message");
    assert_eq!(
        item,
        ChatItem::from(ChatMessage {
            id: "m".into(),
            role: Role::User,
            content: vec![
                ChatContent::Text("hi".into()),
                ChatContent::Image(ImageContent {
                    url: "https://example.invalid/x.png".into(),
                    mime_type: None,
                }),
                ChatContent::Audio(AudioContent {
                    transcript: None,
                    duration_s: None,
                }),
            ],
            interrupted: false,
            extra: Map::new(),
            created_at: Timestamp::from_nanos(5),
        })
    );
    let output: ChatItem = serde_json::from_value(json!({
        "type": "function_call_output",
        "id": "o",
        "call_id": "k",
        "name": "t",
        "output": "",
        "created_at": 6
    }))
    .expect("an output without is_error");
    assert!(matches!(&output, ChatItem::FunctionCallOutput(o) if !o.is_error));
    let handoff: ChatItem = serde_json::from_value(json!({
        "type": "agent_handoff", "id": "h", "new_agent_id": "b", "created_at": 7
    }))
    .expect("a first handoff");
    assert!(matches!(&handoff, ChatItem::AgentHandoff(h) if h.old_agent_id.is_none()));
}

#[test]
fn json_wire_format_snapshot() {
    // One item of each type, fixed ids and timestamps.
    let ctx = every_item_type();
    // Fields left at their defaults are omitted (m2, c2, cfg2), except `is_error` and a first
    // handoff's `old_agent_id: null`.
    let items: Vec<&ChatItem> = [
        "h1", "m1", "m2", "c1", "c2", "o1", "o2", "h2", "cfg1", "cfg2",
    ]
    .into_iter()
    .filter_map(|id| ctx.get(id))
    .collect();
    assert_eq!(items.len(), 10);
    insta::assert_json_snapshot!("chat_item_wire_format", items);
}

// ----- messages and items -----

#[test]
fn message_text_joins_text_and_transcripts() {
    let mut m = user("m", "", 0);
    m.content = vec![
        ChatContent::Text("first".into()),
        ChatContent::Image(ImageContent {
            url: "u".into(),
            mime_type: None,
        }),
        ChatContent::Audio(AudioContent {
            transcript: Some("spoken".into()),
            duration_s: None,
        }),
        ChatContent::Audio(AudioContent {
            transcript: None,
            duration_s: Some(1.0),
        }),
        ChatContent::Text("last".into()),
    ];
    assert_eq!(m.text(), "first\nspoken\nlast");
    m.content.clear();
    assert_eq!(m.text(), "");
    m.content = vec![ChatContent::Image(ImageContent {
        url: "u".into(),
        mime_type: None,
    })];
    assert_eq!(m.text(), "");
    assert_eq!(ChatMessage::new(Role::User, "plain").text(), "plain");
}

#[test]
fn message_is_empty_rules() {
    let with = |content: Vec<ChatContent>| {
        let mut m = user("m", "", 0);
        m.content = content;
        m
    };
    let text = |t: &str| ChatContent::Text(t.into());
    let audio = |t: Option<&str>| {
        ChatContent::Audio(AudioContent {
            transcript: t.map(str::to_owned),
            duration_s: Some(2.0),
        })
    };
    let image = ChatContent::Image(ImageContent {
        url: "u".into(),
        mime_type: None,
    });
    assert!(with(vec![]).is_empty());
    assert!(with(vec![text("")]).is_empty());
    assert!(with(vec![text(""), text("")]).is_empty());
    assert!(with(vec![audio(None)]).is_empty());
    assert!(with(vec![audio(Some(""))]).is_empty());
    assert!(!with(vec![text(" ")]).is_empty());
    assert!(!with(vec![text(""), text("x")]).is_empty());
    assert!(!with(vec![audio(Some("hi"))]).is_empty());
    assert!(!with(vec![image]).is_empty());
}

#[test]
fn is_summary_needs_a_true_flag() {
    let mut m = assistant("m", "x", 0);
    assert!(!m.is_summary());
    m.extra.insert("is_summary".into(), json!("true"));
    assert!(!m.is_summary());
    m.extra.insert("is_summary".into(), json!(true));
    assert!(m.is_summary());
}

#[test]
fn item_accessors_and_roles() {
    let items: Vec<ChatItem> = vec![
        user("m", "x", 1).into(),
        call("c", "k", "t", 2).into(),
        output("o", "k", "t", "x", 3).into(),
        handoff("h", 4).into(),
        config("g", 5).into(),
    ];
    let kinds: Vec<ItemKind> = items.iter().map(ChatItem::kind).collect();
    assert_eq!(
        kinds,
        [
            ItemKind::Message,
            ItemKind::FunctionCall,
            ItemKind::FunctionCallOutput,
            ItemKind::AgentHandoff,
            ItemKind::AgentConfigUpdate,
        ]
    );
    let stamps: Vec<Timestamp> = items.iter().map(ChatItem::created_at).collect();
    assert_eq!(stamps, [at(1), at(2), at(3), at(4), at(5)]);
    assert_eq!(items.iter().filter_map(ChatItem::as_message).count(), 1);

    assert_eq!(
        [Role::System, Role::Developer, Role::User, Role::Assistant].map(Role::as_str),
        ["system", "developer", "user", "assistant"]
    );
    assert_eq!(
        [Role::System, Role::Developer, Role::User, Role::Assistant].map(Role::is_instructions),
        [true, true, false, false]
    );
    assert_eq!(
        serde_json::to_value(Role::Developer).ok(),
        Some(json!("developer"))
    );
}

#[test]
fn new_ids_are_prefixed_and_unique() {
    let ids: Vec<String> = (0..1000).map(|_| new_id("item")).collect();
    assert!(ids.iter().all(|id| id.starts_with("item_")));
    let unique: std::collections::HashSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len());
    assert!(FunctionCall::new("k", "t", "{}").id.starts_with("call_"));
    assert!(
        FunctionCallOutput::new("k", "t", "", false)
            .id
            .starts_with("out_")
    );
    assert!(AgentHandoff::new(None, "a").id.starts_with("handoff_"));
    assert!(AgentConfigUpdate::new(None).id.starts_with("config_"));
}
