//! Paths from the environment. Its own test binary: it sets variables, which must not race
//! with other tests reading the environment.

use std::path::Path;

use switchboard_needle::{NeedleError, NeedlePaths};

#[test]
fn paths_come_from_the_variables_then_the_cache() {
    // SAFETY: the only test of this binary; no other thread reads the environment.
    unsafe {
        std::env::set_var("SWITCHBOARD_NEEDLE_DIR", "/opt/needle");
        std::env::set_var("SWITCHBOARD_NEEDLE_WEIGHTS", "/data/tuned.cact");
        std::env::remove_var("SWITCHBOARD_NEEDLE_LIBRARY");
    }
    let paths = NeedlePaths::from_env().unwrap();
    assert_eq!(paths.library, Path::new("/opt/needle/libneedle3.so"));
    assert_eq!(paths.weights, Path::new("/data/tuned.cact"));

    // SAFETY: as above.
    unsafe {
        std::env::remove_var("SWITCHBOARD_NEEDLE_DIR");
        std::env::remove_var("SWITCHBOARD_NEEDLE_WEIGHTS");
        std::env::set_var("SWITCHBOARD_CACHE", "/var/cache/sb");
    }
    let paths = NeedlePaths::from_env().unwrap();
    assert_eq!(
        paths.library,
        Path::new("/var/cache/sb/needle3/libneedle3.so")
    );
    assert_eq!(
        paths.weights,
        Path::new("/var/cache/sb/needle3/needle3.cact")
    );

    // SAFETY: as above.
    unsafe {
        std::env::remove_var("SWITCHBOARD_CACHE");
        std::env::remove_var("HOME");
    }
    let error = NeedlePaths::from_env().unwrap_err();
    assert!(matches!(error, NeedleError::NotConfigured), "{error:?}");
    assert!(error.to_string().contains("scripts/setup.sh"), "{error}");
}
