//! The Piper voice with the real model (installed by scripts/setup.sh).

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{assert_speech, ensure_setup, piper, run, temp_dir};
use futures::StreamExt;
use switchboard::voice::audio::read_wav;
use switchboard::voice::tts::{Tts, TtsError};
use switchboard_piper::{
    PiperError, PiperOptions, PiperPaths, PiperTts, SpeakError, speak_to_wav, split_text,
};

const RATE: u32 = 22_050;
const SHORT: &str = "Sure, I can help with that.";
/// A short sentence, then a longer one: two pieces of work.
const TWO: &str =
    "Hello there. Your table for two is booked at seven o'clock tonight, by the window.";

#[tokio::test]
async fn one_sentence_is_plausible_speech() {
    let tts = piper();
    assert_eq!(tts.sample_rate(), RATE);
    assert_eq!(tts.channels(), 1);
    assert_eq!(tts.name(), "piper-en_US-joe-medium");
    let result = run(tts.as_ref(), SHORT).await;
    assert!(result.error.is_none(), "{:?}", result.error);
    let audio = result.audio(RATE);
    assert_speech(&audio, RATE, Duration::from_secs(1), Duration::from_secs(6));
    // Streamed in frames of about 100 ms (the last one shorter).
    assert!(result.frames.len() >= 10, "{} frames", result.frames.len());
    let (last, rest) = result.frames.split_last().expect("frames");
    assert!(rest.iter().all(|f| f.samples_per_channel() == 2_205));
    assert!(last.samples_per_channel() <= 2_205);
}

#[tokio::test]
async fn two_sentences_stream_the_first_before_the_second_is_done() {
    assert_eq!(split_text(TWO, 100, 300).len(), 2, "two pieces of work");
    let tts = piper();
    let result = run(tts.as_ref(), TWO).await;
    assert!(result.error.is_none(), "{:?}", result.error);
    let audio = result.audio(RATE);
    assert_speech(
        &audio,
        RATE,
        Duration::from_secs(3),
        Duration::from_secs(10),
    );
    let first = result.first_frame.expect("a first frame");
    // The first (short) sentence is about a quarter of the work: its audio arrives well
    // before the second sentence is synthesised.
    assert!(
        first.as_secs_f64() < 0.8 * result.total.as_secs_f64(),
        "first frame after {first:?}, stream ended after {:?}",
        result.total
    );
}

#[tokio::test]
async fn phonemes_keep_the_sentence_punctuation() {
    let tts = piper();
    let phonemes = tokio::task::spawn_blocking(move || tts.phonemize(SHORT))
        .await
        .expect("join")
        .expect("phonemes");
    assert_eq!(phonemes, "ʃˈʊɹ, aɪ kæn hˈɛlp wɪð ðˈæt.");
}

#[tokio::test]
async fn empty_text_gives_an_empty_stream() {
    let tts = piper();
    // Only whitespace or punctuation: nothing to say (espeak-ng would read "!" aloud).
    for text in ["", "   ", "\n\t", "... !?"] {
        let mut stream = tts.synthesize(text);
        assert!(stream.next().await.is_none(), "{text:?}");
    }
}

#[tokio::test]
async fn markdown_emoji_and_unknown_symbols_do_not_fail() {
    let tts = piper();
    let text = "**Great** news 😊! Your `booking` #42 is ✓ — see ∑ ☃ → 日本語 [link](http://x.y) ~~ok~~ café.";
    let result = run(tts.as_ref(), text).await;
    assert!(result.error.is_none(), "{:?}", result.error);
    assert_speech(
        &result.audio(RATE),
        RATE,
        Duration::from_secs(2),
        Duration::from_secs(30),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_syntheses_share_the_voice() {
    let tts = piper();
    let (a, b) = tokio::join!(
        run(tts.as_ref(), "First caller."),
        run(tts.as_ref(), "Second caller.")
    );
    for result in [a, b] {
        assert!(result.error.is_none(), "{:?}", result.error);
        assert_speech(
            &result.audio(RATE),
            RATE,
            Duration::from_millis(500),
            Duration::from_secs(4),
        );
    }
}

#[tokio::test]
async fn a_dropped_stream_does_not_block_the_voice() {
    let tts = piper();
    let mut stream = tts.synthesize(
        "This sentence is interrupted. Nobody hears this one. Or this one, which is long enough to matter.",
    );
    let first = stream.next().await.expect("a frame").expect("audio");
    assert_eq!(first.sample_rate(), RATE);
    drop(stream);
    let result = run(tts.as_ref(), "Still here.").await;
    assert!(result.error.is_none(), "{:?}", result.error);
    assert!(!result.frames.is_empty());
}

#[test]
fn speak_to_wav_writes_the_audio() {
    let tts = piper();
    let path = temp_dir("speak").join("out.wav");
    let audio = speak_to_wav(tts.as_ref(), SHORT, &path).expect("speak");
    let back = read_wav(&path).expect("read the WAV");
    assert_eq!(back, audio);
    assert_speech(&back, RATE, Duration::from_secs(1), Duration::from_secs(6));
}

#[tokio::test]
async fn speak_to_wav_refuses_to_block_a_runtime() {
    let tts = piper();
    let err = speak_to_wav(tts.as_ref(), SHORT, temp_dir("refuse").join("x.wav")).unwrap_err();
    assert!(matches!(err, SpeakError::InsideRuntime), "{err}");
}

fn load(paths: &PiperPaths, options: PiperOptions) -> PiperError {
    match PiperTts::load(paths, options) {
        Ok(_) => panic!("loading {paths:?} should fail"),
        Err(e) => e,
    }
}

#[test]
fn a_missing_model_names_the_file_and_the_fix() {
    let real = ensure_setup();
    let paths = PiperPaths::new("/nonexistent/en_US-joe-medium.onnx", &real.ort_dylib);
    let err = load(&paths, PiperOptions::default());
    assert!(matches!(err, PiperError::MissingFile { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("/nonexistent/en_US-joe-medium.onnx.json"),
        "{text}"
    );
    assert!(text.contains("scripts/setup.sh"), "{text}");

    // The config is there but the model is not.
    let dir = temp_dir("missing-model");
    std::fs::copy(&real.config, dir.join("voice.onnx.json")).expect("copy the config");
    let paths = PiperPaths::new(dir.join("voice.onnx"), &real.ort_dylib);
    let text = load(&paths, PiperOptions::default()).to_string();
    assert!(text.contains("Piper model not found"), "{text}");
    assert!(
        text.contains(&*dir.join("voice.onnx").to_string_lossy()),
        "{text}"
    );
    assert!(text.contains("SWITCHBOARD_PIPER_MODEL"), "{text}");
}

#[test]
fn a_corrupt_config_gives_a_clear_error() {
    let real = ensure_setup();
    let dir = temp_dir("corrupt-json");
    let model = dir.join("voice.onnx");
    std::os::unix::fs::symlink(&real.model, &model).expect("link the model");
    std::fs::write(
        dir.join("voice.onnx.json"),
        "{\"audio\": {\"sample_rate\": 22050,",
    )
    .expect("write a truncated config");
    let paths = PiperPaths::new(&model, &real.ort_dylib);

    // With the checksums (the default), the pinned sum catches it.
    let err = load(&paths, PiperOptions::default());
    assert!(matches!(err, PiperError::Checksum { .. }), "{err}");
    assert!(err.to_string().contains("voice.onnx.json"), "{err}");

    // Without them, the parser names the file and the problem.
    let options = PiperOptions {
        verify_checksums: false,
        ..PiperOptions::default()
    };
    let err = load(&paths, options);
    assert!(matches!(err, PiperError::Config { .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains("voice.onnx.json"), "{text}");
    assert!(text.contains("not a Piper voice config"), "{text}");
}

#[test]
fn a_corrupt_model_is_an_error_not_an_abort() {
    let real = ensure_setup();
    let dir = temp_dir("corrupt-onnx");
    let model = dir.join("voice.onnx");
    std::fs::write(&model, b"this is not an ONNX model").expect("write garbage");
    std::fs::copy(&real.config, dir.join("voice.onnx.json")).expect("copy the config");
    let paths = PiperPaths::new(&model, &real.ort_dylib);
    let options = PiperOptions {
        verify_checksums: false,
        ..PiperOptions::default()
    };
    let err = load(&paths, options);
    assert!(matches!(err, PiperError::Model { .. }), "{err}");
    assert!(err.to_string().contains("voice.onnx"), "{err}");
}

#[test]
fn a_missing_espeak_names_the_debian_package() {
    let paths = ensure_setup();
    let options = PiperOptions {
        espeak_program: "/nonexistent/espeak-ng".into(),
        ..PiperOptions::default()
    };
    let err = load(&paths, options);
    assert!(matches!(err, PiperError::EspeakMissing { .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains("Debian package `espeak-ng`"), "{text}");
    // As a TtsError (how a session would see it), the message survives.
    let tts_error: TtsError = err.into();
    assert!(tts_error.to_string().contains("apt-get install espeak-ng"));
}

#[test]
fn the_voice_is_shareable_as_dyn_tts() {
    let tts: Arc<dyn Tts> = piper();
    let audio =
        futures::executor::block_on(switchboard_piper::synthesize_to_frame(tts.as_ref(), "Yes."))
            .expect("synthesis outside any runtime");
    assert_speech(
        &audio,
        RATE,
        Duration::from_millis(200),
        Duration::from_secs(3),
    );
}

#[tokio::test]
async fn a_failure_mid_way_ends_the_stream_after_the_audio_so_far() {
    let paths = ensure_setup();
    let options = PiperOptions {
        espeak_program: common::failing_espeak(&temp_dir("failing")),
        ..PiperOptions::default()
    };
    let tts = PiperTts::load(&paths, options).expect("load with the wrapper");
    let result = run(
        tts.as_ref(),
        "Hello there. This one will FAIL. Never spoken.",
    )
    .await;
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
