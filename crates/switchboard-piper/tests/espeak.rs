//! The espeak-ng engine (Debian `espeak-ng`, installed by scripts/setup.sh).

mod common;

use std::time::Duration;

use common::{assert_speech, ensure_setup, run};
use futures::StreamExt;
use switchboard::voice::tts::{Tts, TtsError};
use switchboard_piper::{EspeakOptions, EspeakTts, PiperError, synthesize_to_frame};

const RATE: u32 = 22_050;
const TWO: &str =
    "Hello there. Your table for two is booked at seven o'clock tonight, by the window.";

#[tokio::test]
async fn two_sentences_are_streamed_speech() {
    ensure_setup();
    let tts = EspeakTts::new();
    assert_eq!(tts.sample_rate(), RATE);
    assert_eq!(tts.name(), "espeak-en-us");
    tts.check().expect("espeak-ng runs");
    let result = run(&tts, TWO).await;
    assert!(result.error.is_none(), "{:?}", result.error);
    assert_speech(
        &result.audio(RATE),
        RATE,
        Duration::from_secs(3),
        Duration::from_secs(10),
    );
    let first = result.first_frame.expect("a first frame");
    assert!(
        first < result.total,
        "first {first:?}, total {:?}",
        result.total
    );
    assert!(result.frames.len() >= 30, "{} frames", result.frames.len());
}

#[tokio::test]
async fn empty_text_gives_an_empty_stream() {
    let tts = EspeakTts::new();
    for text in ["", "  \n "] {
        assert!(tts.synthesize(text).next().await.is_none(), "{text:?}");
    }
}

#[tokio::test]
async fn markdown_emoji_and_symbols_do_not_fail() {
    ensure_setup();
    let result = run(
        &EspeakTts::new(),
        "**Great** news 😊! Item #42 is ✓ ☃ 日本語 café.",
    )
    .await;
    assert!(result.error.is_none(), "{:?}", result.error);
    assert!(!result.frames.is_empty());
}

#[tokio::test]
async fn the_speaking_rate_changes_the_duration() {
    ensure_setup();
    let with_rate = |wpm| {
        EspeakTts::with_options(EspeakOptions {
            words_per_minute: Some(wpm),
            ..EspeakOptions::default()
        })
    };
    let slow = synthesize_to_frame(&with_rate(100), TWO)
        .await
        .expect("slow");
    let fast = synthesize_to_frame(&with_rate(300), TWO)
        .await
        .expect("fast");
    assert!(
        slow.duration() > fast.duration() * 2,
        "slow {:?}, fast {:?}",
        slow.duration(),
        fast.duration()
    );
}

#[tokio::test]
async fn a_missing_program_ends_the_stream_with_a_clear_error() {
    let tts = EspeakTts::with_options(EspeakOptions {
        program: "/nonexistent/espeak-ng".into(),
        ..EspeakOptions::default()
    });
    let result = run(&tts, "Hello.").await;
    assert!(result.frames.is_empty());
    let Some(TtsError::Model(message)) = result.error else {
        panic!("expected a model error, got {:?}", result.error);
    };
    assert!(message.contains("Debian package `espeak-ng`"), "{message}");
    let err = tts.check().unwrap_err();
    assert!(matches!(err, PiperError::EspeakMissing { .. }), "{err}");
}

#[tokio::test]
async fn an_unknown_voice_is_an_error() {
    ensure_setup();
    let tts = EspeakTts::with_options(EspeakOptions {
        voice: "xx-nonexistent".into(),
        ..EspeakOptions::default()
    });
    let result = run(&tts, "Hello.").await;
    assert!(result.error.is_some());
    let err = tts.check().unwrap_err();
    assert!(matches!(err, PiperError::Espeak { .. }), "{err}");
    assert!(err.to_string().contains("xx-nonexistent"), "{err}");
}

#[tokio::test]
async fn a_failure_mid_way_ends_the_stream_after_the_audio_so_far() {
    ensure_setup();
    let tts = EspeakTts::with_options(EspeakOptions {
        program: common::failing_espeak(&common::temp_dir("espeak-failing")),
        ..EspeakOptions::default()
    });
    let result = run(&tts, "Hello there. This one will FAIL. Never spoken.").await;
    assert_speech(
        &result.audio(RATE),
        RATE,
        Duration::from_millis(300),
        Duration::from_secs(3),
    );
    let Some(TtsError::Model(message)) = result.error else {
        panic!("expected a model error, got {:?}", result.error);
    };
    assert!(message.contains("boom"), "{message}");
}
