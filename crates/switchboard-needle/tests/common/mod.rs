//! The setup check of the tests that need the real Needle files.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use switchboard_needle::NeedlePaths;

/// The workspace's set-up script (`SWITCHBOARD_SETUP_SCRIPT` overrides).
fn setup_script() -> PathBuf {
    if let Some(path) = std::env::var_os("SWITCHBOARD_SETUP_SCRIPT") {
        return PathBuf::from(path);
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/setup.sh")
}

/// Makes sure `libneedle3.so` and `needle3.cact` are installed, running `scripts/setup.sh`
/// once if they are not. Panics with what to do when that fails: these tests never pass
/// silently without their inputs.
pub fn ensure_setup() -> NeedlePaths {
    static SETUP: OnceLock<Result<NeedlePaths, String>> = OnceLock::new();
    SETUP
        .get_or_init(|| {
            let paths = NeedlePaths::from_env().map_err(|e| e.to_string())?;
            if paths.check().is_ok() {
                return Ok(paths);
            }
            let script = setup_script();
            eprintln!(
                "Needle files missing ({} / {}); running {}",
                paths.library.display(),
                paths.weights.display(),
                script.display()
            );
            match Command::new("bash").arg(&script).status() {
                Ok(s) if s.success() && paths.check().is_ok() => Ok(paths),
                Ok(s) => Err(format!(
                    "scripts/setup.sh exited with {s}, or did not install {} / {}",
                    paths.library.display(),
                    paths.weights.display()
                )),
                Err(e) => Err(format!("cannot run {}: {e}", script.display())),
            }
        })
        .clone()
        .unwrap_or_else(|e| {
            panic!("the Needle tests need the set-up cache: {e}. Run `bash scripts/setup.sh`.")
        })
}

/// A fresh temporary directory for one test.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("switchboard-needle-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create a temp dir");
    dir
}
