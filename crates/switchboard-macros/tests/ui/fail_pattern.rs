use switchboard::tool;

/// Move the cursor.
#[tool]
async fn move_to((x, y): (u32, u32)) -> u32 {
    x + y
}

fn main() {}
