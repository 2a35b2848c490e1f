//! Tools the model can call: [`FunctionTool`], schemas, argument parsing and tool outputs.
//!
//! A tool is usually declared with the `#[tool]` attribute (see the crate docs), which derives
//! the schema from the function's signature. It can also be built by hand from an arguments type
//! that derives `Deserialize` and `JsonSchema`:
//!
//! ```
//! use switchboard::tools::{FunctionTool, ToolError};
//! use switchboard::RunContext;
//!
//! #[derive(serde::Deserialize, schemars::JsonSchema)]
//! struct Args {
//!     /// The day, as an ISO date.
//!     date: String,
//! }
//!
//! let tool: FunctionTool<()> = FunctionTool::new(
//!     "book",
//!     "Book an appointment.",
//!     |_ctx: RunContext<()>, args: Args| async move {
//!         if args.date.is_empty() {
//!             return Err(ToolError::new("a date is needed"));
//!         }
//!         Ok(format!("booked {}", args.date))
//!     },
//! );
//! assert_eq!(tool.name(), "book");
//! assert_eq!(tool.definition().parameters["required"], serde_json::json!(["date"]));
//! ```

mod args;
mod schema;

pub use args::{ArgumentsError, MAX_ARGUMENTS_BYTES, ParsedArguments, parse_arguments};
pub use schema::{parameters_schema, strict_schema};

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use schemars::JsonSchema;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::llm::ToolDefinition;
use crate::session::{Handoff, RunContext};

/// The output shown to the model when a tool fails in an unexpected way (a panic, an internal
/// error). Details are logged, never shown to the model.
pub const INTERNAL_ERROR_OUTPUT: &str = "An internal error occurred";

/// An error a tool reports to the model. The model sees the message and can react to it.
///
/// ```
/// use switchboard::tools::ToolError;
/// let e = ToolError::new("no slot is free on Monday");
/// assert_eq!(e.to_string(), "no slot is free on Monday");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolError {
    message: String,
    internal: bool,
}

impl ToolError {
    /// An error whose message the model sees.
    pub fn new(message: impl Into<String>) -> Self {
        ToolError {
            message: message.into(),
            internal: false,
        }
    }

    /// An internal failure: `detail` is logged, and the model sees only
    /// [`INTERNAL_ERROR_OUTPUT`].
    pub fn internal(detail: impl fmt::Display) -> Self {
        ToolError {
            message: detail.to_string(),
            internal: true,
        }
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// True for [`ToolError::internal`] errors.
    pub fn is_internal(&self) -> bool {
        self.internal
    }
}

impl fmt::Display for ToolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ToolError {}

impl From<&str> for ToolError {
    fn from(message: &str) -> Self {
        ToolError::new(message)
    }
}

impl From<String> for ToolError {
    fn from(message: String) -> Self {
        ToolError::new(message)
    }
}

/// Returned by a tool to end the turn without a reply from the model.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StopResponse;

impl fmt::Display for StopResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the response was stopped")
    }
}

impl std::error::Error for StopResponse {}

/// Flags that change how a tool is offered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct ToolFlags {
    /// Hide the tool from replies generated inside `on_enter` (so the model must ask first).
    pub ignore_on_enter: bool,
}

impl ToolFlags {
    /// No flag.
    pub const NONE: ToolFlags = ToolFlags {
        ignore_on_enter: false,
    };
    /// Hidden from replies generated inside `on_enter`.
    pub const IGNORE_ON_ENTER: ToolFlags = ToolFlags {
        ignore_on_enter: true,
    };
}

/// What a tool call produced, before it is turned into a function call output.
pub enum ToolOutcome<U: Send + 'static> {
    /// A value: a JSON string stays plain text, `null` is the empty output and asks for no
    /// reply, anything else is shown as compact JSON.
    Value(Value),
    /// An error for the model (or an internal one, see [`ToolError::internal`]).
    Error(ToolError),
    /// End the turn without a reply.
    Stop,
    /// Hand the conversation to another agent.
    Handoff(Handoff<U>),
}

impl<U: Send + 'static> fmt::Debug for ToolOutcome<U> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ToolOutcome::Value(v) => f.debug_tuple("Value").field(v).finish(),
            ToolOutcome::Error(e) => f.debug_tuple("Error").field(e).finish(),
            ToolOutcome::Stop => f.write_str("Stop"),
            ToolOutcome::Handoff(h) => f.debug_tuple("Handoff").field(&h.agent_id()).finish(),
        }
    }
}

/// The text the model sees for a tool's value: strings as they are, `null` as nothing, other
/// values as compact JSON (`0` and `false` stay `0` and `false`).
pub fn output_text(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A plain value a tool may return: strings, numbers, booleans, `()`, JSON values, options and
/// vectors of those, and any `Serialize` type wrapped in [`Json`].
pub trait ToolValue: Send + 'static {
    /// The value as JSON.
    fn into_value(self) -> Result<Value, String>;
}

macro_rules! tool_value_via_json {
    ($($ty:ty),*) => {$(
        impl ToolValue for $ty {
            fn into_value(self) -> Result<Value, String> {
                Ok(Value::from(self))
            }
        }
    )*};
}
tool_value_via_json!(
    String,
    &'static str,
    bool,
    i8,
    i16,
    i32,
    i64,
    u8,
    u16,
    u32,
    u64,
    f32,
    f64,
    Value
);

impl ToolValue for () {
    fn into_value(self) -> Result<Value, String> {
        Ok(Value::Null)
    }
}

impl<T: ToolValue> ToolValue for Option<T> {
    fn into_value(self) -> Result<Value, String> {
        self.map_or(Ok(Value::Null), ToolValue::into_value)
    }
}

impl<T: ToolValue> ToolValue for Vec<T> {
    fn into_value(self) -> Result<Value, String> {
        self.into_iter()
            .map(ToolValue::into_value)
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array)
    }
}

/// Wraps any `Serialize` value as a tool output (shown to the model as compact JSON).
///
/// ```
/// use switchboard::tools::Json;
/// #[derive(serde::Serialize)]
/// struct Slot { day: String, free: bool }
/// let output = Json(Slot { day: "Monday".into(), free: true });
/// # let _ = output;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Json<T>(pub T);

impl<T: Serialize + Send + 'static> ToolValue for Json<T> {
    fn into_value(self) -> Result<Value, String> {
        serde_json::to_value(self.0).map_err(|e| e.to_string())
    }
}

/// Anything a tool may return: a [`ToolValue`], `Result<T, ToolError>` of one,
/// [`StopResponse`], [`Handoff`], or results of those.
pub trait IntoToolOutput<U: Send + 'static>: Send + 'static {
    /// Converts the return value.
    fn into_outcome(self) -> ToolOutcome<U>;
}

fn value_outcome<U: Send + 'static, T: ToolValue>(value: T) -> ToolOutcome<U> {
    match value.into_value() {
        Ok(v) => ToolOutcome::Value(v),
        Err(e) => ToolOutcome::Error(ToolError::internal(format!(
            "the tool's output could not be serialised: {e}"
        ))),
    }
}

impl<U: Send + 'static, T: ToolValue> IntoToolOutput<U> for T {
    fn into_outcome(self) -> ToolOutcome<U> {
        value_outcome(self)
    }
}

impl<U: Send + 'static, T: ToolValue> IntoToolOutput<U> for Result<T, ToolError> {
    fn into_outcome(self) -> ToolOutcome<U> {
        match self {
            Ok(v) => value_outcome(v),
            Err(e) => ToolOutcome::Error(e),
        }
    }
}

impl<U: Send + 'static> IntoToolOutput<U> for StopResponse {
    fn into_outcome(self) -> ToolOutcome<U> {
        ToolOutcome::Stop
    }
}

impl<U: Send + 'static> IntoToolOutput<U> for Result<StopResponse, ToolError> {
    fn into_outcome(self) -> ToolOutcome<U> {
        match self {
            Ok(_) => ToolOutcome::Stop,
            Err(e) => ToolOutcome::Error(e),
        }
    }
}

impl<U: Send + 'static> IntoToolOutput<U> for Handoff<U> {
    fn into_outcome(self) -> ToolOutcome<U> {
        ToolOutcome::Handoff(self)
    }
}

impl<U: Send + 'static> IntoToolOutput<U> for Result<Handoff<U>, ToolError> {
    fn into_outcome(self) -> ToolOutcome<U> {
        match self {
            Ok(h) => ToolOutcome::Handoff(h),
            Err(e) => ToolOutcome::Error(e),
        }
    }
}

impl<U: Send + 'static> IntoToolOutput<U> for ToolOutcome<U> {
    fn into_outcome(self) -> ToolOutcome<U> {
        self
    }
}

/// A tool implementation: the call's context and decoded arguments in, an outcome out.
pub(crate) type Handler<U> =
    dyn Fn(RunContext<U>, Map<String, Value>) -> BoxFuture<'static, ToolOutcome<U>> + Send + Sync;

/// A tool bound to its implementation. Cheap to clone.
pub struct FunctionTool<U: Send + 'static = ()> {
    definition: Arc<ToolDefinition>,
    flags: ToolFlags,
    handler: Arc<Handler<U>>,
}

impl<U: Send + 'static> Clone for FunctionTool<U> {
    fn clone(&self) -> Self {
        FunctionTool {
            definition: self.definition.clone(),
            flags: self.flags,
            handler: self.handler.clone(),
        }
    }
}

impl<U: Send + 'static> fmt::Debug for FunctionTool<U> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FunctionTool")
            .field("name", &self.definition.name)
            .field("flags", &self.flags)
            .finish_non_exhaustive()
    }
}

/// A raw tool's schema was unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ToolDefinitionError {
    /// The name is empty or has characters providers reject.
    #[error("invalid tool name {0:?}: use 1 to 64 letters, digits, '_' or '-'")]
    InvalidName(String),
    /// The parameters schema is not an object schema.
    #[error(
        "the parameters schema of `{0}` must be a JSON object schema with \"type\": \"object\""
    )]
    NotAnObjectSchema(String),
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

impl<U: Send + 'static> FunctionTool<U> {
    /// A tool whose arguments deserialise into `A`; the schema is derived from `A`.
    ///
    /// Before `f` runs, the arguments are checked against the schema's bounds and deserialised;
    /// a failure becomes an error output naming the field, and `f` is not called.
    pub fn new<A, F, Fut, O>(name: impl Into<String>, description: impl Into<String>, f: F) -> Self
    where
        A: DeserializeOwned + JsonSchema + Send + 'static,
        F: Fn(RunContext<U>, A) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = O> + Send + 'static,
        O: IntoToolOutput<U>,
    {
        let name = name.into();
        let definition = cached_definition::<A>(name.clone(), description.into());
        let schema = definition.parameters.clone();
        let handler =
            move |ctx: RunContext<U>, arguments: Map<String, Value>| match decode_arguments::<A>(
                &schema, arguments,
            ) {
                Ok(args) => f(ctx, args).map(IntoToolOutput::into_outcome).boxed(),
                Err(details) => {
                    let message = format!("Error parsing arguments for `{name}`: {details}");
                    futures::future::ready(ToolOutcome::Error(ToolError::new(message))).boxed()
                }
            };
        FunctionTool {
            definition,
            flags: ToolFlags::NONE,
            handler: Arc::new(handler),
        }
    }

    /// A tool with a hand-written JSON schema; `f` receives the decoded argument object as it
    /// is, without validation.
    pub fn raw<F, Fut, O>(
        name: impl Into<String>,
        description: impl Into<String>,
        parameters: Value,
        f: F,
    ) -> Result<Self, ToolDefinitionError>
    where
        F: Fn(RunContext<U>, Map<String, Value>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = O> + Send + 'static,
        O: IntoToolOutput<U>,
    {
        let name = name.into();
        if !valid_name(&name) {
            return Err(ToolDefinitionError::InvalidName(name));
        }
        if parameters.get("type") != Some(&Value::String("object".into())) {
            return Err(ToolDefinitionError::NotAnObjectSchema(name));
        }
        let definition = Arc::new(ToolDefinition {
            name,
            description: description.into(),
            parameters,
            strict_parameters: None,
        });
        let handler = move |ctx: RunContext<U>, arguments: Map<String, Value>| {
            f(ctx, arguments).map(IntoToolOutput::into_outcome).boxed()
        };
        Ok(FunctionTool {
            definition,
            flags: ToolFlags::NONE,
            handler: Arc::new(handler),
        })
    }

    /// The same tool with these flags.
    pub fn with_flags(mut self, flags: ToolFlags) -> Self {
        self.flags = flags;
        self
    }

    /// The same tool under another name (e.g. to avoid a clash).
    pub fn renamed(mut self, name: impl Into<String>) -> Self {
        let mut definition = (*self.definition).clone();
        definition.name = name.into();
        self.definition = Arc::new(definition);
        self
    }

    /// The same tool with `handler` as its implementation (the schema the model sees is kept).
    /// Used by tool mocks.
    pub fn with_handler<F, Fut, O>(mut self, f: F) -> Self
    where
        F: Fn(RunContext<U>, Map<String, Value>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = O> + Send + 'static,
        O: IntoToolOutput<U>,
    {
        self.handler = Arc::new(move |ctx, arguments| {
            f(ctx, arguments).map(IntoToolOutput::into_outcome).boxed()
        });
        self
    }

    pub(crate) fn with_shared_handler(mut self, handler: Arc<Handler<U>>) -> Self {
        self.handler = handler;
        self
    }

    /// The tool's name.
    pub fn name(&self) -> &str {
        &self.definition.name
    }

    /// What the model sees.
    pub fn definition(&self) -> &ToolDefinition {
        &self.definition
    }

    /// What the model sees, shared.
    pub fn shared_definition(&self) -> Arc<ToolDefinition> {
        self.definition.clone()
    }

    /// The tool's flags.
    pub fn flags(&self) -> ToolFlags {
        self.flags
    }

    /// Calls the tool with already-parsed arguments. Panics inside the tool are not caught
    /// here; the session runs each call in its own task and reports a panic as an internal
    /// error.
    pub fn call(
        &self,
        ctx: RunContext<U>,
        arguments: Map<String, Value>,
    ) -> BoxFuture<'static, ToolOutcome<U>> {
        (self.handler)(ctx, arguments)
    }
}

/// Agents build their tools each time they take control: the schemas (the costly part) are
/// derived once per arguments type, name and description, and shared.
fn cached_definition<A: JsonSchema + 'static>(
    name: String,
    description: String,
) -> Arc<ToolDefinition> {
    use std::any::TypeId;
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    type Key = (TypeId, String, String);
    static CACHE: OnceLock<Mutex<HashMap<Key, Arc<ToolDefinition>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let key = (TypeId::of::<A>(), name, description);
    if let Some(found) = cache.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
        return found.clone();
    }
    let parameters = parameters_schema::<A>();
    let definition = Arc::new(ToolDefinition {
        strict_parameters: Some(strict_schema(&parameters)),
        name: key.1.clone(),
        description: key.2.clone(),
        parameters,
    });
    cache
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(key, definition.clone());
    definition
}

fn decode_arguments<A: DeserializeOwned>(
    schema: &Value,
    arguments: Map<String, Value>,
) -> Result<A, String> {
    let mut value = Value::Object(arguments);
    schema::strip_nulls(&mut value);
    schema::check_bounds(schema, &value, "")?;
    let empty = value.as_object().is_some_and(Map::is_empty);
    match serde_path_to_error::deserialize::<_, A>(&value) {
        Ok(args) => Ok(args),
        // A tool whose arguments type is `()` gets `{}` from the model.
        Err(_) if empty && serde_json::from_value::<A>(Value::Null).is_ok() => {
            serde_json::from_value(Value::Null).map_err(|e| e.to_string())
        }
        Err(e) => {
            let path = e.path().to_string();
            let inner = e.into_inner();
            if path == "." || path.is_empty() {
                Err(inner.to_string())
            } else {
                Err(format!("`{path}`: {inner}"))
            }
        }
    }
}

#[cfg(test)]
mod tests;
