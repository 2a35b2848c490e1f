//! The tasks that do the session's work outside its actor: one per speech (model stream,
//! playout, tool calls, follow-up steps), one per hook, one per agent switch. Each reports
//! back to the actor with short commands and never holds session state across an `.await`.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::StreamExt;
use futures::future::{BoxFuture, join_all};
use tokio::time::Instant;

use super::agent::{AgentRef, HandoffContext};
use super::context::{AgentContext, CALL_SCOPE, CURRENT_ACTIVITY, CallScope, RunContext};
use super::events::{
    AgentState, ErrorSource, EventKind, LlmMetrics, ToolCallStatus, ToolsExecuted,
};
use super::run::RunToken;
use super::runtime::{ActivityId, ActivityStatus, ReplyPlan, SpeechKind, State};
use super::speech::{CURRENT_TOOL_SPEECH, SpeechError, SpeechHandle};
use super::voice::{Playout, PlayoutResult, Preemptive, TurnMetrics, VoiceIo, fingerprint};
use super::{AgentSession, Handoff};
use crate::chat::{
    ChatContext, ChatItem, ChatMessage, CopyOptions, FunctionCall, FunctionCallOutput, Role,
    SummarizeOptions, new_id,
};
use crate::clock::Timestamp;
use crate::llm::{ChatChunk, ChatRequest, Llm, ToolCallAssembler, ToolChoice, Usage};
use crate::tools::{
    FunctionTool, INTERNAL_ERROR_OUTPUT, ToolOutcome, output_text, parse_arguments,
};

/// What the actor hands a speech for one LLM step.
pub(crate) struct StepPlan<U: Send + 'static> {
    voice: Arc<VoiceIo>,
    llm: Arc<dyn Llm>,
    agent: AgentRef<U>,
    activity: ActivityId,
    request: ChatRequest,
    /// The request's tool choice (the request itself goes to the model).
    tool_choice: ToolChoice,
    tools: Vec<FunctionTool<U>>,
}

/// What the speech task passes to the actor to prepare a step.
struct StepInput {
    user_message: Option<ChatMessage>,
    instructions: Option<ChatMessage>,
    tool_choice: ToolChoice,
    allowed_tools: Option<Vec<String>>,
    in_on_enter: bool,
    turn_ctx: Option<ChatContext>,
}

/// One finished tool call, ready to be committed.
pub(crate) struct ToolResult<U: Send + 'static> {
    status: ToolCallStatus,
    call: FunctionCall,
    output: FunctionCallOutput,
    reply_required: bool,
    handoff: Option<Handoff<U>>,
}

/// Waits until the scheduler authorises step `step`; false if the speech was interrupted or
/// finished first.
async fn wait_authorized(handle: &SpeechHandle, step: u32) -> bool {
    let mut rx = handle.inner.state.subscribe();
    match rx
        .wait_for(|s| s.authorized >= step || s.interrupted || s.done)
        .await
    {
        Ok(s) => s.authorized >= step && !s.done,
        Err(_) => false,
    }
}

pub(crate) async fn run_speech<U: Send + 'static>(
    session: AgentSession<U>,
    handle: SpeechHandle,
    kind: SpeechKind,
) {
    let error = match kind {
        SpeechKind::Say {
            text,
            add_to_chat_ctx,
        } => say(&session, &handle, text, add_to_chat_ctx).await,
        SpeechKind::Reply(plan) => reply(&session, &handle, *plan).await,
    };
    let id = handle.id().to_owned();
    let finished = error.clone();
    if session
        .post(move |st| st.speech_finished(&id, finished))
        .is_err()
    {
        handle.finish(Some(error.unwrap_or(SpeechError::SessionClosed)));
    }
}

async fn say<U: Send + 'static>(
    session: &AgentSession<U>,
    handle: &SpeechHandle,
    text: String,
    add_to_chat_ctx: bool,
) -> Option<SpeechError> {
    if !wait_authorized(handle, 1).await {
        return None;
    }
    let id = handle.id().to_owned();
    let voice = session.exec(|st| st.voice.clone()).await.ok();
    let (text, interrupted, spoken) = match voice.filter(|v| v.speaks()) {
        Some(voice) if !text.is_empty() => {
            let playout = Playout::start(session.clone(), voice, handle.clone());
            playout.push(&text);
            let played = playout.finish().await;
            let text = if played.interrupted {
                played.played_text
            } else {
                text
            };
            (text, played.interrupted, true)
        }
        // Text mode: the text is delivered at once, so playout ends now.
        _ => (text, false, false),
    };
    let result = session.post(move |st| {
        if !text.is_empty() {
            if !spoken {
                st.agent_started_speaking();
            }
            if add_to_chat_ctx {
                let mut message = ChatMessage::new(Role::Assistant, text);
                message.interrupted = interrupted;
                st.commit_item(&id, ChatItem::Message(std::sync::Arc::new(message)), true);
            }
        }
        st.generation_done(&id);
    });
    result.err().map(|_| SpeechError::SessionClosed)
}

async fn reply<U: Send + 'static>(
    session: &AgentSession<U>,
    handle: &SpeechHandle,
    plan: ReplyPlan,
) -> Option<SpeechError> {
    let speech_id = handle.id().to_owned();
    let instructions = plan
        .instructions
        .map(|text| ChatMessage::new(Role::System, text));
    let mut user_message = plan.user_message;
    let mut turn_ctx = plan.turn_ctx;
    let first_choice = plan.tool_choice.unwrap_or(if plan.in_tool {
        ToolChoice::None
    } else {
        ToolChoice::Auto
    });
    let mut tool_choice = first_choice.clone();
    let mut preemptive = plan.preemptive;
    let timing = plan.timing;
    let mut step = 1;
    loop {
        if !wait_authorized(handle, step).await {
            return None;
        }
        let input = StepInput {
            user_message: user_message.take(),
            instructions: instructions.clone(),
            tool_choice: tool_choice.clone(),
            allowed_tools: plan.allowed_tools.clone(),
            in_on_enter: plan.in_on_enter,
            turn_ctx: turn_ctx.take(),
        };
        let id = speech_id.clone();
        let prepared = session.exec(move |st| st.prepare_step(&id, input)).await;
        let mut step_plan = match prepared {
            Ok(Ok(p)) => p,
            Ok(Err(error)) => {
                let id = speech_id.clone();
                let _ = session.post(move |st| st.generation_done(&id));
                return Some(error);
            }
            Err(_) => return Some(SpeechError::SessionClosed),
        };
        let authorized_at = Timestamp::now();
        // A preemptive generation is kept only if it asked exactly what this step asks.
        let mut reused = preemptive
            .take()
            .filter(|p| p.fingerprint == fingerprint(&step_plan.request));
        let (mut generation, playout) =
            generate(session, handle, &mut step_plan, reused.as_mut()).await;
        let preemptive_started = reused.take().map(|p| p.started);
        let calls = std::mem::take(&mut generation.calls);
        if !calls.is_empty() && step_plan.tool_choice == ToolChoice::None {
            tracing::warn!(speech = %speech_id, "the model called tools although tool choice was none; ignored");
        }
        let calls = if step_plan.tool_choice == ToolChoice::None {
            Vec::new()
        } else {
            calls
        };
        let generation_id = new_id("gen");

        // The step's tools run while its text plays (reference §3.5: dispatched once the
        // speech is authorised, concurrently with the playout). The step's text is committed
        // and its generation marked done when the playout ends, whether the tools are done
        // or not; an interruption during the playout lets the tools finish, and their results
        // are committed without a reply (§3.7, in `commit_tools`).
        let tools_done = AtomicBool::new(calls.is_empty());
        let playout_then_commit = async {
            if let Some(playout) = playout {
                generation.played(playout.finish().await);
            }
            // A turn whose first step only calls tools is measured to the agent's next first
            // audio, whichever speech plays it (see `State::turn_metrics`).
            if step == 1
                && let Some(timing) = timing
            {
                let metrics = turn_metrics(handle.id(), &timing, &generation, preemptive_started);
                let end_of_speech = timing.end_of_speech;
                let _ = session.post(move |st| st.turn_metrics(metrics, end_of_speech));
            }
            // In text mode the text reached the user as it streamed, so playout ends here.
            let text = step_plan
                .agent
                .agent
                .transcription_node(std::mem::take(&mut generation.text));
            let interrupted = generation.interrupted;
            let id = speech_id.clone();
            let message_id = generation_id.clone();
            let tools_running = !tools_done.load(Ordering::Acquire);
            let _ = session.post(move |st| {
                if !text.is_empty() {
                    let mut message = ChatMessage::new(Role::Assistant, text);
                    message.id = message_id;
                    message.created_at = authorized_at;
                    message.interrupted = interrupted;
                    st.commit_item(&id, ChatItem::Message(std::sync::Arc::new(message)), true);
                }
                st.generation_done(&id);
                if tools_running {
                    st.set_agent_state(AgentState::Thinking);
                }
            });
        };
        let tools = async {
            if calls.is_empty() {
                return Vec::new();
            }
            let results =
                execute_tools(session, handle, &step_plan, calls, &generation_id, step).await;
            tools_done.store(true, Ordering::Release);
            results
        };
        let ((), results) = tokio::join!(playout_then_commit, tools);
        if let Some(error) = generation.error {
            let message = error.to_string();
            let _ = session.post(move |st| st.llm_failed(message));
            return Some(SpeechError::Llm(error));
        }
        if results.is_empty() {
            return None;
        }
        let id = speech_id.clone();
        let step_choice = step_plan.tool_choice.clone();
        let first = first_choice.clone();
        match session
            .exec(move |st| st.commit_tools(&id, results, &step_choice, &first))
            .await
        {
            Ok(Some(next_choice)) => {
                tool_choice = next_choice;
                step += 1;
            }
            _ => return None,
        }
    }
}

struct Generation {
    text: String,
    calls: Vec<crate::llm::AssembledToolCall>,
    interrupted: bool,
    error: Option<crate::llm::LlmError>,
    /// When the first chunk arrived.
    first_chunk: Option<Instant>,
    /// When the first text reached the user: first audio played, or first text delivered.
    first_output: Option<Instant>,
    tts_ttfb: Option<std::time::Duration>,
    /// Request to first chunk.
    ttft: std::time::Duration,
}

fn turn_metrics(
    speech_id: &str,
    timing: &super::voice::TurnTiming,
    generation: &Generation,
    preemptive_started: Option<Instant>,
) -> TurnMetrics {
    let since = |from: Option<Instant>, to: Option<Instant>| match (from, to) {
        (Some(from), Some(to)) => Some(to.saturating_duration_since(from)),
        _ => None,
    };
    // With a preemptive generation the user waits from the commit, not from the request.
    let request_at = match preemptive_started {
        Some(started) => timing.committed.map(|c| c.max(started)),
        None => None,
    };
    TurnMetrics {
        speech_id: speech_id.to_owned(),
        end_of_utterance_delay: since(timing.end_of_speech, timing.committed),
        transcription_delay: since(timing.end_of_speech, timing.transcribed),
        llm_ttft: match request_at {
            Some(at) => since(Some(at), generation.first_chunk),
            None => generation.first_chunk.map(|_| generation.ttft),
        },
        tts_ttfb: generation.tts_ttfb,
        end_to_end: since(timing.end_of_speech, generation.first_output),
        preemptive: preemptive_started.is_some(),
    }
}

/// Streams one model answer, stopping early when the speech is interrupted. In a voice
/// session the text is spoken as it streams, and the playout is returned still running: the
/// step's tools start while it plays (see [`Generation::played`]).
async fn generate<U: Send + 'static>(
    session: &AgentSession<U>,
    handle: &SpeechHandle,
    plan: &mut StepPlan<U>,
    preemptive: Option<&mut Preemptive>,
) -> (Generation, Option<Playout>) {
    let started = Instant::now();
    let model = format!("{}/{}", plan.llm.provider(), plan.llm.model());
    let request = std::mem::replace(&mut plan.request, ChatRequest::new(ChatContext::new()));
    let mut stream = match preemptive.and_then(|p| p.stream.take()) {
        Some(stream) => stream,
        None => plan.agent.agent.llm_node(plan.llm.clone(), request),
    };
    let playout = plan
        .voice
        .speaks()
        .then(|| Playout::start(session.clone(), plan.voice.clone(), handle.clone()));
    let mut interrupt_rx = handle.inner.state.subscribe();
    let mut generation = Generation {
        text: String::new(),
        calls: Vec::new(),
        interrupted: false,
        error: None,
        first_chunk: None,
        first_output: None,
        tts_ttfb: None,
        ttft: std::time::Duration::ZERO,
    };
    let mut calls = ToolCallAssembler::default();
    let mut usage: Option<Usage> = None;
    loop {
        let chunk = tokio::select! {
            biased;
            _ = interrupt_rx.wait_for(|s| s.interrupted) => {
                generation.interrupted = true;
                break;
            }
            chunk = stream.next() => chunk,
        };
        let Some(chunk) = chunk else { break };
        if generation.first_chunk.is_none() {
            generation.first_chunk = Some(Instant::now());
            generation.ttft = started.elapsed();
        }
        match chunk {
            Ok(ChatChunk::Text(delta)) => {
                if let Some(playout) = &playout {
                    playout.push(&delta);
                } else if generation.text.is_empty() && !delta.is_empty() {
                    generation.first_output = Some(Instant::now());
                    let _ = session.post(|st| st.agent_started_speaking());
                }
                generation.text.push_str(&delta);
            }
            Ok(ChatChunk::ToolCall(delta)) => calls.push(delta),
            Ok(ChatChunk::Usage(u)) => usage = Some(u),
            Ok(_) => {}
            Err(error) => {
                generation.error = Some(error);
                break;
            }
        }
    }
    drop(stream);
    let duration = started.elapsed();
    if !generation.interrupted && generation.error.is_none() {
        generation.calls = calls.finish();
    }
    let tokens_per_second = usage
        .filter(|_| !duration.is_zero())
        .map(|u| u.completion_tokens as f64 / duration.as_secs_f64());
    let metrics = LlmMetrics {
        speech_id: handle.id().to_owned(),
        model,
        ttft: if generation.first_chunk.is_some() {
            generation.ttft
        } else {
            duration
        },
        duration,
        usage,
        tokens_per_second,
    };
    let _ = session.post(move |st| st.emit(EventKind::LlmMetrics(metrics)));
    (generation, playout)
}

impl Generation {
    /// Takes in what the listener heard: an interrupted playout keeps only the words played.
    fn played(&mut self, played: PlayoutResult) {
        self.first_output = played.first_audio;
        self.tts_ttfb = played.tts_ttfb;
        if played.interrupted {
            self.interrupted = true;
            self.text = played.played_text;
        }
    }
}

/// Runs every call of a step concurrently, each in its own task; the step waits for all.
async fn execute_tools<U: Send + 'static>(
    session: &AgentSession<U>,
    handle: &SpeechHandle,
    plan: &StepPlan<U>,
    calls: Vec<crate::llm::AssembledToolCall>,
    generation_id: &str,
    step: u32,
) -> Vec<ToolResult<U>> {
    let available = || {
        plan.tools
            .iter()
            .map(FunctionTool::name)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut pending: Vec<BoxFuture<'static, ToolResult<U>>> = Vec::with_capacity(calls.len());
    for assembled in calls {
        let mut call = FunctionCall::new(assembled.call_id, assembled.name, assembled.arguments);
        call.group_id = Some(generation_id.to_owned());
        let Some(tool) = plan.tools.iter().find(|t| t.name() == call.name) else {
            let message = format!(
                "Unknown function: {} - available tools: {}",
                call.name,
                available()
            );
            pending.push(Box::pin(futures::future::ready(error_result(
                call, message,
            ))));
            continue;
        };
        let arguments = match parse_arguments(&call.arguments) {
            Ok(parsed) => {
                call.arguments = parsed.canonical;
                parsed.object
            }
            Err(e) => {
                let message = format!("Error parsing arguments for `{}`: {e}", call.name);
                pending.push(Box::pin(futures::future::ready(error_result(
                    call, message,
                ))));
                continue;
            }
        };
        let started = call.clone();
        let _ = session.post(move |st| {
            st.emit(EventKind::ToolCallStarted {
                function_call: started,
            })
        });
        let ctx = RunContext::new(
            AgentContext::new(session.clone(), plan.activity, plan.agent.agent.id()),
            handle.clone(),
            call.clone(),
            step,
        );
        let future = CURRENT_TOOL_SPEECH.scope(
            handle.id().to_owned(),
            CURRENT_ACTIVITY.scope(
                plan.activity,
                CALL_SCOPE.scope(CallScope::Tool, tool.call(ctx, arguments)),
            ),
        );
        let session = session.clone();
        pending.push(Box::pin(async move {
            let outcome = run_guarded(&session, future).await;
            let result = match outcome {
                Guarded::Done(outcome) => to_result(call, outcome),
                Guarded::Panicked => {
                    tracing::error!(tool = %call.name, "tool panicked");
                    error_result(call, INTERNAL_ERROR_OUTPUT.to_owned())
                }
                Guarded::Cancelled => {
                    let output = FunctionCallOutput::new(
                        &call.call_id,
                        &call.name,
                        "the tool was cancelled",
                        true,
                    );
                    ToolResult {
                        status: ToolCallStatus::Cancelled,
                        call,
                        output,
                        reply_required: false,
                        handoff: None,
                    }
                }
            };
            let status = result.status;
            let call_id = result.call.call_id.clone();
            let _ = session.post(move |st| st.emit(EventKind::ToolCallEnded { call_id, status }));
            result
        }));
    }
    join_all(pending).await
}

fn error_result<U: Send + 'static>(call: FunctionCall, message: String) -> ToolResult<U> {
    let output = FunctionCallOutput::new(&call.call_id, &call.name, message, true);
    ToolResult {
        status: ToolCallStatus::Error,
        call,
        output,
        reply_required: true,
        handoff: None,
    }
}

fn to_result<U: Send + 'static>(call: FunctionCall, outcome: ToolOutcome<U>) -> ToolResult<U> {
    let (text, is_error, reply_required, handoff) = match outcome {
        ToolOutcome::Value(value) => {
            let reply = !value.is_null();
            (output_text(&value), false, reply, None)
        }
        ToolOutcome::Error(error) if error.is_internal() => {
            tracing::error!(tool = %call.name, error = %error.message(), "tool failed");
            (INTERNAL_ERROR_OUTPUT.to_owned(), true, true, None)
        }
        ToolOutcome::Error(error) => (error.message().to_owned(), true, true, None),
        ToolOutcome::Stop => (String::new(), false, false, None),
        ToolOutcome::Handoff(handoff) => {
            let text = handoff.result.as_ref().map(output_text).unwrap_or_default();
            let reply = handoff.result.is_some();
            (text, false, reply, Some(handoff))
        }
    };
    let output = FunctionCallOutput::new(&call.call_id, &call.name, text, is_error);
    ToolResult {
        status: if is_error {
            ToolCallStatus::Error
        } else {
            ToolCallStatus::Done
        },
        call,
        output,
        reply_required,
        handoff,
    }
}

pub(crate) enum Guarded<T> {
    Done(T),
    Panicked,
    Cancelled,
}

/// Runs user code in its own task: a panic is caught, and closing the session cancels it.
pub(crate) async fn run_guarded<U: Send + 'static, T: Send + 'static>(
    session: &AgentSession<U>,
    future: impl std::future::Future<Output = T> + Send + 'static,
) -> Guarded<T> {
    let mut join = tokio::spawn(future);
    let mut closed = session.shared.closed.subscribe();
    tokio::select! {
        joined = &mut join => match joined {
            Ok(value) => Guarded::Done(value),
            Err(e) if e.is_panic() => Guarded::Panicked,
            Err(_) => Guarded::Cancelled,
        },
        _ = closed.wait_for(|closed| *closed) => {
            join.abort();
            Guarded::Cancelled
        }
    }
}

/// Which hook to run.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Hook {
    OnEnter,
    OnExit,
}

/// Runs an agent hook to completion (errors and panics become error events). `token` keeps
/// the run that watches the hook open until it returns.
pub(crate) async fn run_hook<U: Send + 'static>(
    session: AgentSession<U>,
    activity: ActivityId,
    agent: AgentRef<U>,
    hook: Hook,
    token: Option<RunToken>,
) {
    let agent_id = agent.agent.id();
    // The run watches the hook through a job, so a task awaited inside the hook can detach it.
    let Ok(job) = session
        .exec(move |st| st.add_job(Some(activity), token))
        .await
    else {
        return;
    };
    let ctx = AgentContext::new(session.clone(), activity, agent_id.clone());
    let scope = match hook {
        Hook::OnEnter => CallScope::OnEnter,
        Hook::OnExit => CallScope::OnExit,
    };
    let future = super::task::CURRENT_JOB.scope(
        job,
        CURRENT_ACTIVITY.scope(
            activity,
            CALL_SCOPE.scope(scope, async move {
                match hook {
                    Hook::OnEnter => agent.agent.on_enter(ctx).await,
                    Hook::OnExit => agent.agent.on_exit(ctx).await,
                }
            }),
        ),
    );
    let message = match run_guarded(&session, future).await {
        Guarded::Done(Ok(())) | Guarded::Cancelled => None,
        Guarded::Done(Err(error)) => Some(format!("{hook:?} failed: {error}")),
        Guarded::Panicked => Some(format!("{hook:?} panicked")),
    };
    let _ = session.post(move |st| {
        if let Some(message) = message {
            st.report_error(ErrorSource::Hook(agent_id), message, true);
        }
        st.remove_job(job);
    });
}

/// Hands control from the agent in control to `to`: old `on_exit`, wait for its speech, record
/// the handoff, start the new agent and its `on_enter`. Switches are serialised.
pub(crate) async fn switch_agent<U: Send + 'static>(
    session: AgentSession<U>,
    to: AgentRef<U>,
    context: HandoffContext,
    token: Option<RunToken>,
) {
    let switch_lock = session.shared.clone();
    let _one_at_a_time = switch_lock.switch_lock.lock().await;
    let Ok(from) = session
        .exec(|st| {
            let top = st.top()?;
            st.begin_drain(top);
            st.activity(top).map(|a| (top, a.agent.clone()))
        })
        .await
    else {
        return;
    };
    if let Some((old, old_agent)) = &from {
        run_hook(
            session.clone(),
            *old,
            old_agent.clone(),
            Hook::OnExit,
            token.clone(),
        )
        .await;
        let old = *old;
        let Ok(idle) = session.exec(move |st| st.when_idle(old)).await else {
            return;
        };
        let _ = idle.await;
    }
    let old = from.map(|(id, _)| id);
    let chat_ctx = handoff_context(&session, old, &to, context).await;
    let agent = to.clone();
    let run = token.clone();
    let started = session
        .exec(move |st| st.finish_handoff(old, agent, chat_ctx, run.as_ref()))
        .await;
    match started {
        Ok(Ok(activity)) => {
            tokio::spawn(run_hook(session, activity, to, Hook::OnEnter, token));
        }
        Ok(Err(error)) => {
            let message = format!("could not start agent `{}`: {error}", to.agent.id());
            let _ = session.post(move |st| st.report_error(ErrorSource::Session, message, true));
        }
        Err(_) => {}
    }
}

async fn handoff_context<U: Send + 'static>(
    session: &AgentSession<U>,
    old: Option<ActivityId>,
    to: &AgentRef<U>,
    context: HandoffContext,
) -> ChatContext {
    let old_ctx = || async {
        let Some(old) = old else {
            return ChatContext::new();
        };
        session
            .exec(move |st| {
                st.activity(old)
                    .map(|a| a.chat_ctx.clone())
                    .unwrap_or_default()
            })
            .await
            .unwrap_or_default()
    };
    match context {
        HandoffContext::Fresh => to.agent.chat_ctx(),
        HandoffContext::Custom(ctx) => ctx,
        HandoffContext::Full => old_ctx().await,
        HandoffContext::LastTurns(n) => old_ctx().await.last_user_turns(n),
        HandoffContext::Summary => {
            let mut ctx = old_ctx().await.copy(&CopyOptions {
                exclude_instructions: true,
                ..CopyOptions::default()
            });
            let llm = session.exec(|st| st.llm.clone()).await.ok().flatten();
            let summarized = match llm {
                Some(llm) => ctx
                    .summarize(llm.as_ref(), &SummarizeOptions::default())
                    .await
                    .map_err(|e| e.to_string()),
                None => Err("the session has no LLM to summarise with".to_owned()),
            };
            match summarized {
                Ok(_) => ctx,
                Err(message) => {
                    let message = format!("handoff summary failed, starting fresh: {message}");
                    let _ =
                        session.post(move |st| st.report_error(ErrorSource::Llm, message, true));
                    to.agent.chat_ctx()
                }
            }
        }
    }
}

impl<U: Send + 'static> State<U> {
    /// Builds the request of one step; the first step also commits the user message.
    fn prepare_step(
        &mut self,
        speech_id: &str,
        input: StepInput,
    ) -> Result<StepPlan<U>, SpeechError> {
        if self.closing {
            return Err(SpeechError::SessionClosed);
        }
        let activity_id = self
            .speech_activity(speech_id)
            .ok_or(SpeechError::AgentGone)?;
        if let Some(message) = input.user_message.clone() {
            let item = ChatItem::from(message);
            if let Some(activity) = self.activity_mut(activity_id) {
                activity.chat_ctx.insert(item.clone());
            }
            self.history.insert(item.clone());
            self.emit(EventKind::ConversationItemAdded { item });
        }
        self.build_step(activity_id, input)
    }

    /// The request a reply to `user_message` would send now, for a preemptive generation:
    /// built exactly like the first step of a user-turn reply.
    pub(crate) fn preview_reply(
        &self,
        user_message: &ChatMessage,
    ) -> Option<(Arc<dyn Llm>, AgentRef<U>, ChatRequest)> {
        let activity_id = self.top()?;
        let mut ctx = self.activity(activity_id)?.chat_ctx.clone();
        ctx.insert(user_message.clone());
        let input = StepInput {
            user_message: None,
            instructions: None,
            tool_choice: ToolChoice::Auto,
            allowed_tools: None,
            in_on_enter: false,
            turn_ctx: Some(ctx),
        };
        let plan = self.build_step(activity_id, input).ok()?;
        Some((plan.llm, plan.agent, plan.request))
    }

    fn build_step(
        &self,
        activity_id: ActivityId,
        input: StepInput,
    ) -> Result<StepPlan<U>, SpeechError> {
        let session_llm = self.llm.clone();
        let conn_options = self.options.conn_options;
        let activity = self.activity(activity_id).ok_or(SpeechError::AgentGone)?;
        let llm = activity
            .agent
            .agent
            .llm()
            .or(session_llm)
            .ok_or_else(|| SpeechError::NoLlm(activity.agent_id.clone()))?;
        let mut tools: Vec<FunctionTool<U>> = match &input.allowed_tools {
            Some(names) => {
                let unknown: Vec<String> = names
                    .iter()
                    .filter(|n| !activity.tools.iter().any(|t| t.name() == n.as_str()))
                    .cloned()
                    .collect();
                if !unknown.is_empty() {
                    return Err(SpeechError::UnknownTools {
                        names: unknown,
                        available: activity.tools.iter().map(|t| t.name().to_owned()).collect(),
                    });
                }
                activity
                    .tools
                    .iter()
                    .filter(|t| names.iter().any(|n| n == t.name()))
                    .cloned()
                    .collect()
            }
            None => activity.tools.clone(),
        };
        if input.in_on_enter {
            tools.retain(|t| !t.flags().ignore_on_enter);
        }
        if !self.mocks.is_empty() {
            let agent_type = activity.agent.type_id;
            for tool in &mut tools {
                if let Some(mock) = self.mocks.get(&(agent_type, tool.name().to_owned())) {
                    *tool = tool.clone().with_shared_handler(mock.clone());
                }
            }
        }
        let mut context = input.turn_ctx.unwrap_or_else(|| activity.chat_ctx.clone());
        if let Some(instructions) = input.instructions {
            context.insert(instructions);
        }
        let tool_choice = if tools.is_empty() {
            ToolChoice::None
        } else {
            input.tool_choice
        };
        let mut request = ChatRequest::new(context)
            .with_tools(tools.iter().map(FunctionTool::shared_definition))
            .with_tool_choice(tool_choice);
        request.conn_options = conn_options;
        Ok(StepPlan {
            voice: self.voice.clone(),
            llm,
            agent: activity.agent.clone(),
            activity: activity_id,
            tool_choice: request.tool_choice.clone(),
            request,
            tools,
        })
    }

    /// Commits a step's calls and outputs, applies the handoff rules and decides on a
    /// follow-up: returns the next step's tool choice when the speech should continue.
    fn commit_tools(
        &mut self,
        speech_id: &str,
        mut results: Vec<ToolResult<U>>,
        step_choice: &ToolChoice,
        first_choice: &ToolChoice,
    ) -> Option<ToolChoice> {
        let handle = self.speech_handle(speech_id)?;
        let activity_id = self.speech_activity(speech_id)?;
        let interrupted = handle.interrupted();

        // The first handoff in the model's call order wins; later ones are refused.
        let mut handoff: Option<Handoff<U>> = None;
        let mut handoff_tool = String::new();
        for result in &mut results {
            let Some(h) = result.handoff.take() else {
                continue;
            };
            if interrupted {
                result.output.output =
                    "the agent handoff was interrupted and did not happen".to_owned();
                result.output.is_error = true;
                result.reply_required = false;
            } else if handoff.is_some() {
                result.output.output = format!(
                    "only one handoff can happen per turn; `{handoff_tool}` already hands off, so this one did not happen"
                );
                result.output.is_error = true;
            } else {
                handoff_tool = result.call.name.clone();
                handoff = Some(h);
            }
        }

        let mut event = ToolsExecuted {
            function_calls: results.iter().map(|r| r.call.clone()).collect(),
            function_call_outputs: results.iter().map(|r| r.output.clone()).collect(),
            reply_requested: !interrupted && results.iter().any(|r| r.reply_required),
            handoff_to: handoff.as_ref().map(Handoff::agent_id),
            reply_cancelled: false,
            handoff_cancelled: false,
        };
        if let Some(activity) = self.activity(activity_id) {
            let agent = activity.agent.agent.clone();
            if std::panic::catch_unwind(AssertUnwindSafe(|| agent.on_tools_executed(&mut event)))
                .is_err()
            {
                self.report_error(
                    ErrorSource::Hook(activity.agent_id.clone()),
                    "on_tools_executed panicked".to_owned(),
                    true,
                );
            }
        }
        for result in &results {
            self.commit_item(
                speech_id,
                ChatItem::FunctionCall(std::sync::Arc::new(result.call.clone())),
                true,
            );
        }
        // Outputs are committed in the model's call order, whatever order the tools finished in.
        for result in &mut results {
            result.output.created_at = Timestamp::now();
            self.commit_item(
                speech_id,
                ChatItem::FunctionCallOutput(std::sync::Arc::new(result.output.clone())),
                true,
            );
        }
        let wants_handoff = event.has_agent_handoff();
        let wants_reply = event.has_tool_reply();
        self.emit(EventKind::FunctionToolsExecuted(event));

        if let (true, Some(handoff)) = (wants_handoff, handoff) {
            self.begin_drain(activity_id);
            self.current_agent_id = Some(handoff.agent_id());
            if let Some(session) = self.session() {
                let token = self.speech_run(speech_id);
                tokio::spawn(switch_agent(session, handoff.agent, handoff.context, token));
            }
        }
        if !wants_reply || interrupted {
            return None;
        }
        let max_steps = self.options.max_tool_steps;
        let mut at_cap = false;
        handle.update(|s| {
            at_cap = s.num_steps > max_steps;
            s.num_steps += 1;
        });
        let draining = self
            .activity(activity_id)
            .is_none_or(|a| a.status != ActivityStatus::Running);
        let next = if at_cap
            || draining
            || *first_choice == ToolChoice::None
            || *step_choice == ToolChoice::None
        {
            ToolChoice::None
        } else {
            ToolChoice::Auto
        };
        self.set_agent_state(AgentState::Thinking);
        self.requeue(speech_id);
        Some(next)
    }
}

impl ChatContext {
    /// A copy holding the last `n` user turns (each a user message and everything after it),
    /// without instructions. Zero turns gives an empty context.
    pub fn last_user_turns(&self, n: usize) -> ChatContext {
        if n == 0 {
            return ChatContext::new();
        }
        let users: Vec<usize> = self
            .iter()
            .enumerate()
            .filter(|(_, i)| matches!(i, ChatItem::Message(m) if m.role == Role::User))
            .map(|(index, _)| index)
            .collect();
        let start = users.len().checked_sub(n).map_or(0, |first| users[first]);
        ChatContext::from_items(
            self.items()[start..]
                .iter()
                .filter(|i| !matches!(i, ChatItem::Message(m) if m.role.is_instructions()))
                .cloned(),
        )
    }
}
