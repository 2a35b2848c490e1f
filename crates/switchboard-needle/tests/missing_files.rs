//! Missing or wrong files give errors naming the file and the fix (no model needed).

mod common;

use switchboard_needle::{Needle, NeedleError, NeedleLlm, NeedlePaths};

#[test]
fn a_missing_library_is_named_with_the_fix() {
    let dir = common::temp_dir("empty");
    let error = NeedleLlm::load(&dir).unwrap_err();
    assert!(
        matches!(
            error,
            NeedleError::MissingFile {
                what: "libneedle3.so",
                ..
            }
        ),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(message.contains("libneedle3.so"), "{message}");
    assert!(message.contains(&dir.display().to_string()), "{message}");
    assert!(message.contains("scripts/setup.sh"), "{message}");
    assert!(message.contains("SWITCHBOARD_NEEDLE_LIBRARY"), "{message}");
}

#[test]
fn missing_weights_are_named_with_the_fix() {
    let dir = common::temp_dir("no-weights");
    std::fs::write(dir.join("libneedle3.so"), b"not a library").unwrap();
    let error = NeedleLlm::load(&dir).unwrap_err();
    assert!(
        matches!(
            error,
            NeedleError::MissingFile {
                what: "needle3.cact",
                ..
            }
        ),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(message.contains("needle3.cact"), "{message}");
    assert!(message.contains("scripts/setup.sh"), "{message}");
}

#[test]
fn a_wrong_file_fails_its_checksum_before_anything_is_loaded() {
    let dir = common::temp_dir("corrupt");
    std::fs::write(dir.join("libneedle3.so"), b"not a library").unwrap();
    std::fs::write(dir.join("needle3.cact"), b"not weights").unwrap();
    let error = NeedleLlm::load(&dir).unwrap_err();
    assert!(matches!(error, NeedleError::Checksum { .. }), "{error:?}");
    let message = error.to_string();
    assert!(message.contains("libneedle3.so"), "{message}");
    assert!(message.contains("scripts/setup.sh"), "{message}");
}

#[test]
fn a_library_that_is_not_one_is_an_error_not_a_crash() {
    let dir = common::temp_dir("not-elf");
    std::fs::write(dir.join("libneedle3.so"), b"not a library").unwrap();
    std::fs::write(dir.join("needle3.cact"), b"not weights").unwrap();
    let error = Needle::load(&NeedlePaths::in_dir(&dir), false).unwrap_err();
    assert!(matches!(error, NeedleError::Library { .. }), "{error:?}");
    assert!(error.to_string().contains("libneedle3.so"), "{error}");
}
