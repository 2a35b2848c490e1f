//! [`TaskGroup`]: ordered steps, each a task, with going back to an earlier step.

use std::any::{Any, TypeId};
use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Value, json};

use crate::chat::{ChatContext, SummarizeOptions};
use crate::session::agent_ref::AgentRef;
use crate::session::{
    Agent, AgentContext, AgentTask, ErrorSource, RunContext, TaskError, TaskOptions,
};
use crate::tools::{FunctionTool, ToolError, ToolFlags};

/// A typed handle on one step's result; returned by [`TaskGroup::add`].
pub struct StepKey<T> {
    id: String,
    _output: PhantomData<fn() -> T>,
}

impl<T> StepKey<T> {
    /// The step's id.
    pub fn id(&self) -> &str {
        &self.id
    }
}

impl<T> Clone for StepKey<T> {
    fn clone(&self) -> Self {
        StepKey {
            id: self.id.clone(),
            _output: PhantomData,
        }
    }
}

impl<T> fmt::Debug for StepKey<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StepKey({})", self.id)
    }
}

/// What a task group collected: read each step's result with its [`StepKey`].
#[derive(Default)]
pub struct TaskGroupResults {
    values: HashMap<String, Result<Box<dyn Any + Send>, TaskError>>,
    skipped: HashSet<String>,
}

impl fmt::Debug for TaskGroupResults {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ids: Vec<_> = self.values.keys().collect();
        ids.sort();
        f.debug_struct("TaskGroupResults")
            .field("steps", &ids)
            .field("skipped", &self.skipped)
            .finish()
    }
}

impl TaskGroupResults {
    /// The step's value, if it completed.
    pub fn get<T: 'static>(&self, key: &StepKey<T>) -> Option<&T> {
        match self.values.get(&key.id) {
            Some(Ok(value)) => value.downcast_ref::<T>(),
            _ => None,
        }
    }

    /// The step's error, if it failed (only kept with `return_exceptions`).
    pub fn error<T>(&self, key: &StepKey<T>) -> Option<&TaskError> {
        match self.values.get(&key.id) {
            Some(Err(e)) => Some(e),
            _ => None,
        }
    }

    /// True when the step was skipped by its predicate.
    pub fn was_skipped<T>(&self, key: &StepKey<T>) -> bool {
        self.skipped.contains(&key.id)
    }

    /// True when the step has a value or an error.
    pub fn contains<T>(&self, key: &StepKey<T>) -> bool {
        self.values.contains_key(&key.id)
    }
}

/// Passed to [`TaskGroup::on_step_completed`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepCompleted {
    /// The step's id.
    pub step_id: String,
    /// True when it completed with an error kept by `return_exceptions`.
    pub failed: bool,
}

type Factory<U> = Arc<dyn Fn() -> AgentRef<U> + Send + Sync>;
type SkipIf = Arc<dyn Fn(&TaskGroupResults) -> bool + Send + Sync>;
type StepCallback = Arc<dyn Fn(&StepCompleted) + Send + Sync>;

struct Step<U: Send + 'static> {
    id: String,
    description: String,
    factory: Factory<U>,
    output_type: TypeId,
    output_type_name: &'static str,
    skip_if: Option<SkipIf>,
    depends_on: Vec<String>,
}

/// Runs tasks in order; from the second step on the model can go back to an earlier step
/// (that step re-runs, then the interrupted one). Itself a task: await it with
/// [`AgentContext::run_task`]; its output is the [`TaskGroupResults`].
///
/// ```
/// use switchboard::workflows::{TaskGroup, GetEmailTask, GetNameTask};
///
/// let mut group: TaskGroup = TaskGroup::new();
/// let name = group.add("name", "the caller's name", GetNameTask::default);
/// let email = group.add("email", "the caller's email address", GetEmailTask::default);
/// group.depends_on(&email, &name); // going back to the name asks for the email again
/// // let results = ctx.run_task(group).await?;
/// // let email: &GetEmailResult = results.get(&email).unwrap();
/// # let _ = (name, email);
/// ```
pub struct TaskGroup<U: Send + 'static = ()> {
    steps: Vec<Step<U>>,
    summarize: bool,
    return_exceptions: bool,
    chat_ctx: ChatContext,
    on_step_completed: Option<StepCallback>,
}

impl<U: Send + 'static> Default for TaskGroup<U> {
    fn default() -> Self {
        Self::new()
    }
}

impl<U: Send + 'static> TaskGroup<U> {
    /// An empty group that summarises its conversation when done.
    pub fn new() -> Self {
        TaskGroup {
            steps: Vec::new(),
            summarize: true,
            return_exceptions: false,
            chat_ctx: ChatContext::new(),
            on_step_completed: None,
        }
    }

    /// Adds a step. `factory` builds a fresh task each time the step runs. Re-using an id
    /// replaces that step's task, keeping its place.
    pub fn add<T, F>(
        &mut self,
        id: impl Into<String>,
        description: impl Into<String>,
        factory: F,
    ) -> StepKey<T::Output>
    where
        T: AgentTask<U>,
        F: Fn() -> T + Send + Sync + 'static,
    {
        let id = id.into();
        let step = Step {
            id: id.clone(),
            description: description.into(),
            factory: Arc::new(move || AgentRef::new(factory())),
            output_type: TypeId::of::<T::Output>(),
            output_type_name: std::any::type_name::<T::Output>(),
            skip_if: None,
            depends_on: Vec::new(),
        };
        match self.steps.iter_mut().find(|s| s.id == id) {
            Some(existing) => *existing = step,
            None => self.steps.push(step),
        }
        StepKey {
            id,
            _output: PhantomData,
        }
    }

    /// Skips the step when `predicate` holds over the results collected before it.
    pub fn skip_if<T>(
        &mut self,
        key: &StepKey<T>,
        predicate: impl Fn(&TaskGroupResults) -> bool + Send + Sync + 'static,
    ) {
        if let Some(step) = self.steps.iter_mut().find(|s| s.id == key.id) {
            step.skip_if = Some(Arc::new(predicate));
        }
    }

    /// Declares that `step` depends on `on`: when the user goes back to `on`, `step` re-runs
    /// too (if it had completed).
    pub fn depends_on<A, B>(&mut self, step: &StepKey<A>, on: &StepKey<B>) {
        if let Some(s) = self.steps.iter_mut().find(|s| s.id == step.id)
            && !s.depends_on.contains(&on.id)
        {
            s.depends_on.push(on.id.clone());
        }
    }

    /// Whether the group's conversation is summarised into one message when it completes
    /// (default true; uses the session's model).
    pub fn with_summary(mut self, summarize: bool) -> Self {
        self.summarize = summarize;
        self
    }

    /// Keep going when a step fails, storing its error as its result (default false: the
    /// group fails with the step's error).
    pub fn with_return_exceptions(mut self, return_exceptions: bool) -> Self {
        self.return_exceptions = return_exceptions;
        self
    }

    /// The context the group (and so its first step) starts with.
    pub fn with_chat_ctx(mut self, ctx: ChatContext) -> Self {
        self.chat_ctx = ctx;
        self
    }

    /// Called after each step completes.
    pub fn on_step_completed(mut self, f: impl Fn(&StepCompleted) + Send + Sync + 'static) -> Self {
        self.on_step_completed = Some(Arc::new(f));
        self
    }

    fn index_of(&self, id: &str) -> Option<usize> {
        self.steps.iter().position(|s| s.id == id)
    }

    /// The tool that lets the model go back to one of `visited` (ids other than the current).
    fn go_back_tool(&self, visited: &[String], current: &str) -> Option<FunctionTool<U>> {
        let targets: Vec<&Step<U>> = visited
            .iter()
            .filter(|id| id.as_str() != current)
            .filter_map(|id| self.steps.iter().find(|s| &s.id == id))
            .collect();
        if targets.is_empty() {
            return None;
        }
        let listing = targets
            .iter()
            .map(|s| format!("{}: {}", s.id, s.description))
            .collect::<Vec<_>>()
            .join("; ");
        let ids: Vec<String> = targets.iter().map(|s| s.id.clone()).collect();
        let schema = json!({
            "type": "object",
            "properties": {
                "task_ids": {
                    "type": "array",
                    "description": "The steps to go back to, in the order to redo them.",
                    "items": {"type": "string", "enum": ids},
                    "minItems": 1
                }
            },
            "required": ["task_ids"],
            "additionalProperties": false
        });
        let allowed: Arc<HashSet<String>> = Arc::new(ids.iter().cloned().collect());
        let description = format!(
            "Call when the user wants to change something collected in an earlier step. Earlier steps: {listing}."
        );
        FunctionTool::raw(
            "out_of_scope",
            description,
            schema,
            move |ctx: RunContext<U>, args| {
                let allowed = allowed.clone();
                async move {
                    let requested: Vec<String> = match args.get("task_ids") {
                        Some(Value::Array(items)) => items
                            .iter()
                            .map(|v| v.as_str().unwrap_or_default().to_owned())
                            .collect(),
                        _ => return Err(ToolError::new("`task_ids` must be a list of step ids")),
                    };
                    if requested.is_empty() {
                        return Err(ToolError::new("`task_ids` must name at least one step"));
                    }
                    if let Some(bad) = requested.iter().find(|id| !allowed.contains(*id)) {
                        return Err(ToolError::new(format!(
                            "unable to go back, invalid step id {bad:?}"
                        )));
                    }
                    ctx.fail(TaskError::GoBack(requested)).await?;
                    Ok(())
                }
            },
        )
        .ok()
        .map(|t| t.with_flags(ToolFlags::IGNORE_ON_ENTER))
    }
}

#[async_trait]
impl<U: Send + 'static> Agent<U> for TaskGroup<U> {
    fn id(&self) -> String {
        "task_group".into()
    }

    fn instructions(&self) -> String {
        "Collect the information of each step in order.".into()
    }

    fn chat_ctx(&self) -> ChatContext {
        self.chat_ctx.clone()
    }

    async fn on_enter(&self, ctx: AgentContext<U>) -> crate::Result<()> {
        let mut results = TaskGroupResults::default();
        let mut visited: Vec<String> = Vec::new();
        let mut queue: VecDeque<usize> = (0..self.steps.len()).collect();
        while let Some(index) = queue.pop_front() {
            let step = &self.steps[index];
            if let Some(skip) = &step.skip_if
                && skip(&results)
            {
                results.skipped.insert(step.id.clone());
                continue;
            }
            results.skipped.remove(&step.id);
            let extra_tools: Vec<FunctionTool<U>> =
                self.go_back_tool(&visited, &step.id).into_iter().collect();
            if !visited.contains(&step.id) {
                visited.push(step.id.clone());
            }
            let group_ctx = ctx.chat_ctx().await?;
            let outcome = ctx
                .run_task_erased(
                    (step.factory)(),
                    step.output_type,
                    step.output_type_name,
                    true,
                    TaskOptions {
                        chat_ctx: Some(group_ctx),
                        extra_tools,
                    },
                )
                .await;
            match outcome {
                Ok(value) => {
                    results.values.insert(step.id.clone(), Ok(value));
                    self.step_completed(&step.id, false);
                }
                Err(TaskError::GoBack(ids)) => {
                    let mut front: Vec<usize> =
                        ids.iter().filter_map(|id| self.index_of(id)).collect();
                    // Completed steps that depend on a step being redone are redone after it.
                    for (i, s) in self.steps.iter().enumerate() {
                        if i != index
                            && !front.contains(&i)
                            && results.values.contains_key(&s.id)
                            && s.depends_on.iter().any(|d| ids.contains(d))
                        {
                            front.push(i);
                        }
                    }
                    front.push(index);
                    for i in &front {
                        results.values.remove(&self.steps[*i].id);
                        queue.retain(|q| q != i);
                    }
                    for i in front.into_iter().rev() {
                        queue.push_front(i);
                    }
                }
                Err(TaskError::SessionClosed) => return Ok(()),
                Err(error) if self.return_exceptions => {
                    results.values.insert(step.id.clone(), Err(error));
                    self.step_completed(&step.id, true);
                }
                Err(error) => {
                    ctx.fail(error).await?;
                    return Ok(());
                }
            }
        }
        if self.summarize {
            let llm = ctx.session().session_llm().await;
            let mut group_ctx = ctx.chat_ctx().await?;
            let summarized = match llm {
                Some(llm) => group_ctx
                    .summarize(llm.as_ref(), &SummarizeOptions::default())
                    .await
                    .map_err(|e| e.to_string()),
                None => Err("the session has no LLM".to_owned()),
            };
            match summarized {
                Ok(_) => ctx.update_chat_ctx(group_ctx).await?,
                Err(message) => {
                    ctx.session().report_error(
                        ErrorSource::Llm,
                        format!(
                            "task group summary failed, keeping the full conversation: {message}"
                        ),
                    );
                }
            }
        }
        ctx.complete(results).await?;
        Ok(())
    }
}

impl<U: Send + 'static> TaskGroup<U> {
    fn step_completed(&self, id: &str, failed: bool) {
        if let Some(callback) = &self.on_step_completed {
            callback(&StepCompleted {
                step_id: id.to_owned(),
                failed,
            });
        }
    }
}

impl<U: Send + 'static> AgentTask<U> for TaskGroup<U> {
    type Output = TaskGroupResults;
}
