//! [`NeedleLlm`]: Needle as a tool-routing [`Llm`].

use std::path::Path;
use std::sync::Arc;

use futures::{StreamExt, stream};
use switchboard::chat::new_id;
use switchboard::llm::{
    ChatChunk, ChatRequest, FinishReason, Llm, LlmError, LlmStream, ToolCallDelta, ToolChoice,
    Usage,
};

use crate::engine::Completion;
use crate::output::{NeedleCall, NeedleOutput, parse_output};
use crate::request::{DateFact, NeedleInput, TextMode, prepare_input};
use crate::{Needle, NeedleError, NeedlePaths};

/// The provider name [`NeedleLlm`] reports.
pub(crate) const PROVIDER: &str = "needle";
/// The model name [`NeedleLlm`] reports.
pub(crate) const MODEL: &str = "needle3";

/// How [`NeedleLlm`] maps requests and answers.
#[derive(Debug, Clone, PartialEq)]
pub struct NeedleOptions {
    /// What Needle reads as the query (default [`TextMode::LatestUser`]).
    pub text_mode: TextMode,
    /// The date fact given as a system fact (default [`DateFact::Today`]).
    pub date: DateFact,
    /// More system facts, `key: value; key: value` (e.g. `"caller: returning patient"`).
    /// Keep them short: they share the model's context with the tools.
    pub facts: Option<String>,
    /// Calls are dropped when the engine's confidence is below this (default `None`: keep
    /// what the engine made; it already withholds the calls it is least sure of). Not applied
    /// when the request requires a tool call.
    pub min_confidence: Option<f32>,
    /// Drop the calls whose arguments the engine flags as not grounded in the query (default
    /// false: a converted "3pm" → "15:00" is flagged too).
    pub drop_ungrounded: bool,
    /// The text answered when no tool is called (default empty).
    pub fallback_text: String,
    /// The token budget of one answer (default 256).
    pub max_new_tokens: u32,
    /// Check the files against the pinned SHA-256 sums when loading (default true).
    pub verify_checksums: bool,
}

impl Default for NeedleOptions {
    fn default() -> Self {
        NeedleOptions {
            text_mode: TextMode::default(),
            date: DateFact::default(),
            facts: None,
            min_confidence: None,
            drop_ungrounded: false,
            fallback_text: String::new(),
            max_new_tokens: 256,
            verify_checksums: true,
        }
    }
}

/// The result of routing one request (see [`NeedleLlm::route`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Routing {
    /// The calls to make (after the confidence and grounding rules).
    pub calls: Vec<NeedleCall>,
    /// The inputs given to Needle, when it was asked.
    pub input: Option<NeedleInput>,
    /// The parsed answer, when Needle was asked.
    pub output: Option<NeedleOutput>,
    /// The raw answer and its timings, when Needle was asked.
    pub completion: Option<Completion>,
}

/// Needle 3 as an [`Llm`] that only routes: it answers with tool calls, never with prose.
///
/// For a request it takes the latest user message (see [`TextMode`]) and the offered tools, asks Needle, and streams the calls it makes as
/// [`ChatChunk::ToolCall`]s (ids generated, arguments as whole JSON objects), then
/// [`Usage`] and [`FinishReason::ToolCalls`]. When Needle calls nothing, or there is nothing to
/// route (`ToolChoice::None`, no tools, the conversation ends with a tool output or an
/// instruction), it answers [`NeedleOptions::fallback_text`] (empty by default) with
/// [`FinishReason::Stop`]. Pair it with a chat model through [`RouterLlm`](crate::RouterLlm)
/// for spoken replies.
///
/// `ToolChoice::Required` and `Named` fall back on the calls the engine withheld; when it has
/// none either the request fails ([`LlmError::Other`], not retryable). A malformed answer is
/// an [`LlmError::Protocol`]. Inference runs on tokio's blocking pool.
///
/// ```no_run
/// use std::sync::Arc;
/// use switchboard::chat::{ChatContext, Role};
/// use switchboard::llm::{ChatRequest, Llm, ToolDefinition, collect};
/// use switchboard_needle::NeedleLlm;
///
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let needle = NeedleLlm::from_env()?;
/// let mut ctx = ChatContext::new();
/// ctx.add_message(Role::User, "When are you open on Saturday?");
/// let tool = ToolDefinition {
///     name: "get_hours".into(),
///     description: "Return the clinic's opening hours for each day of the week.".into(),
///     parameters: serde_json::json!({"type": "object", "properties": {}}),
///     strict_parameters: None,
/// };
/// let answer = collect(needle.chat(ChatRequest::new(ctx).with_tools([tool]))).await?;
/// assert_eq!(answer.tool_calls[0].name, "get_hours");
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct NeedleLlm {
    needle: Arc<Needle>,
    options: Arc<NeedleOptions>,
}

impl std::fmt::Debug for NeedleLlm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NeedleLlm")
            .field("needle", &self.needle)
            .field("options", &self.options)
            .finish()
    }
}

impl NeedleLlm {
    /// Loads `libneedle3.so` and `needle3.cact` from `dir` (once per process; see
    /// [`Needle::load`]) with the default options.
    pub fn load(dir: impl AsRef<Path>) -> Result<Arc<NeedleLlm>, NeedleError> {
        let options = NeedleOptions::default();
        let needle = Needle::load(&NeedlePaths::in_dir(dir), options.verify_checksums)?;
        Ok(Arc::new(NeedleLlm::new(needle, options)))
    }

    /// Loads from the paths of [`NeedlePaths::from_env`]: `SWITCHBOARD_NEEDLE_DIR` (or one
    /// variable per file), else the setup cache.
    pub fn from_env() -> Result<Arc<NeedleLlm>, NeedleError> {
        let options = NeedleOptions::default();
        let needle = Needle::load(&NeedlePaths::from_env()?, options.verify_checksums)?;
        Ok(Arc::new(NeedleLlm::new(needle, options)))
    }

    /// A router on a loaded engine.
    pub fn new(needle: Arc<Needle>, options: NeedleOptions) -> Self {
        NeedleLlm {
            needle,
            options: Arc::new(options),
        }
    }

    /// The same engine with other options (engines are shared; this is cheap).
    pub fn with_options(&self, options: NeedleOptions) -> NeedleLlm {
        NeedleLlm::new(self.needle.clone(), options)
    }

    /// The options.
    pub fn options(&self) -> &NeedleOptions {
        &self.options
    }

    /// The engine.
    pub fn needle(&self) -> &Arc<Needle> {
        &self.needle
    }

    /// Routes one request: the calls to make, with what Needle was given and answered (for
    /// logs and evaluations). [`Llm::chat`] streams the same calls.
    pub async fn route(&self, request: &ChatRequest) -> Result<Routing, LlmError> {
        let Some(input) = prepare_input(request, &self.options)? else {
            return Ok(Routing::default());
        };
        let completion = self
            .needle
            .complete_async(
                input.system.clone(),
                input.tools_json.clone(),
                input.text.clone(),
                self.options.max_new_tokens,
            )
            .await
            .map_err(to_llm_error)?;
        let names: Vec<&str> = input.tool_names.iter().map(String::as_str).collect();
        let output = parse_output(&completion.raw, &names).map_err(to_llm_error)?;
        if !output.unknown.is_empty() {
            tracing::warn!(unknown = ?output.unknown, "Needle called tools that were not offered; dropped");
        }
        let calls = select_calls(&output, request, &self.options)?;
        tracing::debug!(
            text = %input.text,
            calls = ?calls,
            confidence = ?output.confidence,
            reasoning = %output.reasoning,
            elapsed = ?completion.elapsed,
            "Needle routed"
        );
        Ok(Routing {
            calls,
            input: Some(input),
            output: Some(output),
            completion: Some(completion),
        })
    }
}

/// Which of Needle's calls to make, by the request's tool choice and the options.
pub(crate) fn select_calls(
    output: &NeedleOutput,
    request: &ChatRequest,
    options: &NeedleOptions,
) -> Result<Vec<NeedleCall>, LlmError> {
    let required = matches!(
        request.tool_choice,
        ToolChoice::Required | ToolChoice::Named(_)
    );
    let grounded = |call: &NeedleCall| {
        !options.drop_ungrounded
            || !output
                .ungrounded
                .iter()
                .any(|u| u == &call.name || u.starts_with(&format!("{}.", call.name)))
    };
    let confident = match (options.min_confidence, output.confidence) {
        (Some(min), Some(confidence)) => confidence >= min,
        _ => true,
    };
    let mut calls: Vec<NeedleCall> = if confident || required {
        output
            .calls
            .iter()
            .filter(|c| grounded(c))
            .cloned()
            .collect()
    } else {
        Vec::new()
    };
    if calls.is_empty() && required {
        calls = output
            .calls
            .iter()
            .chain(&output.suppressed)
            .take(1)
            .cloned()
            .collect();
        if calls.is_empty() {
            return Err(LlmError::Other {
                provider: PROVIDER.into(),
                message: format!(
                    "the request requires a tool call, and Needle found none to make ({})",
                    output.reasoning
                ),
                retryable: false,
            });
        }
    }
    if request.parallel_tool_calls == Some(false) {
        calls.truncate(1);
    }
    Ok(calls)
}

/// The chunks of a routing result.
pub(crate) fn chunks(routing: &Routing, fallback_text: &str) -> Vec<Result<ChatChunk, LlmError>> {
    let mut chunks = Vec::new();
    for (index, call) in routing.calls.iter().enumerate() {
        chunks.push(Ok(ChatChunk::ToolCall(ToolCallDelta {
            index,
            id: Some(new_id("call")),
            name: Some(call.name.clone()),
            arguments: call.arguments.to_string(),
        })));
    }
    if routing.calls.is_empty() && !fallback_text.is_empty() {
        chunks.push(Ok(ChatChunk::Text(fallback_text.to_owned())));
    }
    if let Some(completion) = &routing.completion {
        chunks.push(Ok(ChatChunk::Usage(Usage {
            prompt_tokens: u64::from(completion.prefix_tokens),
            cached_tokens: if completion.reinitialized {
                0
            } else {
                u64::from(completion.prefix_tokens)
            },
            completion_tokens: u64::from(completion.generated_tokens),
        })));
    }
    chunks.push(Ok(ChatChunk::Finish(if routing.calls.is_empty() {
        FinishReason::Stop
    } else {
        FinishReason::ToolCalls
    })));
    chunks
}

/// Maps an engine error to the core's error type.
pub(crate) fn to_llm_error(error: NeedleError) -> LlmError {
    let message = error.to_string();
    match error {
        NeedleError::MalformedOutput { .. } => LlmError::Protocol {
            provider: PROVIDER.into(),
            message,
        },
        NeedleError::Init(ref detail) if detail.contains("context budget") => {
            LlmError::ContextTooLong {
                provider: PROVIDER.into(),
                message,
            }
        }
        NeedleError::Init(_) | NeedleError::Nul { .. } => LlmError::InvalidRequest {
            provider: PROVIDER.into(),
            message,
        },
        _ => LlmError::Other {
            provider: PROVIDER.into(),
            message,
            retryable: false,
        },
    }
}

impl Llm for NeedleLlm {
    fn provider(&self) -> &str {
        PROVIDER
    }

    fn model(&self) -> &str {
        MODEL
    }

    fn chat(&self, request: ChatRequest) -> LlmStream {
        let this = self.clone();
        stream::once(async move {
            match this.route(&request).await {
                Ok(routing) => stream::iter(chunks(&routing, &this.options.fallback_text)),
                Err(error) => stream::iter(vec![Err(error)]),
            }
        })
        .flatten()
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use switchboard::chat::{ChatContext, Role};

    use super::*;

    fn call(name: &str) -> NeedleCall {
        NeedleCall {
            name: name.into(),
            arguments: json!({}),
        }
    }

    fn request(choice: ToolChoice) -> ChatRequest {
        let mut ctx = ChatContext::new();
        ctx.add_message(Role::User, "hi");
        ChatRequest::new(ctx).with_tool_choice(choice)
    }

    #[test]
    fn a_confidence_below_the_threshold_drops_the_calls() {
        let output = NeedleOutput {
            calls: vec![call("get_hours")],
            confidence: Some(0.4),
            ..Default::default()
        };
        let strict = NeedleOptions {
            min_confidence: Some(0.5),
            ..Default::default()
        };
        let lenient = NeedleOptions {
            min_confidence: Some(0.3),
            ..Default::default()
        };
        let auto = request(ToolChoice::Auto);
        assert!(select_calls(&output, &auto, &strict).unwrap().is_empty());
        assert_eq!(select_calls(&output, &auto, &lenient).unwrap().len(), 1);
        // No threshold: keep what the engine made.
        let default = NeedleOptions::default();
        assert_eq!(select_calls(&output, &auto, &default).unwrap().len(), 1);
        // A required call ignores the threshold.
        let required = request(ToolChoice::Required);
        assert_eq!(
            select_calls(&output, &required, &strict).unwrap(),
            vec![call("get_hours")]
        );
    }

    #[test]
    fn required_falls_back_on_suppressed_calls_then_fails() {
        let output = NeedleOutput {
            suppressed: vec![call("book")],
            reasoning: "unsure".into(),
            ..Default::default()
        };
        let options = NeedleOptions::default();
        assert!(
            select_calls(&output, &request(ToolChoice::Auto), &options)
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            select_calls(&output, &request(ToolChoice::Required), &options).unwrap(),
            vec![call("book")]
        );
        let error = select_calls(
            &NeedleOutput::default(),
            &request(ToolChoice::Named("book".into())),
            &options,
        )
        .unwrap_err();
        assert!(!error.is_retryable());
        assert!(
            error.to_string().contains("requires a tool call"),
            "{error}"
        );
    }

    #[test]
    fn ungrounded_calls_are_dropped_only_when_asked() {
        let output = NeedleOutput {
            calls: vec![call("book"), call("get_hours")],
            ungrounded: vec!["book.time".into()],
            ..Default::default()
        };
        let auto = request(ToolChoice::Auto);
        assert_eq!(
            select_calls(&output, &auto, &NeedleOptions::default())
                .unwrap()
                .len(),
            2
        );
        let drop = NeedleOptions {
            drop_ungrounded: true,
            ..Default::default()
        };
        assert_eq!(
            select_calls(&output, &auto, &drop).unwrap(),
            vec![call("get_hours")]
        );
    }

    #[test]
    fn no_parallel_calls_keeps_the_first() {
        let output = NeedleOutput {
            calls: vec![call("a"), call("b")],
            ..Default::default()
        };
        let mut req = request(ToolChoice::Auto);
        req.parallel_tool_calls = Some(false);
        assert_eq!(
            select_calls(&output, &req, &NeedleOptions::default()).unwrap(),
            vec![call("a")]
        );
    }

    #[test]
    fn chunks_carry_calls_usage_and_the_finish_reason() {
        let routing = Routing {
            calls: vec![NeedleCall {
                name: "book".into(),
                arguments: json!({"day": "Tuesday"}),
            }],
            completion: Some(Completion {
                raw: String::new(),
                generated_tokens: 30,
                prefix_tokens: 100,
                reinitialized: false,
                elapsed: std::time::Duration::ZERO,
            }),
            ..Default::default()
        };
        let chunks: Vec<ChatChunk> = chunks(&routing, "fallback")
            .into_iter()
            .map(Result::unwrap)
            .collect();
        let ChatChunk::ToolCall(delta) = &chunks[0] else {
            panic!("a tool call first: {chunks:?}");
        };
        assert_eq!(delta.name.as_deref(), Some("book"));
        assert_eq!(delta.arguments, r#"{"day":"Tuesday"}"#);
        assert!(
            delta
                .id
                .as_deref()
                .is_some_and(|id| id.starts_with("call_"))
        );
        assert_eq!(
            chunks[1],
            ChatChunk::Usage(Usage {
                prompt_tokens: 100,
                cached_tokens: 100,
                completion_tokens: 30
            })
        );
        assert_eq!(chunks[2], ChatChunk::Finish(FinishReason::ToolCalls));

        let none: Vec<ChatChunk> = chunks_of_nothing("fallback");
        assert_eq!(
            none,
            vec![
                ChatChunk::Text("fallback".into()),
                ChatChunk::Finish(FinishReason::Stop)
            ]
        );
        assert_eq!(
            chunks_of_nothing(""),
            vec![ChatChunk::Finish(FinishReason::Stop)]
        );
    }

    fn chunks_of_nothing(fallback: &str) -> Vec<ChatChunk> {
        chunks(&Routing::default(), fallback)
            .into_iter()
            .map(Result::unwrap)
            .collect()
    }

    #[test]
    fn engine_errors_map_to_llm_errors() {
        let malformed = to_llm_error(NeedleError::MalformedOutput {
            message: "not JSON".into(),
            raw: "{".into(),
        });
        assert!(
            matches!(malformed, LlmError::Protocol { .. }),
            "{malformed:?}"
        );
        let budget = to_llm_error(NeedleError::Init(
            "needle_init context budget exceeded: static prefix is 9000 tokens".into(),
        ));
        assert!(
            matches!(budget, LlmError::ContextTooLong { .. }),
            "{budget:?}"
        );
        let engine = to_llm_error(NeedleError::Engine("tool call truncated".into()));
        assert!(!engine.is_retryable());
        assert_eq!(engine.provider(), "needle");
    }
}
