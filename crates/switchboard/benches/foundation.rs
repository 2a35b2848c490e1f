//! Micro-benchmarks of the foundation layer: schema generation and tool-argument handling.
//!
//! Run with `cargo bench -p switchboard --bench foundation`.

use divan::{Bencher, black_box};
use serde::Deserialize;
use switchboard::tools::{parameters_schema, parse_arguments, strict_schema};

fn main() {
    divan::main();
}

/// A typical five-field tool argument struct.
#[allow(dead_code)]
#[derive(Deserialize, schemars::JsonSchema)]
struct BookArgs {
    /// The guest's full name.
    #[schemars(length(min = 2, max = 80))]
    name: String,
    /// How many people, 1 to 12.
    #[schemars(range(min = 1, max = 12))]
    party_size: u8,
    /// The day, as an ISO date.
    date: String,
    /// Seating preference.
    seating: Option<Seating>,
    /// Anything the restaurant should know.
    #[serde(default)]
    notes: Vec<String>,
}

#[allow(dead_code)]
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
enum Seating {
    Indoor,
    Terrace,
    Bar,
}

const VALID: &str = r#"{"name": "Ada Lovelace", "party_size": 4, "date": "2026-09-01", "seating": "terrace", "notes": ["birthday"]}"#;

/// The same object cut off mid-stream, with single quotes and a leaked template token: takes
/// the repair path.
const TRUNCATED: &str =
    r#"{'name': 'Ada Lovelace', 'party_size': 4, 'date': '2026-09-01', 'seating': 'terr<|im_end|>"#;

#[divan::bench]
fn parameters_schema_5_fields() -> serde_json::Value {
    parameters_schema::<BookArgs>()
}

#[divan::bench]
fn parameters_and_strict_schema_5_fields() -> (serde_json::Value, serde_json::Value) {
    let parameters = parameters_schema::<BookArgs>();
    let strict = strict_schema(&parameters);
    (parameters, strict)
}

#[divan::bench]
fn strict_schema_only(bencher: Bencher) {
    let parameters = parameters_schema::<BookArgs>();
    bencher.bench_local(|| strict_schema(black_box(&parameters)));
}

#[divan::bench]
fn parse_arguments_valid() -> usize {
    let parsed = parse_arguments(black_box(VALID)).expect("valid arguments");
    assert!(!parsed.repaired);
    parsed.object.len()
}

#[divan::bench]
fn parse_arguments_repaired() -> usize {
    let parsed = parse_arguments(black_box(TRUNCATED)).expect("repairable arguments");
    assert!(parsed.repaired);
    parsed.object.len()
}

/// The typed decode a `FunctionTool` does after parsing (its own decoding path is private, so
/// this is the `serde_json` step it is built on).
#[divan::bench]
fn decode_typed_from_parsed_object(bencher: Bencher) {
    let object = parse_arguments(VALID).expect("valid arguments").object;
    // The clone of the input is made outside the timed section.
    bencher
        .with_inputs(|| serde_json::Value::Object(object.clone()))
        .bench_values(|value| serde_json::from_value::<BookArgs>(value).expect("typed arguments"));
}

/// Raw string to typed struct: parse (strict path) then decode.
#[divan::bench]
fn parse_and_decode_typed() -> BookArgs {
    let parsed = parse_arguments(black_box(VALID)).expect("valid arguments");
    serde_json::from_value(serde_json::Value::Object(parsed.object)).expect("typed arguments")
}
