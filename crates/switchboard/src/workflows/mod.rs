//! Workflows built from tasks: [`TaskGroup`] and prebuilt collection tasks.

mod task_group;

pub use task_group::{StepCompleted, StepKey, TaskGroup, TaskGroupResults};
