//! Stream-parsing throughput: SSE decoding plus event parsing of a recorded answer held in
//! memory, delivered in 4 KiB pieces as a socket would. Run with
//! `cargo bench -p switchboard-anthropic --bench parse`.

use std::future::ready;

use divan::counter::ItemsCount;
use divan::{Bencher, black_box};
use futures::executor::block_on;
use futures::{StreamExt, stream};

fn main() {
    divan::main();
}

/// The tool-use fixture with its text and JSON fragments repeated: `message_start`, a text
/// block of `repeat` deltas, a tool block of `repeat` fragments, the stop events.
fn long_answer(repeat: usize) -> (Vec<Vec<u8>>, usize) {
    let path = format!("{}/tests/fixtures/tool_use.sse", env!("CARGO_MANIFEST_DIR"));
    let body = std::fs::read_to_string(path).unwrap();
    let events: Vec<&str> = body.split_inclusive("\n\n").collect();
    // 0 message_start, 1 text start, 2 text delta, 3 text stop, 4 tool start, 5 empty
    // fragment, 6 fragment, 7 ping, 8..9 fragments, 10 tool stop, 11.. second tool, stop events.
    let mut out = String::new();
    let mut count = 0;
    let mut push = |event: &str, out: &mut String| {
        out.push_str(event);
        count += 1;
    };
    push(events[0], &mut out);
    push(events[1], &mut out);
    for _ in 0..repeat {
        push(events[2], &mut out);
    }
    push(events[3], &mut out);
    push(events[4], &mut out);
    for _ in 0..repeat {
        push(events[6], &mut out);
    }
    for event in &events[10..] {
        push(event, &mut out);
    }
    let pieces = out.as_bytes().chunks(4096).map(<[u8]>::to_vec).collect();
    (pieces, count)
}

fn run(pieces: &[Vec<u8>]) -> usize {
    let input: Vec<Result<Vec<u8>, std::io::Error>> = pieces.iter().cloned().map(Ok).collect();
    let parsed = switchboard_anthropic::parse_messages_stream("anthropic", stream::iter(input));
    block_on(parsed.filter(|r| ready(r.is_ok())).count())
}

/// Messages API: text deltas and `input_json_delta` fragments (events per second).
#[divan::bench]
fn messages(bencher: Bencher) {
    let (pieces, events) = long_answer(1000);
    assert!(run(&pieces) >= 2000);
    bencher
        .counter(ItemsCount::new(events))
        .bench(|| black_box(run(&pieces)));
}
