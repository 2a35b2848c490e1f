use switchboard::tool;

/// Count things.
#[tool]
async fn count(items: Vec<String>) -> usize {
    items.len()
}

fn main() {}
