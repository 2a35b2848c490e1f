use std::io::Cursor;
use std::time::Duration;

use proptest::prelude::*;

use super::*;

fn sine(freq: f32, rate: u32, seconds: f32, amplitude: f32, phase: f32) -> Vec<f32> {
    let n = (rate as f32 * seconds) as usize;
    (0..n)
        .map(|i| {
            amplitude * (2.0 * std::f32::consts::PI * freq * i as f32 / rate as f32 + phase).sin()
        })
        .collect()
}

fn interleave(channels: &[Vec<f32>]) -> Vec<f32> {
    let n = channels[0].len();
    (0..n)
        .flat_map(|i| channels.iter().map(move |c| c[i]))
        .collect()
}

// ---- AudioFrame

#[test]
fn frame_constructors_validate_instead_of_panicking() {
    assert!(matches!(
        AudioFrame::new(vec![0i16; 4], 0, 1),
        Err(AudioError::InvalidSampleRate(0))
    ));
    assert!(matches!(
        AudioFrame::new(vec![0i16; 4], MAX_SAMPLE_RATE + 1, 1),
        Err(AudioError::InvalidSampleRate(_))
    ));
    assert!(matches!(
        AudioFrame::new(vec![0i16; 4], 16_000, 0),
        Err(AudioError::InvalidChannels(0))
    ));
    assert!(matches!(
        AudioFrame::new(vec![0i16; 5], 16_000, 2),
        Err(AudioError::PartialFrame {
            len: 5,
            channels: 2
        })
    ));
    assert!(matches!(
        AudioFrame::silence(Duration::from_secs(1_000_000), 48_000, 2),
        Err(AudioError::InvalidFrameDuration { .. })
    ));
    let empty = AudioFrame::empty(8_000, 1).unwrap();
    assert!(empty.is_empty());
    assert_eq!(empty.duration(), Duration::ZERO);
    assert_eq!(empty.to_mono().samples_per_channel(), 0);
}

#[test]
fn frame_durations_are_sample_exact() {
    let frame = AudioFrame::new(vec![0i16; 11_025 * 2], 22_050, 2).unwrap();
    assert_eq!(frame.samples_per_channel(), 11_025);
    assert_eq!(frame.duration(), Duration::from_millis(500));
    let frame = AudioFrame::new(vec![0i16; 1], 44_100, 1).unwrap();
    assert_eq!(frame.duration(), Duration::from_nanos(22_675)); // 1/44100 s, rounded down
    let silence = AudioFrame::silence(Duration::from_millis(32), 16_000, 2).unwrap();
    assert_eq!(silence.data().len(), 1_024);
    assert_eq!(samples_in(Duration::from_millis(32), 22_050), 706); // 705.6 rounds up
    assert_eq!(duration_of(512, 16_000), Duration::from_millis(32));
}

#[test]
fn mixing_down_averages_channels_with_rounding() {
    let stereo = AudioFrame::new(
        vec![1, 2, -1, -2, 32_767, 32_767, -32_768, -32_768, 100, -100],
        8_000,
        2,
    )
    .unwrap();
    let mono = stereo.to_mono();
    assert_eq!(mono.channels(), 1);
    assert_eq!(mono.sample_rate(), 8_000);
    assert_eq!(mono.data(), &[2, -2, 32_767, -32_768, 0]);
    let three = AudioFrame::new(vec![3, 3, 4], 8_000, 3).unwrap();
    assert_eq!(three.to_mono().data(), &[3]); // 10/3 = 3.33
    let mut f = Vec::new();
    stereo.mix_to_mono_f32(&mut f);
    assert_eq!(f.len(), 5);
    assert!((f[0] - 1.5 / 32_768.0).abs() < 1e-9);
    assert!((f[2] - 32_767.0 / 32_768.0).abs() < 1e-9);
    assert_eq!(f[3], -1.0);
    // Mono frames share their samples.
    let m = AudioFrame::new(vec![1, 2, 3], 8_000, 1).unwrap();
    assert!(std::sync::Arc::ptr_eq(
        m.shared_data(),
        m.to_mono().shared_data()
    ));
}

#[test]
fn f32_conversion_clamps_and_silences_nan() {
    let frame =
        AudioFrame::from_f32(&[0.5, -1.0, 2.0, -3.0, f32::NAN, f32::INFINITY], 16_000, 1).unwrap();
    assert_eq!(frame.data(), &[16_384, -32_768, 32_767, -32_768, 0, 32_767]);
}

#[test]
fn concat_checks_formats() {
    let a = AudioFrame::new(vec![1, 2], 16_000, 1).unwrap();
    let b = AudioFrame::new(vec![3], 16_000, 1).unwrap();
    assert_eq!(
        AudioFrame::concat(&[a.clone(), b], 16_000, 1)
            .unwrap()
            .data(),
        &[1, 2, 3]
    );
    let c = AudioFrame::new(vec![3, 4], 8_000, 1).unwrap();
    assert!(matches!(
        AudioFrame::concat(&[a, c], 16_000, 1),
        Err(AudioError::FormatMismatch {
            got_rate: 8_000,
            expected_rate: 16_000,
            ..
        })
    ));
}

// ---- FrameChunker

#[test]
fn chunker_produces_10_20_32_ms_frames() {
    for (ms, expected) in [(10, 160), (20, 320), (32, 512)] {
        let mut chunker = FrameChunker::new(16_000, 1, Duration::from_millis(ms)).unwrap();
        assert_eq!(chunker.samples_per_channel(), expected);
        assert_eq!(chunker.frame_duration(), Duration::from_millis(ms));
        let input =
            AudioFrame::new((0..1_000).map(|i| i as i16).collect::<Vec<_>>(), 16_000, 1).unwrap();
        let frames = chunker.push(&input).unwrap();
        assert_eq!(frames.len(), 1_000 / expected);
        assert_eq!(frames[0].data()[0], 0);
        assert_eq!(
            frames.last().unwrap().data()[expected - 1],
            (1_000 / expected * expected - 1) as i16
        );
        assert_eq!(chunker.pending_samples_per_channel(), 1_000 % expected);
        let rest = chunker.flush().unwrap();
        assert_eq!(rest.samples_per_channel(), 1_000 % expected);
        assert_eq!(rest.data()[0], (1_000 / expected * expected) as i16);
        assert!(chunker.flush().is_none());
    }
    // 10 ms at 44.1 kHz stereo.
    let chunker = FrameChunker::new(44_100, 2, Duration::from_millis(10)).unwrap();
    assert_eq!(chunker.samples_per_channel(), 441);
}

#[test]
fn chunker_rejects_bad_parameters_and_formats() {
    assert!(FrameChunker::new(16_000, 1, Duration::ZERO).is_err());
    assert!(FrameChunker::new(16_000, 1, Duration::from_micros(10)).is_err()); // 0.16 samples
    assert!(FrameChunker::new(16_000, 1, Duration::from_secs(11)).is_err());
    assert!(FrameChunker::new(0, 1, Duration::from_millis(10)).is_err());
    assert!(FrameChunker::with_samples(16_000, 1, 0).is_err());
    let mut chunker = FrameChunker::new(16_000, 1, Duration::from_millis(10)).unwrap();
    let other = AudioFrame::new(vec![0i16; 320], 8_000, 1).unwrap();
    assert!(matches!(
        chunker.push(&other),
        Err(AudioError::FormatMismatch { .. })
    ));
    assert!(
        chunker
            .push(&AudioFrame::empty(16_000, 1).unwrap())
            .unwrap()
            .is_empty()
    );
}

#[test]
fn chunker_joins_split_sample_frames_and_pads() {
    let mut chunker = FrameChunker::with_samples(8_000, 2, 3).unwrap();
    // L/R pairs (1,-1) (2,-2) ...; pushed in odd-sized pieces that split pairs.
    let all: Vec<i16> = (1..=8).flat_map(|i| [i, -i]).collect();
    let mut frames = chunker.push_interleaved(&all[..3]);
    frames.extend(chunker.push_interleaved(&all[3..8]));
    frames.extend(chunker.push_interleaved(&all[8..13]));
    assert_eq!(frames.len(), 2);
    assert_eq!(frames[0].data(), &[1, -1, 2, -2, 3, -3]);
    assert_eq!(frames[1].data(), &[4, -4, 5, -5, 6, -6]);
    // 13 samples pushed: 12 in frames, one dangling half sample frame, dropped at flush.
    assert_eq!(chunker.flush_padded(), None);
    let _ = chunker.push_interleaved(&all[..2]);
    assert_eq!(chunker.flush_padded().unwrap().data(), &[1, -1, 0, 0, 0, 0]);
}

proptest! {
    #[test]
    fn chunker_output_is_the_input_in_fixed_frames(
        sizes in prop::collection::vec(0usize..700, 0..20),
        frame in 1usize..600,
    ) {
        let mut chunker = FrameChunker::with_samples(16_000, 1, frame).unwrap();
        let mut input = Vec::new();
        let mut output = Vec::new();
        let mut next = 0i16;
        for size in sizes {
            let piece: Vec<i16> = (0..size).map(|_| { next = next.wrapping_add(1); next }).collect();
            input.extend_from_slice(&piece);
            for f in chunker.push(&AudioFrame::new(piece, 16_000, 1).unwrap()).unwrap() {
                prop_assert_eq!(f.samples_per_channel(), frame);
                output.extend_from_slice(f.data());
            }
        }
        prop_assert_eq!(output.len(), input.len() / frame * frame);
        prop_assert_eq!(&output[..], &input[..output.len()]);
        if let Some(rest) = chunker.flush() {
            output.extend_from_slice(rest.data());
        }
        prop_assert_eq!(output, input);
    }
}

// ---- Resampler

fn resample_in_pieces(r: &mut Resampler, input: &[f32], pieces: &[usize]) -> Vec<f32> {
    let channels = usize::from(r.channels());
    let mut out = Vec::new();
    let mut offset = 0;
    let mut i = 0;
    while offset < input.len() {
        let frames = pieces[i % pieces.len()];
        let end = (offset + frames * channels).min(input.len());
        r.process_f32(&input[offset..end], &mut out).unwrap();
        offset = end;
        i += 1;
    }
    r.flush_f32(&mut out).unwrap();
    out
}

#[test]
fn resampler_output_length_is_exact_for_odd_rates_and_stereo() {
    let pairs = [
        (48_000, 16_000),
        (44_100, 16_000),
        (22_050, 16_000),
        (11_025, 16_000),
        (8_000, 16_000),
        (16_000, 48_000),
        (44_100, 48_000),
        (44_101, 16_000), // no usable common divisor: asynchronous sinc resampler
        (16_000, 16_000),
    ];
    for (from, to) in pairs {
        for channels in [1u16, 2] {
            let frames = 12_345;
            let input = vec![0.1f32; frames * usize::from(channels)];
            let mut r = Resampler::new(from, to, channels).unwrap();
            let out = resample_in_pieces(&mut r, &input, &[7, 480, 1, 1_000]);
            let expected = (frames as u64 * u64::from(to)).div_ceil(u64::from(from)) as usize;
            assert_eq!(
                out.len(),
                expected * usize::from(channels),
                "{from} -> {to}, {channels} ch"
            );
        }
    }
}

/// Fits `a * sin(2 pi f t + phase)` to `signal[range]` (taking every `stride`-th sample from
/// `offset`) and returns (amplitude, phase, largest residual).
fn fit_sine(
    signal: &[f32],
    stride: usize,
    offset: usize,
    rate: u32,
    freq: f32,
    range: std::ops::Range<usize>,
) -> (f64, f64, f64) {
    let (mut c, mut s) = (0.0f64, 0.0f64);
    let n = range.len() as f64;
    let w = 2.0 * std::f64::consts::PI * f64::from(freq) / f64::from(rate);
    for i in range.clone() {
        let x = f64::from(signal[i * stride + offset]);
        c += x * (w * i as f64).cos();
        s += x * (w * i as f64).sin();
    }
    let amplitude = 2.0 * (c * c + s * s).sqrt() / n;
    let phase = c.atan2(s);
    let residual = range
        .map(|i| {
            (f64::from(signal[i * stride + offset]) - amplitude * (w * i as f64 + phase).sin())
                .abs()
        })
        .fold(0.0, f64::max);
    (amplitude, phase, residual)
}

#[test]
fn resampled_sine_matches_the_ideal_sine() {
    // 440 Hz on the left, 1 kHz on the right, to 16 kHz, in irregular pieces.
    for from in [44_100u32, 48_000, 22_050, 11_025] {
        let left = sine(440.0, from, 1.0, 0.5, 0.0);
        let right = sine(1_000.0, from, 1.0, 0.3, 1.0);
        let input = interleave(&[left, right]);
        let mut r = Resampler::new(from, 16_000, 2).unwrap();
        let out = resample_in_pieces(&mut r, &input, &[333, 17, 1_024]);
        // Ignore the edges, where the filter sees the start/end of the signal.
        for (channel, freq, amplitude, phase) in [(0, 440.0, 0.5, 0.0), (1, 1_000.0, 0.3, 1.0)] {
            let (a, p, residual) = fit_sine(&out, 2, channel, 16_000, freq, 400..15_600);
            assert!(
                (a - amplitude).abs() < 0.002,
                "{from} Hz ch{channel}: amplitude {a}"
            );
            // Timing within one input sample.
            let shift =
                (p - phase) / (2.0 * std::f64::consts::PI * f64::from(freq)) * f64::from(from);
            assert!(
                shift.abs() <= 1.01,
                "{from} Hz ch{channel}: shifted by {shift} input samples"
            );
            assert!(
                residual < 0.002,
                "{from} Hz ch{channel}: residual {residual}"
            );
        }
    }
}

#[test]
fn resampler_output_is_aligned_with_input_time() {
    // A click at 0.5 s must come out at 0.5 s: the startup delay is trimmed.
    for (from, to) in [
        (48_000u32, 16_000u32),
        (22_050, 16_000),
        (8_000, 16_000),
        (44_101, 16_000),
    ] {
        let mut input = vec![0.0f32; from as usize];
        input[from as usize / 2] = 1.0;
        let mut r = Resampler::new(from, to, 1).unwrap();
        let out = resample_in_pieces(&mut r, &input, &[160]);
        let peak = out
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.abs().total_cmp(&b.1.abs()))
            .map(|(i, _)| i)
            .unwrap();
        let expected = to as usize / 2;
        assert!(
            peak.abs_diff(expected) <= 1,
            "{from} -> {to}: peak at {peak}, expected {expected}"
        );
    }
}

#[test]
fn resampler_streaming_equals_one_shot_and_flush_resets() {
    let input = sine(300.0, 48_000, 0.37, 0.8, 0.2);
    let mut r = Resampler::new(48_000, 16_000, 1).unwrap();
    let one_shot = resample_in_pieces(&mut r, &input, &[input.len()]);
    let pieces = resample_in_pieces(&mut r, &input, &[1, 13, 960, 4_801]);
    assert_eq!(one_shot, pieces);
}

#[test]
fn resampler_frames_api_and_errors() {
    let mut r = Resampler::new(48_000, 16_000, 2).unwrap();
    assert!(!r.is_passthrough());
    assert!(r.latency() > Duration::ZERO && r.latency() < Duration::from_millis(40));
    let wrong = AudioFrame::new(vec![0i16; 960], 44_100, 2).unwrap();
    assert!(matches!(
        r.process(&wrong),
        Err(AudioError::FormatMismatch { .. })
    ));
    let mut out = Vec::new();
    assert!(matches!(
        r.process_f32(&[0.0; 3], &mut out),
        Err(AudioError::PartialFrame { .. })
    ));
    // 0-length input is fine.
    let empty = AudioFrame::empty(48_000, 2).unwrap();
    assert!(r.process(&empty).unwrap().is_empty());
    let frame = AudioFrame::new(vec![1_000i16; 48_000 * 2 / 10], 48_000, 2).unwrap();
    let a = r.process(&frame).unwrap();
    let b = r.flush().unwrap();
    assert_eq!(a.sample_rate(), 16_000);
    assert_eq!(a.channels(), 2);
    assert_eq!(a.samples_per_channel() + b.samples_per_channel(), 1_600);
    // A constant signal stays constant in the middle.
    assert!(
        (i32::from(a.data()[600]) - 1_000).abs() <= 2,
        "{}",
        a.data()[600]
    );
    assert!(Resampler::new(0, 16_000, 1).is_err());
    assert!(Resampler::new(16_000, 16_000, 0).is_err());
    let mut same = Resampler::new(16_000, 16_000, 1).unwrap();
    assert!(same.is_passthrough());
    let f = AudioFrame::new(vec![5i16; 10], 16_000, 1).unwrap();
    assert_eq!(same.process(&f).unwrap(), f);
    assert!(same.flush().unwrap().is_empty());
}

// ---- WAV

fn hound_bytes<S: hound::Sample + Copy>(spec: hound::WavSpec, samples: &[S]) -> Vec<u8> {
    let mut cursor = Cursor::new(Vec::new());
    let mut w = hound::WavWriter::new(&mut cursor, spec).unwrap();
    for &s in samples {
        w.write_sample(s).unwrap();
    }
    w.finalize().unwrap();
    cursor.into_inner()
}

fn spec(channels: u16, rate: u32, bits: u16, float: bool) -> hound::WavSpec {
    hound::WavSpec {
        channels,
        sample_rate: rate,
        bits_per_sample: bits,
        sample_format: if float {
            hound::SampleFormat::Float
        } else {
            hound::SampleFormat::Int
        },
    }
}

#[test]
fn wav_round_trip_through_a_file() {
    let dir = std::env::temp_dir().join(format!("switchboard-wav-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("stereo.wav");
    let frame = AudioFrame::new(vec![0, 1, -1, 32_767, -32_768, 12_345], 22_050, 2).unwrap();
    write_wav(&path, &frame).unwrap();
    let back = read_wav(&path).unwrap();
    assert_eq!(back, frame);
    let _ = std::fs::remove_dir_all(&dir);
    let bytes = encode_wav(&frame).unwrap();
    assert_eq!(bytes.len(), 44 + 12);
    assert_eq!(read_wav_from(Cursor::new(bytes)).unwrap(), frame);
}

#[test]
fn wav_bit_depths_convert_to_16_bit() {
    let s8 = hound_bytes(spec(1, 8_000, 8, false), &[-128i8, 0, 127, 64]);
    assert_eq!(
        read_wav_from(Cursor::new(s8)).unwrap().data(),
        &[-32_768, 0, 32_512, 16_384]
    );
    let s24 = hound_bytes(
        spec(2, 44_100, 24, false),
        &[-8_388_608i32, 8_388_607, 256, -256],
    );
    let wav = decode_wav(Cursor::new(s24), "x", OnTruncated::Error).unwrap();
    assert_eq!(wav.source_format, WavSampleFormat::Int(24));
    assert_eq!(wav.frame.channels(), 2);
    assert_eq!(wav.frame.data(), &[-32_768, 32_767, 1, -1]);
    let s32 = hound_bytes(spec(1, 48_000, 32, false), &[i32::MIN, i32::MAX, 65_536]);
    assert_eq!(
        read_wav_from(Cursor::new(s32)).unwrap().data(),
        &[-32_768, 32_767, 1]
    );
    let f32s = hound_bytes(spec(1, 11_025, 32, true), &[0.5f32, -1.0, 1.5, f32::NAN]);
    let wav = decode_wav(Cursor::new(f32s), "x", OnTruncated::Error).unwrap();
    assert_eq!(wav.source_format, WavSampleFormat::Float32);
    assert_eq!(wav.frame.sample_rate(), 11_025);
    assert_eq!(wav.frame.data(), &[16_384, -32_768, 32_767, 0]);
}

#[test]
fn truncated_wav_is_reported_with_counts() {
    let frame =
        AudioFrame::new((0..2_000).map(|i| i as i16).collect::<Vec<_>>(), 16_000, 2).unwrap();
    let mut bytes = encode_wav(&frame).unwrap();
    bytes.truncate(44 + 1_001 * 2 + 1); // 1001 samples and one odd byte
    match read_wav_from(Cursor::new(bytes.clone())) {
        Err(AudioError::TruncatedWav { declared, read, .. }) => {
            assert_eq!(declared, 2_000);
            assert_eq!(read, 1_001);
        }
        other => panic!("expected a truncation error, got {other:?}"),
    }
    let message = decode_wav(Cursor::new(bytes.clone()), "call.wav", OnTruncated::Error)
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("call.wav") && message.contains("truncated"),
        "{message}"
    );
    let kept = decode_wav(Cursor::new(bytes), "call.wav", OnTruncated::Keep).unwrap();
    assert_eq!(kept.truncated, Some((2_000, 1_001)));
    assert_eq!(kept.frame.samples_per_channel(), 500); // whole stereo frames only
    assert_eq!(&kept.frame.data()[..4], &[0, 1, 2, 3]);
}

#[test]
fn corrupt_unsupported_and_missing_files_give_clear_errors() {
    assert!(matches!(
        read_wav_from(Cursor::new(Vec::new())),
        Err(AudioError::CorruptWav { .. })
    ));
    assert!(matches!(
        read_wav_from(Cursor::new(b"RIFF\x10\x00\x00\x00WAVEjunk".to_vec())),
        Err(AudioError::CorruptWav { .. })
    ));
    let mut header = encode_wav(&AudioFrame::new(vec![0i16; 4], 8_000, 1).unwrap()).unwrap();
    header.truncate(30); // inside the fmt chunk
    assert!(matches!(
        read_wav_from(Cursor::new(header)),
        Err(AudioError::CorruptWav { .. })
    ));
    // Format tag 2 (ADPCM).
    let mut adpcm = encode_wav(&AudioFrame::new(vec![0i16; 4], 8_000, 1).unwrap()).unwrap();
    adpcm[20] = 2;
    let err = read_wav_from(Cursor::new(adpcm)).unwrap_err();
    assert!(matches!(err, AudioError::UnsupportedWav { .. }), "{err:?}");
    let err = read_wav("/nonexistent/dir/x.wav").unwrap_err();
    assert!(matches!(err, AudioError::Io { .. }));
    assert!(err.to_string().contains("/nonexistent/dir/x.wav"));
}

proptest! {
    #[test]
    fn wav_decoding_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..200), cut in 0usize..120) {
        let _ = read_wav_from(Cursor::new(bytes));
        let valid = encode_wav(&AudioFrame::new(vec![7i16; 40], 22_050, 2).unwrap()).unwrap();
        let cut = cut.min(valid.len());
        let _ = decode_wav(Cursor::new(valid[..cut].to_vec()), "x", OnTruncated::Keep);
    }

    #[test]
    fn wav_decoding_of_mutated_headers_never_panics(pos in 0usize..44, value in any::<u8>()) {
        let mut bytes = encode_wav(&AudioFrame::new(vec![7i16; 40], 22_050, 2).unwrap()).unwrap();
        bytes[pos] = value;
        let _ = decode_wav(Cursor::new(bytes), "x", OnTruncated::Keep);
    }
}

#[test]
fn extreme_and_prime_rates_work() {
    for (from, to) in [
        (1u32, 16_000u32),
        (7_919, 16_000),
        (384_000, 16_000),
        (16_000, 384_000),
        (16_000, 1),
    ] {
        let frames = (from as usize).clamp(1, 50_000);
        let mut r = Resampler::new(from, to, 2).unwrap();
        let input = vec![0.25f32; frames * 2];
        let out = resample_in_pieces(&mut r, &input, &[3, 1_000]);
        let expected = (frames as u64 * u64::from(to)).div_ceil(u64::from(from)) as usize;
        assert_eq!(out.len(), expected * 2, "{from} -> {to}");
        assert!(out.iter().all(|s| s.is_finite()), "{from} -> {to}");
    }
}
