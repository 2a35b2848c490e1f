use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::voice::audio::AudioFrame;

const W: u64 = 32; // ms per 512-sample window at 16 kHz

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

/// Start/end boundaries of a list of events, as `("start", at)` / `("end", at)`.
fn boundaries(events: &[VadEvent]) -> Vec<(&'static str, Duration)> {
    events
        .iter()
        .filter_map(|e| match e {
            VadEvent::StartOfSpeech { at, .. } => Some(("start", *at)),
            VadEvent::EndOfSpeech { at, .. } => Some(("end", *at)),
            _ => None,
        })
        .collect()
}

fn scripted(runs: &[(f32, usize)]) -> (Arc<ScriptedVadModel>, ModelVad) {
    vad_with(runs, VadOptions::default())
}

fn vad_with(runs: &[(f32, usize)], options: VadOptions) -> (Arc<ScriptedVadModel>, ModelVad) {
    let model = Arc::new(ScriptedVadModel::from_runs(runs));
    let vad = ModelVad::new(model.clone(), options).unwrap();
    (model, vad)
}

fn silence(duration_ms: u64, rate: u32, channels: u16) -> AudioFrame {
    AudioFrame::silence(ms(duration_ms), rate, channels).unwrap()
}

fn run_all(stream: &mut dyn VadStream, frames: &[AudioFrame]) -> Vec<VadEvent> {
    let mut events = Vec::new();
    for frame in frames {
        events.extend(stream.push(frame).unwrap());
    }
    events.extend(stream.flush().unwrap());
    events
}

#[test]
fn default_options_match_the_reference() {
    let o = VadOptions::default();
    assert_eq!(o.activation_threshold, 0.5);
    assert!((o.effective_deactivation_threshold() - 0.35).abs() < 1e-6);
    assert_eq!(o.min_speech_duration, ms(50));
    assert_eq!(o.min_silence_duration, ms(550));
    assert_eq!(o.prefix_padding, ms(500));
    assert_eq!(o.sample_rate, 16_000);
    o.validate().unwrap();
    let low = VadOptions {
        activation_threshold: 0.1,
        ..VadOptions::default()
    };
    assert!((low.effective_deactivation_threshold() - 0.01).abs() < 1e-6);
}

#[test]
fn invalid_options_are_rejected() {
    let cases = [
        VadOptions {
            activation_threshold: 0.0,
            ..VadOptions::default()
        },
        VadOptions {
            activation_threshold: 1.5,
            ..VadOptions::default()
        },
        VadOptions {
            activation_threshold: f32::NAN,
            ..VadOptions::default()
        },
        VadOptions {
            deactivation_threshold: Some(0.6),
            ..VadOptions::default()
        },
        VadOptions {
            sample_rate: 0,
            ..VadOptions::default()
        },
        VadOptions {
            min_silence_duration: Duration::from_secs(7_200),
            ..VadOptions::default()
        },
    ];
    for options in cases {
        let err = ModelVad::new(Arc::new(ScriptedVadModel::new([])), options.clone()).unwrap_err();
        assert!(
            matches!(err, VadError::InvalidOptions(_)),
            "{options:?}: {err}"
        );
    }
    let err = ModelVad::new(
        Arc::new(EnergyVadModel::default()),
        VadOptions {
            sample_rate: 500,
            ..VadOptions::default()
        },
    )
    .unwrap_err();
    assert!(matches!(
        err,
        VadError::UnsupportedSampleRate {
            sample_rate: 500,
            ..
        }
    ));
}

#[test]
fn speech_segment_timestamps_are_in_audio_time() {
    let (model, vad) = scripted(&[(0.0, 10), (0.9, 20), (0.0, 30)]);
    let mut stream = vad.stream();
    let events = stream.push(&silence(60 * W, 16_000, 1)).unwrap();
    assert_eq!(model.windows_seen(), 60);
    assert_eq!(
        boundaries(&events),
        [("start", ms(10 * W)), ("end", ms(30 * W))]
    );
    // Start is confirmed by the second speech window (64 ms >= 50 ms); end by the 18th
    // silent window (576 ms >= 550 ms). Each follows the inference that decided it.
    let index = |pred: &dyn Fn(&VadEvent) -> bool| events.iter().position(pred).unwrap();
    let start = index(&|e| matches!(e, VadEvent::StartOfSpeech { .. }));
    assert_eq!(
        events[start - 1],
        VadEvent::Inference {
            at: ms(12 * W),
            probability: 0.9
        }
    );
    let end = index(&|e| matches!(e, VadEvent::EndOfSpeech { .. }));
    assert_eq!(
        events[end - 1],
        VadEvent::Inference {
            at: ms(48 * W),
            probability: 0.0
        }
    );
    match &events[end] {
        VadEvent::EndOfSpeech {
            speech_duration,
            probability,
            audio,
            ..
        } => {
            assert_eq!(*speech_duration, ms(20 * W));
            assert_eq!(*probability, 0.0);
            // Prefix padding reaches back to the stream start (320 ms < 500 ms).
            assert_eq!(audio.duration(), ms(30 * W));
            assert_eq!(audio.sample_rate(), 16_000);
            assert_eq!(audio.channels(), 1);
        }
        other => panic!("{other:?}"),
    }
    let inferences = events
        .iter()
        .filter(|e| matches!(e, VadEvent::Inference { .. }))
        .count();
    assert_eq!(inferences, 60);
    assert_eq!(stream.position(), ms(60 * W));
}

#[test]
fn short_bursts_do_not_start_speech() {
    // One speech window (32 ms < 50 ms min speech), repeatedly.
    let (_, vad) = scripted(&[(0.9, 1), (0.0, 1), (0.9, 1), (0.0, 3), (0.9, 1), (0.0, 10)]);
    let events = run_all(vad.stream().as_mut(), &[silence(17 * W, 16_000, 1)]);
    assert!(boundaries(&events).is_empty());
    // Two in a row start it, back-dated to the first.
    let (_, vad) = scripted(&[(0.0, 3), (0.9, 2), (0.0, 30)]);
    let events = run_all(vad.stream().as_mut(), &[silence(35 * W, 16_000, 1)]);
    assert_eq!(
        boundaries(&events),
        [("start", ms(3 * W)), ("end", ms(5 * W))]
    );
}

#[test]
fn hysteresis_between_the_thresholds() {
    // 0.4 is between deactivation (0.35) and activation (0.5): it keeps speech going but
    // never starts it.
    let (_, vad) = scripted(&[(0.4, 10), (0.6, 5), (0.4, 40), (0.3, 20)]);
    let events = run_all(vad.stream().as_mut(), &[silence(75 * W, 16_000, 1)]);
    assert_eq!(
        boundaries(&events),
        [("start", ms(10 * W)), ("end", ms(55 * W))]
    );
    // A custom deactivation threshold.
    let options = VadOptions {
        deactivation_threshold: Some(0.45),
        ..VadOptions::default()
    };
    let (_, vad) = vad_with(&[(0.6, 5), (0.4, 40)], options);
    let events = run_all(vad.stream().as_mut(), &[silence(45 * W, 16_000, 1)]);
    assert_eq!(boundaries(&events), [("start", ms(0)), ("end", ms(5 * W))]);
}

#[test]
fn pauses_shorter_than_min_silence_keep_one_segment() {
    // 17 silent windows = 544 ms < 550 ms: one segment. 18 = 576 ms: two segments.
    let (_, vad) = scripted(&[(0.9, 10), (0.0, 17), (0.9, 10), (0.0, 20)]);
    let events = run_all(vad.stream().as_mut(), &[silence(57 * W, 16_000, 1)]);
    assert_eq!(boundaries(&events), [("start", ms(0)), ("end", ms(37 * W))]);
    let (_, vad) = scripted(&[(0.9, 10), (0.0, 18), (0.9, 10), (0.0, 20)]);
    let events = run_all(vad.stream().as_mut(), &[silence(58 * W, 16_000, 1)]);
    assert_eq!(
        boundaries(&events),
        [
            ("start", ms(0)),
            ("end", ms(10 * W)),
            ("start", ms(28 * W)),
            ("end", ms(38 * W))
        ]
    );
}

#[test]
fn flush_closes_open_speech_and_resets_the_stream() {
    let (model, vad) = scripted(&[(0.0, 5), (0.9, 10), (0.2, 3)]);
    let mut stream = vad.stream();
    // 18 windows and a 100-sample tail that is not analysed.
    let frame = AudioFrame::new(vec![0i16; 18 * 512 + 100], 16_000, 1).unwrap();
    let events = stream.push(&frame).unwrap();
    assert_eq!(boundaries(&events), [("start", ms(5 * W))]);
    let events = stream.flush().unwrap();
    assert_eq!(boundaries(&events), [("end", ms(15 * W))]);
    match &events[0] {
        VadEvent::EndOfSpeech {
            speech_duration,
            probability,
            ..
        } => {
            assert_eq!(*speech_duration, ms(10 * W));
            assert_eq!(*probability, 0.2);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(model.windows_seen(), 18);
    assert_eq!(stream.position(), Duration::ZERO);
    // After a flush the script and the timeline restart.
    let events = stream.push(&silence(15 * W, 16_000, 1)).unwrap();
    assert_eq!(boundaries(&events), [("start", ms(5 * W))]);
    assert!(stream.flush().unwrap().len() == 1);
    // Flushing an idle or empty stream is fine.
    assert!(stream.flush().unwrap().is_empty());
}

#[test]
fn input_at_other_rates_is_resampled_inside_the_stream() {
    let runs = [(0.0, 10), (0.9, 20), (0.0, 30), (0.8, 12), (0.0, 40)];
    let expected = [
        ("start", ms(10 * W)),
        ("end", ms(30 * W)),
        ("start", ms(60 * W)),
        ("end", ms(72 * W)),
    ];
    for (rate, channels) in [
        (16_000, 1),
        (48_000, 2),
        (44_100, 1),
        (22_050, 2),
        (11_025, 1),
        (8_000, 1),
        (24_000, 3),
    ] {
        let (model, vad) = scripted(&runs);
        let mut stream = vad.stream();
        // 20 ms frames of this format (rounded), 112 windows of audio.
        let total = 112 * 512 * rate as usize / 16_000;
        let per_frame = (rate / 50) as usize;
        let mut frames = Vec::new();
        let mut done = 0;
        while done < total {
            let n = per_frame.min(total - done);
            frames
                .push(AudioFrame::new(vec![0i16; n * channels as usize], rate, channels).unwrap());
            done += n;
        }
        let events = run_all(stream.as_mut(), &frames);
        assert_eq!(boundaries(&events), expected, "{rate} Hz x {channels}");
        assert_eq!(model.windows_seen(), 112, "{rate} Hz x {channels}");
    }
}

#[test]
fn push_sizes_do_not_change_the_events() {
    let runs = [(0.0, 7), (0.7, 9), (0.1, 25), (0.95, 3)];
    let (_, vad) = scripted(&runs);
    let whole = run_all(vad.stream().as_mut(), &[silence(44 * W, 48_000, 1)]);
    let mut pieces = Vec::new();
    let mut left = 44 * 32 * 48; // samples at 48 kHz
    for size in [1usize, 0, 7, 960, 13, 4_800, 2].iter().cycle() {
        if left == 0 {
            break;
        }
        let n = (*size).min(left);
        pieces.push(AudioFrame::new(vec![0i16; n], 48_000, 1).unwrap());
        left -= n;
    }
    let (_, vad) = scripted(&runs);
    let split = run_all(vad.stream().as_mut(), &pieces);
    assert_eq!(whole, split);
    assert_eq!(
        boundaries(&whole),
        [
            ("start", ms(7 * W)),
            ("end", ms(16 * W)),
            ("start", ms(41 * W)),
            ("end", ms(44 * W))
        ]
    );
}

#[test]
fn invalid_probabilities_are_errors_and_earlier_events_are_kept() {
    for bad in [f32::NAN, 1.5, -0.1, f32::INFINITY] {
        let (_, vad) = scripted(&[(0.9, 3), (bad, 1), (0.9, 2), (0.0, 20)]);
        let mut stream = vad.stream();
        let err = stream.push(&silence(4 * W, 16_000, 1)).unwrap_err();
        match err {
            VadError::InvalidProbability { value, at } => {
                assert!(value.is_nan() == bad.is_nan() && (bad.is_nan() || value == bad));
                assert_eq!(at, ms(4 * W));
            }
            other => panic!("{other:?}"),
        }
        // The start decided before the bad window comes with the next push; the bad
        // window is skipped and the stream goes on.
        let events = stream.push(&silence(22 * W, 16_000, 1)).unwrap();
        assert_eq!(boundaries(&events), [("start", ms(0)), ("end", ms(6 * W))]);
    }
}

#[test]
fn end_of_speech_audio_has_the_prefix_padding() {
    // Audio whose samples count up, so positions can be read back from the audio.
    let (_, vad) = scripted(&[(0.0, 40), (0.9, 20), (0.0, 20)]);
    let mut stream = vad.stream();
    let data: Vec<i16> = (0..80 * 512).map(|i| (i / 8) as i16).collect();
    let events = stream
        .push(&AudioFrame::new(data, 16_000, 1).unwrap())
        .unwrap();
    let audio = events
        .iter()
        .find_map(|e| match e {
            VadEvent::EndOfSpeech { audio, .. } => Some(audio.clone()),
            _ => None,
        })
        .unwrap();
    // Speech 1280..1920 ms, prefix 500 ms: audio from 780 ms (sample 12480) to 1920 ms.
    assert_eq!(audio.samples_per_channel(), 30_720 - 12_480);
    assert_eq!(audio.data()[0], (12_480 / 8) as i16);
    assert_eq!(*audio.data().last().unwrap(), ((30_720 - 1) / 8) as i16);
}

#[test]
fn buffered_speech_is_capped() {
    let options = VadOptions {
        max_buffered_speech: Duration::from_secs(1),
        prefix_padding: ms(100),
        ..VadOptions::default()
    };
    // 10 s of speech.
    let (_, vad) = vad_with(
        &[(0.0, 20), (0.9, 313), (0.0, 40), (0.9, 10), (0.0, 20)],
        options,
    );
    let events = run_all(vad.stream().as_mut(), &[silence(403 * W, 16_000, 1)]);
    let audios: Vec<(Duration, Duration)> = events
        .iter()
        .filter_map(|e| match e {
            VadEvent::EndOfSpeech {
                audio,
                speech_duration,
                ..
            } => Some((audio.duration(), *speech_duration)),
            _ => None,
        })
        .collect();
    assert_eq!(audios.len(), 2);
    assert_eq!(audios[0], (ms(1_100), ms(313 * W)));
    // The history restarts after the capped speech: the second segment is complete.
    assert_eq!(audios[1], (ms(100 + 10 * W), ms(10 * W)));
}

#[test]
fn streams_are_independent_and_sendable() {
    let (model, vad) = scripted(&[(0.0, 3), (0.9, 5), (0.0, 20)]);
    let vad: Arc<dyn Vad> = Arc::new(vad);
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let vad = vad.clone();
            std::thread::spawn(move || {
                let mut stream = vad.stream();
                let mut events = Vec::new();
                for _ in 0..28 {
                    events.extend(stream.push(&silence(W, 16_000, 1)).unwrap());
                }
                boundaries(&events)
            })
        })
        .collect();
    for handle in handles {
        assert_eq!(
            handle.join().unwrap(),
            [("start", ms(3 * W)), ("end", ms(8 * W))]
        );
    }
    assert_eq!(model.windows_seen(), 4 * 28);
    assert_eq!(vad.name(), "scripted");
}

#[test]
fn rate_changes_mid_stream_keep_the_timeline() {
    let (model, vad) = scripted(&[(0.0, 10), (0.9, 10), (0.0, 30)]);
    let mut stream = vad.stream();
    let mut events = stream.push(&silence(320, 16_000, 1)).unwrap();
    events.extend(stream.push(&silence(320, 48_000, 2)).unwrap());
    events.extend(stream.push(&silence(960, 8_000, 1)).unwrap());
    events.extend(stream.flush().unwrap());
    assert_eq!(boundaries(&events), [("start", ms(320)), ("end", ms(640))]);
    assert_eq!(model.windows_seen(), 50);
}

#[test]
fn energy_model_scores_loud_audio_as_speech() {
    let model = EnergyVadModel::default();
    assert_eq!(model.window_size(16_000), 512);
    assert_eq!(model.window_size(8_000), 256);
    let mut state = model.new_state(16_000);
    let loud: Vec<f32> = (0..512).map(|i| 0.3 * (i as f32 * 0.2).sin()).collect();
    let quiet = vec![0.0f32; 512];
    let p_silence = state.predict(&quiet).unwrap();
    let p_loud = state.predict(&loud).unwrap();
    assert!(p_silence < 0.01, "{p_silence}");
    assert!(p_loud > 0.99, "{p_loud}");
    assert!(matches!(
        state.predict(&quiet[..10]),
        Err(VadError::WindowSize {
            expected: 512,
            got: 10
        })
    ));
    // NaN input does not poison the score.
    let mut with_nan = loud.clone();
    with_nan[3] = f32::NAN;
    assert!(state.predict(&with_nan).unwrap() > 0.99);
    // Steady noise at -40 dBFS (above the -50 dBFS minimum) is learned as the floor.
    let noise: Vec<f32> = (0..512)
        .map(|i| 0.01 * if i % 2 == 0 { 1.0 } else { -1.0 })
        .collect();
    let mut state = model.new_state(16_000);
    let first = state.predict(&noise).unwrap();
    let mut last = first;
    for _ in 0..300 {
        last = state.predict(&noise).unwrap();
    }
    assert!(first > 0.9, "{first}");
    assert!(last < 0.1, "{last}");
    // Speech 26 dB above the noise is still speech.
    assert!(state.predict(&loud).unwrap() > 0.99);
}

#[test]
fn odd_input_rates_and_empty_frames_are_handled() {
    for rate in [7_919u32, 11_025, 96_000, 384_000] {
        let (model, vad) = scripted(&[(0.9, 10), (0.0, 40)]);
        let mut stream = vad.stream();
        assert!(
            stream
                .push(&AudioFrame::empty(rate, 1).unwrap())
                .unwrap()
                .is_empty()
        );
        // 1.6 s of audio (50 windows at 16 kHz) in 100 ms frames.
        let frame =
            AudioFrame::new(vec![0i16; (rate as usize).div_ceil(10).max(1)], rate, 1).unwrap();
        let mut events = Vec::new();
        for _ in 0..16 {
            events.extend(stream.push(&frame).unwrap());
        }
        events.extend(stream.flush().unwrap());
        assert_eq!(
            boundaries(&events),
            [("start", ms(0)), ("end", ms(10 * W))],
            "{rate} Hz"
        );
        assert!(
            model.windows_seen().abs_diff(50) <= 1,
            "{rate} Hz: {}",
            model.windows_seen()
        );
    }
}
