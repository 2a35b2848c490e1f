use std::fs::File;
use std::io::{BufReader, BufWriter, Cursor, Read, Seek, Write};
use std::path::Path;

use super::frame::validate_format;
use super::{AudioError, AudioFrame, f32_to_i16};

/// The sample encoding of a WAV file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WavSampleFormat {
    /// Integer PCM of this many bits (8, 16, 24 or 32).
    Int(u16),
    /// 32-bit IEEE float.
    Float32,
}

/// What [`decode_wav`] does when the file ends before the length its header declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnTruncated {
    /// Fail with [`AudioError::TruncatedWav`].
    #[default]
    Error,
    /// Keep the whole sample frames that were read and report the truncation in
    /// [`WavAudio::truncated`].
    Keep,
}

/// A decoded WAV file.
#[derive(Debug, Clone, PartialEq)]
pub struct WavAudio {
    /// The audio, converted to 16-bit PCM at the file's rate and channel count.
    pub frame: AudioFrame,
    /// The file's sample encoding.
    pub source_format: WavSampleFormat,
    /// For a truncated file read with [`OnTruncated::Keep`]: `(declared, read)` sample counts
    /// (all channels).
    pub truncated: Option<(u64, u64)>,
}

/// Reads a WAV file (8/16/24/32-bit integer PCM or 32-bit float, any rate and channel count
/// hound reads) into one 16-bit frame. Truncated, corrupt or unsupported files give a clear
/// error naming the file.
pub fn read_wav(path: impl AsRef<Path>) -> Result<AudioFrame, AudioError> {
    let path = path.as_ref();
    let file = File::open(path).map_err(|source| AudioError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let name = path.display().to_string();
    decode_wav(BufReader::new(file), &name, OnTruncated::Error).map(|wav| wav.frame)
}

/// Reads WAV data from a reader (see [`read_wav`]).
pub fn read_wav_from(reader: impl Read) -> Result<AudioFrame, AudioError> {
    decode_wav(reader, "<reader>", OnTruncated::Error).map(|wav| wav.frame)
}

/// Decodes WAV data; `name` is used in error messages. See [`read_wav`].
pub fn decode_wav(
    reader: impl Read,
    name: &str,
    on_truncated: OnTruncated,
) -> Result<WavAudio, AudioError> {
    let mut reader = hound::WavReader::new(reader).map_err(|e| wav_error(name, e))?;
    let spec = reader.spec();
    let channels = spec.channels;
    validate_format(spec.sample_rate, channels).map_err(|e| AudioError::UnsupportedWav {
        name: name.to_string(),
        reason: e.to_string(),
    })?;
    let declared = u64::from(reader.len());
    // Do not trust the header for the allocation: a corrupt length could be gigabytes.
    let mut data: Vec<i16> = Vec::with_capacity((declared as usize).min(1 << 22));
    let source_format = match (spec.sample_format, spec.bits_per_sample) {
        (hound::SampleFormat::Float, 32) => WavSampleFormat::Float32,
        (hound::SampleFormat::Int, bits @ (8 | 16 | 24 | 32)) => WavSampleFormat::Int(bits),
        (format, bits) => {
            return Err(AudioError::UnsupportedWav {
                name: name.to_string(),
                reason: format!("{bits}-bit {format:?} samples"),
            });
        }
    };
    let mut failure = None;
    match source_format {
        WavSampleFormat::Float32 => {
            for sample in reader.samples::<f32>() {
                match sample {
                    Ok(s) => data.push(f32_to_i16(s)),
                    Err(e) => {
                        failure = Some(e);
                        break;
                    }
                }
            }
        }
        WavSampleFormat::Int(bits) => {
            for sample in reader.samples::<i32>() {
                match sample {
                    Ok(s) => data.push(int_to_i16(s, bits)),
                    Err(e) => {
                        failure = Some(e);
                        break;
                    }
                }
            }
        }
    }
    let read = data.len() as u64;
    let truncated = match failure {
        None => None,
        Some(hound::Error::IoError(e)) if is_short_read(&e) => Some((declared, read)),
        Some(e) => return Err(wav_error(name, e)),
    };
    if let Some((declared, read)) = truncated
        && on_truncated == OnTruncated::Error
    {
        return Err(AudioError::TruncatedWav {
            name: name.to_string(),
            declared,
            read,
        });
    }
    let whole = data.len() / usize::from(channels) * usize::from(channels);
    data.truncate(whole);
    Ok(WavAudio {
        frame: AudioFrame::from_parts(data.into(), spec.sample_rate, channels),
        source_format,
        truncated,
    })
}

/// Writes a frame as a 16-bit PCM WAV file.
pub fn write_wav(path: impl AsRef<Path>, frame: &AudioFrame) -> Result<(), AudioError> {
    let path = path.as_ref();
    let io_error = |source| AudioError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = File::create(path).map_err(io_error)?;
    let mut writer = BufWriter::new(file);
    write_to(&mut writer, frame, &path.display().to_string())?;
    writer.flush().map_err(io_error)
}

/// Encodes a frame as a 16-bit PCM WAV file in memory.
pub fn encode_wav(frame: &AudioFrame) -> Result<Vec<u8>, AudioError> {
    let mut cursor = Cursor::new(Vec::new());
    write_to(&mut cursor, frame, "<memory>")?;
    Ok(cursor.into_inner())
}

fn write_to<W: Write + Seek>(writer: W, frame: &AudioFrame, name: &str) -> Result<(), AudioError> {
    let spec = hound::WavSpec {
        channels: frame.channels(),
        sample_rate: frame.sample_rate(),
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let error = |e: hound::Error| match e {
        hound::Error::IoError(source) => AudioError::Io {
            path: name.into(),
            source,
        },
        other => AudioError::UnsupportedWav {
            name: name.to_string(),
            reason: format!("cannot write: {other}"),
        },
    };
    let mut writer = hound::WavWriter::new(writer, spec).map_err(error)?;
    for &sample in frame.data() {
        writer.write_sample(sample).map_err(error)?;
    }
    writer.finalize().map_err(error)
}

fn int_to_i16(sample: i32, bits: u16) -> i16 {
    match bits {
        // hound returns 8-bit samples already centred on zero (-128..=127).
        8 => (sample << 8).clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16,
        16 => sample.clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16,
        _ => (sample >> (bits.saturating_sub(16)).min(31)) as i16,
    }
}

/// Whether an I/O error means the data ended early (hound reports a short read as
/// `ErrorKind::Other` with a fixed message, the standard library as `UnexpectedEof`).
fn is_short_read(error: &std::io::Error) -> bool {
    error.kind() == std::io::ErrorKind::UnexpectedEof
        || (error.kind() == std::io::ErrorKind::Other
            && error.to_string() == "Failed to read enough bytes.")
}

fn wav_error(name: &str, error: hound::Error) -> AudioError {
    let name = name.to_string();
    match error {
        hound::Error::Unsupported => AudioError::UnsupportedWav {
            name,
            reason: "the encoding is not PCM or IEEE float".into(),
        },
        hound::Error::IoError(e) if is_short_read(&e) => AudioError::CorruptWav {
            name,
            reason: "the file ends inside its header".into(),
        },
        hound::Error::IoError(e) => AudioError::CorruptWav {
            name,
            reason: e.to_string(),
        },
        other => AudioError::CorruptWav {
            name,
            reason: other.to_string(),
        },
    }
}
