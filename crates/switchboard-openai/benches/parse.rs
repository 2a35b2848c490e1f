//! Stream-parsing throughput: SSE decoding plus chunk parsing of a recorded answer held in
//! memory, delivered in 4 KiB pieces as a socket would. Run with
//! `cargo bench -p switchboard-openai --bench parse`.

use std::future::ready;

use divan::counter::ItemsCount;
use divan::{Bencher, black_box};
use futures::executor::block_on;
use futures::{StreamExt, stream};

fn main() {
    divan::main();
}

/// Events of a fixture, each with its blank line.
fn events(name: &str) -> Vec<String> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let body = std::fs::read_to_string(path).unwrap();
    body.split_inclusive("\n\n").map(str::to_owned).collect()
}

/// `repeat` copies of the fixture's middle events between its first and last `tail` events.
fn long_answer(name: &str, tail: usize, repeat: usize) -> (Vec<Vec<u8>>, usize) {
    let events = events(name);
    let (head, rest) = events.split_at(1);
    let (middle, end) = rest.split_at(rest.len() - tail);
    let mut body = head.concat();
    for _ in 0..repeat {
        body.push_str(&middle.concat());
    }
    body.push_str(&end.concat());
    let count = 1 + middle.len() * repeat + end.len();
    let pieces = body.as_bytes().chunks(4096).map(<[u8]>::to_vec).collect();
    (pieces, count)
}

type Input = stream::Iter<std::vec::IntoIter<Result<Vec<u8>, std::io::Error>>>;
type Parse = fn(&str, Input) -> switchboard::llm::LlmStream;

fn run(pieces: &[Vec<u8>], parse: Parse) -> usize {
    let input: Vec<Result<Vec<u8>, std::io::Error>> = pieces.iter().cloned().map(Ok).collect();
    block_on(
        parse("openai", stream::iter(input))
            .filter(|r| ready(r.is_ok()))
            .count(),
    )
}

/// Chat Completions: text and interleaved tool-call fragments (events per second).
#[divan::bench]
fn chat_completions(bencher: Bencher) {
    // Keep the finish, usage and [DONE] events at the end.
    let (pieces, events) = long_answer("chat_parallel_tools.sse", 3, 1000);
    assert!(run(&pieces, switchboard_openai::parse_chat_completions_stream) > events / 2);
    bencher.counter(ItemsCount::new(events)).bench(|| {
        black_box(run(
            &pieces,
            switchboard_openai::parse_chat_completions_stream,
        ))
    });
}

/// Responses API: typed events with item bookkeeping (events per second).
#[divan::bench]
fn responses(bencher: Bencher) {
    let (pieces, events) = long_answer("responses_text.sse", 6, 1000);
    bencher
        .counter(ItemsCount::new(events))
        .bench(|| black_box(run(&pieces, switchboard_openai::parse_responses_stream)));
}
