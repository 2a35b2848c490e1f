//! Feeds arbitrary bytes, read as UTF-8 (lossily), to the tool-arguments parser.
//! It must never panic, and the canonical JSON of whatever it accepts must
//! parse back as an object. (Not compared value for value: serde_json's default
//! float parsing may differ from the printed float in the last bit.)

#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard::tools::parse_arguments;

fuzz_target!(|data: &[u8]| {
    let raw = String::from_utf8_lossy(data);
    if let Ok(parsed) = parse_arguments(&raw) {
        let reparsed =
            serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&parsed.canonical);
        assert!(
            reparsed.is_ok(),
            "canonical JSON does not parse: {}",
            parsed.canonical
        );
        assert_eq!(reparsed.map(|m| m.len()).ok(), Some(parsed.object.len()));
    }
});
