//! The setup check of the tests that need the real Needle files.

#![allow(dead_code)]

#[path = "../../../../tests-support/setup.rs"]
mod setup;

use std::path::PathBuf;
use std::sync::OnceLock;

use switchboard_needle::NeedlePaths;

/// `libneedle3.so` and `needle3.cact`, installed by `scripts/setup.sh` if they are not.
pub fn ensure_setup() -> NeedlePaths {
    static SETUP: OnceLock<Result<NeedlePaths, String>> = OnceLock::new();
    setup::ensure_installed(&SETUP, "Needle", || {
        let paths = NeedlePaths::from_env().map_err(|e| e.to_string())?;
        paths.check().map_err(|e| e.to_string())?;
        Ok(paths)
    })
}

/// A fresh temporary directory for one test.
pub fn temp_dir(name: &str) -> PathBuf {
    setup::temp_dir("switchboard-needle", name)
}
