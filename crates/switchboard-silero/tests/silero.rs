//! Loading checks, error reporting, batching and state handling of the Silero model.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use switchboard::voice::audio::AudioFrame;
use switchboard::voice::vad::{VadError, VadModel, VadOptions};
use switchboard_silero::{
    MODEL_SHA256, SileroError, SileroOptions, SileroPaths, SileroVad, ort_environment, sha256_file,
};

use common::*;

/// Deterministic pseudo-speech: a few harmonics with a varying envelope.
fn voiced(n: usize, seed: f32) -> Vec<f32> {
    (0..n)
        .map(|i| {
            let t = i as f32 / 16_000.0;
            let f0 = 120.0 + 30.0 * seed;
            let env = 0.5 + 0.5 * (2.0 * std::f32::consts::PI * 3.0 * t).sin().abs();
            env * (0..5)
                .map(|h| {
                    (2.0 * std::f32::consts::PI * f0 * (h + 1) as f32 * t).sin() / (h + 1) as f32
                })
                .sum::<f32>()
                * 0.2
        })
        .collect()
}

#[test]
fn missing_files_name_the_file_and_the_fix() {
    let paths = ensure_setup();
    let err = SileroVad::load("/nonexistent/silero_vad.onnx", &paths.ort_dylib).unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, SileroError::MissingFile { .. }), "{err:?}");
    assert!(
        message.contains("/nonexistent/silero_vad.onnx"),
        "{message}"
    );
    assert!(message.contains("scripts/setup.sh"), "{message}");
    assert!(message.contains("SWITCHBOARD_SILERO_MODEL"), "{message}");
    let err = SileroVad::load(&paths.model, "/nonexistent/libonnxruntime.so").unwrap_err();
    assert!(
        err.to_string()
            .contains("ONNX Runtime library not found at /nonexistent/libonnxruntime.so"),
        "{err}"
    );
}

#[test]
fn a_corrupt_model_fails_its_checksum_before_loading() {
    let paths = ensure_setup();
    assert_eq!(sha256_file(&paths.model).unwrap(), MODEL_SHA256);
    let dir = temp_dir("checksum");
    let copy = dir.join("silero_vad.onnx");
    let mut bytes = std::fs::read(&paths.model).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&copy, &bytes).unwrap();
    let err = SileroVad::load(&copy, &paths.ort_dylib).unwrap_err();
    match &err {
        SileroError::Checksum {
            expected,
            actual,
            path,
            ..
        } => {
            assert_eq!(expected, MODEL_SHA256);
            assert_ne!(actual, MODEL_SHA256);
            assert_eq!(path, &copy);
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("scripts/setup.sh"));
    // Without the checksum, ONNX Runtime gets to parse the damaged file; whatever it says,
    // it is an error or a model, never a crash. A truncated file is rejected outright.
    std::fs::write(&copy, &bytes[..1_000]).unwrap();
    let options = SileroOptions {
        verify_checksums: false,
        ..SileroOptions::default()
    };
    let err = SileroVad::load_with(&copy, &paths.ort_dylib, options).unwrap_err();
    assert!(matches!(err, SileroError::Model { .. }), "{err:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_second_runtime_library_is_refused() {
    let paths = ensure_setup();
    ort_environment(&paths.ort_dylib).unwrap();
    let dir = temp_dir("second-ort");
    let other = dir.join("libonnxruntime.so.1.32.0");
    std::fs::copy(&paths.ort_dylib, &other).unwrap();
    let err = ort_environment(&other).unwrap_err();
    assert!(matches!(err, SileroError::AlreadyLoaded { .. }), "{err:?}");
    // The same library again is fine (the environment is shared).
    ort_environment(&paths.ort_dylib).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn paths_follow_the_setup_cache_convention() {
    let paths = SileroPaths::in_cache(Path::new("/cache"));
    assert_eq!(
        paths.model,
        Path::new("/cache/silero-vad-6.2.3/silero_vad.onnx")
    );
    assert_eq!(
        paths.ort_dylib,
        Path::new("/cache/onnxruntime-1.32.0/libonnxruntime.so.1.32.0")
    );
    // `from_env` resolves (environment variables or the cache) without touching the files.
    assert!(SileroPaths::from_env().is_ok());
}

#[test]
fn non_finite_samples_are_treated_as_silence() {
    let paths = ensure_setup();
    let model = SileroVad::load(&paths.model, &paths.ort_dylib).unwrap();
    let speech = voiced(512 * 6, 0.0);
    let mut clean = speech.clone();
    let mut dirty = speech.clone();
    for i in [5, 700, 1_500, 3_000] {
        clean[i] = 0.0;
        dirty[i] = if i % 2 == 0 { f32::NAN } else { f32::INFINITY };
    }
    let mut a = model.new_stream_state(16_000).unwrap();
    let mut b = model.new_stream_state(16_000).unwrap();
    for (w_clean, w_dirty) in clean.chunks(512).zip(dirty.chunks(512)) {
        let p = a.predict(w_clean).unwrap();
        let q = b.predict(w_dirty).unwrap();
        assert!((0.0..=1.0).contains(&q));
        assert_eq!(p, q);
    }
    // Wrong window sizes and rates are refused.
    assert!(matches!(
        a.predict(&speech[..100]),
        Err(SileroError::InvalidInput(_))
    ));
    let mut boxed = model.new_state(16_000);
    let err = boxed.predict(&speech[..100]).unwrap_err();
    assert!(matches!(err, VadError::Model(_)), "{err:?}");
    assert!(model.new_stream_state(44_100).is_err());
}

#[test]
fn batched_inference_matches_one_stream_at_a_time() {
    let paths = ensure_setup();
    let model = SileroVad::load(&paths.model, &paths.ort_dylib).unwrap();
    let streams: Vec<Vec<f32>> = (0..3)
        .map(|i| {
            let mut audio = vec![0.0; 512 * 4 * i];
            audio.extend(voiced(512 * 12, i as f32));
            audio.resize(512 * 20, 0.0);
            audio
        })
        .collect();
    let mut singles: Vec<Vec<f32>> = Vec::new();
    for audio in &streams {
        let mut state = model.new_stream_state(16_000).unwrap();
        singles.push(
            audio
                .chunks(512)
                .map(|w| state.predict(w).unwrap())
                .collect(),
        );
    }
    let mut states: Vec<_> = (0..3)
        .map(|_| model.new_stream_state(16_000).unwrap())
        .collect();
    let mut batched = vec![Vec::new(); 3];
    for k in 0..20 {
        let windows: Vec<&[f32]> = streams.iter().map(|a| &a[k * 512..(k + 1) * 512]).collect();
        let mut refs: Vec<_> = states.iter_mut().collect();
        let probabilities = model.predict_batch(&mut refs, &windows).unwrap();
        for (b, p) in probabilities.into_iter().enumerate() {
            batched[b].push(p);
        }
    }
    for (b, (single, batch)) in singles.iter().zip(&batched).enumerate() {
        for (k, (s, p)) in single.iter().zip(batch).enumerate() {
            assert!((s - p).abs() < 1e-4, "stream {b} window {k}: {s} vs {p}");
        }
    }
    // The voiced parts score higher than the silent ones.
    assert!(
        singles[2][10] > 0.5 && singles[2][1] < 0.2,
        "{:?}",
        singles[2]
    );
    // Mismatched batches are refused.
    let mut refs: Vec<_> = states.iter_mut().collect();
    assert!(
        model
            .predict_batch(&mut refs, &[&streams[0][..512]])
            .is_err()
    );
}

#[test]
fn silero_runs_at_8_khz() {
    let paths = ensure_setup();
    let model = SileroVad::load(&paths.model, &paths.ort_dylib).unwrap();
    assert!(model.supports_sample_rate(8_000));
    assert!(!model.supports_sample_rate(22_050));
    let options = VadOptions {
        sample_rate: 8_000,
        ..VadOptions::default()
    };
    let vad = model.vad(options).unwrap();
    assert_eq!(vad.window_size(), 256);
    let dir = temp_dir("silero-8k");
    let audio = conversation(&dir);
    let expected = energy_segments(&audio);
    let mut stream = switchboard::voice::vad::Vad::stream(&vad);
    let mut events = stream.push(&audio).unwrap();
    events.extend(stream.flush().unwrap());
    let found = vad_segments(&events);
    eprintln!("silero 8 kHz: {found:?}; energy: {expected:?}");
    assert_segments_match(&found, &expected, Duration::from_millis(150));
    assert!(
        model
            .vad(VadOptions {
                sample_rate: 44_100,
                ..VadOptions::default()
            })
            .is_err()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn one_model_serves_many_threads() {
    let paths = ensure_setup();
    let model = SileroVad::load(&paths.model, &paths.ort_dylib).unwrap();
    let vad: Arc<dyn switchboard::voice::vad::Vad> =
        Arc::new(model.vad(VadOptions::default()).unwrap());
    let dir = temp_dir("threads");
    let audio = conversation(&dir);
    let results: Vec<_> = (0..4)
        .map(|_| {
            let vad = vad.clone();
            let audio = audio.clone();
            std::thread::spawn(move || {
                let mut stream = vad.stream();
                let mut events = Vec::new();
                // 10 ms frames, interleaved with the other threads' inferences.
                for frame in audio.data().chunks(220) {
                    let frame = AudioFrame::new(frame.to_vec(), 22_050, 1).unwrap();
                    events.extend(stream.push(&frame).unwrap());
                }
                events.extend(stream.flush().unwrap());
                events
            })
        })
        .map(|h| h.join().unwrap())
        .collect();
    // Same audio, independent state per stream: identical events in every thread.
    for r in &results[1..] {
        assert_eq!(r, &results[0]);
    }
    assert_eq!(
        vad_segments(&results[0]).len(),
        2,
        "{:?}",
        vad_segments(&results[0])
    );
    let _ = std::fs::remove_dir_all(&dir);
}
