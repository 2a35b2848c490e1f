//! Where the local models live: the set-up cache that `scripts/setup.sh` fills and every
//! local-model crate (Silero, Whisper, Piper, llama.cpp, Needle) reads.

use std::path::PathBuf;

/// Overrides the cache directory.
pub const CACHE_ENV: &str = "SWITCHBOARD_CACHE";

/// The set-up cache: [`CACHE_ENV`] when set, else `$HOME/.cache/switchboard`; `None` when
/// neither is set.
///
/// ```
/// let dir = switchboard::cache::cache_dir();
/// assert!(dir.is_none() || dir.unwrap().is_absolute() || std::env::var_os("SWITCHBOARD_CACHE").is_some());
/// ```
pub fn cache_dir() -> Option<PathBuf> {
    path_var(CACHE_ENV).or_else(|| {
        std::env::var_os("HOME")
            .filter(|v| !v.is_empty())
            .map(|home| PathBuf::from(home).join(".cache/switchboard"))
    })
}

/// The path in environment variable `name`; `None` when it is unset or empty (an empty
/// variable means "not set", as in a shell's `FOO= cmd`).
///
/// ```
/// assert_eq!(switchboard::cache::path_var("SWITCHBOARD_SURELY_UNSET_VARIABLE"), None);
/// ```
pub fn path_var(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}
