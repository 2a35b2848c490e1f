//! Set-up helpers shared by the model crates' tests, included in each crate's
//! `tests/common/mod.rs` with `#[path]` (a file, not a crate: nothing to publish or version).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The workspace's set-up script (`SWITCHBOARD_SETUP_SCRIPT` overrides).
pub fn setup_script() -> PathBuf {
    if let Some(path) = std::env::var_os("SWITCHBOARD_SETUP_SCRIPT") {
        return PathBuf::from(path);
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/setup.sh")
}

/// True when `espeak-ng` runs.
pub fn espeak_available() -> bool {
    Command::new("espeak-ng")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// What a test binary needs, found once: `find` returns it when everything is installed, else
/// what is missing. When something is, `scripts/setup.sh` runs once and `find` is asked
/// again. Panics with what to do when that fails: the tests never pass silently without
/// their inputs.
pub fn ensure_installed<T: Clone>(
    cell: &'static OnceLock<Result<T, String>>,
    what: &str,
    find: impl Fn() -> Result<T, String>,
) -> T {
    cell.get_or_init(|| {
        let missing = match find() {
            Ok(found) => return Ok(found),
            Err(missing) => missing,
        };
        let script = setup_script();
        eprintln!("{what}: {missing}; running {}", script.display());
        match Command::new("bash").arg(&script).status() {
            Ok(status) => find().map_err(|still| {
                format!(
                    "{} exited with {status}, and still {still}",
                    script.display()
                )
            }),
            Err(e) => Err(format!("cannot run {}: {e}", script.display())),
        }
    })
    .clone()
    .unwrap_or_else(|e| {
        panic!("the {what} tests need the set-up cache: {e}. Run `bash scripts/setup.sh`.")
    })
}

/// A fresh temporary directory for one test of `krate`.
pub fn temp_dir(krate: &str, name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("{krate}-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create a temp dir");
    dir
}

/// `Ok(())` when `path` is a file, else what is missing.
pub fn file(path: &Path) -> Result<(), String> {
    if path.is_file() {
        Ok(())
    } else {
        Err(format!("{} is missing", path.display()))
    }
}

/// `Ok(())` when espeak-ng runs, else what is missing.
pub fn espeak() -> Result<(), String> {
    if espeak_available() {
        Ok(())
    } else {
        Err("espeak-ng does not run".to_owned())
    }
}
