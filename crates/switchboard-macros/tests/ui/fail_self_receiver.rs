use switchboard::tool;

struct FrontDesk;

impl FrontDesk {
    /// Book an appointment.
    #[tool]
    async fn book(&self, date: String) -> String {
        date
    }
}

fn main() {
    let _ = FrontDesk;
}
