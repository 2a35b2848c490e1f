//! [`RouterLlm`]: a tool router first, a chat model for the words.

use std::sync::Arc;

use futures::{StreamExt, stream};
use switchboard::llm::{ChatChunk, ChatRequest, Llm, LlmError, LlmStream, ToolChoice};

/// Which tools the chat model sees when the router called none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ChatTools {
    /// None: the chat model only speaks (the default; right for small local chat models that
    /// cannot call tools). A request that *requires* a tool call keeps its tools.
    #[default]
    Strip,
    /// The request's tools: a capable chat model may still call one the router missed.
    Keep,
}

/// How [`RouterLlm`] combines its two models.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouterOptions {
    /// Which tools the chat model sees (default [`ChatTools::Strip`]).
    pub chat_tools: ChatTools,
    /// When the router fails, ask the chat model instead (default true; the failure is
    /// logged). When false the router's error is the answer.
    pub chat_on_router_error: bool,
}

impl Default for RouterOptions {
    fn default() -> Self {
        RouterOptions {
            chat_tools: ChatTools::Strip,
            chat_on_router_error: true,
        }
    }
}

/// Two models as one: a *router* that only makes tool calls (e.g.
/// [`NeedleLlm`](crate::NeedleLlm)) and a *chat* model that writes the spoken replies.
///
/// For a request that offers tools (and whose tool choice is not `None`) the router is asked
/// first. If it calls a tool, its answer is the answer: the session runs the tool and asks
/// again, and since the conversation then ends with the tool's output the router calls
/// nothing and the chat model speaks about the result. If it calls no tool, the chat model
/// answers the request (without its tools, see [`ChatTools`]). Requests without tools go
/// straight to the chat model. Each answer starts with [`ChatChunk::ServedBy`] naming the model
/// that answered.
///
/// ```
/// use std::sync::Arc;
/// use serde_json::json;
/// use switchboard::chat::{ChatContext, Role};
/// use switchboard::llm::{ChatRequest, Llm, ToolDefinition, collect};
/// use switchboard::testing::{ScriptedLlm, ScriptedReply};
/// use switchboard_needle::RouterLlm;
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let router = Arc::new(ScriptedLlm::new().on("When are you open?", ScriptedReply::tool("get_hours", json!({}))));
/// let chat = Arc::new(ScriptedLlm::new().otherwise(ScriptedReply::text("Happy to help!")));
/// let llm = RouterLlm::new(router, chat);
/// let tool = ToolDefinition {
///     name: "get_hours".into(),
///     description: "Opening hours.".into(),
///     parameters: json!({"type": "object", "properties": {}}),
///     strict_parameters: None,
/// };
/// let mut ctx = ChatContext::new();
/// ctx.add_message(Role::User, "When are you open?");
/// let answer = collect(llm.chat(ChatRequest::new(ctx).with_tools([tool]))).await.unwrap();
/// assert_eq!(answer.tool_calls[0].name, "get_hours");
/// # });
/// ```
pub struct RouterLlm {
    router: Arc<dyn Llm>,
    chat: Arc<dyn Llm>,
    options: RouterOptions,
    label: String,
}

impl RouterLlm {
    /// A router and a chat model, with the default options.
    pub fn new(router: Arc<dyn Llm>, chat: Arc<dyn Llm>) -> Self {
        Self::with_options(router, chat, RouterOptions::default())
    }

    /// A router and a chat model.
    pub fn with_options(router: Arc<dyn Llm>, chat: Arc<dyn Llm>, options: RouterOptions) -> Self {
        let label = format!(
            "{}/{}+{}/{}",
            router.provider(),
            router.model(),
            chat.provider(),
            chat.model()
        );
        RouterLlm {
            router,
            chat,
            options,
            label,
        }
    }

    /// The options.
    pub fn options(&self) -> &RouterOptions {
        &self.options
    }
}

fn served_by(llm: &dyn Llm) -> ChatChunk {
    ChatChunk::ServedBy {
        provider: llm.provider().to_owned(),
        model: llm.model().to_owned(),
    }
}

/// The chat model's answer, announced.
fn delegate(chat: Arc<dyn Llm>, request: ChatRequest) -> LlmStream {
    let served = served_by(chat.as_ref());
    stream::iter([Ok(served)]).chain(chat.chat(request)).boxed()
}

impl Llm for RouterLlm {
    fn provider(&self) -> &str {
        "router"
    }

    fn model(&self) -> &str {
        &self.label
    }

    fn chat(&self, request: ChatRequest) -> LlmStream {
        if request.tools.is_empty() || request.tool_choice == ToolChoice::None {
            return delegate(self.chat.clone(), request);
        }
        let router = self.router.clone();
        let chat = self.chat.clone();
        let options = self.options.clone();
        stream::once(async move {
            let mut routed = router.chat(request.clone());
            let mut chunks: Vec<ChatChunk> = Vec::new();
            let mut failure: Option<LlmError> = None;
            while let Some(item) = routed.next().await {
                match item {
                    Ok(chunk) => chunks.push(chunk),
                    Err(error) => {
                        failure = Some(error);
                        break;
                    }
                }
            }
            let called = chunks.iter().any(|c| matches!(c, ChatChunk::ToolCall(_)));
            match failure {
                Some(error) if !options.chat_on_router_error => {
                    return stream::iter(vec![Err(error)]).boxed();
                }
                Some(error) => {
                    tracing::warn!(router = router.provider(), %error, "the tool router failed; the chat model answers");
                }
                None if called => {
                    let served = served_by(router.as_ref());
                    return stream::iter(std::iter::once(served).chain(chunks).map(Ok)).boxed();
                }
                None => {}
            }
            let required = matches!(
                request.tool_choice,
                ToolChoice::Required | ToolChoice::Named(_)
            );
            let mut request = request;
            if options.chat_tools == ChatTools::Strip && !required {
                request.tools.clear();
                request.tool_choice = ToolChoice::Auto;
                request.parallel_tool_calls = None;
            }
            delegate(chat, request)
        })
        .flatten()
        .boxed()
    }
}
