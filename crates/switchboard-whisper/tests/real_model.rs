//! Whisper base on speech synthesised by espeak-ng, through the `Stt` trait and the blocking
//! API. Needs the set-up cache (runs scripts/setup.sh once if it is missing).

mod common;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use common::{ensure_setup, espeak, model, read_ggml, temp_dir, wer};
use switchboard::voice::audio::AudioFrame;
use switchboard::voice::stt::{RecognizeOptions, Stt, SttError};
use switchboard_whisper::{WhisperError, WhisperOptions, WhisperPaths, WhisperStt};

const FIRST: &str = "Hello, I would like to book an appointment for next Tuesday.";
const SECOND: &str = "Could you please send the confirmation to my email address?";
const MAX_WER: f64 = 0.15;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transcribes_two_sentences_within_the_wer_bound() {
    let whisper = model();
    let stt: Arc<dyn Stt> = whisper.clone();
    assert_eq!(stt.name(), "whisper-base");
    assert!(!stt.capabilities().streaming);
    let (first, second) = (espeak(FIRST), espeak(SECOND));
    let audio_secs = first.duration().as_secs_f64() + second.duration().as_secs_f64();
    let started = Instant::now();
    // Both at once: the shared model serves concurrent recognitions.
    let options = RecognizeOptions::default(); // the model's default language: en
    let (a, b) = tokio::join!(
        stt.recognize(first, &options),
        stt.recognize(second, &RecognizeOptions::language("en-US"))
    );
    let elapsed = started.elapsed();
    let (a, b) = (a.expect("first sentence"), b.expect("second sentence"));
    eprintln!(
        "{audio_secs:.2} s of audio in {elapsed:?} (wall, 2 concurrent): {:?} / {:?}",
        a.text, b.text
    );
    for (reference, speech) in [(FIRST, &a), (SECOND, &b)] {
        let error = wer(reference, &speech.text);
        assert!(
            error <= MAX_WER,
            "WER {error:.2} > {MAX_WER}: {reference:?} heard as {:?}",
            speech.text
        );
        assert_eq!(speech.language.as_deref(), Some("en"));
        let confidence = speech.confidence.expect("a confidence");
        assert!((0.0..=1.0).contains(&confidence), "{confidence}");
    }
}

#[test]
fn blocking_transcription_takes_any_rate_and_channel_count() {
    let whisper = model();
    let mono = espeak(FIRST);
    // The same speech as interleaved stereo.
    let stereo: Vec<i16> = mono.data().iter().flat_map(|&s| [s, s]).collect();
    let stereo = AudioFrame::new(stereo, mono.sample_rate(), 2).unwrap();
    let text = whisper.transcribe(&stereo).expect("transcribe");
    let error = wer(FIRST, &text);
    assert!(error <= MAX_WER, "WER {error:.2}: heard {text:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_or_too_short_audio_is_bad_audio() {
    let whisper = model();
    let options = RecognizeOptions::default();
    let empty = AudioFrame::empty(22_050, 1).unwrap();
    let err = whisper
        .recognize(empty.clone(), &options)
        .await
        .unwrap_err();
    assert!(matches!(err, SttError::BadAudio(_)), "{err:?}");
    assert!(matches!(
        whisper.transcribe(&empty),
        Err(WhisperError::BadAudio(_))
    ));
    let short = AudioFrame::silence(std::time::Duration::from_millis(60), 48_000, 2).unwrap();
    let err = whisper.recognize(short, &options).await.unwrap_err();
    assert!(
        matches!(&err, SttError::BadAudio(m) if m.contains("too short")),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_language_is_unsupported() {
    let whisper = model();
    let audio = AudioFrame::silence(std::time::Duration::from_millis(500), 16_000, 1).unwrap();
    let err = whisper
        .recognize(audio, &RecognizeOptions::language("klingon"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, SttError::Unsupported(m) if m.contains("klingon")),
        "{err:?}"
    );
}

#[test]
fn a_cancelled_transcription_stops_and_the_model_still_works() {
    let whisper = model();
    let audio = espeak(SECOND);
    let cancel = AtomicBool::new(true);
    let err = whisper
        .transcribe_cancellable(&audio, None, &cancel)
        .unwrap_err();
    assert!(matches!(err, WhisperError::Cancelled), "{err:?}");
    let go = AtomicBool::new(false);
    let speech = whisper
        .transcribe_cancellable(&audio, None, &go)
        .expect("transcribe after a cancellation");
    assert!(wer(SECOND, &speech.text) <= MAX_WER, "{:?}", speech.text);
}

#[test]
fn the_converted_model_has_whisper_base_dimensions() {
    let whisper = model();
    let ggml = read_ggml(whisper.model_path(), false);
    // n_vocab, audio ctx/state/heads/layers, text ctx/state/heads/layers, mels, ftype f16
    assert_eq!(
        ggml.header,
        [51_865, 1500, 512, 8, 6, 448, 512, 8, 6, 80, 1]
    );
    assert_eq!((ggml.mel_rows, ggml.mel_cols), (80, 201));
    assert_eq!(ggml.vocab.len(), 50_257);
    assert_eq!(ggml.vocab[0], b"!");
    assert_eq!(ggml.tensors.len(), 245);
    let size = std::fs::metadata(whisper.model_path()).unwrap().len();
    assert_eq!(
        size, 147_951_465,
        "the size whisper.cpp's own converter gives"
    );
    let q = &ggml
        .tensors
        .iter()
        .find(|(n, _)| n == "decoder.blocks.5.cross_attn.key.weight")
        .unwrap()
        .1;
    assert_eq!((q.ne.clone(), q.ttype), (vec![512, 512], 1));
}

#[test]
fn a_missing_model_names_the_files_and_the_fix() {
    let dir = temp_dir("missing-model");
    let paths = WhisperPaths::in_cache(&dir);
    let err = WhisperStt::load(&paths, WhisperOptions::default()).unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, WhisperError::MissingModel { .. }), "{err:?}");
    assert!(
        message.contains(&paths.ggml.display().to_string()),
        "{message}"
    );
    assert!(
        message.contains(&paths.ct2_model().display().to_string()),
        "{message}"
    );
    assert!(message.contains("scripts/setup.sh"), "{message}");

    // A damaged ggml file with nothing to rebuild it from is an error, not a crash.
    std::fs::create_dir_all(paths.ggml.parent().unwrap()).unwrap();
    std::fs::write(&paths.ggml, b"lmgg\x00\x00").unwrap();
    let err = WhisperStt::load(&paths, WhisperOptions::default()).unwrap_err();
    assert!(matches!(err, WhisperError::Corrupt { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&paths.ggml.display().to_string()),
        "{err}"
    );
}

#[test]
fn a_truncated_conversion_is_rebuilt_from_the_ctranslate2_model() {
    let real = ensure_setup();
    let whisper = model(); // the cache's converted model exists
    let dir = temp_dir("rebuild");
    let paths = WhisperPaths {
        ggml: dir.join("ggml-base.bin"),
        ..real
    };
    // Half of a valid file: inspection finds the truncation, and the load converts again.
    let valid = std::fs::read(whisper.model_path()).unwrap();
    std::fs::write(&paths.ggml, &valid[..valid.len() / 2]).unwrap();
    drop(valid);
    let rebuilt = WhisperStt::load(&paths, WhisperOptions::default()).expect("reconvert");
    let report = rebuilt.conversion().expect("a conversion happened");
    eprintln!(
        "reconverted in {:?}, load {:?}",
        report.elapsed,
        rebuilt.load_time()
    );
    assert_eq!(report.bytes, 147_951_465);
    assert_eq!(std::fs::metadata(&paths.ggml).unwrap().len(), 147_951_465);
    let text = rebuilt.transcribe(&espeak(FIRST)).unwrap();
    assert!(wer(FIRST, &text) <= MAX_WER, "{text:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}
