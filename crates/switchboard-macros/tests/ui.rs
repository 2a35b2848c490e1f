//! Compile tests: generated code builds cleanly in a crate that depends only on `switchboard`
//! (under `#![deny(warnings)]`), and misuse gives clear errors.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass_*.rs");
    t.compile_fail("tests/ui/fail_*.rs");
}
