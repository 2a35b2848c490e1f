use std::sync::Arc;

use futures::{StreamExt, stream};

use super::{ChatChunk, ChatRequest, Llm, LlmError, LlmStream};

/// Tries several models in order: when one fails with a retryable error before streaming
/// anything, the next one is asked. The stream starts with [`ChatChunk::ServedBy`] naming the
/// provider that answered.
///
/// Non-retryable errors (bad credentials, context too long) are returned at once: another
/// provider would not fix a bad request, and hiding a misconfiguration is worse.
pub struct FallbackLlm {
    llms: Vec<Arc<dyn Llm>>,
    label: String,
}

impl FallbackLlm {
    /// A fallback chain, tried in the given order. Panics never; an empty chain answers every
    /// request with an error.
    pub fn new(llms: Vec<Arc<dyn Llm>>) -> Self {
        let label = llms
            .iter()
            .map(|l| format!("{}/{}", l.provider(), l.model()))
            .collect::<Vec<_>>()
            .join(",");
        FallbackLlm { llms, label }
    }
}

impl Llm for FallbackLlm {
    fn provider(&self) -> &str {
        "fallback"
    }

    fn model(&self) -> &str {
        &self.label
    }

    fn chat(&self, request: ChatRequest) -> LlmStream {
        let llms = self.llms.clone();
        let start = async move {
            let mut last_error = LlmError::InvalidRequest {
                provider: "fallback".to_owned(),
                message: "no model configured".to_owned(),
            };
            for llm in llms {
                let mut inner = llm.chat(request.clone());
                match inner.next().await {
                    Some(Ok(chunk)) => {
                        let served = ChatChunk::ServedBy {
                            provider: llm.provider().to_owned(),
                            model: llm.model().to_owned(),
                        };
                        return stream::iter([Ok(served), Ok(chunk)]).chain(inner).boxed();
                    }
                    Some(Err(error)) if error.is_retryable() => {
                        tracing::warn!(provider = llm.provider(), %error, "model failed, trying the next one");
                        last_error = error;
                    }
                    Some(Err(error)) => return stream::iter([Err(error)]).boxed(),
                    None => {
                        let served = ChatChunk::ServedBy {
                            provider: llm.provider().to_owned(),
                            model: llm.model().to_owned(),
                        };
                        return stream::iter([Ok(served)]).boxed();
                    }
                }
            }
            stream::iter([Err(last_error)]).boxed()
        };
        stream::once(start).flatten().boxed()
    }
}
