//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

use switchboard_replay::Reply;
pub use switchboard_replay::testkit::*;

pub const KEY: &str = "sk-test-SECRET-key-0123456789";

pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

pub fn sse(name: &str) -> Reply {
    Reply::sse_file(fixture(name))
}
