use switchboard::{agent, tool};

struct NoInstructions;

#[agent]
impl NoInstructions {}

struct Counter;

#[agent(instructions = "count", color = "blue")]
impl Counter {}

struct Mutating;

#[agent(instructions = "mutate")]
impl Mutating {
    /// Increment.
    #[tool]
    async fn increment(&mut self, by: u32) -> u32 {
        by
    }

    /// Borrowed text.
    #[tool(name = "bad name!")]
    async fn shout(&self, text: &str) -> String {
        text.to_uppercase()
    }
}

/// Not a function.
#[tool]
struct NotAFunction;

fn main() {}

struct Twice;

#[agent(instructions = "twice")]
impl Twice {
    /// One.
    #[tool(name = "same")]
    async fn one(&self) {}

    /// Two.
    #[tool(name = "same")]
    async fn two(&self) {}
}
