//! The engine's life in one process: corrupt weights are rejected, the real ones load
//! afterwards, and raw completions re-initialise only when the tools change. (Its own test
//! binary with one test: the engine is loaded once per process and holds global state.)

mod common;

use switchboard_needle::{Needle, NeedleError, NeedlePaths, parse_output};

#[test]
fn one_engine_per_process_from_corrupt_weights_to_raw_completions() {
    let paths = common::ensure_setup();
    let dir = common::temp_dir("bad-weights");
    std::os::unix::fs::symlink(&paths.library, dir.join("libneedle3.so")).unwrap();
    std::fs::write(dir.join("needle3.cact"), vec![7u8; 4096]).unwrap();
    let bad = NeedlePaths::in_dir(&dir);

    let error = Needle::load(&bad, true).unwrap_err();
    assert!(matches!(error, NeedleError::Checksum { .. }), "{error:?}");
    assert!(error.to_string().contains("needle3.cact"), "{error}");

    // Without the checksum the engine itself says no.
    let error = Needle::load(&bad, false).unwrap_err();
    assert!(matches!(error, NeedleError::Weights { .. }), "{error:?}");
    let message = error.to_string();
    assert!(
        message.contains("needle3.cact") && message.contains("rejected"),
        "{message}"
    );
    assert!(Needle::loaded().is_none());

    let needle = Needle::load(&paths, true).expect("the real weights load after a failure");
    let tools = r#"[{"name":"get_hours","description":"Return the clinic's opening hours.","parameters":{"type":"object","properties":{}}}]"#;
    let offered = ["get_hours"];
    // No tokio runtime here: `complete` is a plain blocking call.
    let first = needle
        .complete("", tools, "When are you open?", 128)
        .unwrap();
    assert!(first.reinitialized);
    assert!(first.prefix_tokens > 0 && first.generated_tokens > 0);
    let again = needle
        .complete("", tools, "When are you open?", 128)
        .unwrap();
    assert!(!again.reinitialized, "same tools: no needle_init");
    let (a, b) = (
        parse_output(&first.raw, &offered).unwrap(),
        parse_output(&again.raw, &offered).unwrap(),
    );
    assert_eq!(a, b, "stateless: the same question gets the same answer");
    assert_eq!(a.calls.len(), 1, "{}", first.raw);
    assert_eq!(a.calls[0].name, "get_hours");
    // Other system facts: needle_init again.
    let dated = needle
        .complete("date: 2026-12-05 Sat", tools, "When are you open?", 128)
        .unwrap();
    assert!(dated.reinitialized);
    assert!(dated.prefix_tokens > first.prefix_tokens);
    // A NUL byte cannot cross the C ABI.
    let error = needle.complete("", tools, "a\0b", 128).unwrap_err();
    assert!(
        matches!(error, NeedleError::Nul { what: "text" }),
        "{error:?}"
    );
    // Async: off the runtime's threads, same answer.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let asynchronous = runtime
        .block_on(needle.complete_async(
            String::new(),
            tools.into(),
            "When are you open?".into(),
            128,
        ))
        .unwrap();
    assert_eq!(parse_output(&asynchronous.raw, &offered).unwrap(), a);
}
