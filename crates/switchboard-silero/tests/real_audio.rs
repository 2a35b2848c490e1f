//! Real speech (espeak-ng, 22,050 Hz) through the real Silero VAD and through the energy
//! fallback. Needs the set-up cache; runs `scripts/setup.sh` when it is missing.

mod common;

use std::sync::Arc;
use std::time::Duration;

use switchboard::voice::audio::{AudioFrame, FrameChunker};
use switchboard::voice::vad::{EnergyVadModel, ModelVad, Vad, VadEvent, VadOptions};
use switchboard_silero::SileroVad;

use common::*;

const TOLERANCE: Duration = Duration::from_millis(150);

/// Pushes `audio` in 20 ms frames, as a transport would, then flushes.
fn run_stream(vad: &dyn Vad, audio: &AudioFrame) -> Vec<VadEvent> {
    let mut chunker = FrameChunker::new(
        audio.sample_rate(),
        audio.channels(),
        Duration::from_millis(20),
    )
    .unwrap();
    let mut stream = vad.stream();
    let mut events = Vec::new();
    let mut frames = chunker.push(audio).unwrap();
    frames.extend(chunker.flush());
    for frame in &frames {
        events.extend(stream.push(frame).unwrap());
    }
    events.extend(stream.flush().unwrap());
    events
}

#[test]
fn silero_finds_the_two_sentences_of_espeak_speech() {
    let paths = ensure_setup();
    let dir = temp_dir("silero");
    let audio = conversation(&dir);
    assert_eq!(audio.sample_rate(), 22_050);
    let expected = energy_segments(&audio);
    assert_eq!(
        expected.len(),
        2,
        "the synthesised audio has two sentences: {expected:?}"
    );
    // The 1 s gap is really there.
    assert!(
        expected[1].0 - expected[0].1 >= Duration::from_millis(1_000),
        "{expected:?}"
    );

    let model = SileroVad::load(&paths.model, &paths.ort_dylib).unwrap();
    let vad = model.vad(VadOptions::default()).unwrap();
    let events = run_stream(&vad, &audio);
    let found = vad_segments(&events);
    eprintln!("silero: {found:?}; energy: {expected:?}");
    assert_segments_match(&found, &expected, TOLERANCE);

    // Probabilities are real values: high inside the sentences, low in the gap.
    let inside = |at: Duration| {
        expected
            .iter()
            .any(|(s, e)| at > *s + Duration::from_millis(200) && at < *e)
    };
    let (mut speech, mut gap) = (Vec::new(), Vec::new());
    for event in &events {
        if let VadEvent::Inference { at, probability } = event {
            assert!((0.0..=1.0).contains(probability));
            if inside(*at) {
                speech.push(*probability);
            } else if *at > expected[0].1 + Duration::from_millis(300) && *at < expected[1].0 {
                gap.push(*probability);
            }
        }
    }
    let mean = |v: &[f32]| v.iter().sum::<f32>() / v.len() as f32;
    assert!(
        mean(&speech) > 0.7,
        "mean speech probability {}",
        mean(&speech)
    );
    assert!(gap.iter().all(|&p| p < 0.2), "gap probabilities {gap:?}");
    // One inference per 32 ms of audio (the trailing partial window is not analysed).
    let inferences = events
        .iter()
        .filter(|e| matches!(e, VadEvent::Inference { .. }))
        .count();
    let windows = audio.samples_per_channel() * 16_000 / 22_050 / 512;
    assert!(
        inferences.abs_diff(windows) <= 1,
        "{inferences} inferences, {windows} windows"
    );

    // The speech audio of each segment starts 500 ms before the speech (prefix padding).
    for event in &events {
        if let VadEvent::EndOfSpeech {
            audio,
            speech_duration,
            ..
        } = event
        {
            assert_eq!(audio.sample_rate(), 16_000);
            let extra = audio.duration().saturating_sub(*speech_duration);
            assert!(
                extra.abs_diff(Duration::from_millis(500)) <= Duration::from_millis(1),
                "{extra:?}"
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn silero_gives_the_same_segments_for_48k_stereo_input() {
    let paths = ensure_setup();
    let dir = temp_dir("silero-48k");
    let audio = conversation(&dir);
    let expected = energy_segments(&audio);
    // Upsample to 48 kHz and duplicate to stereo, as a WebRTC transport would deliver it.
    let mut resampler = switchboard::voice::audio::Resampler::new(22_050, 48_000, 1).unwrap();
    let mut up = resampler.process(&audio).unwrap().data().to_vec();
    up.extend_from_slice(resampler.flush().unwrap().data());
    let stereo: Vec<i16> = up.iter().flat_map(|&s| [s, s]).collect();
    let stereo = AudioFrame::new(stereo, 48_000, 2).unwrap();
    let model = SileroVad::load(&paths.model, &paths.ort_dylib).unwrap();
    let vad: Arc<dyn Vad> = Arc::new(model.vad(VadOptions::default()).unwrap());
    let found = vad_segments(&run_stream(vad.as_ref(), &stereo));
    eprintln!("silero 48k stereo: {found:?}; energy: {expected:?}");
    assert_segments_match(&found, &expected, TOLERANCE);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn energy_fallback_finds_the_two_sentences_too() {
    ensure_setup();
    let dir = temp_dir("energy");
    let audio = conversation(&dir);
    let expected = energy_segments(&audio);
    let vad = ModelVad::new(Arc::new(EnergyVadModel::default()), VadOptions::default()).unwrap();
    let found = vad_segments(&run_stream(&vad, &audio));
    eprintln!("energy model: {found:?}; energy: {expected:?}");
    assert_segments_match(&found, &expected, TOLERANCE);
    let _ = std::fs::remove_dir_all(&dir);
}
