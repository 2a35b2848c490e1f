//! The model, its worker threads and the generation loop.

use std::fmt;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::{LlamaChatMessage, LlamaChatTemplate, LlamaModel};
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;
use llama_cpp_2::token::data::LlamaTokenData;
use llama_cpp_2::token::data_array::LlamaTokenDataArray;
use switchboard::chat::new_id;
use switchboard::llm::{
    ChatChunk, ChatRequest, FinishReason, Llm, LlmError, LlmStream, ResponseFormat, ToolCallDelta,
    ToolChoice, Usage,
};
use tokio::sync::{broadcast, mpsc};

use crate::gbnf::{ToolSchema, schema_grammar, tool_call_grammar};
use crate::output::{Decision, JsonTracker, TextFilter, Utf8Assembler, decide, parse_call};
use crate::prompt::{PromptFormat, TRANSCRIPT_STOPS, template_messages, transcript};
use crate::{LlamaError, LlamaOptions, PROVIDER, check_model_file, model_path_from_env};

/// llama.cpp's backend, initialised once per process.
fn backend() -> Result<&'static LlamaBackend, LlamaError> {
    static BACKEND: OnceLock<Result<LlamaBackend, String>> = OnceLock::new();
    BACKEND
        .get_or_init(|| {
            let backend = LlamaBackend::init().map_err(|e| e.to_string())?;
            // llama.cpp logs go to `tracing` (target llama_cpp_2) instead of stderr.
            llama_cpp_2::send_logs_to_tracing(llama_cpp_2::LogOptions::default());
            Ok(backend)
        })
        .as_ref()
        .map_err(|e| LlamaError::Backend(e.clone()))
}

/// Creating contexts of one model in parallel is unsound in llama.cpp (it mutates the model).
static CONTEXT_CREATION: Mutex<()> = Mutex::new(());

/// How a generation ended, as reported in [`GenerationStats`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum GenerationOutcome {
    /// The answer ended (end-of-generation token or stop string).
    Stop,
    /// The token limit was reached.
    Length,
    /// A tool call was produced.
    ToolCall,
    /// The stream was dropped before the end; generation stopped early.
    Cancelled,
    /// An error was reported on the stream.
    Failed(String),
}

/// Figures of one finished generation, broadcast to [`LlamaLlm::subscribe`]rs.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerationStats {
    /// Tokens in the prompt.
    pub prompt_tokens: usize,
    /// Prompt tokens reused from the worker's KV cache (not evaluated again).
    pub cached_tokens: usize,
    /// Tokens sampled.
    pub completion_tokens: usize,
    /// Time the request waited for a free worker.
    pub queued: Duration,
    /// Time spent evaluating the prompt (the tokens not reused).
    pub prompt_time: Duration,
    /// Time from the worker taking the request to the first sampled token.
    pub time_to_first_token: Option<Duration>,
    /// Time spent generating after the prompt.
    pub generation_time: Duration,
    /// How it ended.
    pub outcome: GenerationOutcome,
}

impl GenerationStats {
    /// Prompt tokens evaluated per second (the reused prefix excluded).
    pub fn prompt_tokens_per_second(&self) -> f64 {
        let evaluated = self.prompt_tokens.saturating_sub(self.cached_tokens);
        evaluated as f64 / self.prompt_time.as_secs_f64().max(1e-9)
    }

    /// Tokens generated per second.
    pub fn generation_tokens_per_second(&self) -> f64 {
        self.completion_tokens as f64 / self.generation_time.as_secs_f64().max(1e-9)
    }
}

struct Shared {
    model: LlamaModel,
    template: Option<LlamaChatTemplate>,
    options: LlamaOptions,
    path: PathBuf,
    name: String,
    stats: broadcast::Sender<GenerationStats>,
}

type ChunkSender = mpsc::UnboundedSender<Result<ChatChunk, LlmError>>;

struct Job {
    request: ChatRequest,
    tx: ChunkSender,
    queued_at: Instant,
}

/// A GGUF model loaded by llama.cpp, usable as a [`Llm`] by any number of sessions.
///
/// See the [crate docs](crate) for the prompt format, tool calls and threading.
pub struct LlamaLlm {
    shared: Arc<Shared>,
    jobs: std_mpsc::Sender<Job>,
}

impl fmt::Debug for LlamaLlm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LlamaLlm")
            .field("path", &self.shared.path)
            .field("name", &self.shared.name)
            .field("chat_template", &self.shared.template.is_some())
            .field("options", &self.shared.options)
            .finish_non_exhaustive()
    }
}

impl LlamaLlm {
    /// Loads the model at `path` and starts its worker threads.
    ///
    /// # Errors
    /// [`LlamaError::MissingFile`] / [`LlamaError::NotGguf`] (checked before llama.cpp sees the
    /// file), [`LlamaError::Load`] when llama.cpp rejects it, [`LlamaError::InvalidOptions`].
    pub fn load(
        path: impl AsRef<Path>,
        options: LlamaOptions,
    ) -> Result<Arc<LlamaLlm>, LlamaError> {
        let path = path.as_ref().to_path_buf();
        options.validate()?;
        check_model_file(&path)?;
        let backend = backend()?;
        let model = LlamaModel::load_from_file(backend, &path, &LlamaModelParams::default())
            .map_err(|e| LlamaError::Load {
                path: path.clone(),
                message: e.to_string(),
            })?;
        let template = model.chat_template(None).ok();
        let name = options.name.clone().unwrap_or_else(|| {
            path.file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "gguf".to_owned())
        });
        let (stats, _) = broadcast::channel(64);
        let shared = Arc::new(Shared {
            model,
            template,
            options,
            path,
            name,
            stats,
        });
        let (jobs, receiver) = std_mpsc::channel::<Job>();
        let receiver = Arc::new(Mutex::new(receiver));
        for index in 0..shared.options.contexts {
            let shared = Arc::clone(&shared);
            let receiver = Arc::clone(&receiver);
            std::thread::Builder::new()
                .name(format!("llama-worker-{index}"))
                .spawn(move || worker(&shared, &receiver))
                .map_err(LlamaError::Thread)?;
        }
        Ok(Arc::new(LlamaLlm { shared, jobs }))
    }

    /// Loads the model named by `SWITCHBOARD_LLAMA_MODEL`, else the setup cache's default
    /// (Gemma 3 270M), with default options.
    ///
    /// # Errors
    /// As [`LlamaLlm::load`]; [`LlamaError::NotConfigured`] when no path can be derived.
    pub fn from_env() -> Result<Arc<LlamaLlm>, LlamaError> {
        Self::load(model_path_from_env()?, LlamaOptions::default())
    }

    /// The model file.
    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    /// The options it was loaded with.
    pub fn options(&self) -> &LlamaOptions {
        &self.shared.options
    }

    /// True when the model has a chat template (else the transcript format is used).
    pub fn has_chat_template(&self) -> bool {
        self.shared.template.is_some()
    }

    /// The context length the model was trained with.
    pub fn n_ctx_train(&self) -> u32 {
        self.shared.model.n_ctx_train()
    }

    /// Receives the [`GenerationStats`] of every generation that ends from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<GenerationStats> {
        self.shared.stats.subscribe()
    }

    /// Checks a GBNF grammar (root rule `root`) with llama.cpp's own parser, against this
    /// model's vocabulary.
    ///
    /// # Errors
    /// A message when llama.cpp rejects the grammar.
    pub fn check_grammar(&self, gbnf: &str) -> Result<(), String> {
        LlamaSampler::grammar(&self.shared.model, gbnf, "root")
            .map(drop)
            .map_err(|e| format!("llama.cpp rejected the grammar: {e}"))
    }

    /// The prompt text this model would evaluate for `request` (for inspection and tests).
    ///
    /// # Errors
    /// As the stream would report for an invalid request.
    pub fn render_prompt(&self, request: &ChatRequest) -> Result<String, LlmError> {
        Ok(plan(&self.shared, request)?.prompt)
    }
}

impl Llm for LlamaLlm {
    fn provider(&self) -> &str {
        PROVIDER
    }

    fn model(&self) -> &str {
        &self.shared.name
    }

    fn chat(&self, request: ChatRequest) -> LlmStream {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let job = Job {
            request,
            tx,
            queued_at: Instant::now(),
        };
        if let Err(std_mpsc::SendError(job)) = self.jobs.send(job) {
            let _ = job
                .tx
                .send(Err(other_error("the llama worker threads have stopped")));
        }
        Box::pin(futures::stream::poll_fn(move |cx| rx.poll_recv(cx)))
    }
}

fn other_error(message: impl Into<String>) -> LlmError {
    LlmError::Other {
        provider: PROVIDER.to_owned(),
        message: message.into(),
        retryable: false,
    }
}

fn invalid_request(message: impl Into<String>) -> LlmError {
    LlmError::InvalidRequest {
        provider: PROVIDER.to_owned(),
        message: message.into(),
    }
}

// ---------------------------------------------------------------------------------------------
// Workers

fn worker(shared: &Arc<Shared>, jobs: &Mutex<std_mpsc::Receiver<Job>>) {
    let mut context: Option<LlamaContext<'_>> = None;
    // The tokens whose keys and values are in the context's cache, in order.
    let mut cached: Vec<LlamaToken> = Vec::new();
    loop {
        let job = {
            let receiver = jobs.lock().unwrap_or_else(PoisonError::into_inner);
            match receiver.recv() {
                Ok(job) => job,
                Err(_) => return, // the LlamaLlm was dropped
            }
        };
        let queued = job.queued_at.elapsed();
        let started = Instant::now();
        if job.tx.is_closed() {
            publish(shared, cancelled_before_start(queued));
            continue;
        }
        if context.is_none() {
            match new_context(shared) {
                Ok(ctx) => context = Some(ctx),
                Err(message) => {
                    let _ = job.tx.send(Err(other_error(message.clone())));
                    publish(shared, failed_before_start(queued, message));
                    continue;
                }
            }
            cached.clear();
        }
        let Some(ctx) = context.as_mut() else {
            continue;
        };
        let mut run = Run {
            shared,
            tx: &job.tx,
            stats: GenerationStats {
                prompt_tokens: 0,
                cached_tokens: 0,
                completion_tokens: 0,
                queued,
                prompt_time: Duration::ZERO,
                time_to_first_token: None,
                generation_time: Duration::ZERO,
                outcome: GenerationOutcome::Stop,
            },
            started,
        };
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            run.generate(ctx, &mut cached, &job.request)
        }));
        let mut stats = run.stats;
        match result {
            Ok(Ok(outcome)) => stats.outcome = outcome,
            Ok(Err(error)) => {
                stats.outcome = GenerationOutcome::Failed(error.to_string());
                let _ = job.tx.send(Err(error));
            }
            Err(panic) => {
                let message = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "panic".to_owned());
                let message = format!("generation failed: {message}");
                stats.outcome = GenerationOutcome::Failed(message.clone());
                let _ = job.tx.send(Err(other_error(message)));
                // The context's state is unknown: start afresh.
                context = None;
                cached.clear();
            }
        }
        publish(shared, stats);
    }
}

fn new_context(shared: &Shared) -> Result<LlamaContext<'_>, String> {
    let backend = backend().map_err(|e| e.to_string())?;
    let options = &shared.options;
    let params = LlamaContextParams::default()
        .with_n_ctx(NonZeroU32::new(options.n_ctx))
        .with_n_batch(options.n_batch)
        .with_n_ubatch(options.n_batch)
        .with_n_threads(options.n_threads)
        .with_n_threads_batch(options.n_threads)
        .with_n_seq_max(1)
        // A full-size cache for sliding-window layers, so that a prompt prefix can be reused.
        .with_swa_full(options.reuse_prefix);
    let _guard = CONTEXT_CREATION
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    shared.model.new_context(backend, params).map_err(|e| {
        format!(
            "cannot create a llama.cpp context of {} tokens: {e}",
            options.n_ctx
        )
    })
}

fn publish(shared: &Shared, stats: GenerationStats) {
    // No subscriber is fine.
    let _ = shared.stats.send(stats);
}

fn cancelled_before_start(queued: Duration) -> GenerationStats {
    GenerationStats {
        prompt_tokens: 0,
        cached_tokens: 0,
        completion_tokens: 0,
        queued,
        prompt_time: Duration::ZERO,
        time_to_first_token: None,
        generation_time: Duration::ZERO,
        outcome: GenerationOutcome::Cancelled,
    }
}

fn failed_before_start(queued: Duration, message: String) -> GenerationStats {
    GenerationStats {
        outcome: GenerationOutcome::Failed(message),
        ..cancelled_before_start(queued)
    }
}

// ---------------------------------------------------------------------------------------------
// Planning a request

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Tools may be called: the start of the answer decides.
    Deciding,
    Text,
    Call,
}

struct Plan {
    prompt: String,
    /// Tokenise special tokens written in the prompt (chat templates).
    parse_special: bool,
    stops: Vec<String>,
    phase: Phase,
    /// The grammar of a tool call (after the marker).
    call_grammar: Option<String>,
    /// The grammar of a JSON text answer (response formats).
    text_grammar: Option<String>,
}

fn plan(shared: &Shared, request: &ChatRequest) -> Result<Plan, LlmError> {
    let options = &shared.options;
    let tools_active = !request.tools.is_empty() && request.tool_choice != ToolChoice::None;
    let call_tools: Vec<ToolSchema<'_>> = match &request.tool_choice {
        ToolChoice::Named(name) => {
            let tool = request
                .tools
                .iter()
                .find(|t| &t.name == name)
                .ok_or_else(|| {
                    invalid_request(format!("tool choice names {name:?}, which is not offered"))
                })?;
            vec![schema_of(tool)]
        }
        _ if tools_active => request.tools.iter().map(|t| schema_of(t)).collect(),
        _ => Vec::new(),
    };
    let forced = tools_active
        && matches!(
            request.tool_choice,
            ToolChoice::Required | ToolChoice::Named(_)
        );
    let call_grammar = if tools_active {
        Some(tool_call_grammar(&call_tools).map_err(|e| invalid_request(e.to_string()))?)
    } else {
        None
    };
    let text_grammar = match (&request.response_format, tools_active) {
        (Some(ResponseFormat::JsonSchema { schema, .. }), false) => {
            Some(schema_grammar(schema).map_err(|e| invalid_request(e.to_string()))?)
        }
        (Some(ResponseFormat::JsonObject), false) => Some(
            schema_grammar(&serde_json::json!({"type": "object"}))
                .map_err(|e| invalid_request(e.to_string()))?,
        ),
        _ => None,
    };
    let prompt_tools: &[Arc<switchboard::llm::ToolDefinition>] =
        if tools_active { &request.tools } else { &[] };

    let use_template = match options.prompt_format {
        PromptFormat::Transcript => false,
        PromptFormat::ModelTemplate => {
            if shared.template.is_none() {
                return Err(invalid_request(format!(
                    "{} has no chat template; use PromptFormat::Auto or Transcript",
                    shared.path.display()
                )));
            }
            true
        }
        _ => shared.template.is_some(),
    };
    let mut stops = options.stop.clone();
    let mut prompt = None;
    if use_template && let Some(template) = &shared.template {
        match apply_template(
            &shared.model,
            template,
            &template_messages(&request.context, prompt_tools),
        ) {
            Ok(mut text) => {
                if forced {
                    text.push_str(crate::TOOL_CALL_MARKER);
                }
                prompt = Some((text, true));
            }
            Err(message) if options.prompt_format == PromptFormat::ModelTemplate => {
                return Err(invalid_request(message));
            }
            Err(message) => {
                tracing::debug!(%message, "chat template not applicable; using the transcript format");
            }
        }
    }
    let (prompt, parse_special) = match prompt {
        Some(p) => p,
        None => {
            stops.extend(TRANSCRIPT_STOPS.iter().map(|s| (*s).to_owned()));
            (
                transcript(&request.context, prompt_tools, &options.transcript, forced),
                false,
            )
        }
    };
    Ok(Plan {
        prompt,
        parse_special,
        stops,
        phase: if forced {
            Phase::Call
        } else if tools_active {
            Phase::Deciding
        } else {
            Phase::Text
        },
        call_grammar,
        text_grammar,
    })
}

fn schema_of(tool: &switchboard::llm::ToolDefinition) -> ToolSchema<'_> {
    ToolSchema {
        name: &tool.name,
        parameters: &tool.parameters,
    }
}

fn apply_template(
    model: &LlamaModel,
    template: &LlamaChatTemplate,
    messages: &[(&'static str, String)],
) -> Result<String, String> {
    let messages = messages
        .iter()
        .map(|(role, content)| LlamaChatMessage::new((*role).to_owned(), content.clone()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("a message cannot be passed to the chat template: {e}"))?;
    model
        .apply_chat_template(template, &messages, true)
        .map_err(|e| format!("llama.cpp cannot apply the model's chat template: {e}"))
}

// ---------------------------------------------------------------------------------------------
// Generation

struct Run<'a> {
    shared: &'a Shared,
    tx: &'a ChunkSender,
    stats: GenerationStats,
    started: Instant,
}

/// What ended the token loop.
enum End {
    Eog,
    Stop,
    Length,
    CallComplete,
    Cancelled,
}

impl Run<'_> {
    fn send(&self, chunk: ChatChunk) {
        let _ = self.tx.send(Ok(chunk));
    }

    fn generate(
        &mut self,
        ctx: &mut LlamaContext<'_>,
        cached: &mut Vec<LlamaToken>,
        request: &ChatRequest,
    ) -> Result<GenerationOutcome, LlmError> {
        let shared = self.shared;
        let options = &shared.options;
        let model = &shared.model;
        let vocab = model.vocab();
        let plan = plan(shared, request)?;

        let tokens = vocab.tokenize(plan.prompt.as_bytes(), true, plan.parse_special);
        if tokens.is_empty() {
            return Err(invalid_request("the prompt is empty"));
        }
        let max_tokens = options.max_tokens as usize;
        if tokens.len() + max_tokens > options.n_ctx as usize {
            return Err(LlmError::ContextTooLong {
                provider: PROVIDER.to_owned(),
                message: format!(
                    "the prompt has {} tokens; with up to {max_tokens} answer tokens it exceeds the context of {} tokens (LlamaOptions::n_ctx)",
                    tokens.len(),
                    options.n_ctx
                ),
            });
        }
        self.stats.prompt_tokens = tokens.len();

        // Reuse the cached prefix; at least one token is evaluated, for its logits.
        let mut common = if options.reuse_prefix {
            cached
                .iter()
                .zip(&tokens)
                .take_while(|(a, b)| a == b)
                .count()
        } else {
            0
        };
        common = common.min(tokens.len() - 1);
        if common < cached.len() {
            let removed = ctx
                .clear_kv_cache_seq(Some(0), Some(common as u32), None)
                .unwrap_or(false);
            if !removed {
                ctx.clear_kv_cache();
                common = 0;
            }
            cached.truncate(common);
        }
        self.stats.cached_tokens = common;

        let prompt_started = Instant::now();
        let mut batch = LlamaBatch::new(options.n_batch as usize, 1);
        let Some(mut logits_index) = self.evaluate(ctx, cached, &mut batch, &tokens[common..])?
        else {
            self.stats.prompt_time = prompt_started.elapsed();
            return Ok(GenerationOutcome::Cancelled);
        };
        self.stats.prompt_time = prompt_started.elapsed();
        let generation_started = Instant::now();

        let temperature = request.temperature.unwrap_or(options.temperature);
        let mut chain = sampler_chain(options, model.n_vocab(), temperature, false);
        let mut text_chain = sampler_chain(options, model.n_vocab(), temperature, true);
        let new_grammar = |gbnf: &str| {
            LlamaSampler::grammar(model, gbnf, "root").map_err(|e| {
                invalid_request(format!("llama.cpp rejected the generated grammar: {e}"))
            })
        };
        let mut phase = plan.phase;
        let mut grammar = match (phase, &plan.call_grammar, &plan.text_grammar) {
            (Phase::Call, Some(g), _) | (Phase::Text, _, Some(g)) => Some(new_grammar(g)?),
            _ => None,
        };

        let answer_start = cached.len();
        let mut utf8 = Utf8Assembler::default();
        let mut filter = TextFilter::new(plan.stops.clone());
        let mut undecided = String::new();
        let mut call = JsonTracker::default();
        let mut sampled = 0usize;
        let end = loop {
            if self.tx.is_closed() {
                break End::Cancelled;
            }
            if sampled >= max_tokens {
                break End::Length;
            }
            let token = match grammar.as_mut() {
                None if phase == Phase::Text => text_chain.sample(ctx, logits_index),
                None => chain.sample(ctx, logits_index),
                Some(grammar) => sample_constrained(ctx, logits_index, &mut chain, grammar)?,
            };
            sampled += 1;
            self.stats.completion_tokens = sampled;
            if self.stats.time_to_first_token.is_none() {
                self.stats.time_to_first_token = Some(self.started.elapsed());
            }
            if vocab.is_eog(token) {
                break End::Eog;
            }
            let piece = utf8.push(&vocab.token_to_piece(token, false, None));
            match phase {
                Phase::Text => {
                    self.emit_text(filter.push(&piece));
                    if filter.stopped() {
                        break End::Stop;
                    }
                }
                Phase::Deciding => {
                    undecided.push_str(&piece);
                    match decide(&undecided) {
                        Decision::Undecided => {}
                        Decision::Text => {
                            phase = Phase::Text;
                            self.emit_text(filter.push(&std::mem::take(&mut undecided)));
                            if filter.stopped() {
                                break End::Stop;
                            }
                        }
                        Decision::Call(marker_end) => {
                            // The model chose to call a tool: replace what it wrote by exactly
                            // the text up to the marker, then follow the call grammar.
                            if ctx
                                .clear_kv_cache_seq(Some(0), Some(answer_start as u32), None)
                                .ok()
                                != Some(true)
                            {
                                return Err(other_error("cannot rewind the KV cache"));
                            }
                            cached.truncate(answer_start);
                            let forced =
                                vocab.tokenize(&undecided.as_bytes()[..marker_end], false, false);
                            let Some(index) = self.evaluate(ctx, cached, &mut batch, &forced)?
                            else {
                                break End::Cancelled;
                            };
                            logits_index = index;
                            phase = Phase::Call;
                            let gbnf = plan.call_grammar.as_deref().unwrap_or_default();
                            grammar = Some(new_grammar(gbnf)?);
                            continue;
                        }
                    }
                }
                Phase::Call => {
                    if call.push(&piece) {
                        break End::CallComplete;
                    }
                }
            }
            batch.clear();
            batch
                .add(token, cached.len() as i32, &[0], true)
                .map_err(|e| other_error(format!("cannot queue a token: {e}")))?;
            if let Err(e) = ctx.decode(&mut batch) {
                ctx.clear_kv_cache();
                cached.clear();
                return Err(other_error(format!(
                    "llama.cpp failed to evaluate a token: {e}"
                )));
            }
            cached.push(token);
            logits_index = 0;
        };
        self.stats.generation_time = generation_started.elapsed();

        if matches!(end, End::Cancelled) {
            return Ok(GenerationOutcome::Cancelled);
        }
        let rest = utf8.finish();
        let outcome = match phase {
            Phase::Call => {
                call.push(&rest);
                let parsed = parse_call(&call.text);
                if !parsed.valid {
                    tracing::debug!(text = %call.text, "the model's tool call does not parse");
                }
                self.send(ChatChunk::ToolCall(ToolCallDelta {
                    index: 0,
                    id: Some(new_id("call")),
                    name: Some(parsed.name),
                    arguments: parsed.arguments,
                }));
                GenerationOutcome::ToolCall
            }
            Phase::Text | Phase::Deciding => {
                if !filter.stopped() {
                    undecided.push_str(&rest);
                    let text = filter.push(&undecided);
                    self.emit_text(text);
                    let text = filter.finish();
                    self.emit_text(text);
                }
                match end {
                    End::Length => GenerationOutcome::Length,
                    _ => GenerationOutcome::Stop,
                }
            }
        };
        self.send(ChatChunk::Usage(Usage {
            prompt_tokens: self.stats.prompt_tokens as u64,
            cached_tokens: self.stats.cached_tokens as u64,
            completion_tokens: sampled as u64,
        }));
        self.send(ChatChunk::Finish(match outcome {
            GenerationOutcome::ToolCall => FinishReason::ToolCalls,
            GenerationOutcome::Length => FinishReason::Length,
            _ => FinishReason::Stop,
        }));
        Ok(outcome)
    }

    fn emit_text(&self, text: String) {
        if !text.is_empty() {
            self.send(ChatChunk::Text(text));
        }
    }

    /// Evaluates `tokens` after the cached ones, in batches; returns the logits index of the
    /// last token, or `None` when the stream was dropped meanwhile.
    fn evaluate(
        &self,
        ctx: &mut LlamaContext<'_>,
        cached: &mut Vec<LlamaToken>,
        batch: &mut LlamaBatch<'_>,
        tokens: &[LlamaToken],
    ) -> Result<Option<i32>, LlmError> {
        if tokens.is_empty() {
            return Err(other_error("nothing to evaluate"));
        }
        let n_batch = self.shared.options.n_batch as usize;
        let mut last_index = 0;
        let chunks = tokens.len().div_ceil(n_batch);
        for (chunk_index, chunk) in tokens.chunks(n_batch).enumerate() {
            if self.tx.is_closed() {
                return Ok(None);
            }
            batch.clear();
            let last_chunk = chunk_index + 1 == chunks;
            for (i, &token) in chunk.iter().enumerate() {
                let logits = last_chunk && i + 1 == chunk.len();
                batch
                    .add(token, (cached.len() + i) as i32, &[0], logits)
                    .map_err(|e| other_error(format!("cannot queue a prompt token: {e}")))?;
            }
            if let Err(e) = ctx.decode(batch) {
                ctx.clear_kv_cache();
                cached.clear();
                return Err(other_error(format!(
                    "llama.cpp failed to evaluate the prompt: {e}"
                )));
            }
            cached.extend_from_slice(chunk);
            last_index = batch.n_tokens() - 1;
        }
        Ok(Some(last_index))
    }
}

/// Greedy, or top-k / top-p / temperature sampling; `text` adds the repetition penalty. The
/// penalty is applied after the top-k cut: over the whole 262k-token vocabulary of Gemma it
/// costs more than the rest of sampling, and a penalty only lowers logits, so the greedy choice
/// is the same unless all top-k candidates were penalised.
fn sampler_chain(
    options: &LlamaOptions,
    n_vocab: i32,
    temperature: f32,
    text: bool,
) -> LlamaSampler {
    let penalty = text && options.repeat_penalty != 1.0;
    let mut samplers = Vec::new();
    if penalty || temperature > 0.0 {
        samplers.push(LlamaSampler::top_k(options.top_k.max(1)));
    }
    if penalty {
        samplers.push(LlamaSampler::penalties(
            n_vocab,
            64,
            options.repeat_penalty,
            0.0,
            0.0,
        ));
    }
    if temperature <= 0.0 {
        samplers.push(LlamaSampler::greedy());
    } else {
        samplers.push(LlamaSampler::top_p(options.top_p, 1));
        samplers.push(LlamaSampler::temp(temperature));
        samplers.push(LlamaSampler::dist(options.seed));
    }
    LlamaSampler::chain_simple(samplers)
}

/// Candidates the grammar is first applied to when it rejects the unconstrained choice.
const GRAMMAR_SHORTLIST: usize = 1024;

/// Samples a token the grammar allows.
///
/// Checking a grammar against every entry of a 262k-token vocabulary costs more than
/// evaluating the model, so: the unconstrained choice is tried first (one grammar check);
/// when the grammar rejects it, the grammar is applied to the 1,024 most likely candidates;
/// only when it allows none of them is it applied to all. For greedy decoding this picks
/// exactly the best allowed token; with sampling, the top-k cut (default 40) is taken among
/// the allowed tokens of the shortlist. The token is accepted by both samplers exactly once
/// (llama.cpp throws, and the process aborts, when a grammar is fed a token it forbids).
fn sample_constrained(
    ctx: &LlamaContext<'_>,
    index: i32,
    chain: &mut LlamaSampler,
    grammar: &mut LlamaSampler,
) -> Result<LlamaToken, LlmError> {
    let candidates = ctx.token_data_array_ith(index);
    let mut probe = candidates.clone();
    probe.apply_sampler(chain);
    if let Some(token) = probe.selected_token() {
        let mut single =
            LlamaTokenDataArray::new(vec![LlamaTokenData::new(token, 0.0, 0.0)], false);
        single.apply_sampler(grammar);
        if single.data.first().is_some_and(|d| d.logit().is_finite()) {
            grammar.accept(token);
            chain.accept(token);
            return Ok(token);
        }
    }
    let mut data = candidates.data;
    if data.len() > GRAMMAR_SHORTLIST {
        data.select_nth_unstable_by(GRAMMAR_SHORTLIST - 1, |a, b| {
            b.logit().total_cmp(&a.logit())
        });
        let shortlist = LlamaTokenDataArray::new(data[..GRAMMAR_SHORTLIST].to_vec(), false);
        if let Some(token) = pick_allowed(shortlist, chain, grammar)? {
            return Ok(token);
        }
    }
    pick_allowed(LlamaTokenDataArray::new(data, false), chain, grammar)?
        .ok_or_else(|| other_error("the grammar allows no next token"))
}

/// Applies the grammar then the chain to `candidates`; `None` when the grammar allows none.
fn pick_allowed(
    mut candidates: LlamaTokenDataArray,
    chain: &mut LlamaSampler,
    grammar: &mut LlamaSampler,
) -> Result<Option<LlamaToken>, LlmError> {
    candidates.apply_sampler(grammar);
    if !candidates.data.iter().any(|d| d.logit().is_finite()) {
        return Ok(None);
    }
    candidates.apply_sampler(chain);
    let allowed = candidates
        .selected
        .and_then(|i| candidates.data.get(i))
        .filter(|d| d.logit().is_finite())
        .map(LlamaTokenData::id);
    let Some(token) = allowed else {
        return Err(other_error("sampling picked a token the grammar forbids"));
    };
    grammar.accept(token);
    chain.accept(token);
    Ok(Some(token))
}
