//! Example workflows.
