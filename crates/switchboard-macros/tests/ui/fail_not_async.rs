use switchboard::tool;

/// Look up the opening hours.
#[tool]
fn get_hours(day: String) -> String {
    day
}

fn main() {}
